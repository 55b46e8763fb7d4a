"""Read uploaded source catalogues from untrusted bytes.

Accepted layouts:

- SExtractor ASCII_HEAD (numbered ``#   1 NAME`` header lines, vector columns included);
- plain whitespace or CSV tables whose header line names the columns, with or without a
  leading ``#``, any case (``RA DEC MAG [MAGERR] [FLAGS]``);
- FITS tables (FITS_1.0, FITS_LDAC);
- RA/Dec in decimal degrees or sexagesimal (``12:34:56.7 -05:06:07``, ``12h34m56.7s``), RA in
  hours when sexagesimal.

Column roles are resolved through alias lists, first match wins (windowed positions are the most
precise); see ``RA_ALIASES`` and the lists below. `check_columns` runs the same header logic on the
first kilobytes of an upload, so the web tier can refuse an unusable table before queueing it.
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
#: The plain header line is looked for among this many comment lines just above the data,
#: SExtractor's numbered header lines in the first megabyte: comment lines beyond are skipped
#: unread, so a file of comments costs a scan, not memory.
MAX_HEADER_SEARCH_LINES = 200
MAX_HEADER_BYTES = 1 << 20

RA_ALIASES = ("ALPHAWIN_J2000", "ALPHA_J2000", "X_WORLD", "RAJ2000", "RA_ICRS", "RA", "ALPHA")
DEC_ALIASES = (
    "DELTAWIN_J2000", "DELTA_J2000", "Y_WORLD", "DEJ2000", "DECJ2000", "DE_ICRS", "DEC_ICRS",
    "DEC", "DE", "DELTA",
)  # fmt: skip
MAG_ALIASES = ("MAG_AUTO", "MAG_BEST", "MAG_PSF", "MAG_APER", "MAG")
#: Error column names for a magnitude column, besides SExtractor's MAGERR_<kind>.
PLAIN_MAGERR_ALIASES = ("MAGERR", "MAG_ERR", "E_MAG", "EMAG", "ERR_MAG", "ERRMAG", "ERR")
FLAGS_ALIASES = ("FLAGS", "FLAG")
FWHM_ALIASES = ("FWHM_IMAGE", "FWHM")  # pixels
X_ALIASES = ("XWIN_IMAGE", "X_IMAGE", "X")
Y_ALIASES = ("YWIN_IMAGE", "Y_IMAGE", "Y")
_OPTIONAL = {
    "flux_max": ("FLUX_MAX",),
    "mu_max": ("MU_MAX",),  # peak surface brightness (mag/arcsec2): FLUX_MAX's stand-in
    "class_star": ("CLASS_STAR",),
    "fwhm": FWHM_ALIASES,
    "fwhm_world": ("FWHM_WORLD",),  # degrees
    "x": X_ALIASES,
    "y": Y_ALIASES,
}
_APER_RE = re.compile(r"^(MAGERR|MAG)_APER[_\[(]?(\d+)[\])]?$")


def _magerr_names(mag_name: str) -> tuple[str, ...]:
    sextractor = "MAGERR" + mag_name[3:]
    return (sextractor,) if mag_name != "MAG" else (sextractor, *PLAIN_MAGERR_ALIASES)


@dataclass
class SourceCatalog:
    """Sources of one frame, one row per detection.

    ``mag`` is instrumental (or whatever zero point the observer used); ``mag_err`` is NaN
    where the catalogue has no error column; ``flags`` is zero where it has no FLAGS.
    ``fwhm`` (pixels), ``fwhm_world`` (degrees), ``x``/``y`` (pixels), ``flux_max`` and
    ``class_star`` are ``None`` when absent. ``columns`` maps each role to the catalogue
    column it came from, for the log.
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
    fwhm: np.ndarray | None = None
    fwhm_world: np.ndarray | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ra)

    @property
    def has_errors(self) -> bool:
        """Whether the catalogue quotes photometric errors (else they are estimated)."""
        return "mag_err" in self.columns

    def select(self, index: np.ndarray) -> SourceCatalog:
        """Return the rows picked by a boolean mask or an index array."""

        def pick(values):
            return None if values is None else values[index]

        return SourceCatalog(
            ra=self.ra[index],
            dec=self.dec[index],
            mag=self.mag[index],
            mag_err=self.mag_err[index],
            flags=self.flags[index],
            flux_max=pick(self.flux_max),
            class_star=pick(self.class_star),
            columns=dict(self.columns),
            format=self.format,
            fwhm=pick(self.fwhm),
            fwhm_world=pick(self.fwhm_world),
            x=pick(self.x),
            y=pick(self.y),
        )


