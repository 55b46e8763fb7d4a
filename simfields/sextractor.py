"""Rendered test frames measured by the real Source Extractor, with their truth.

`calib.simulate.simulate_field` writes catalogue rows directly; here stars are drawn on a FITS image
(Gaussian PSF integrated over pixels, sky, Poisson and read noise, saturation) and the
catalogue is what ``source-extractor`` measures on it, so blends, saturation flags, edge flags,
centroid errors and the detection limit are the real program's. Options reproduce the cases
observers meet: coarse pixels, radial vignetting, crowding, a WCS offset, a saturated, faint,
absent or displaced alert.

Needs ``source-extractor`` on PATH (Debian package ``source-extractor``).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calib.catalog import SourceCatalog, read_catalog
from calib.completeness import completeness_50
from calib.reference import RefCatalog
from calib.simulate import BANDS, true_magnitudes
from calib.zeropoint import colour_for_band

SEXTRACTOR = "source-extractor"
PARAMS = [
    "NUMBER", "X_IMAGE", "Y_IMAGE", "ALPHA_J2000", "DELTA_J2000", "MAG_AUTO", "MAGERR_AUTO",
    "FLUX_MAX", "FWHM_IMAGE", "FLAGS", "CLASS_STAR",
]  # fmt: skip
SATURATION = 60000.0


@dataclass
class RenderedField:
    """A rendered frame: the catalogue bytes and parsed `SourceCatalog`, reference, truth,
    and the FITS image Source Extractor measured (for the image path)."""

    data: bytes
    catalog: SourceCatalog
    reference: RefCatalog
    truth: dict = field(default_factory=dict)
    image: bytes = b""


def sextractor_available() -> bool:
    return shutil.which(SEXTRACTOR) is not None


def _pixel_profile(centre: float, lo: int, hi: int, sigma: float) -> np.ndarray:
    """Fraction of a 1-D Gaussian falling in each pixel lo..hi-1 (pixel i spans i-0.5..i+0.5)."""
    edges = (np.arange(lo, hi + 1) - 0.5 - centre) / (sigma * math.sqrt(2.0))
    cdf = np.array([math.erf(e) for e in edges])
    return np.diff(cdf) / 2.0


def _draw(shape, xs, ys, fluxes, fwhm_pix: float) -> np.ndarray:
    img = np.zeros(shape)
    sigma = fwhm_pix / 2.3548
    r = math.ceil(4 * sigma) + 1
    for x, y, f in zip(xs, ys, fluxes, strict=True):
        ix, iy = round(x), round(y)
        x0, x1 = max(ix - r, 0), min(ix + r + 1, shape[1])
        y0, y1 = max(iy - r, 0), min(iy + r + 1, shape[0])
        if x0 >= x1 or y0 >= y1:
            continue
        img[y0:y1, x0:x1] += f * np.outer(
            _pixel_profile(y, y0, y1, sigma), _pixel_profile(x, x0, x1, sigma)
        )
    return img


def _run_sextractor(image: Path, pixscale: float, fwhm_arcsec: float, workdir: Path) -> bytes:
    (workdir / "p.param").write_text("\n".join(PARAMS) + "\n")
    (workdir / "c.conv").write_text("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    out = workdir / "frame.cat"
    cmd = [
        SEXTRACTOR, str(image), "-c", "/dev/null", "-PARAMETERS_NAME", str(workdir / "p.param"),
        "-FILTER_NAME", str(workdir / "c.conv"),
        "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw",
        "-CATALOG_NAME", str(out), "-CATALOG_TYPE", "ASCII_HEAD",
        "-DETECT_THRESH", "2.0", "-ANALYSIS_THRESH", "2.0", "-DETECT_MINAREA", "3",
        "-SATUR_LEVEL", str(SATURATION), "-GAIN", "1.0", "-PIXEL_SCALE", str(pixscale),
        "-SEEING_FWHM", str(fwhm_arcsec), "-MAG_ZEROPOINT", "0", "-BACK_SIZE", "64",
        "-VERBOSE_TYPE", "QUIET", "-CHECKIMAGE_TYPE", "NONE",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=workdir, capture_output=True, timeout=120)
    return out.read_bytes()


def render_field(
    seed: int | None = None,
    *,
    npix: int = 300,
    pixscale: float = 1.0,
    fwhm_pix: float = 3.0,
    density_per_arcmin2: float = 20.0,
    band: str = "R",
    zeropoint: float = 25.0,
    colour_term: float = 0.07,
    colour_pivot: float = 0.5,
    sky: float = 300.0,
    read_noise: float = 5.0,
    bright_mag: float = 10.0,
    faint_mag: float = 21.5,
    ref_depth_mag: float = 21.0,
    vignetting_mag: float = 0.0,
    wcs_offset_arcsec: tuple[float, float] = (0.0, 0.0),
    target_mag: float | None = 16.0,
    target_offset_arcsec: tuple[float, float] = (0.0, 0.0),
    target_neighbour: tuple[float, float] | None = None,
    clear_radius_arcsec: float | None = None,
    centre: tuple[float, float] | None = None,
    extra_stars: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    alert_phase_px: tuple[float, float] = (0.0, 0.0),
) -> RenderedField:
    """Render a frame in ``band`` and measure it with Source Extractor.

    Stars follow ``inst + zeropoint = band_mag + colour_term * (colour - colour_pivot)`` (the
    colour of `colour_for_band`), dimmed by ``vignetting_mag * (r / r_corner)**2`` away from the
    centre. The reference survey (B, V, R, I) holds every star brighter than ``ref_depth_mag``
    in ``band``. The header WCS is wrong by ``wcs_offset_arcsec`` (RA, Dec along the sky). The
    alert is at the frame centre; the transient (in no reference) sits ``target_offset_arcsec``
    from it with ``target_mag`` (at the pivot colour), or is absent (``None``).
    ``target_neighbour=(separation_arcsec, mag)`` adds a catalogued star next to it. No field
    star lies within ``clear_radius_arcsec`` of the alert (default 3 FWHM; 0 for a crowded one).
    ``extra_stars=(ra, dec, mag)`` are drawn too (``mag`` in the calibrated system) but left out
    of the reference: another survey's stars, such as a sparse bright one's. The alert sits
    ``alert_phase_px`` off the corner of the central pixels (its pixel phase).

    Truth: ``zeropoint`` (at the centre), ``target_mag`` and ``source_ra/dec`` (where the
    transient really is), ``completeness_50`` (in the calibrated
    system, from all rendered stars, detected = a source within half the FWHM or 1 arcsec),
    ``pixscale`` and ``fwhm_arcsec``; ``stars``: the rendered field stars inside the frame
    (``ra``, ``dec`` and ``mag`` in the calibrated system), so a benchmark can measure
    completeness its own way.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    rng = np.random.default_rng(seed)
    if centre is None:
        centre = (float(rng.uniform(0, 360)), float(rng.uniform(-60, 60)))
    ra0, dec0 = centre
    area = (npix * pixscale / 60) ** 2 * 1.1**2
    n_stars = int(rng.poisson(density_per_arcmin2 * area))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.crpix = [npix / 2 + 0.5 + alert_phase_px[0], npix / 2 + 0.5 + alert_phase_px[1]]
    wcs.wcs.cdelt = [-pixscale / 3600, pixscale / 3600]
    # Stars over a slightly larger area than the frame, so edges are realistic.
    x = rng.uniform(-0.05 * npix, 1.05 * npix, n_stars)
    y = rng.uniform(-0.05 * npix, 1.05 * npix, n_stars)
    fwhm_arcsec = fwhm_pix * pixscale
    clear = 3 * fwhm_arcsec if clear_radius_arcsec is None else clear_radius_arcsec
    centre_pix = npix / 2 - 0.5
    far = np.hypot(x - centre_pix, y - centre_pix) * pixscale > clear
    x, y = x[far], y[far]
    n_stars = len(x)
    ra, dec = wcs.all_pix2world(x, y, 0)
    true = true_magnitudes(rng, n_stars, bright_mag, faint_mag)
    blue, red = colour_for_band(band, BANDS)
    colour = true[blue] - true[red]
    cal = true[band] + colour_term * (colour - colour_pivot)  # calibrated-system magnitude
    extra = []
    cos0 = math.cos(math.radians(dec0))
    if target_mag is not None:
        dra, ddec = target_offset_arcsec
        extra.append((ra0 + dra / 3600 / cos0, dec0 + ddec / 3600, target_mag))
        if target_neighbour is not None:
            sep, mag = target_neighbour
            extra.append((ra0 + (dra + sep) / 3600 / cos0, dec0 + ddec / 3600, mag))
    if extra_stars is not None:
        extra.extend(zip(*(np.asarray(a, dtype=float) for a in extra_stars), strict=True))
    all_ra = np.concatenate([ra, [e[0] for e in extra]])
    all_dec = np.concatenate([dec, [e[1] for e in extra]])
    all_cal = np.concatenate([cal, [e[2] for e in extra]])
    ax, ay = wcs.all_world2pix(all_ra, all_dec, 0)
    r2 = ((ax - npix / 2 + 0.5) ** 2 + (ay - npix / 2 + 0.5) ** 2) / (2 * (npix / 2) ** 2)
    inst = all_cal - zeropoint + vignetting_mag * r2
    img = _draw((npix, npix), ax, ay, 10 ** (-0.4 * inst), fwhm_pix) + sky
    img = rng.poisson(img).astype(np.float64) + rng.normal(0, read_noise, img.shape)
    img = np.minimum(img, SATURATION).astype(np.float32)

    header = wcs.to_header()
    off_ra, off_dec = wcs_offset_arcsec  # catalogue positions = true ones + offset
    header["CRVAL1"] = ra0 + off_ra / 3600 / cos0
    header["CRVAL2"] = dec0 + off_dec / 3600
    with tempfile.TemporaryDirectory(prefix="calib-render-") as tmp:
        workdir = Path(tmp)
        image = workdir / "image.fits"
        fits.writeto(image, img, header)
        data = _run_sextractor(image, pixscale, fwhm_arcsec, workdir)
        image_bytes = image.read_bytes()
    catalog = read_catalog(data)

    if target_neighbour is not None and target_mag is not None:  # a catalogued star
        r_mag = target_neighbour[1] - colour_term * (colour_pivot - 0.5)
        neighbour = {"B": r_mag + 1.3, "V": r_mag + 0.5, "R": r_mag, "I": r_mag - 0.3}
        true = {b: np.append(m, neighbour[b]) for b, m in true.items()}
        ra, dec = np.append(ra, all_ra[len(cal) + 1]), np.append(dec, all_dec[len(cal) + 1])
    ref_err = {b: 0.005 + 0.02 * np.exp((m - ref_depth_mag) / 1.0) for b, m in true.items()}
    in_ref = true[band] < ref_depth_mag
    ref_cols = {"ra": ra[in_ref], "dec": dec[in_ref]}
    for b in BANDS:
        ref_cols[b] = (true[b] + rng.normal(0, ref_err[b]))[in_ref]
        ref_cols[f"{b}_err"] = ref_err[b][in_ref]
    reference = RefCatalog.from_columns("SIM", ref_cols)

    n = len(cal)  # field stars (the reference may also hold the target's neighbour)
    inside = (ax[:n] > 5) & (ax[:n] < npix - 6) & (ay[:n] > 5) & (ay[:n] < npix - 6)
    radius = max(1.0, 0.5 * fwhm_arcsec)
    detected = _detected(catalog, ra[:n][inside], dec[:n][inside], wcs_offset_arcsec, radius)
    truth = {
        "band": band,
        "zeropoint": zeropoint,
        "colour_term": colour_term,
        "colour_pivot": colour_pivot,
        "target_ra": ra0,
        "target_dec": dec0,
        "target_mag": target_mag,
        "source_ra": all_ra[n] if target_mag is not None else None,
        "source_dec": all_dec[n] if target_mag is not None else None,
        "completeness_50": completeness_50(cal[inside], detected),
        "pixscale": pixscale,
        "fwhm_arcsec": fwhm_arcsec,
        "wcs_offset_arcsec": wcs_offset_arcsec,
        "n_stars": n_stars,
        "stars": {"ra": ra[:n][inside], "dec": dec[:n][inside], "mag": cal[inside]},
        "saturation_mag": zeropoint
        - 2.5 * math.log10(SATURATION * 2 * math.pi * (fwhm_pix / 2.3548) ** 2),
    }
    return RenderedField(
        data=data, catalog=catalog, reference=reference, truth=truth, image=image_bytes
    )


def _detected(catalog: SourceCatalog, ra, dec, offset, radius_arcsec: float) -> np.ndarray:
    """Whether each true star has a catalogue source within ``radius_arcsec``."""
    from calib.match import Sky, apply_shift, crossmatch

    cra, cdec = apply_shift(catalog.ra, catalog.dec, -offset[0], -offset[1])
    found = np.zeros(len(ra), dtype=bool)
    _, i2, _ = crossmatch(Sky.at(cra, cdec), Sky.at(ra, dec), radius_arcsec)
    found[i2] = True
    return found
