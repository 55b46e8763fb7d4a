"""``refcat ingest --preset``: small files written in each survey's published format (column
order, units, sentinels, flags as their publishers document them) go in with the right units,
missing values as NaN, the survey's quality cuts applied and the epoch of its positions."""

import gzip

import numpy as np
import pytest
from click.testing import CliRunner

from refcats.cli import refcat
from refcats.presets import (
    APASS_BANDS,
    GAIA_ZP_ERR,
    GSPC_BANDS,
    REFCAT2_NAMES,
    SKYMAPPER_BANDS,
    TWOMASS_NAMES,
)
from refcats.store import RefStore

RA0, DEC0 = 210.0, -12.0


def stars(n=300, seed=0):
    rng = np.random.default_rng(seed)
    ra = RA0 + rng.uniform(-0.2, 0.2, n)
    dec = DEC0 + rng.uniform(-0.2, 0.2, n)
    mag = rng.uniform(12, 19, n)
    return ra, dec, mag, rng


def ingest_preset(tmp_path, name, path, preset):
    root = tmp_path / "store"
    paths = [str(p) for p in path] if isinstance(path, list) else [str(path)]
    result = CliRunner().invoke(
        refcat, ["ingest", name, *paths, "--preset", preset, "--root", str(root)]
    )
    assert result.exit_code == 0, result.output
    store = RefStore(root)
    return store, store.cone(name, RA0, DEC0, 1.0).sort_by("source_id" if name != "RC2" else "ra")


def test_gaia_dr3_gaia_source_ecsv(tmp_path):
    """The archive's bulk GaiaSource_*.csv.gz: ECSV (``#`` metadata lines, a header line),
    ``null`` for missing values, fluxes' signal-to-noise beside the magnitudes."""
    ra, dec, g, rng = stars()
    n = g.size
    columns = ["solution_id", "designation", "source_id", "random_index", "ref_epoch", "ra",
               "ra_error", "dec", "dec_error", "parallax", "parallax_error", "pmra", "pmra_error",
               "pmdec", "pmdec_error", "ruwe", "phot_g_n_obs", "phot_g_mean_flux",
               "phot_g_mean_flux_error", "phot_g_mean_flux_over_error", "phot_g_mean_mag",
               "phot_bp_n_obs", "phot_bp_mean_flux", "phot_bp_mean_flux_error",
               "phot_bp_mean_flux_over_error", "phot_bp_mean_mag", "phot_rp_n_obs",
               "phot_rp_mean_flux", "phot_rp_mean_flux_error", "phot_rp_mean_flux_over_error",
               "phot_rp_mean_mag", "bp_rp"]  # fmt: skip
    sid = 4_000_000_000_000_000_000 + np.arange(n) * 1000
    snr = 10 ** rng.uniform(2, 4, n)
    lines = ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:",
             "# - {name: solution_id, datatype: int64}", ",".join(columns)]  # fmt: skip
    for k in range(n):
        bp = "null" if k % 10 == 0 else f"{g[k] + 0.4:.6f}"  # BP missing for faint/crowded
        pm = ("null", "null") if k % 7 == 0 else (f"{-30 + k * 0.1:.4f}", f"{12 - k * 0.05:.4f}")
        row = ["1636148068921376768", f'"Gaia DR3 {sid[k]}"', str(sid[k]), str(k), "2016.0",
               f"{ra[k]:.12f}", "0.02", f"{dec[k]:.12f}", "0.02", "1.1", "0.03", pm[0], "0.03",
               pm[1], "0.03", "1.01", "300", "1e4", "10", f"{snr[k]:.4f}", f"{g[k]:.6f}", "30",
               "5e3", "20", f"{snr[k] / 3:.4f}", bp, "30", "6e3", "20", f"{snr[k] / 2:.4f}",
               f"{g[k] - 0.5:.6f}", "0.9"]  # fmt: skip
        lines.append(",".join(row))
    no_photometry = ["1", '"Gaia DR3 1"', "1", "0", "2016.0", f"{RA0}", "1", f"{DEC0}"]
    lines.append(",".join(no_photometry + ["null"] * (len(columns) - 8)))  # dropped
    path = tmp_path / "GaiaSource_000000-003111.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    store, got = ingest_preset(tmp_path, "GDR3", path, "gaia_dr3")
    info = store.info("GDR3")
    assert info.bands == ("G", "BP", "RP") and info.nrows == n and info.epoch == 2016.0
    assert got["source_id"].to_numpy() == pytest.approx(sid)
    assert got["G"].to_numpy() == pytest.approx(g, abs=1e-5)
    expected = np.hypot(1.0857362 / snr, GAIA_ZP_ERR["G"])
    assert got["G_err"].to_numpy() == pytest.approx(expected, rel=1e-4)
    assert np.isnan(got["BP"].to_numpy()[::10]).all() and np.isfinite(got["RP"]).all()
    # proper motions are applied at another epoch; stars without one stay put
    later = store.cone("GDR3", RA0, DEC0, 1.0, epoch=2036.0).sort_by("source_id")
    moved = later["dec"].to_numpy() - got["dec"].to_numpy()
    assert moved[0] == 0.0 and moved[1] == pytest.approx((12 - 0.05) * 20 / 3.6e6, rel=1e-3)


