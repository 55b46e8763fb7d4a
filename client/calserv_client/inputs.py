"""What to upload: catalogues or FITS images from directories, globs and a manifest, with metadata.

Metadata of each file, first found wins: the manifest row, then the FITS header (``MJD-AVG``,
``DATE-AVG``, ``MJD-OBS``, ``DATE-OBS``, ``EXPTIME``; for FITS_LDAC the image header stored in
``LDAC_IMHEAD``), then the command-line defaults (``--event``, ``--mjd``, ``--exptime``,
``--filter``, ``--comment``). ASCII catalogues carry no header, so their MJD comes from the
manifest or ``--mjd``.

calserv wants the MJD of mid-exposure (UTC). ``MJD-OBS`` and ``DATE-OBS`` are the exposure's
start (FITS standard), so the header MJD is ``MJD-OBS`` (or ``DATE-OBS``) + ``EXPTIME``/2;
``MJD-AVG``/``DATE-AVG`` are already mid-exposure and taken as they are. MJDs from the manifest or
``--mjd`` are sent unchanged.
"""

from __future__ import annotations

import csv
import glob
import gzip
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

#: Catalogues and FITS images (the server tells them apart by content): plain, gzip or .fz.
CATALOGUE_SUFFIXES = (".cat", ".ldac", ".fits", ".fit", ".fts", ".fz", ".gz")
MANIFEST_COLUMNS = ("file", "event", "mjd", "exptime", "filter", "comment")
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
_BLOCK = 2880
_MAX_HDUS = 16
_END = b"END" + b" " * 77


class InputError(Exception):
    """The inputs themselves are wrong (no such file, unreadable manifest)."""


@dataclass(frozen=True)
class Item:
    """One catalogue to upload and the metadata it will be sent with."""

    path: Path
    event: str | None = None
    mjd: float | None = None
    exptime: float | None = None
    force_filter: str | None = None
    comment: str | None = None
    mjd_source: str | None = None  # "manifest", "header" or "--mjd"
    problem: str | None = None  # why it cannot be uploaded (it is then reported, not sent)
    extra: dict = field(default_factory=dict, compare=False)


def force_filter_value(text: str | None) -> str | None:
    """``V`` → ``any/V``; ``APASS/V`` stays; empty, ``no`` or ``auto`` → None (automatic)."""
    text = (text or "").strip()
    if text.lower() in ("", "no", "auto"):
        return None
    return text if "/" in text else f"any/{text}"