def read_catalog(data: bytes) -> SourceCatalog:
    """Parse an uploaded catalogue (see the module docstring for the layouts).

    Raises
    ------
    CatalogError
        For anything that is not a readable catalogue with positions and magnitudes, or whose
        positions are out of range; no other exception escapes, since the bytes come straight
        from the network.
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
            columns, fmt = _read_text(data)
        return _to_source_catalog(columns, fmt)
    except CatalogError:
        raise
    except Exception as exc:  # hostile input: anything the parsers throw becomes a CatalogError
        raise CatalogError(
            "catalogue could not be read", detail=f"{type(exc).__name__}: {exc}"
        ) from exc


def check_columns(head: bytes) -> None:
    """Cheap upload-time check on the first kilobytes of a text catalogue.

    Raises `CatalogError` naming the columns found and those expected when the header can be
    read and lacks a position or magnitude column, or when the bytes are not text. FITS files,
    and text whose header runs past ``head``, are left to the worker.
    """
    head = bytes(head)
    if head.startswith(b"SIMPLE") or not head.strip():
        return
    text = _decode(head)
    complete = text[: text.rfind("\n") + 1] if "\n" in text else text
    header = _text_header(complete, final=False)
    if header is not None:
        _resolve_roles([name for _, name in header.names])


# --- text tables ------------------------------------------------------------------------------

_NUMBERED_RE = re.compile(r"^[ \t]*#[ \t]*(\d+)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.M)
# Starts with a literal newline, so the scan for the first data row runs at C speed.
_DATA_LINE_RE = re.compile(r"\n[ \t\r]*[^#\s]")
_NUMBER_START = set("0123456789+-.")


@dataclass
class _Header:
    """Column names of a text table: ``(first column number, NAME)``, numbered from 1."""

    names: list[tuple[int, str]]
    kind: str  # ASCII_HEAD or TEXT
    body_start: int  # offset of the first data row
    delimiter: str | None  # None for whitespace


def _decode(data: bytes) -> str:
    if b"\x00" in data[:65536]:
        raise CatalogError("catalogue is neither a text table nor FITS")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise CatalogError("catalogue is neither a text table nor FITS") from None


def _text_header(text: str, *, final: bool = True) -> _Header | None:
    """Find the header of a text table without splitting the comment lines into a list.

    With ``final=False`` (a truncated head) ``None`` means "cannot tell yet" instead of an error.
    """
    start = _first_data_row(text)
    head = text[:start] if start is not None else text
    numbered = []
    for match in _NUMBERED_RE.finditer(head[:MAX_HEADER_BYTES]):
        numbered.append((int(match.group(1)), match.group(2).upper()))
        if len(numbered) > MAX_COLUMNS:
            raise CatalogError(f"catalogue header has more than {MAX_COLUMNS} columns")
    if numbered:
        numbers = [n for n, _ in numbered]
        if numbers[0] != 1 or any(b <= a for a, b in itertools.pairwise(numbers)):
            raise CatalogError("catalogue header column numbers are not increasing from 1")
        if start is None:
            if final:
                raise CatalogError("catalogue has a header but no sources")
            return None
        return _Header(numbered, "ASCII_HEAD", start, None)
    if start is None:
        if final:
            raise CatalogError("catalogue has no sources")
        return None
    line_end = text.find("\n", start)
    first_line = text[start : line_end if line_end >= 0 else len(text)].strip()
    if _is_name_line(first_line):
        names_line, body_start = first_line, (line_end + 1 if line_end >= 0 else len(text))
    else:
        names_line, body_start = _last_comment_line(head), start
        if names_line is None:
            raise CatalogError(
                "catalogue has no header line naming its columns; start it with a line such "
                "as 'RA DEC MAG MAGERR' (or a SExtractor ASCII_HEAD header)"
            )
    delimiter = "," if "," in names_line else None
    names = [n.strip().strip("'\"").upper() for n in names_line.split(delimiter)]
    if len(names) > MAX_COLUMNS:
        raise CatalogError(f"catalogue header has more than {MAX_COLUMNS} columns")
    if not all(names):
        raise CatalogError(f"catalogue header line {names_line[:200]!r} has empty column names")
    return _Header([(i + 1, n) for i, n in enumerate(names)], "TEXT", body_start, delimiter)


def _first_data_row(text: str) -> int | None:
    """Offset of the first line that is neither blank nor a comment."""
    first = text.lstrip(" \t\r")
    if first and first[0] not in "#\n":
        return len(text) - len(first)
    match = _DATA_LINE_RE.search(text)
    return None if match is None else match.start() + 1


def _is_name_line(line: str) -> bool:
    """A header row: some token does not start like a number (``RA``, ``mag_auto``...)."""
    tokens = line.replace(",", " ").split()
    return any(t[0] not in _NUMBER_START for t in tokens)


def _last_comment_line(head: str) -> str | None:
    """The last non-empty comment line above the data, without its '#'; only the last
    ``MAX_HEADER_SEARCH_LINES`` lines are looked at."""
    end = len(head)
    for _ in range(MAX_HEADER_SEARCH_LINES):
        if end <= 0:
            return None
        start = head.rfind("\n", 0, end - 1) + 1
        line = head[start:end].strip().lstrip("#").strip()
        if line and _is_name_line(line):
            return line
        end = start
    return None


def _read_text(data: bytes) -> tuple[dict[str, np.ndarray], str]:
    text = _decode(data)
    header = _text_header(text)
    body = text[header.body_start :]
    first_end = body.find("\n")
    first_row = body[: first_end if first_end >= 0 else len(body)]
    if len(first_row.split(header.delimiter)) > MAX_COLUMNS + 1:
        raise CatalogError(f"catalogue rows have more than {MAX_COLUMNS} values")
    # Used roles only are converted, so a text column (object names) may sit in a plain table.
    wanted = _resolve_roles([name for _, name in header.names])
    table = _load_rows(body, header.delimiter)
    if table.shape[0] > MAX_ROWS:
        raise CatalogError(f"catalogue has more than {MAX_ROWS:,} sources")
    ncols = table.shape[1]
    last = header.names[-1][0]
    if ncols < last:
        raise CatalogError(
            f"catalogue rows have {ncols} values but the header describes at least {last} columns"
        )
    # Width of a column = distance to the next header number (vector columns like MAG_APER
    # take several); the last one takes what remains of the row.
    columns: dict[str, np.ndarray] = {}
    ends = [n for n, _ in header.names[1:]] + [ncols + 1]
    for (number, name), end in zip(header.names, ends, strict=True):
        if name in columns or name not in wanted.values():
            continue
        role = next(r for r, n in wanted.items() if n == name)
        columns[name] = _to_float(table[:, number - 1 : end - 1], role, name)
    return columns, header.kind


def _load_rows(body: str, delimiter: str | None) -> np.ndarray:
    """Rows as a float table, or as strings when some column is not numeric (sexagesimal)."""
    if not body.strip():
        raise CatalogError("catalogue has a header but no sources")
    # numpy allocates `max_rows` rows up front (2M x 14 columns: 224 MB for any frame), so the
    # cap is passed only to a body that has enough lines to reach it.
    max_rows = MAX_ROWS + 1 if body.count("\n") >= MAX_ROWS else None
    kwargs = {"comments": "#", "ndmin": 2, "max_rows": max_rows, "delimiter": delimiter}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.loadtxt(io.StringIO(body), dtype=np.float64, **kwargs)
        except ValueError:
            pass
        try:
            table = np.loadtxt(io.StringIO(body), dtype=str, **kwargs)
        except ValueError as exc:
            raise CatalogError("catalogue rows do not all have the same columns", str(exc)) from exc
    return np.char.strip(table)


def _to_float(block: np.ndarray, role: str, name: str) -> np.ndarray:
    if block.dtype.kind == "f":
        return block
    try:
        return block.astype(np.float64)
    except ValueError:
        if role not in ("ra", "dec"):
            bad = next(v for v in block.ravel() if not _is_float(v))
            raise CatalogError(
                f"catalogue rows are not all numeric (column {name}: {bad[:40]!r})"
            ) from None
    return parse_sexagesimal(block[:, 0], hours=role == "ra").reshape(-1, 1)


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


_SEXAGESIMAL_SEP = re.compile(r"[hdms:°'\"\s]+", re.I)


def parse_sexagesimal(values: np.ndarray, *, hours: bool) -> np.ndarray:
    """Degrees from ``dd:mm:ss.s``, ``12h34m56s``, ``-05d06m07s`` or decimal strings.

    Sexagesimal values are hours for RA (``hours=True``), degrees for Dec; decimal ones are
    taken as degrees.
    """
    out = np.empty(len(values))
    for i, raw in enumerate(values):
        text = str(raw).strip()
        if _is_float(text):
            out[i] = float(text)
            continue
        parts = [p for p in _SEXAGESIMAL_SEP.split(text) if p]
        if not 1 <= len(parts) <= 3 or not all(_is_float(p) for p in parts):
            raise CatalogError(f"cannot read {text[:40]!r} as a sexagesimal angle")
        numbers = [abs(float(p)) for p in parts]
        value = sum(v / 60**k for k, v in enumerate(numbers))
        sign = -1.0 if text.startswith("-") else 1.0
        out[i] = sign * value * (15.0 if hours else 1.0)
    return out


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
            names = [name.upper() for name in rec.columns.names]
            wanted = _resolve_roles(names)
            columns = {}
            for name in rec.columns.names:
                key = name.upper()
                if key in columns or key not in wanted.values():
                    continue
                values = np.asarray(rec[name])
                role = next(r for r, n in wanted.items() if n == key)
                if values.dtype.kind in "US":
                    values = values.astype(str).reshape(-1, 1)
                    columns[key] = _to_float(np.char.strip(values), role, key)
                elif values.dtype.kind in "iufb":
                    columns[key] = values.reshape(len(values), -1).astype(np.float64)
                else:
                    raise CatalogError(f"catalogue column {key} is not numeric")
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


def _first(names: list[str], aliases: tuple[str, ...]) -> str | None:
    present = set(names)
    return next((name for name in aliases if name in present), None)


def _first_magnitude(names: list[str]) -> str | None:
    """MAG_AUTO, MAG_BEST, MAG_PSF, then the first aperture (MAG_APER, MAG_APER_2...), MAG."""
    for alias in MAG_ALIASES:
        if alias == "MAG_APER":
            aper = next((n for n in names if _APER_RE.match(n) and n.startswith("MAG_")), None)
            if "MAG_APER" in names or aper is not None:
                return "MAG_APER" if "MAG_APER" in names else aper
        elif alias in names:
            return alias
    return None


def _resolve_roles(names: list[str]) -> dict[str, str]:
    """Role -> column name; `CatalogError` naming what was found and expected when a required
    role is missing."""
    roles = {"ra": _first(names, RA_ALIASES), "dec": _first(names, DEC_ALIASES)}
    roles["mag"] = _first_magnitude(names)
    missing = [
        f"no {what} column (expected one of {', '.join(aliases)})"
        for what, role, aliases in (
            ("right ascension", "ra", RA_ALIASES),
            ("declination", "dec", DEC_ALIASES),
            ("magnitude", "mag", (*MAG_ALIASES[:3], "MAG_APER[n]", "MAG")),
        )
        if roles[role] is None
    ]
    if missing:
        found = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
        raise CatalogError("catalogue has " + "; ".join(missing) + f"; columns found: {found}")
    err = _first(names, _magerr_names(roles["mag"]))
    if err is not None:
        roles["mag_err"] = err
    flags = _first(names, FLAGS_ALIASES)
    if flags is not None:
        roles["flags"] = flags
    for role, aliases in _OPTIONAL.items():
        name = _first(names, aliases)
        if name is not None and name not in roles.values():
            roles[role] = name
    return roles


def _to_source_catalog(columns: dict[str, np.ndarray], fmt: str) -> SourceCatalog:
    roles = _resolve_roles(list(columns))

    def first_element(role: str) -> np.ndarray | None:
        if role not in roles:
            return None
        return np.ascontiguousarray(columns[roles[role]][:, 0], dtype=np.float64)

    ra, dec = first_element("ra"), first_element("dec")
    _check_positions(ra, dec)
    n = len(ra)
    mag_err = first_element("mag_err")
    flags = np.zeros(n, dtype=np.int64)
    raw_flags = first_element("flags")
    if raw_flags is not None:
        flags = np.where(np.isfinite(raw_flags), raw_flags, 0).astype(np.int64)
    return SourceCatalog(
        ra=ra,
        dec=dec,
        mag=first_element("mag"),
        mag_err=np.full(n, np.nan) if mag_err is None else mag_err,
        flags=flags,
        flux_max=_peak(first_element("flux_max"), first_element("mu_max")),
        class_star=first_element("class_star"),
        columns=roles,
        format=fmt,
        fwhm=first_element("fwhm"),
        fwhm_world=first_element("fwhm_world"),
        x=first_element("x"),
        y=first_element("y"),
    )


def _peak(flux_max: np.ndarray | None, mu_max: np.ndarray | None) -> np.ndarray | None:
    """FLUX_MAX, else the peak from MU_MAX in its own units: the saturation tests compare
    peaks with each other and with fluxes of the same frame, so the scale drops out."""
    if flux_max is not None or mu_max is None:
        return flux_max
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.abs(mu_max) < 90, 10 ** (-0.4 * mu_max), np.nan)


def _check_positions(ra: np.ndarray, dec: np.ndarray) -> None:
    """RA must lie in [0, 360] and Dec in [-90, 90] degrees (NaN rows are dropped later)."""
    with np.errstate(invalid="ignore"):
        bad_ra = np.flatnonzero((ra < 0) | (ra > 360))
        bad_dec = np.flatnonzero(np.abs(dec) > 90)
    for what, bad, values, span in (
        ("RA", bad_ra, ra, "[0, 360]"),
        ("Dec", bad_dec, dec, "[-90, 90]"),
    ):
        if len(bad):
            raise CatalogError(
                f"catalogue {what} out of range in {len(bad)} row(s) (row {bad[0] + 1}: "
                f"{values[bad[0]]:g}); {what} must be in degrees within {span}"
            )