def test_atlas_refcat2_square_degree_csv(tmp_path):
    """RefCat2's rrr+dd.rc2 files: 44 headerless scaled-integer columns, hex bitmaps, a zero
    magnitude where a band was not measured, Gaia duplicate/variable flags in ``dupvar``."""
    ra, dec, g, _ = stars(seed=1)
    lines = []
    for k in range(g.size):
        row = dict.fromkeys(REFCAT2_NAMES, "0")
        row.update(RA=str(round(ra[k] * 1e8)), Dec=str(round(dec[k] * 1e8)),
                   pmra="114", pmdec="-1460", Gaia=str(round(g[k] * 1e3)), dGaia="1",
                   g=str(round(g[k] * 1e3)), dg="10", gcontrib="1f",
                   r=str(round((g[k] - 0.4) * 1e3)), dr="12", rcontrib="3f",
                   i="0" if k % 5 == 0 else str(round((g[k] - 0.6) * 1e3)),
                   di="0" if k % 5 == 0 else "15", icontrib="00" if k % 5 == 0 else "0f",
                   z=str(round((g[k] - 0.7) * 1e3)), dz="20", zcontrib="06",
                   dupvar="4" if k == 3 else "1" if k == 4 else "0")  # fmt: skip
        lines.append(",".join(row[c] for c in REFCAT2_NAMES))
    path = tmp_path / "210-013.rc2"
    path.write_text("\n".join(lines) + "\n")
    store, got = ingest_preset(tmp_path, "RC2", path, "atlas_refcat2")
    info = store.info("RC2")
    assert info.epoch == 2015.5 and info.bands == ("g", "r", "i", "z", "J", "H", "K")
    keep = np.ones(g.size, bool)
    keep[[3, 4]] = False  # duplicate, variable
    assert info.nrows == keep.sum()
    order = np.argsort(np.round(ra[keep] * 1e8) * 1e-8)
    assert got["ra"].to_numpy() == pytest.approx((np.round(ra[keep] * 1e8) * 1e-8)[order], abs=1e-9)
    assert got["g"].to_numpy() == pytest.approx((np.round(g[keep] * 1e3) * 1e-3)[order], abs=1e-6)
    assert got["g_err"].to_numpy() == pytest.approx(0.010, abs=1e-7)
    imag = got["i"].to_numpy()
    assert np.isnan(imag).sum() == (np.arange(g.size)[keep] % 5 == 0).sum()
    assert np.isnan(got["J"].to_numpy()).all()  # zero everywhere: absent


