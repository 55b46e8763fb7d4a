"""Photometric calibration of SExtractor catalogues against reference surveys.

Pure numpy/astropy, usable from a notebook::

    from calib import read_catalog, RefCatalog, calibrate
    result = calibrate(read_catalog(data), [ref], ra, dec)

The names below load on first use, so that `calib.schema` (numpy-free) can be imported by the web
tier without the science stack.
"""

from importlib import import_module

_EXPORTS = {
    "SourceCatalog": "catalog",
    "read_catalog": "catalog",
    "clean_catalog": "clean",
    "CalibrationError": "errors",
    "CatalogError": "errors",
    "auto_match_radius": "match",
    "crossmatch": "match",
    "CalibrationResult": "pipeline",
    "calibrate": "pipeline",
    "CalibratedFrame": "frame",
    "calibrate_frame": "frame",
    "AlertMeasurement": "alert",
    "measure_alert": "alert",
    "parse_force_filter": "options",
    "RefCatalog": "reference",
    "ZeroPointFit": "zeropoint",
    "fit_zeropoint": "zeropoint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'calib' has no attribute {name!r}")
    value = getattr(import_module(f"calib.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
