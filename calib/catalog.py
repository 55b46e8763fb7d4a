"""Read SExtractor catalogues (ASCII_HEAD, FITS_1.0, FITS_LDAC) from untrusted upload bytes.

Column roles are resolved through alias lists, first match wins:

- ``ra``: ALPHAWIN_J2000, ALPHA_J2000, X_WORLD, RA (windowed positions are the most precise)
- ``dec``: DELTAWIN_J2000, DELTA_J2000, Y_WORLD, DEC
- ``mag``: MAG_AUTO, MAG_BEST, MAG_PSF, MAG_APER (first aperture), MAG, each with its MAGERR_*
- optional ``flags`` (FLAGS), ``flux_max`` (FLUX_MAX), ``class_star`` (CLASS_STAR)
"""

from __future__ import annotations

import io
import itertools
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import CatalogError

MAX_ROWS = 2_000_000
MAX_COLUMNS = 1000

RA_ALIASES = ("ALPHAWIN_J2000", "ALPHA_J2000", "X_WORLD", "RA")
DEC_ALIASES = ("DELTAWIN_J2000", "DELTA_J2000", "Y_WORLD", "DEC")
MAG_ALIASES = ("MAG_AUTO", "MAG_BEST", "MAG_PSF", "MAG_APER", "MAG")


def _magerr_name(mag_name: str) -> str:
    return "MAGERR" + mag_name[3:]


@dataclass
class SourceCatalog:
    """Sources of one frame, one row per detection.

    ``mag`` is instrumental (or whatever zero point the observer used); ``mag_err`` is NaN
    where the catalogue has no error column; ``flags`` is zero where it has no FLAGS.
    ``columns`` maps each role to the catalogue column it came from, for the log.
    """

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    mag_err: np.ndarray
    flags: np.ndarray
    flux_max: np.ndarray | None = None
    class_star: np.ndarray | None = None
    columns: dict[str, str] = field(default_factory=dict)
    format: str = "ASCII_HEAD"

    def __len__(self) -> int:
        return len(self.ra)

    def select(self, index: np.ndarray) -> SourceCatalog:
        """Return the rows picked by a boolean mask or an index array."""
        return SourceCatalog(
            ra=self.ra[index],
            dec=self.dec[index],
            mag=self.mag[index],
            mag_err=self.mag_err[index],
            flags=self.flags[index],
            flux_max=None if self.flux_max is None else self.flux_max[index],
            class_star=None if self.class_star is None else self.class_star[index],
            columns=dict(self.columns),
            format=self.format,
        )


