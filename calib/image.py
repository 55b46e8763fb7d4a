"""Load a FITS image from untrusted upload bytes: plain, gzip-compressed or tile-compressed (.fz).

Everything that can cost memory is checked from the headers before any pixel is read:
`inspect_fits` walks the HDU headers with a small card parser (no astropy, no pixel data), so
the web tier can answer a bad image with a 4xx from the first megabyte of the upload, and the
worker can refuse a 3-D cube, an absurd NAXIS or a truncated file before astropy allocates
anything. `load_image` then decodes the one image HDU and checks its celestial WCS.
"""

from __future__ import annotations

import gzip
import io
import math
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import CatalogError

BLOCK = 2880
#: Largest image accepted: 40 Mpixel (6.4k x 6.4k; bin a 61 Mpixel IMX455 frame 2 x 2). The
#: worker peaks at 12-16 bytes per pixel above its imports (bench/bench_image.py: 601 MB for
#: 37.7 Mpixel), so this keeps a task well under the workers' 1 GB memory limit.
MAX_PIXELS = 40 * 1024 * 1024
#: And at most this many bytes of pixel data (NAXIS1 x NAXIS2 x |BITPIX| / 8): decoding holds
#: the raw data and its float32 copy at once, so 64-bit pixels are limited to half as many.
MAX_DATA_BYTES = 256 * 1024 * 1024
#: A header longer than this (≈ 12,600 cards) is not a camera's: refuse it rather than parse it.
MAX_HEADER_BYTES = 350 * BLOCK
#: Bytes of an upload's start enough to tell an image from a catalogue (`looks_like_image`).
SNIFF_BYTES = MAX_HEADER_BYTES + 8 * BLOCK
#: HDUs walked before giving up on finding the image.
MAX_HDUS = 16
SOLVE_HINT = (
    "solve it first (e.g. astrometry.net's solve-field writes a WCS into the header) "
    "or upload a SExtractor catalogue instead"
)
_VALID_BITPIX = (8, 16, 32, 64, -32, -64)


class ImageError(CatalogError):
    """The upload is a FITS image that cannot be measured; the message says what to fix."""


@dataclass(frozen=True)
class FitsLayout:
    """Where the image is in a FITS file, read from its headers alone.

    ``hdu`` is the HDU index (astropy's numbering), ``shape`` the image's (ny, nx), ``bitpix`` its
    pixel type; ``compressed`` for a tile-compressed image (a BINTABLE with ZIMAGE = T);
    ``header_at`` and ``data_at`` the byte offsets of its header and data.
    """

    hdu: int
    shape: tuple[int, int]
    bitpix: int
    compressed: bool
    header_at: int = 0
    data_at: int = 0


def is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def gunzip_head(head: bytes, limit: int = MAX_HEADER_BYTES + 4 * BLOCK) -> bytes:
    """The first ``limit`` decompressed bytes of a gzip stream's beginning (may be short)."""
    try:
        return zlib.decompressobj(wbits=31).decompress(head, limit)
    except zlib.error as exc:
        raise ImageError("the upload looks gzip-compressed but cannot be decompressed") from exc


def gunzip_bounded(data: bytes) -> bytearray:
    """Decompress a whole .gz upload, refusing to grow past the largest image accepted.

    A bytearray grows in place (the allocator remaps it), so the result is never held twice.
    """
    limit = MAX_DATA_BYTES + MAX_HEADER_BYTES * MAX_HDUS
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            while chunk := f.read(1 << 22):
                out += chunk
                if len(out) > limit:
                    raise ImageError(
                        f"the decompressed image is larger than {limit // 2**20} MB; "
                        f"images are limited to {MAX_DATA_BYTES // 2**20} MB of pixel data"
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise ImageError(
            "the gzip-compressed upload is truncated or corrupt", detail=str(exc)
        ) from exc
    return out


def _value(raw: str) -> object:
    text = raw.split("/", 1)[0].strip() if not raw.lstrip().startswith("'") else raw.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        return text[1:end].strip() if end > 0 else text[1:].strip()
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text.replace("D", "E"))
    except ValueError:
        return text


def _header_at(buf: bytes, offset: int) -> tuple[dict[str, object], int] | None:
    """Cards of the header starting at ``offset`` and the offset of its data; None if incomplete."""
    cards: dict[str, object] = {}
    pos = offset
    while pos + BLOCK <= len(buf):
        block = buf[pos : pos + BLOCK]
        pos += BLOCK
        for i in range(0, BLOCK, 80):
            card = block[i : i + 80].decode("ascii", "replace")
            key = card[:8].rstrip()
            if key == "END":
                return cards, pos
            if card[8:10] == "= " and key not in cards:
                cards[key] = _value(card[10:])
        if pos - offset > MAX_HEADER_BYTES:
            raise ImageError(
                f"a FITS header is longer than {MAX_HEADER_BYTES // 80:,} cards; "
                "upload the frame with its normal header"
            )
    return None


