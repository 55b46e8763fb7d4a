import numpy as np

from calib import SourceCatalog, clean_catalog


def make_catalog(n=8, **overrides):
    values = {
        "ra": 10 + np.arange(n) * 0.01,
        "dec": np.full(n, 20.0),
        "mag": np.full(n, -10.0),
        "mag_err": np.full(n, 0.02),
        "flags": np.zeros(n, dtype=np.int64),
    }
    values.update(overrides)
    return SourceCatalog(**values)


def test_each_reason_counted_once():
    cat = make_catalog(
        mag=np.array([-10, 99, np.nan, -10, -10, -10, -10, -10.0]),
        mag_err=np.array([0.02, 99, 0.02, 60000, 0.0, 0.02, 0.02, 0.02]),
        flags=np.array([0, 0, 0, 0, 0, 4, 3, 0]),
        ra=np.array([10, 10.01, 10.02, 10.03, 10.04, 10.05, 10.06, 10.06 + 0.2 / 3600]),
    )
    cleaned, rejected = clean_catalog(cat)
    assert rejected == {
        "bad_position": 0,
        "junk_mag": 2,
        "bad_mag_err": 2,
        "flags": 1,
        "saturated": 0,
        "duplicate": 1,
    }
    assert len(cleaned) == 2  # flags 1|2 (blended) are kept by default


def test_saturation_plateau_from_flux_max():
    flux_max = np.array([59800, 59900, 60000, 30000, 1000, 500, 100, 50.0])
    cleaned, rejected = clean_catalog(make_catalog(flux_max=flux_max))
    assert rejected["saturated"] == 3 and len(cleaned) == 5


def test_no_plateau_keeps_brightest():
    flux_max = np.array([60000, 30000, 20000, 10000, 1000, 500, 100, 50.0])
    _, rejected = clean_catalog(make_catalog(flux_max=flux_max))
    assert rejected["saturated"] == 0
