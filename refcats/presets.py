"""Published formats of the surveys observers calibrate against: ``refcat ingest --preset``.

Each `Preset` knows the columns of the files as their publisher distributes them, converts
units to calserv's (degrees, magnitudes, mas/yr), turns sentinel values into NaN, applies the
survey's own quality cuts and, for astrometric surveys, records the epoch of the positions so
queries can apply proper motions. Where each survey is published and what each rule follows is
in docs/reference-surveys.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from refcats.layout import RefcatError
from refcats.sources import CsvFormat, Source


@dataclass(frozen=True)
class Preset:
    """A survey file format and its conversion to calserv columns.

    ``convert`` turns a chunk holding ``columns`` into ``ra, dec, [source_id], <band>,
    <band>_err [, pmra, pmdec]`` and drops the rows that fail the quality cuts.
    """

    name: str
    title: str
    columns: tuple[str, ...]
    bands: tuple[str, ...]
    convert: Callable[[pa.Table], pa.Table]
    csv: CsvFormat | None = None
    types: dict[str, pa.DataType] = field(default_factory=dict)
    has_source_id: bool = True
    epoch: float | None = None

    def csv_types(self) -> dict[str, pa.DataType]:
        """Types of the text columns (numbers unless said otherwise)."""
        return {c: self.types.get(c, pa.float64()) for c in self.columns}

    def check_columns(self, src: Source) -> None:
        missing = [c for c in self.columns if c not in src.columns]
        if missing:
            shown = ", ".join(src.columns[:40])
            raise RefcatError(
                f"{src.path.name}: not a {self.title} file: missing column(s) "
                f"{', '.join(missing)}; columns: {shown}"
            )


def _f(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64 with nulls as NaN."""
    col = pc.cast(table.column(name), pa.float64())
    return col.to_numpy(zero_copy_only=False)


def _table(columns: dict[str, np.ndarray], keep: np.ndarray | None = None) -> pa.Table:
    if keep is not None:
        columns = {k: v[keep] for k, v in columns.items()}
    return pa.table(columns)


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


def get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise RefcatError(f"unknown preset {name!r}; presets: {known}") from None


#: Magnitudes per unit of relative flux (2.5 / ln 10 = 1.0857): a relative flux error times this
#: is the magnitude error.
MAG_PER_FLUX = 2.5 / np.log(10)


