"""Synthetic fields with known truth, for tests, benchmarks and web-tier uploads.

A B,V,R,I reference survey with main-sequence-like colours, and a SExtractor-like catalogue
of the same stars observed in one band: zero point, colour term, errors rising with
magnitude, saturated bright stars, blends, junk rows, outliers, a systematic astrometric
offset and an alert that is or is not detected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .catalog import SourceCatalog
from .reference import RefCatalog
from .stats import MAG_PER_FLUX
from .zeropoint import colour_for_band

SATURATION_ADU = 60000.0
BANDS = ("B", "V", "R", "I")


@dataclass
class SimulatedField:
    """A simulated frame: SExtractor ``columns``, the `SourceCatalog`, the reference, truth."""

    columns: dict[str, np.ndarray]
    catalog: SourceCatalog
    reference: RefCatalog
    truth: dict

    def ascii_head(self) -> bytes:
        """The catalogue as an uploadable SExtractor ASCII_HEAD file."""
        return to_ascii_head(self.columns)


_DESCRIPTIONS = {
    "NUMBER": ("Running object number", ""),
    "ALPHA_J2000": ("Right ascension of barycenter (J2000)", "deg"),
    "DELTA_J2000": ("Declination of barycenter (J2000)", "deg"),
    "MAG_AUTO": ("Kron-like elliptical aperture magnitude", "mag"),
    "MAGERR_AUTO": ("RMS error for AUTO magnitude", "mag"),
    "MAG_APER": ("Fixed aperture magnitude vector", "mag"),
    "MAGERR_APER": ("RMS error vector for fixed aperture mag.", "mag"),
    "FLUX_MAX": ("Peak flux above background", "count"),
    "FLAGS": ("Extraction flags", ""),
    "CLASS_STAR": ("S/G classifier output", ""),
}


def to_ascii_head(columns: Mapping[str, np.ndarray]) -> bytes:
    """Write columns as SExtractor ASCII_HEAD; 2-D columns become vector columns."""
    header, blocks, number = [], [], 1
    for name, values in columns.items():
        values = np.asarray(values)
        block = values.reshape(len(values), -1)
        description, unit = _DESCRIPTIONS.get(name, (name, ""))
        unit = f"[{unit}]" if unit else ""
        header.append(f"#{number:4d} {name:<22s} {description:<57s} {unit}".rstrip())
        number += block.shape[1]
        integer = name in ("NUMBER", "FLAGS")
        blocks.append(block.astype(np.int64) if integer else block)
    lines = []
    formats = []
    for name, block in zip(columns, blocks, strict=True):
        fmt = "%10d" if name in ("NUMBER", "FLAGS") else "%12.7f" if "_J2000" in name else "%10.4f"
        formats.extend([fmt] * block.shape[1])
    table = np.column_stack([b.astype(object) for b in blocks])
    row_fmt = " ".join(formats)
    lines = [row_fmt % tuple(row) for row in table]
    return ("\n".join(header + lines) + "\n").encode("ascii")


def true_magnitudes(rng: np.random.Generator, n: int, bright: float, faint: float):
    """V from rising number counts (dN/dm ~ 10**(0.3 m)) and B-V, V-R, R-I colours."""
    u = rng.uniform(size=n)
    lo, hi = 10 ** (0.3 * bright), 10 ** (0.3 * faint)
    v = np.log10(lo + u * (hi - lo)) / 0.3
    bv = np.clip(rng.normal(0.75, 0.35, n), -0.25, 1.9)
    vr = 0.57 * bv + 0.02 + rng.normal(0, 0.03, n)
    ri = 0.5 * bv + 0.01 + rng.normal(0, 0.03, n)
    r = v - vr
    return {"B": v + bv, "V": v, "R": r, "I": r - ri}


def simulate_field(
    seed: int = 0,
    *,
    n_stars: int = 1500,
    band: str = "R",
    zeropoint: float = 25.3,
    colour_term: float = 0.07,
    colour_pivot: float = 0.5,
    centre: tuple[float, float] = (150.1, 2.2),
    field_deg: float = 0.33,
    limit_mag: float = 20.5,
    ref_limit_mag: float = 19.5,
    saturation_mag: float = 12.5,
    offset_arcsec: tuple[float, float] = (0.0, 0.0),
    position_noise_arcsec: float = 0.15,
    outlier_fraction: float = 0.02,
    blend_fraction: float = 0.02,
    n_junk: int = 10,
    target_mag: float | None = 16.0,
) -> SimulatedField:
    """Simulate one frame observed in ``band`` (one of B, V, R, I).

    The catalogue follows ``inst + zeropoint = true + colour_term * (colour - colour_pivot)``
    with the colour of `colour_for_band`. ``limit_mag`` is the S/N = 5 magnitude in ``band``;
    stars brighter than ``saturation_mag`` are saturated (flag 4, FLUX_MAX on the plateau,
    magnitudes too faint). ``outlier_fraction`` of stars get wrong magnitudes (variables,
    artefacts); ``blend_fraction`` are blended (flag 2, too bright). The catalogue is offset
    by ``offset_arcsec`` (along RA, Dec). The alert sits at ``centre`` with ``target_mag``,
    or is absent (``None``: no source within 5 arcsec of it).
    """
    rng = np.random.default_rng(seed)
    ra0, dec0 = centre
    cos0 = np.cos(np.radians(dec0))
    half = field_deg / 2
    ra = ra0 + rng.uniform(-half, half, n_stars) / cos0
    dec = dec0 + rng.uniform(-half, half, n_stars)
    true = true_magnitudes(rng, n_stars, saturation_mag - 2.5, limit_mag + 0.7)
    if band not in true:
        raise ValueError(f"band must be one of {BANDS}")

    # Reference survey: a shallower catalogue with its own errors.
    ref_err = {b: np.hypot(0.01, 0.03 * 10 ** (0.4 * (m - ref_limit_mag))) for b, m in true.items()}
    in_ref = true[band] < ref_limit_mag
    ref_columns = {"ra": ra[in_ref], "dec": dec[in_ref]}
    for b in BANDS:
        ref_columns[b] = (true[b] + rng.normal(0, ref_err[b]))[in_ref]
        ref_columns[f"{b}_err"] = ref_err[b][in_ref]
    reference = RefCatalog.from_columns("SIM", ref_columns)

    blue, red = colour_for_band(band, BANDS)
    colour = true[blue] - true[red]
    mag = true[band]
    sep_target = np.hypot((ra - ra0) * cos0, dec - dec0) * 3600
    stars = sep_target > 5.0  # keep the alert's surroundings clear
    ra, dec, mag, colour = ra[stars], dec[stars], mag[stars], colour[stars]
    if target_mag is not None:
        ra, dec = np.append(ra, ra0), np.append(dec, dec0)
        mag, colour = np.append(mag, target_mag), np.append(colour, colour_pivot)
    n = len(ra)
    inst_true = mag - zeropoint + colour_term * (colour - colour_pivot)

    # Errors: flux F in units of the S/N = 5 flux; variance = 0.004 F + 0.036 (sky-limited).
    flux = 10 ** (-0.4 * (mag - limit_mag))
    err = np.hypot(MAG_PER_FLUX * np.sqrt(0.004 * flux + 0.036) / flux, 0.002)
    inst = inst_true + rng.normal(0, err)
    flags = np.zeros(n, dtype=np.int64)
    saturated = mag < saturation_mag
    inst[saturated] += 0.4 * (saturation_mag - mag[saturated])
    flags[saturated] |= 4
    flux_max = np.minimum(SATURATION_ADU * 10 ** (-0.4 * (mag - saturation_mag)), SATURATION_ADU)
    flux_max[saturated] = SATURATION_ADU * rng.uniform(0.99, 1.0, saturated.sum())
    is_target = np.zeros(n, dtype=bool)
    if target_mag is not None:
        is_target[-1] = True
    field_star = ~is_target
    blended = field_star & (rng.uniform(size=n) < blend_fraction)
    inst[blended] -= rng.uniform(0.05, 0.5, blended.sum())
    flags[blended] |= 2
    outlier = field_star & ~blended & (rng.uniform(size=n) < outlier_fraction)
    inst[outlier] += rng.choice([-1, 1], outlier.sum()) * rng.uniform(0.3, 2.0, outlier.sum())
    detected = (flux / np.sqrt(0.004 * flux + 0.036) > 3) | is_target

    pos_noise = position_noise_arcsec / 3600
    ra_obs = ra + (offset_arcsec[0] / 3600 + rng.normal(0, pos_noise, n)) / cos0
    dec_obs = dec + offset_arcsec[1] / 3600 + rng.normal(0, pos_noise, n)
    keep = detected
    cols = {
        "ALPHA_J2000": ra_obs[keep],
        "DELTA_J2000": dec_obs[keep],
        "MAG_AUTO": inst[keep],
        "MAGERR_AUTO": err[keep],
        "FLUX_MAX": flux_max[keep],
        "FLAGS": flags[keep],
        "CLASS_STAR": np.full(keep.sum(), 0.98),
    }
    # Junk rows as SExtractor writes them: failed magnitudes and absurd errors.
    junk_ra = ra0 + rng.uniform(-half, half, n_junk) / cos0
    junk_dec = dec0 + rng.uniform(-half, half, n_junk)
    junk_mag = np.where(np.arange(n_junk) % 2 == 0, 99.0, rng.uniform(-12, -5, n_junk))
    junk_err = np.where(np.arange(n_junk) % 2 == 0, 99.0, 60000.0)
    junk = {
        "ALPHA_J2000": junk_ra,
        "DELTA_J2000": junk_dec,
        "MAG_AUTO": junk_mag,
        "MAGERR_AUTO": junk_err,
        "FLUX_MAX": np.full(n_junk, 10.0),
        "FLAGS": np.zeros(n_junk, dtype=np.int64),
        "CLASS_STAR": np.full(n_junk, 0.5),
    }
    columns = {"NUMBER": np.arange(1, keep.sum() + n_junk + 1)}
    columns.update({k: np.concatenate([cols[k], junk[k]]) for k in cols})
    catalog = SourceCatalog(
        ra=columns["ALPHA_J2000"].astype(np.float64),
        dec=columns["DELTA_J2000"].astype(np.float64),
        mag=columns["MAG_AUTO"].astype(np.float64),
        mag_err=columns["MAGERR_AUTO"].astype(np.float64),
        flags=columns["FLAGS"].astype(np.int64),
        flux_max=columns["FLUX_MAX"].astype(np.float64),
        class_star=columns["CLASS_STAR"].astype(np.float64),
        columns={
            "ra": "ALPHA_J2000",
            "dec": "DELTA_J2000",
            "mag": "MAG_AUTO",
            "mag_err": "MAGERR_AUTO",
            "flags": "FLAGS",
            "flux_max": "FLUX_MAX",
            "class_star": "CLASS_STAR",
        },
        format="ASCII_HEAD",
    )
    truth = {
        "band": band,
        "zeropoint": zeropoint,
        "colour_term": colour_term,
        "colour": f"{blue}-{red}",
        "colour_pivot": colour_pivot,
        "limiting_mag": limit_mag,
        "target_ra": ra0,
        "target_dec": dec0,
        "target_mag": target_mag,
        "offset_arcsec": offset_arcsec,
        "n_sources": len(catalog),
    }
    return SimulatedField(columns=columns, catalog=catalog, reference=reference, truth=truth)