def _float(text: str | None, what: str, where: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: {what} must be a number, got {text!r}") from None


# -- files ------------------------------------------------------------------------------------
def find_catalogues(inputs: list[str], recursive: bool = False) -> list[Path]:
    """Files named by ``inputs`` (files, directories, glob patterns), in order, without repeats."""
    found: list[Path] = []
    for arg in inputs:
        p = Path(arg).expanduser()
        if p.is_dir():
            walker = p.rglob("*") if recursive else p.iterdir()
            hits = sorted(
                f for f in walker if f.is_file() and f.suffix.lower() in CATALOGUE_SUFFIXES
            )
            if not hits:
                raise InputError(
                    f"{arg}: no *.cat, *.ldac, *.fits, *.fits.gz or *.fz files in this directory"
                )
        elif p.is_file():
            hits = [p]
        else:
            hits = sorted(Path(m) for m in glob.glob(str(p), recursive=True) if Path(m).is_file())
            if not hits:
                raise InputError(f"{arg}: no such file, directory or matching files")
        found.extend(hits)
    seen: set[Path] = set()
    unique = []
    for f in found:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(r)
    return unique


# -- manifest ---------------------------------------------------------------------------------
def read_manifest(path: str | Path) -> list[Item]:
    """Rows ``file,event,mjd[,exptime,filter,comment]`` (a header line naming these columns is
    optional; ``#`` lines are skipped); relative file names are relative to the manifest."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"cannot read manifest {path}: {e.strerror}") from None
    rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].lstrip().startswith("#")]
    columns: tuple[str, ...] = MANIFEST_COLUMNS
    if rows and rows[0][0].strip().lower() == "file":
        columns = tuple(c.strip().lower() for c in rows.pop(0))
        unknown = set(columns) - set(MANIFEST_COLUMNS)
        if unknown:
            raise InputError(f"{path}: unknown manifest columns {sorted(unknown)}")
    items = []
    for n, row in enumerate(rows, start=1):
        where = f"{path.name} row {n}"
        if len(row) > len(columns):
            raise InputError(f"{where}: {len(row)} fields, expected at most {len(columns)}")
        rec = dict(zip(columns, (c.strip() for c in row), strict=False))
        if not rec.get("file"):
            raise InputError(f"{where}: the file column is empty")
        f = Path(rec["file"]).expanduser()
        f = f if f.is_absolute() else path.parent / f
        if not f.is_file():
            raise InputError(f"{where}: no such file {rec['file']!r}")
        mjd = _float(rec.get("mjd"), "mjd", where)
        items.append(
            Item(
                path=f.resolve(),
                event=rec.get("event") or None,
                mjd=mjd,
                exptime=_float(rec.get("exptime"), "exptime", where),
                force_filter=force_filter_value(rec.get("filter")),
                comment=rec.get("comment") or None,
                mjd_source="manifest" if mjd is not None else None,
            )
        )
    return items


# -- FITS headers -----------------------------------------------------------------------------
_CARD = re.compile(r"^([A-Z0-9_-]{1,8})\s*=\s*(.*)$")


def _card_value(raw: str) -> str | float | bool | None:
    raw = raw.strip()
    if raw.startswith("'"):
        end = raw.find("'", 1)
        while end != -1 and raw[end + 1 : end + 2] == "'":  # '' is an escaped quote
            end = raw.find("'", end + 2)
        return raw[1 : end if end != -1 else None].replace("''", "'").rstrip()
    value = raw.split("/", 1)[0].strip()
    if value in ("T", "F"):
        return value == "T"
    try:
        return float(value.replace("D", "E"))
    except ValueError:
        return value or None


def _cards(block: bytes) -> dict[str, object]:
    out: dict[str, object] = {}
    for i in range(0, len(block) - 79, 80):
        card = block[i : i + 80].decode("ascii", "replace")
        if card.startswith("END") and not card[3:].strip():
            break
        m = _CARD.match(card)
        if m and m.group(1) not in out:
            out[m.group(1)] = _card_value(m.group(2))
    return out


def _open_fits(path: str | Path):
    """The file, read through gzip when it is gzip-compressed (a .fits.gz image)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_fits_headers(path: str | Path) -> list[dict[str, object]]:
    """The headers of each HDU (and of the LDAC_IMHEAD image header), without astropy."""
    headers: list[dict[str, object]] = []
    with _open_fits(path) as f:
        if f.read(9) != b"SIMPLE  =":
            return []
        f.seek(0)
        for _ in range(_MAX_HDUS):
            raw = b""
            while True:
                block = f.read(_BLOCK)
                if len(block) < _BLOCK:
                    return headers
                raw += block
                if _END in (block[i : i + 80] for i in range(0, _BLOCK, 80)):
                    break
                if len(raw) > 200 * _BLOCK:
                    raise ValueError(f"{path}: FITS header without END")
            hdr = _cards(raw)
            headers.append(hdr)
            bitpix = abs(int(hdr.get("BITPIX", 8) or 8))
            naxis = int(hdr.get("NAXIS", 0) or 0)
            size = 0
            if naxis:
                size = 1
                for k in range(1, naxis + 1):
                    size *= int(hdr.get(f"NAXIS{k}", 0) or 0)
                size = (
                    bitpix
                    // 8
                    * int(hdr.get("GCOUNT", 1) or 1)
                    * (int(hdr.get("PCOUNT", 0) or 0) + size)
                )
            padded = -(-size // _BLOCK) * _BLOCK
            if hdr.get("EXTNAME") == "LDAC_IMHEAD" and 0 < size <= 4 * 1024 * 1024:
                headers.append(_cards(f.read(size)))
                f.seek(padded - size, 1)
            else:
                f.seek(padded, 1)
    return headers


def date_to_mjd(text: str) -> float | None:
    """ISO ``YYYY-MM-DD[Thh:mm:ss[.sss]]`` (UTC) → MJD."""
    text = text.strip().rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            when = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return (when - _MJD_EPOCH).total_seconds() / 86400.0
    return None


def _header_mjd(hdr: dict[str, object], kind: str) -> float | None:
    """``MJD-{kind}``, else ``DATE-{kind}`` (with ``TIME-OBS`` for a bare date) as an MJD."""
    mjd = hdr.get(f"MJD-{kind}")
    if isinstance(mjd, float) and mjd > 0:
        return mjd
    date = hdr.get(f"DATE-{kind}")
    if not isinstance(date, str):
        return None
    if "T" not in date and isinstance(hdr.get("TIME-OBS"), str):
        date = f"{date}T{hdr['TIME-OBS']}"
    return date_to_mjd(date)


def fits_metadata(path: str | Path) -> dict[str, float]:
    """``exptime`` (EXPTIME/EXPOSURE) and ``mjd`` of mid-exposure if the header tells: MJD-AVG
    or DATE-AVG, else the start (MJD-OBS, DATE-OBS[+TIME-OBS]) as ``mjd_start``."""
    try:
        headers = read_fits_headers(path)
    except (OSError, EOFError, ValueError):
        return {}
    out: dict[str, float] = {}
    for hdr in headers:
        if "mjd" not in out and (mid := _header_mjd(hdr, "AVG")) is not None:
            out["mjd"] = mid
        if "mjd_start" not in out and (start := _header_mjd(hdr, "OBS")) is not None:
            out["mjd_start"] = start
        if "exptime" not in out:
            for key in ("EXPTIME", "EXPOSURE"):
                if isinstance(hdr.get(key), float):
                    out["exptime"] = float(hdr[key])  # type: ignore[arg-type]
                    break
    return out


# -- putting it together ----------------------------------------------------------------------
def plan(
    files: list[Path],
    manifest: list[Item],
    *,
    event: str | None = None,
    mjd: float | None = None,
    exptime: float | None = None,
    force_filter: str | None = None,
    comment: str | None = None,
    dry_run: bool = False,
) -> list[Item]:
    """Every catalogue with its final metadata; items that cannot be sent carry a ``problem``."""
    items = list(manifest) + [Item(path=f) for f in files]
    out = []
    for it in items:
        header = fits_metadata(it.path)
        new_exptime = it.exptime if it.exptime is not None else header.get("exptime", exptime)
        new_mjd, source = it.mjd, it.mjd_source
        if new_mjd is None and "mjd" in header:
            new_mjd, source = header["mjd"], "header"
        if new_mjd is None and "mjd_start" in header:
            new_mjd, source = header["mjd_start"] + (new_exptime or 0.0) / 2 / 86400, "header"
        if new_mjd is None and mjd is not None:
            new_mjd, source = mjd, "--mjd"
        it = replace(
            it,
            event=it.event or event,
            mjd=new_mjd,
            mjd_source=source,
            exptime=new_exptime,
            force_filter=it.force_filter or force_filter,
            comment=it.comment if it.comment is not None else comment,
        )
        if not it.event:
            it = replace(it, problem="no alert: give --event IVORN/name or an event column")
        elif it.mjd is None and not dry_run:
            it = replace(
                it,
                problem="no MJD: not in the FITS header; give --mjd or an mjd manifest column",
            )
        out.append(it)
    return out