def test_ps1_dr2_mean_object_csv(tmp_path):
    """A MAST CasJobs export of MeanObject: header line, -999 for missing values,
    ``qualityFlag`` bits (QF_OBJ_EXT = 1, QF_OBJ_GOOD = 4)."""
    ra, dec, g, _ = stars(seed=2)
    header = ["objID", "raMean", "decMean", "nDetections", "qualityFlag"]
    for b in "grizy":
        header += [f"{b}MeanPSFMag", f"{b}MeanPSFMagErr", f"{b}MeanKronMag"]
    lines = [",".join(header)]
    flags = np.where(np.arange(g.size) % 6 == 0, 5, np.where(np.arange(g.size) % 6 == 1, 0, 52))
    for k in range(g.size):
        row = [str(100_000_000_000 + k), f"{ra[k]:.8f}", f"{dec[k]:.8f}", "12", str(flags[k])]
        for j, b in enumerate("grizy"):
            missing = b == "y" and k % 4 == 0
            row += ["-999" if missing else f"{g[k] - 0.2 * j:.4f}",
                    "-999" if missing else "0.0123", f"{g[k] - 0.2 * j:.4f}"]  # fmt: skip
        lines.append(",".join(row))
    path = tmp_path / "ps1_meanobject.csv"
    path.write_text("\n".join(lines) + "\n")
    store, got = ingest_preset(tmp_path, "PS1", path, "ps1_dr2")
    keep = flags == 52  # good (4) and not extended (1): 5 is extended, 0 not good
    assert store.info("PS1").nrows == keep.sum() and store.info("PS1").epoch is None
    assert got["source_id"].to_numpy() == pytest.approx(100_000_000_000 + np.flatnonzero(keep))
    assert got["r"].to_numpy() == pytest.approx(g[keep] - 0.2, abs=1e-4)
    y = got["y"].to_numpy()
    assert np.isnan(y[np.flatnonzero(keep) % 4 == 0]).all() and np.nanmin(y) > 10


def test_twomass_psc_bulk_file(tmp_path):
    """A psc_*.gz bulk file: 60 pipe-separated columns without a header, ``\\N`` for nulls,
    per-band ``ph_qual`` and ``cc_flg`` letters, ``use_src`` for overlapping scans."""
    ra, dec, j, _ = stars(seed=3)
    lines = []
    for k in range(j.size):
        row = dict.fromkeys(TWOMASS_NAMES, "\\N")
        row.update(ra=f"{ra[k]:.6f}", dec=f"{dec[k]:.6f}", err_maj="0.06", err_min="0.06",
                   err_ang="45", designation=f"14000000-1200{k:03d}", j_m=f"{j[k]:.3f}",
                   j_cmsig="0.02", j_msigcom="0.023", h_m=f"{j[k] - 0.5:.3f}", h_cmsig="0.03",
                   h_msigcom="0.031", k_m=f"{j[k] - 0.6:.3f}", k_cmsig="0.03",
                   k_msigcom="0.032", ph_qual="AAU" if k % 4 == 0 else "ABC",
                   rd_flg="222", bl_flg="111", cc_flg="0p0" if k % 3 == 0 else "000",
                   ndet="666666", pts_key=str(5000 + k), hemis="s", date="1999-05-01",
                   scan="100", use_src="0" if k == 7 else "1", dup_src="0")  # fmt: skip
        lines.append("|".join(row[c] for c in TWOMASS_NAMES))
    paths = [tmp_path / "psc_aaa.gz", tmp_path / "psc_aab.gz"]  # the bulk files of one survey
    half = len(lines) // 2
    for path, part in zip(paths, (lines[:half], lines[half:]), strict=True):
        path.write_bytes(gzip.compress(("\n".join(part) + "\n").encode()))
    store, got = ingest_preset(tmp_path, "TMASS", paths, "twomass_psc")
    keep = np.arange(j.size) != 7
    assert store.info("TMASS").bands == ("J", "H", "Ks") and store.info("TMASS").nrows == keep.sum()
    idx = np.flatnonzero(keep)
    assert got["J"].to_numpy() == pytest.approx(j[keep], abs=1e-3)
    assert got["J_err"].to_numpy() == pytest.approx(0.023, abs=1e-6)
    h = got["H"].to_numpy()
    assert np.isnan(h[idx % 3 == 0]).all() and np.isfinite(h[idx % 3 != 0]).all()  # cc_flg p
    ks = got["Ks"].to_numpy()
    assert np.isnan(ks).sum() == len(idx)  # Ks quality C or U everywhere


