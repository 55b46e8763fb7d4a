"""Photometric calibration of SExtractor catalogues against reference surveys.

Pure numpy/astropy, usable from a notebook::

    from calib import read_catalog, RefCatalog, calibrate
    result = calibrate(read_catalog(data), [ref], ra, dec)
"""

from .catalog import SourceCatalog, read_catalog
from .clean import clean_catalog
from .errors import CalibrationError, CatalogError
from .match import auto_match_radius, crossmatch
from .pipeline import CalibrationResult, calibrate, parse_force_filter
from .reference import RefCatalog
from .zeropoint import ZeroPointFit, fit_zeropoint

__all__ = [
    "CalibrationError",
    "CalibrationResult",
    "CatalogError",
    "RefCatalog",
    "SourceCatalog",
    "ZeroPointFit",
    "auto_match_radius",
    "calibrate",
    "clean_catalog",
    "crossmatch",
    "fit_zeropoint",
    "parse_force_filter",
    "read_catalog",
]
