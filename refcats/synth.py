"""Seeded synthetic multi-band (B, V, R, I) reference surveys for tests and benchmarks.

Positions are uniform on the sphere inside a cone (or all sky). V magnitudes follow
``dN/dm ∝ 10^(slope·m)`` (star counts rising to the faint end, slope 0.3 ≈ high-latitude
counts); colours follow a main-sequence locus: B−V drawn from a skewed distribution in
[−0.2, 1.8], V−R ≈ 0.57(B−V) + 0.02, R−I ≈ 0.50(B−V) + 0.05 with 0.03 mag scatter.
Errors grow with magnitude like a CCD survey with 5σ depth ``depth`` (floor 0.003 mag);
the catalogued magnitudes are scattered by their errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BANDS = ("B", "V", "R", "I")


def synth_table(
    nrows: int,
    *,
    ra: float = 150.0,
    dec: float = 2.0,
    radius_deg: float | None = 1.0,
    seed: int = 0,
    mag_range: tuple[float, float] = (12.0, 21.0),
    slope: float = 0.3,
    depth: float = 22.0,
    first_id: int = 1,
) -> pa.Table:
    """``nrows`` synthetic stars: ``source_id, ra, dec, B, B_err, V, V_err, R, R_err, I, I_err``.

    Parameters
    ----------
    nrows : number of stars
    ra, dec, radius_deg : cone holding the stars, degrees; ``radius_deg=None`` = all sky
    seed : random seed (same seed, same stars)
    mag_range : V magnitude range
    slope : log10 slope of the differential V counts
    depth : 5σ limiting magnitude used for the errors
    first_id : source_id of the first star
    """
    rng = np.random.default_rng(seed)
    ra_out, dec_out = _random_positions(rng, nrows, ra, dec, radius_deg)
    lo, hi = mag_range
    u = rng.random(nrows)
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    v = np.log10(a + u * (b - a)) / slope  # inverse CDF of dN/dm ∝ 10^(slope m)
    bv = np.clip(rng.gamma(4.0, 0.17, nrows) - 0.15, -0.2, 1.8)
    vr = 0.57 * bv + 0.02 + rng.normal(0, 0.03, nrows)
    ri = 0.50 * bv + 0.05 + rng.normal(0, 0.03, nrows)
    true = {"B": v + bv, "V": v, "R": v - vr, "I": v - vr - ri}
    cols: dict[str, np.ndarray] = {
        "source_id": np.arange(first_id, first_id + nrows, dtype=np.int64),
        "ra": ra_out,
        "dec": dec_out,
    }
    for band in BANDS:
        offset = {"B": 0.4, "V": 0.0, "R": -0.2, "I": -0.6}[band]  # redder bands a bit deeper
        err = np.hypot(0.003, 0.2 * 10 ** (0.4 * (true[band] - depth - offset)))
        cols[band] = (true[band] + rng.normal(0, 1, nrows) * err).astype(np.float32)
        cols[f"{band}_err"] = err.astype(np.float32)
    return pa.table(cols)


def _random_positions(rng, n, ra0, dec0, radius_deg):
    if radius_deg is None or radius_deg >= 180:
        ra = rng.uniform(0.0, 360.0, n)
        dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
        return ra, dec
    # uniform in a cap around the pole, then rotated to (ra0, dec0)
    cosr = np.cos(np.radians(radius_deg))
    z = rng.uniform(cosr, 1.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(1 - z * z)
    v = np.stack([s * np.cos(phi), s * np.sin(phi), z])
    th, ph = np.radians(90.0 - dec0), np.radians(ra0)
    ry = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]])
    rz = np.array([[np.cos(ph), -np.sin(ph), 0], [np.sin(ph), np.cos(ph), 0], [0, 0, 1]])
    x, y, z = rz @ ry @ v
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    ra[ra >= 360.0] = 0.0
    dec = np.degrees(np.arcsin(np.clip(z, -1, 1)))
    return ra, dec


def synth_chunks(
    nrows: int, chunk_rows: int = 1_000_000, seed: int = 0, **kw
) -> Iterator[pa.Table]:
    """`synth_table` in chunks (each chunk seeded from ``seed`` and its index)."""
    for i, start in enumerate(range(0, nrows, chunk_rows)):
        n = min(chunk_rows, nrows - start)
        yield synth_table(n, seed=seed * 100_003 + i, first_id=start + 1, **kw)


def write_synth(path: Path, nrows: int, *, chunk_rows: int = 1_000_000, **kw) -> Path:
    """Write a synthetic survey to ``path`` (``.csv`` → CSV, else Parquet), chunk by chunk,
    so memory stays bounded. Keyword arguments are those of `synth_table`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for table in synth_chunks(nrows, chunk_rows, **kw):
            if path.suffix.lower() == ".csv":
                if writer is None:
                    writer = pacsv.CSVWriter(str(path), table.schema)
            elif writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path