def test_preset_refuses_a_file_of_another_format(tmp_path):
    (tmp_path / "x.csv").write_text("ra,dec,V,V_err\n1,2,3,0.1\n")
    result = CliRunner().invoke(
        refcat, ["ingest", "X", str(tmp_path / "x.csv"), "--preset", "ps1_dr2",
                 "--root", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 1 and "not a Pan-STARRS1 DR2 MeanObject" in result.output
    assert "objID" in result.output


def test_gaia_dr3_synthetic_photometry_archive_join(tmp_path):
    """The archive's CSV of synthetic_photometry_gspc joined to gaia_source for positions: a
    band counts only where its ``_flag`` is 1, its error comes from the flux error."""
    ra, dec, v, _ = stars(seed=4)
    header = ["source_id", "ra", "dec", "pmra", "pmdec", "c_star"]
    for stem in GSPC_BANDS.values():
        header += [f"{stem}_flux", f"{stem}_flux_error", f"{stem}_mag", f"{stem}_flag"]
    lines = [",".join(header)]
    flux = 10 ** (-0.4 * v) * 3.6e-11
    for k in range(v.size):
        row = [str(5_000_000 + k), f"{ra[k]:.10f}", f"{dec[k]:.10f}", "5.0", "-3.0", "0.01"]
        for stem in GSPC_BANDS.values():
            if stem == "u_jkc" and k % 3 == 0:  # F/sigma_F < 30: not published
                row += ["null", "null", "null", "0"]
                continue
            flag = "0" if stem == "i_sdss" and k % 2 else "1"
            row += [f"{flux[k]:.6e}", f"{flux[k] / 80:.6e}", f"{v[k]:.5f}", flag]
        lines.append(",".join(row))
    path = tmp_path / "gspc.csv"
    path.write_text("\n".join(lines) + "\n")
    store, got = ingest_preset(tmp_path, "GSPC", path, "gaia_dr3_synphot")
    assert store.info("GSPC").bands == tuple(GSPC_BANDS) and store.info("GSPC").epoch == 2016.0
    assert got["V"].to_numpy() == pytest.approx(v, abs=1e-5)
    assert got["V_err"].to_numpy() == pytest.approx(1.0857362 / 80, rel=1e-4)
    assert np.isnan(got["U"].to_numpy()[::3]).all()
    assert np.isnan(got["i"].to_numpy()[1::2]).all() and np.isfinite(got["i"][::2]).all()


def test_apass_dr10_zone_file(tmp_path):
    """An AAVSO DR10 zone file: a header line, 29 blank-aligned fixed-width columns (ID
    ``ZZZ-NNNNNNN``, position, then nights, magnitudes and errors in B V u g r i z_s Y),
    99.999 for an absent band and a negative error for a single measurement."""
    ra, dec, v, _ = stars(seed=5)
    header = "APASS ID   ra  raerr  dec  decerr  " + "  ".join(
        f"{k}{b}" for k in ("n", "", "e") for b in APASS_BANDS
    )
    lines = [header]
    for k in range(v.size):
        mags = [v[k] + 0.6, v[k], 99.999, v[k] + 0.3, v[k] - 0.2, v[k] - 0.4, 99.999, 99.999]
        errs = [0.045, 0.031, 99.999, 0.038, 0.029, 0.052, 99.999, 99.999]
        nobs = [4, 4, 0, 3, 3, 3, 0, 0]
        if k % 5 == 0:  # V from one night only: its error is written negative
            errs[1], nobs[1] = -0.031, 1
        if k % 7 == 0:  # no B at all
            mags[0], errs[0], nobs[0] = 99.999, 99.999, 0
        row = f"{78:03d}-{k + 1:07d}{ra[k]:11.6f}{0.123:7.3f}{dec[k]:11.6f}{0.145:7.3f}"
        row += "".join(f"{n:5d}" for n in nobs) + "".join(f"{m:7.3f}" for m in mags)
        lines.append(row + "".join(f"{e:7.3f}" for e in errs))
    half = len(lines) // 2
    paths = [tmp_path / "zm10.txt", tmp_path / "zm15.txt"]
    paths[0].write_text("\n".join(lines[:half]) + "\n")
    paths[1].write_text("\n".join([header, *lines[half:]]) + "\n")
    store, got = ingest_preset(tmp_path, "APASS", paths, "apass_dr10")
    info = store.info("APASS")
    assert info.bands == APASS_BANDS and info.nrows == v.size and info.epoch is None
    assert got["source_id"].to_numpy() == pytest.approx(780_000_000 + np.arange(1, v.size + 1))
    assert got["ra"].to_numpy() == pytest.approx(ra, abs=1e-6)
    vv, ve = got["V"].to_numpy(), got["V_err"].to_numpy()
    single = np.arange(v.size) % 5 == 0
    assert np.isnan(vv[single]).all() and np.isnan(ve[single]).all()
    assert vv[~single] == pytest.approx(v[~single], abs=1e-3)
    assert ve[~single] == pytest.approx(0.031)
    b = got["B"].to_numpy()
    assert np.isnan(b[::7]).all() and b[1] == pytest.approx(v[1] + 0.6, abs=1e-3)
    for absent in ("u", "z_s", "Y"):
        assert np.isnan(got[absent].to_numpy()).all()
    assert got["g"].to_numpy() == pytest.approx(v + 0.3, abs=1e-3)


def test_skymapper_dr4_master_tap_csv(tmp_path):
    """A CSV export of ``dr4.master`` from the SkyMapper TAP service: header line, empty
    fields for NULL, object-level ``flags``/``nimaflags``/``class_star`` and per-band
    ``{b}_psf``, ``e_{b}_psf``, ``{b}_ngood``."""
    ra, dec, g, _ = stars(seed=6)
    header = ["object_id", "raj2000", "dej2000", "e_raj2000", "e_dej2000", "smss_j",
              "mean_epoch", "flags", "nimaflags", "ngood", "class_star"]  # fmt: skip
    for b in SKYMAPPER_BANDS:
        header += [f"{b}_flags", f"{b}_nimaflags", f"{b}_ngood", f"{b}_psf", f"e_{b}_psf"]
    lines = [",".join(header)]
    idx = np.arange(g.size)
    flags = np.where(idx % 6 == 0, 4, np.where(idx % 6 == 1, 3, 0))  # 4: saturated
    nimaflags = np.where(idx % 10 == 2, 7, 0)
    class_star = np.where(idx % 9 == 4, 0.03, 0.98)  # a galaxy
    for k in range(g.size):
        row = [str(300_000_000 + k), f"{ra[k]:.7f}", f"{dec[k]:.7f}", "35", "33",
               f"SMSS J140000.00-120000.{k:03d}", "57500.1", str(flags[k]), str(nimaflags[k]),
               "14", f"{class_star[k]:.3f}"]  # fmt: skip
        for j, b in enumerate(SKYMAPPER_BANDS):
            if b == "u" and k % 4 == 0:  # not detected in u: NULL magnitude, ngood 0
                row += ["0", "0", "0", "", ""]
                continue
            row += ["0", "0", "3", f"{g[k] + 0.1 * (j - 2):.4f}", "0.0143"]
        lines.append(",".join(row))
    path = tmp_path / "dr4_master.csv"
    path.write_text("\n".join(lines) + "\n")
    store, got = ingest_preset(tmp_path, "SMSS", path, "skymapper_dr4")
    keep = (flags < 4) & (nimaflags < 5) & (class_star >= 0.9)
    info = store.info("SMSS")
    assert info.bands == SKYMAPPER_BANDS and info.nrows == keep.sum() and info.epoch is None
    assert got["source_id"].to_numpy() == pytest.approx(300_000_000 + idx[keep])
    assert got["g"].to_numpy() == pytest.approx(g[keep], abs=1e-4)
    assert got["r_err"].to_numpy() == pytest.approx(0.0143)
    u = got["u"].to_numpy()
    assert np.isnan(u[idx[keep] % 4 == 0]).all() and np.isfinite(u[idx[keep] % 4 != 0]).all()