def _mag_err_from_snr(flux_over_error: np.ndarray, floor: float) -> np.ndarray:
    """Magnitude error of a flux with signal-to-noise ``flux_over_error``, with a calibration
    floor added in quadrature."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.hypot(MAG_PER_FLUX / flux_over_error, floor)


# ---------------------------------------------------------------- Gaia DR3 gaia_source

#: G, BP, RP zero-point uncertainties of Gaia (E)DR3 (Riello et al. 2021, Table 2 / the
#: DR3 documentation §5.5.1), added in quadrature to the photon noise of each mean flux.
GAIA_ZP_ERR = {"G": 0.0027553202, "BP": 0.0027901700, "RP": 0.0037793818}
GAIA_COLUMNS = {
    "G": ("phot_g_mean_mag", "phot_g_mean_flux_over_error"),
    "BP": ("phot_bp_mean_mag", "phot_bp_mean_flux_over_error"),
    "RP": ("phot_rp_mean_mag", "phot_rp_mean_flux_over_error"),
}


def _gaia_dr3(t: pa.Table) -> pa.Table:
    out = {"source_id": pc.cast(t["source_id"], pa.int64()).to_numpy(zero_copy_only=False),
           "ra": _f(t, "ra"), "dec": _f(t, "dec")}  # fmt: skip
    for band, (mag, snr) in GAIA_COLUMNS.items():
        out[band] = _f(t, mag)
        out[f"{band}_err"] = _mag_err_from_snr(_f(t, snr), GAIA_ZP_ERR[band])
    out["pmra"], out["pmdec"] = _f(t, "pmra"), _f(t, "pmdec")
    return _table(out, np.isfinite(out["G"]))  # every source has G but a few hundred


register(
    Preset(
        name="gaia_dr3",
        title="Gaia DR3 gaia_source",
        columns=(
            "source_id",
            "ra",
            "dec",
            "pmra",
            "pmdec",
            *(c for pair in GAIA_COLUMNS.values() for c in pair),
        ),
        bands=tuple(GAIA_COLUMNS),
        convert=_gaia_dr3,
        types={"source_id": pa.int64()},
        epoch=2016.0,
    )
)


# ---------------------------------------------------------------- ATLAS-RefCat2

#: The 44 columns of the RefCat2 square-degree CSV files (Tonry et al. 2018, Table 4), all
#: scaled integers except the hexadecimal ``*contrib`` bitmaps.
REFCAT2_NAMES = (
    "RA", "Dec", "plx", "dplx", "pmra", "dpmra", "pmdec", "dpmdec", "Gaia", "dGaia", "BP", "dBP",
    "RP", "dRP", "Teff", "AGaia", "dupvar", "Ag", "rp1", "r1", "r10", "g", "dg", "gchi",
    "gcontrib", "r", "dr", "rchi", "rcontrib", "i", "di", "ichi", "icontrib", "z", "dz", "zchi",
    "zcontrib", "nstat", "J", "dJ", "H", "dH", "K", "dK",
)  # fmt: skip
REFCAT2_BANDS = {"g": ("g", "dg"), "r": ("r", "dr"), "i": ("i", "di"), "z": ("z", "dz"),
                 "J": ("J", "dJ"), "H": ("H", "dH"), "K": ("K", "dK")}  # fmt: skip


def _refcat2(t: pa.Table) -> pa.Table:
    out = {"ra": _f(t, "RA") * 1e-8, "dec": _f(t, "Dec") * 1e-8}  # units of 10 ndeg
    for band, (mag, err) in REFCAT2_BANDS.items():
        m, e = _f(t, mag), _f(t, err)
        missing = m == 0  # a zero scaled magnitude is an absent measurement
        out[band] = np.where(missing, np.nan, m * 1e-3)  # mmag
        out[f"{band}_err"] = np.where(missing, np.nan, e * 1e-3)
    out["pmra"] = _f(t, "pmra") * 1e-2  # units of 10 µas/yr
    out["pmdec"] = _f(t, "pmdec") * 1e-2
    dupvar = _f(t, "dupvar")
    keep = (dupvar % 4 == 0) & (dupvar < 4)  # Gaia CONSTANT, not a duplicate
    return _table(out, keep)


register(
    Preset(
        name="atlas_refcat2",
        title="ATLAS-RefCat2 (square-degree CSV files)",
        columns=(
            "RA",
            "Dec",
            "pmra",
            "pmdec",
            "dupvar",
            *(c for pair in REFCAT2_BANDS.values() for c in pair),
        ),
        bands=tuple(REFCAT2_BANDS),
        convert=_refcat2,
        csv=CsvFormat(delimiter=",", column_names=REFCAT2_NAMES),
        has_source_id=False,
        epoch=2015.5,
    )
)


# ---------------------------------------------------------------- Pan-STARRS1 DR2 MeanObject

PS1_BANDS = {b: (f"{b}MeanPSFMag", f"{b}MeanPSFMagErr") for b in "grizy"}
PS1_SENTINEL = -999.0
QF_OBJ_EXT = 1  # extended in PS1 data
QF_OBJ_GOOD = 4  # good-quality measurement in PS1 data


def _ps1_dr2(t: pa.Table) -> pa.Table:
    def clean(values: np.ndarray) -> np.ndarray:
        return np.where(values == PS1_SENTINEL, np.nan, values)

    out = {"source_id": pc.cast(t["objID"], pa.int64()).to_numpy(zero_copy_only=False),
           "ra": clean(_f(t, "raMean")), "dec": clean(_f(t, "decMean"))}  # fmt: skip
    for band, (mag, err) in PS1_BANDS.items():
        out[band], out[f"{band}_err"] = clean(_f(t, mag)), clean(_f(t, err))
    flags = pc.cast(t["qualityFlag"], pa.int64()).to_numpy(zero_copy_only=False)
    keep = ((flags & QF_OBJ_GOOD) != 0) & ((flags & QF_OBJ_EXT) == 0)
    return _table(out, keep)


register(
    Preset(
        name="ps1_dr2",
        title="Pan-STARRS1 DR2 MeanObject (MAST CasJobs CSV)",
        columns=(
            "objID",
            "raMean",
            "decMean",
            "qualityFlag",
            *(c for pair in PS1_BANDS.values() for c in pair),
        ),
        bands=tuple(PS1_BANDS),
        convert=_ps1_dr2,
        types={"objID": pa.int64(), "qualityFlag": pa.int64()},
    )
)


# ---------------------------------------------------------------- 2MASS PSC

#: The 60 pipe-separated columns of the 2MASS All-Sky PSC bulk files (psc_aaa.gz ...,
#: Explanatory Supplement §2.2a); nulls are written ``\N``.
TWOMASS_NAMES = (
    "ra", "dec", "err_maj", "err_min", "err_ang", "designation", "j_m", "j_cmsig", "j_msigcom",
    "j_snr", "h_m", "h_cmsig", "h_msigcom", "h_snr", "k_m", "k_cmsig", "k_msigcom", "k_snr",
    "ph_qual", "rd_flg", "bl_flg", "cc_flg", "ndet", "prox", "pxpa", "pxcntr", "gal_contam",
    "mp_flg", "pts_key", "hemis", "date", "scan", "glon", "glat", "x_scan", "jdate", "j_psfchi",
    "h_psfchi", "k_psfchi", "j_m_stdap", "j_msig_stdap", "h_m_stdap", "h_msig_stdap",
    "k_m_stdap", "k_msig_stdap", "dist_edge_ns", "dist_edge_ew", "dist_edge_flg", "dup_src",
    "use_src", "a", "dist_opt", "phi_opt", "b_m_opt", "vr_m_opt", "nopt_mchs", "ext_key",
    "scan_key", "coadd_key", "coadd",
)  # fmt: skip
TWOMASS_BANDS = {"J": ("j_m", "j_msigcom"), "H": ("h_m", "h_msigcom"), "Ks": ("k_m", "k_msigcom")}


def _twomass(t: pa.Table) -> pa.Table:
    out = {"source_id": pc.cast(t["pts_key"], pa.int64()).to_numpy(zero_copy_only=False),
           "ra": _f(t, "ra"), "dec": _f(t, "dec")}  # fmt: skip
    qual = t["ph_qual"].to_pylist()
    cc = t["cc_flg"].to_pylist()
    for k, (band, (mag, err)) in enumerate(TWOMASS_BANDS.items()):
        # a band is kept where its photometric quality is A or B and no artefact touches it
        good = np.array([(q or "XXX")[k] in "AB" and (c or "XXX")[k] == "0"
                         for q, c in zip(qual, cc, strict=True)], dtype=bool)  # fmt: skip
        out[band] = np.where(good, _f(t, mag), np.nan)
        out[f"{band}_err"] = np.where(good, _f(t, err), np.nan)
    return _table(out, _f(t, "use_src") == 1)  # one entry per source where scans overlap


register(
    Preset(
        name="twomass_psc",
        title="2MASS All-Sky Point Source Catalog (bulk psc_*.gz files)",
        columns=(
            "ra",
            "dec",
            "pts_key",
            "ph_qual",
            "cc_flg",
            "use_src",
            *(c for pair in TWOMASS_BANDS.values() for c in pair),
        ),
        bands=tuple(TWOMASS_BANDS),
        convert=_twomass,
        csv=CsvFormat(delimiter="|", column_names=TWOMASS_NAMES, null_values=("\\N",)),
        types={"pts_key": pa.int64(), "ph_qual": pa.string(), "cc_flg": pa.string()},
    )
)


# ---------------------------------------------------------------- Gaia DR3 synthetic photometry

#: calserv band -> GSPC column stem (gaiadr3.synthetic_photometry_gspc, DR3 documentation
#: §20.14.9): the standardised Johnson-Kron-Cousins and SDSS passbands.
GSPC_BANDS = {
    **{band: f"{band.lower()}_jkc" for band in "UBVRI"},
    **{band: f"{band}_sdss" for band in "ugriz"},
}


def _gaia_synphot(t: pa.Table) -> pa.Table:
    out = {"source_id": pc.cast(t["source_id"], pa.int64()).to_numpy(zero_copy_only=False),
           "ra": _f(t, "ra"), "dec": _f(t, "dec")}  # fmt: skip
    for band, stem in GSPC_BANDS.items():
        # flag 1: the star's G and BP-RP lie in the range where the standardisation holds
        valid = _f(t, f"{stem}_flag") == 1
        with np.errstate(divide="ignore", invalid="ignore"):
            err = MAG_PER_FLUX * _f(t, f"{stem}_flux_error") / _f(t, f"{stem}_flux")
        out[band] = np.where(valid, _f(t, f"{stem}_mag"), np.nan)
        out[f"{band}_err"] = np.where(valid, err, np.nan)
    out["pmra"], out["pmdec"] = _f(t, "pmra"), _f(t, "pmdec")
    return _table(out)


register(
    Preset(
        name="gaia_dr3_synphot",
        title="Gaia DR3 synthetic photometry (GSPC joined to gaia_source positions)",
        columns=(
            "source_id",
            "ra",
            "dec",
            "pmra",
            "pmdec",
            *(
                f"{stem}_{part}"
                for stem in GSPC_BANDS.values()
                for part in ("flux", "flux_error", "mag", "flag")
            ),
        ),
        bands=tuple(GSPC_BANDS),
        convert=_gaia_synphot,
        types={"source_id": pa.int64()},
        epoch=2016.0,
    )
)


# ---------------------------------------------------------------- APASS DR10

#: The 29 blank-aligned columns of the APASS DR10 zone files ``zm90.txt`` ... ``zp85.txt``
#: (one per 5° of declination, AAVSO): the APASS ID ``ZZZ-NNNNNNN`` (south-polar-distance zone,
#: star number), RA/Dec in degrees with errors in arcsec, then per band B V u' g' r' i' z_s Y
#: the number of nights, the magnitude and its error. A header line starts with ``APASS``.
APASS_BANDS = ("B", "V", "u", "g", "r", "i", "z_s", "Y")
APASS_NAMES = (
    "apass_id", "radeg", "raerr", "decdeg", "decerr",
    *(f"nobs_{b}" for b in APASS_BANDS),
    *(f"mag_{b}" for b in APASS_BANDS),
    *(f"err_{b}" for b in APASS_BANDS),
)  # fmt: skip
APASS_MISSING = 90.0  # absent magnitudes and errors are written 99.999


def _apass_source_id(ids: pa.ChunkedArray) -> np.ndarray:
    """``ZZZ-NNNNNNN`` as the integer ZZZNNNNNNN (unique: zone and star number within it)."""
    zone = pc.cast(pc.utf8_slice_codeunits(ids, 0, 3), pa.int64())
    star = pc.cast(pc.utf8_slice_codeunits(ids, 4, 11), pa.int64())
    return pc.add(pc.multiply(zone, 10_000_000), star).to_numpy(zero_copy_only=False)


def _apass_dr10(t: pa.Table) -> pa.Table:
    out = {"source_id": _apass_source_id(t["apass_id"]),
           "ra": _f(t, "radeg"), "dec": _f(t, "decdeg")}  # fmt: skip
    for band in APASS_BANDS:
        mag, err = _f(t, f"mag_{band}"), _f(t, f"err_{band}")
        # a negative error marks a single measurement whose scatter is unknown
        good = (mag < APASS_MISSING) & (err >= 0) & (err < APASS_MISSING)
        out[band] = np.where(good, mag, np.nan)
        out[f"{band}_err"] = np.where(good, err, np.nan)
    return _table(out)


register(
    Preset(
        name="apass_dr10",
        title="APASS DR10 (AAVSO zone files z[mp]NN.txt)",
        columns=(
            "apass_id",
            "radeg",
            "decdeg",
            *(f"{part}_{b}" for b in APASS_BANDS for part in ("mag", "err")),
        ),
        bands=APASS_BANDS,
        convert=_apass_dr10,
        csv=CsvFormat(delimiter=None, column_names=APASS_NAMES),
        types={"apass_id": pa.string()},
    )
)


# ---------------------------------------------------------------- SkyMapper DR4 master

SKYMAPPER_BANDS = tuple("uvgriz")
#: SkyMapper averages only detections with Source Extractor flags < 4 and fewer than 5 flagged
#: pixels (nimaflags) into its means; an object whose combined flags pass the same thresholds
#: is kept, and only point-like ones (stellarity class_star >= 0.9) serve as references.
SKYMAPPER_MAX_FLAGS = 4
SKYMAPPER_MAX_NIMAFLAGS = 5
SKYMAPPER_MIN_CLASS_STAR = 0.9


def _skymapper_dr4(t: pa.Table) -> pa.Table:
    out = {"source_id": pc.cast(t["object_id"], pa.int64()).to_numpy(zero_copy_only=False),
           "ra": _f(t, "raj2000"), "dec": _f(t, "dej2000")}  # fmt: skip
    for band in SKYMAPPER_BANDS:
        good = _f(t, f"{band}_ngood") >= 1  # NULL (no good detection) compares False
        out[band] = np.where(good, _f(t, f"{band}_psf"), np.nan)
        out[f"{band}_err"] = np.where(good, _f(t, f"e_{band}_psf"), np.nan)
    keep = (
        (_f(t, "flags") < SKYMAPPER_MAX_FLAGS)
        & (_f(t, "nimaflags") < SKYMAPPER_MAX_NIMAFLAGS)
        & (_f(t, "class_star") >= SKYMAPPER_MIN_CLASS_STAR)
    )
    return _table(out, keep)


register(
    Preset(
        name="skymapper_dr4",
        title="SkyMapper DR4 dr4.master (TAP/CSV export)",
        columns=(
            "object_id",
            "raj2000",
            "dej2000",
            "flags",
            "nimaflags",
            "class_star",
            *(c for b in SKYMAPPER_BANDS for c in (f"{b}_psf", f"e_{b}_psf", f"{b}_ngood")),
        ),
        bands=SKYMAPPER_BANDS,
        convert=_skymapper_dr4,
        types={"object_id": pa.int64()},
    )
)