def read_catalog(data: bytes) -> SourceCatalog:
    """Parse an uploaded SExtractor catalogue.

    Raises
    ------
    CatalogError
        For anything that is not a readable catalogue with positions and magnitudes; no other
        exception escapes, since the bytes come straight from the network.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CatalogError("catalogue must be given as bytes")
    data = bytes(data)
    if not data.strip():
        raise CatalogError("catalogue is empty")
    try:
        if data.startswith(b"SIMPLE"):
            columns, fmt = _read_fits(data)
        else:
            columns, fmt = _read_ascii_head(data)
        return _to_source_catalog(columns, fmt)
    except CatalogError:
        raise
    except Exception as exc:  # hostile input: anything the parsers throw becomes a CatalogError
        raise CatalogError(
            "catalogue could not be read", detail=f"{type(exc).__name__}: {exc}"
        ) from exc


# --- ASCII_HEAD -------------------------------------------------------------------------------

_HEADER_RE = re.compile(r"^#\s*(\d+)\s+([A-Za-z_][A-Za-z0-9_]*)")


def _read_ascii_head(data: bytes) -> tuple[dict[str, np.ndarray], str]:
    if b"\x00" in data[:65536]:
        raise CatalogError("catalogue is neither SExtractor ASCII_HEAD text nor FITS")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise CatalogError("catalogue is neither SExtractor ASCII_HEAD text nor FITS") from None

    header: list[tuple[int, str]] = []
    body_start = 0
    lines = text.splitlines(keepends=True)
    for line in lines:
        if not line.startswith("#"):
            if line.strip():
                break
            body_start += len(line)
            continue
        body_start += len(line)
        match = _HEADER_RE.match(line)
        if match is None:
            continue
        header.append((int(match.group(1)), match.group(2).upper()))
        if len(header) > MAX_COLUMNS:
            raise CatalogError(f"catalogue header has more than {MAX_COLUMNS} columns")
    if not header:
        raise CatalogError(
            "catalogue has no SExtractor header; save it with CATALOG_TYPE ASCII_HEAD, "
            "FITS_1.0 or FITS_LDAC"
        )
    numbers = [n for n, _ in header]
    if numbers[0] != 1 or any(b <= a for a, b in itertools.pairwise(numbers)):
        raise CatalogError("catalogue header column numbers are not increasing from 1")

    body = text[body_start:]
    if not body.strip():
        raise CatalogError("catalogue has a header but no sources")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            table = np.loadtxt(
                io.StringIO(body), comments="#", ndmin=2, dtype=np.float64, max_rows=MAX_ROWS + 1
            )
        except ValueError as exc:
            raise CatalogError("catalogue rows are not all numeric", detail=str(exc)) from exc
    if table.shape[0] > MAX_ROWS:
        raise CatalogError(f"catalogue has more than {MAX_ROWS:,} sources")
    ncols = table.shape[1]
    if ncols < numbers[-1]:
        raise CatalogError(
            f"catalogue rows have {ncols} values but the header describes at least "
            f"{numbers[-1]} columns"
        )
    # Width of a column = distance to the next header number (vector columns like MAG_APER
    # take several); the last one takes what remains of the row.
    columns: dict[str, np.ndarray] = {}
    ends = [*numbers[1:], ncols + 1]
    for (number, name), end in zip(header, ends, strict=True):
        columns.setdefault(name, table[:, number - 1 : end - 1])
    return columns, "ASCII_HEAD"


# --- FITS -------------------------------------------------------------------------------------


def _read_fits(data: bytes) -> tuple[dict[str, np.ndarray], str]:
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True)
        try:
            table_hdu, fmt = _find_table_hdu(hdul)
            nrows = int(table_hdu.header.get("NAXIS2", 0))
            nfields = int(table_hdu.header.get("TFIELDS", 0))
            if nrows > MAX_ROWS:
                raise CatalogError(f"catalogue has more than {MAX_ROWS:,} sources")
            if nfields > MAX_COLUMNS:
                raise CatalogError(f"catalogue table has more than {MAX_COLUMNS} columns")
            if nrows == 0:
                raise CatalogError("catalogue table has no sources")
            rec = table_hdu.data
            columns = {}
            for name in rec.columns.names:
                key = name.upper()
                if key in columns:
                    continue
                values = np.asarray(rec[name])
                if values.dtype.kind not in "iufb":
                    continue
                columns[key] = values.reshape(len(values), -1).astype(np.float64)
        finally:
            hdul.close()
    return columns, fmt


def _find_table_hdu(hdul):
    from astropy.io import fits

    hdus = list(hdul)
    for hdu in hdus:
        if isinstance(hdu, fits.CompImageHDU) or hdu.header.get("ZIMAGE", False):
            raise CatalogError("FITS file holds a compressed image, not a SExtractor catalogue")
    for hdu in hdus:
        if hdu.name == "LDAC_OBJECTS" and isinstance(hdu, fits.BinTableHDU):
            return hdu, "FITS_LDAC"
    for hdu in hdus:
        if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
            return hdu, "FITS_1.0"
    raise CatalogError("FITS file has no table; upload the SExtractor catalogue, not the image")


# --- roles ------------------------------------------------------------------------------------


def _first(columns: dict[str, np.ndarray], aliases: tuple[str, ...]) -> str | None:
    return next((name for name in aliases if name in columns), None)


def _to_source_catalog(columns: dict[str, np.ndarray], fmt: str) -> SourceCatalog:
    ra_name = _first(columns, RA_ALIASES)
    dec_name = _first(columns, DEC_ALIASES)
    mag_name = _first(columns, MAG_ALIASES)
    missing = [
        f"no {role} column; expected one of {', '.join(aliases)}"
        for role, name, aliases in (
            ("right ascension", ra_name, RA_ALIASES),
            ("declination", dec_name, DEC_ALIASES),
            ("magnitude", mag_name, MAG_ALIASES),
        )
        if name is None
    ]
    if missing:
        raise CatalogError("catalogue has " + "; ".join(missing))

    def first_element(name: str) -> np.ndarray:
        return np.ascontiguousarray(columns[name][:, 0], dtype=np.float64)

    roles = {"ra": ra_name, "dec": dec_name, "mag": mag_name}
    n = len(columns[ra_name])
    err_name = _magerr_name(mag_name)
    if err_name in columns:
        mag_err = first_element(err_name)
        roles["mag_err"] = err_name
    else:
        mag_err = np.full(n, np.nan)
    flags = np.zeros(n, dtype=np.int64)
    if "FLAGS" in columns:
        raw_flags = first_element("FLAGS")
        flags = np.where(np.isfinite(raw_flags), raw_flags, 0).astype(np.int64)
        roles["flags"] = "FLAGS"
    optional = {}
    for role, name in (("flux_max", "FLUX_MAX"), ("class_star", "CLASS_STAR")):
        optional[role] = first_element(name) if name in columns else None
        if name in columns:
            roles[role] = name
    return SourceCatalog(
        ra=first_element(ra_name),
        dec=first_element(dec_name),
        mag=first_element(mag_name),
        mag_err=mag_err,
        flags=flags,
        flux_max=optional["flux_max"],
        class_star=optional["class_star"],
        columns=roles,
        format=fmt,
    )