def _int(cards: dict[str, object], key: str, default: int = 0) -> int:
    value = cards.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ImageError(f"FITS header keyword {key} is not a number: {value!r}")
    return int(value)


def _data_bytes(cards: dict[str, object]) -> int:
    naxis = _int(cards, "NAXIS")
    if not 0 <= naxis <= 999:
        raise ImageError(f"FITS header has NAXIS = {naxis}")
    if naxis == 0:
        return 0
    n = 1
    for k in range(1, naxis + 1):
        length = _int(cards, f"NAXIS{k}")
        if length < 0:
            raise ImageError(f"FITS header has NAXIS{k} = {length}")
        n *= length
    n = abs(_int(cards, "BITPIX", 8)) // 8 * _int(cards, "GCOUNT", 1) * (_int(cards, "PCOUNT") + n)
    return -(-n // BLOCK) * BLOCK


def _image_shape(cards: dict[str, object], prefix: str) -> tuple[tuple[int, int], int]:
    """(ny, nx) and BITPIX of an image header, refusing cubes and absurd sizes."""
    naxis = _int(cards, f"{prefix}NAXIS")
    axes = [_int(cards, f"{prefix}NAXIS{k}") for k in range(1, min(naxis, 999) + 1)]
    bitpix = _int(cards, f"{prefix}BITPIX", 8)
    if bitpix not in _VALID_BITPIX:
        raise ImageError(f"FITS image has BITPIX = {bitpix}, which is not a FITS pixel type")
    if any(a != 1 for a in axes[2:]):
        raise ImageError(
            f"the FITS image has {naxis} axes ({' x '.join(map(str, axes))}): a cube or stack; "
            "upload one 2-D frame"
        )
    if naxis < 2 or min(axes[:2]) < 16:
        raise ImageError(
            f"the FITS image is {' x '.join(map(str, axes)) or 'empty'}: not a 2-D frame"
        )
    nx, ny = axes[0], axes[1]
    if nx * ny > MAX_PIXELS or nx * ny * abs(bitpix) // 8 > MAX_DATA_BYTES:
        raise ImageError(
            f"the FITS image is {nx} x {ny} pixels of {abs(bitpix)} bits; at most "
            f"{MAX_PIXELS:,} pixels and {MAX_DATA_BYTES // 2**20} MB of pixel data are accepted "
            "(bin or crop it around the alert, or save it as 32-bit floats)"
        )
    return (ny, nx), bitpix


def inspect_fits(buf: bytes, total_size: int | None = None) -> FitsLayout | None:
    """Find the image in a FITS file from its headers; ``None`` when it holds only tables.

    ``buf`` is the (decompressed) file or its beginning; ``total_size`` the full length when
    known (then a data part that ends past it means a truncated upload). When ``buf`` ends
    before the image or a table is found, ``None`` is returned only if a table was seen.

    Raises
    ------
    ImageError
        A cube, an absurd or oversized NAXIS, an oversized header, a truncated file.
    """
    if not buf.startswith(b"SIMPLE  ="):
        return None
    offset = 0
    seen_table = False
    for index in range(MAX_HDUS):
        parsed = _header_at(buf, offset)
        if parsed is None:
            if index == 0:
                raise ImageError("the FITS header has no END card (truncated or not FITS)")
            return None
        cards, data_at = parsed
        xtension = str(cards.get("XTENSION", "IMAGE" if index == 0 else "")).strip()
        naxis = _int(cards, "NAXIS")
        if xtension == "BINTABLE" and cards.get("ZIMAGE") is True:
            shape, bitpix = _image_shape(cards, "Z")
            layout = FitsLayout(index, shape, bitpix, True, offset, data_at)
        elif xtension == "IMAGE" and naxis > 0 and not seen_table:
            shape, bitpix = _image_shape(cards, "")
            layout = FitsLayout(index, shape, bitpix, False, offset, data_at)
        else:
            layout = None
            seen_table |= xtension in ("BINTABLE", "TABLE")
        end = data_at + _data_bytes(cards)
        if layout is not None:
            # The last block's padding may be missing in files written by some tools.
            if total_size is not None and end - BLOCK >= total_size:
                raise ImageError(
                    f"the FITS image is truncated: its header promises {end - data_at:,} bytes "
                    f"of data, the upload holds {max(total_size - data_at, 0):,}"
                )
            return layout
        if seen_table:
            return None
        offset = end
        if total_size is not None and offset >= total_size:
            break
    raise ImageError("the FITS file holds no 2-D image and no catalogue table")


@dataclass
class Image:
    """A decoded frame: pixels (float32, native byte order, NaN where blank), header, WCS.

    ``saturation`` is the header's SATURATE (ADU) when it gives one; ``gain`` (e-/ADU) the
    header's GAIN, or None when unknown (the source's own Poisson noise is then left out).
    """

    data: np.ndarray
    header: object
    wcs: object
    saturation: float | None
    gain: float | None

    @property
    def pixel_scale_arcsec(self) -> float:
        from astropy.wcs.utils import proj_plane_pixel_scales

        return float(np.sqrt(np.prod(proj_plane_pixel_scales(self.wcs))) * 3600.0)


def looks_like_image(data: bytes) -> bool:
    """Cheap test on an upload's first bytes: gzip, or FITS whose headers lead to an image."""
    if is_gzip(data):
        return True
    try:
        return inspect_fits(data[:SNIFF_BYTES]) is not None
    except ImageError:
        return True  # an image, but a bad one: `load_image` says why


def load_image(data: bytes) -> Image:
    """Decode the image of an upload (plain, .fits.gz or .fz) and check its WCS.

    Raises
    ------
    ImageError
        Not a usable image (see `inspect_fits`), no finite pixels, or no celestial WCS.
    """
    if is_gzip(data):
        data = gunzip_bounded(data)
    layout = inspect_fits(data, len(data))
    if layout is None:
        raise ImageError("the compressed upload holds no FITS image; send catalogues uncompressed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if layout.compressed:
                header, pixels = _decode_tiles(data, layout)
            else:
                header, pixels = _decode_plain(data, layout)
        except ImageError:
            raise
        except Exception as exc:  # corrupt tiles, bad scaling keywords...: the bytes are hostile
            raise ImageError(
                "the FITS image could not be decoded (truncated or corrupt)",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
    pixels = np.ascontiguousarray(pixels)
    finite = np.isfinite(pixels)
    nfinite = int(np.count_nonzero(finite))
    if nfinite == 0:
        raise ImageError("the FITS image has no finite pixels (all NaN or infinite)")
    if nfinite < pixels.size:
        pixels[~finite] = np.nan
    return Image(
        data=pixels,
        header=header,
        wcs=celestial_wcs(header, layout.shape),
        saturation=_positive(header, ("SATURATE", "SATLEVEL")),
        gain=_positive(header, ("GAIN", "EGAIN")),
    )


_PIXEL_TYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def _decode_plain(data: bytes | bytearray, layout: FitsLayout):
    """Header and float32 pixels of an uncompressed image, read in place from the upload.

    numpy reads the pixels straight out of the upload's buffer (one float32 copy, no other), so
    a frame costs its file size plus 4 bytes per pixel; BSCALE, BZERO and BLANK are applied.
    """
    from astropy.io import fits

    raw_header = bytes(data[layout.header_at : layout.data_at]).decode("ascii", "replace")
    header = fits.Header.fromstring(raw_header)
    ny, nx = layout.shape
    raw = np.frombuffer(
        data, dtype=_PIXEL_TYPES[layout.bitpix], count=ny * nx, offset=layout.data_at
    ).reshape(layout.shape)
    pixels = raw.astype(np.float32)
    scale, zero = _number(header, "BSCALE", 1.0), _number(header, "BZERO", 0.0)
    if scale != 1.0:
        pixels *= np.float32(scale)
    if zero != 0.0:
        pixels += np.float32(zero)
    blank = header.get("BLANK")
    if layout.bitpix > 0 and isinstance(blank, int) and not isinstance(blank, bool):
        pixels[raw == blank] = np.nan
    return header, pixels


def _decode_tiles(data: bytes | bytearray, layout: FitsLayout):
    """Header and float32 pixels of a tile-compressed image (astropy decompresses the tiles)."""
    from astropy.io import fits

    with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True) as hdul:
        hdu = hdul[layout.hdu]
        header = hdu.header.copy()
        pixels = hdu.data
        if pixels is None or pixels.shape[-2:] != layout.shape:
            raise ImageError("the FITS image data does not match its header")
        return header, np.asarray(pixels).reshape(layout.shape).astype(np.float32)


def _number(header, key: str, default: float) -> float:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ImageError(f"FITS header keyword {key} is not a number: {value!r}")
    return float(value)


def celestial_wcs(header, shape: tuple[int, int]):
    """The header's celestial WCS, or ImageError saying to solve the frame."""
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header, naxis=2, relax=True, fix=True)
        except Exception as exc:
            raise ImageError(
                f"the image's WCS cannot be read; {SOLVE_HINT}", detail=str(exc)
            ) from exc
    if not wcs.has_celestial or wcs.celestial.naxis != 2:
        raise ImageError(f"the image has no celestial WCS (no RA/Dec axes); {SOLVE_HINT}")
    wcs = wcs.celestial
    ny, nx = shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ra, dec = wcs.all_pix2world([0, nx - 1, 0, nx - 1], [0, 0, ny - 1, ny - 1], 0)
    except Exception as exc:
        raise ImageError(
            f"the image's WCS cannot be evaluated; {SOLVE_HINT}", detail=str(exc)
        ) from exc
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise ImageError(f"the image's WCS does not map its corners to the sky; {SOLVE_HINT}")
    return wcs


def _positive(header, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = header.get(key)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and math.isfinite(value) and value > 0:
            return float(value)
    return None
