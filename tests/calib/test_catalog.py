import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from calib import CatalogError, read_catalog
from calib.catalog import check_columns
from calib.simulate import simulate_field, to_ascii_head


@pytest.mark.parametrize("sample", ["gaia-demo", "synth-deep"])
def test_ascii_and_ldac_samples_agree(sample, data_dir):
    ascii_cat = read_catalog((data_dir / sample / "frame.cat").read_bytes())
    ldac_cat = read_catalog((data_dir / sample / "frame.ldac").read_bytes())
    assert ascii_cat.format == "ASCII_HEAD" and ldac_cat.format == "FITS_LDAC"
    assert len(ascii_cat) == len(ldac_cat) > 100
    assert ascii_cat.columns["mag"] == "MAG_AUTO" and ascii_cat.columns["ra"] == "ALPHA_J2000"
    np.testing.assert_allclose(ascii_cat.ra, ldac_cat.ra, atol=1e-6)
    np.testing.assert_allclose(ascii_cat.mag, ldac_cat.mag, atol=1e-3)
    np.testing.assert_array_equal(ascii_cat.flags, ldac_cat.flags)


def test_fits_1_0_written_by_astropy():
    table = Table(
        {
            "ALPHAWIN_J2000": [10.0, 10.1],
            "DELTAWIN_J2000": [-5.0, -5.1],
            "MAG_BEST": [-9.0, -10.0],
            "MAGERR_BEST": [0.01, 0.02],
            "FLUX_MAX": [100.0, 200.0],
        }
    )
    buf = io.BytesIO()
    table.write(buf, format="fits")
    cat = read_catalog(buf.getvalue())
    assert cat.format == "FITS_1.0"
    assert cat.columns == {
        "ra": "ALPHAWIN_J2000",
        "dec": "DELTAWIN_J2000",
        "mag": "MAG_BEST",
        "mag_err": "MAGERR_BEST",
        "flux_max": "FLUX_MAX",
    }
    np.testing.assert_allclose(cat.mag, [-9.0, -10.0])
    np.testing.assert_array_equal(cat.flags, [0, 0])
    assert cat.class_star is None


def test_ascii_vector_columns_use_header_numbering():
    text = (
        "#   1 NUMBER  Running object number\n"
        "#   2 X_WORLD  Barycenter position along world x axis  [deg]\n"
        "#   3 Y_WORLD  Barycenter position along world y axis  [deg]\n"
        "#   4 MAG_APER  Fixed aperture magnitude vector  [mag]\n"
        "#   7 MAGERR_APER  RMS error vector for fixed aperture mag.  [mag]\n"
        "#  10 FLAGS  Extraction flags\n"
        "1 10.0 20.0 -9.1 -9.2 -9.3 0.01 0.02 0.03 0\n"
        "2 10.1 20.1 -8.1 -8.2 -8.3 0.04 0.05 0.06 3\n"
    )
    cat = read_catalog(text.encode())
    np.testing.assert_allclose(cat.mag, [-9.1, -8.1])
    np.testing.assert_allclose(cat.mag_err, [0.01, 0.04])
    np.testing.assert_array_equal(cat.flags, [0, 3])
    assert cat.columns["ra"] == "X_WORLD"


def test_missing_error_column_gives_nan_errors():
    text = "#   1 RA\n#   2 DEC\n#   3 MAG\n10 20 15.0\n"
    cat = read_catalog(text.encode())
    assert len(cat) == 1 and np.isnan(cat.mag_err[0])


def test_simulated_ascii_round_trip():
    field = simulate_field(3, n_stars=200)
    cat = read_catalog(field.ascii_head())
    assert len(cat) == len(field.catalog)
    np.testing.assert_allclose(cat.mag, field.catalog.mag, atol=1e-4)
    np.testing.assert_array_equal(cat.flags, field.catalog.flags)
    assert cat.flux_max is not None


def _image_fits(compressed: bool = False) -> bytes:
    data = np.zeros((16, 16), dtype=np.float32)
    buf = io.BytesIO()
    if compressed:
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(buf)
    else:
        fits.PrimaryHDU(data).writeto(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (bytes(range(256)) * 20, "neither"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "neither"),
        (b"#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAG_AUTO\n", "no sources"),
        (
            b"#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 FLAGS\n1 2 0\n",
            "MAG_AUTO, MAG_BEST",
        ),
        (b"1 2 3\n4 5 6\n", "no header line naming"),
        (b"ID NAME\n1 x\n", "columns found: ID, NAME"),
        (b"RA DEC MAG\n400 10 15\n", "RA out of range in 1 row"),
        (b"RA DEC MAG\n40 -91 15\n", "Dec out of range"),
        (b"RA DEC MAG\n1:2:3 4:x:5 15\n", "sexagesimal"),
        (b"#   1 RA\n#   2 DEC\n#   3 MAG\n1 2 x\n", "numeric"),
        (b"#   1 RA\n#   2 DEC\n#   3 MAG\n1 2\n", "header describes"),
        ("".join(f"#{i:5d} C{i}\n" for i in range(1, 1500)).encode() + b"1\n", "1000 columns"),
        (_image_fits(), "no table"),
        (_image_fits(compressed=True), "compressed image"),
        (b"SIMPLE  = T" + b"\x00" * 50, "could not be read"),
        ("#   1 RA\n#   2 DEC\n#   3 MAG\n1 2 3 \u00e9\n".encode(), "neither"),
    ],
)
def test_hostile_input_raises_catalog_error(data, message):
    with pytest.raises(CatalogError) as excinfo:
        read_catalog(data)
    assert message in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_row_cap(monkeypatch):
    monkeypatch.setattr("calib.catalog.MAX_ROWS", 5)
    data = to_ascii_head({"RA": np.arange(10.0), "DEC": np.arange(10.0), "MAG": np.arange(10.0)})
    with pytest.raises(CatalogError, match="more than"):
        read_catalog(data)


def _plain_rows(field, n=300):
    cat = field.catalog
    return cat.ra[:n], cat.dec[:n], cat.mag[:n], cat.mag_err[:n], cat.flags[:n]


@pytest.mark.parametrize(
    ("header", "sep"),
    [
        ("RA DEC MAG MAGERR FLAGS", " "),
        ("# ra dec mag magerr flags", "  "),
        ("ra,dec,mag,mag_err,flag", ","),
        ("# RAJ2000, DEJ2000, MAG_APER_2, MAGERR_APER_2, FLAGS", ", "),
        ("RA_ICRS\tDE_ICRS\tmag_psf\tmagerr_psf\tflags", "\t"),
    ],
)
def test_plain_tables_with_named_header(header, sep, rng):
    field = simulate_field(int(rng.integers(1 << 31)), n_stars=300)
    ra, dec, mag, err, flags = _plain_rows(field)
    lines = ["# written by hand", header]
    lines += [sep.join(f"{v:.7f}" for v in row[:4]) + f"{sep}{row[4]:d}" for row in
              zip(ra, dec, mag, err, flags, strict=True)]  # fmt: skip
    cat = read_catalog(("\n".join(lines) + "\n").encode())
    assert cat.format == "TEXT" and len(cat) == len(ra)
    np.testing.assert_allclose(cat.ra, ra, atol=1e-7)
    np.testing.assert_allclose(cat.mag, mag, atol=1e-7)
    np.testing.assert_allclose(cat.mag_err, err, atol=1e-7)
    np.testing.assert_array_equal(cat.flags, flags)
    assert cat.has_errors


def test_sexagesimal_positions_and_text_columns(rng):
    rng = rng
    ra = rng.uniform(0, 360, 50)
    dec = rng.uniform(-89, 89, 50)
    mags = rng.uniform(10, 20, 50)
    from astropy.coordinates import SkyCoord

    coords = SkyCoord(ra, dec, unit="deg")
    ra_s = coords.ra.to_string(unit="hourangle", sep=":", precision=4)
    dec_s = coords.dec.to_string(sep=":", precision=3, alwayssign=True)
    ra_h = coords.ra.to_string(unit="hourangle", sep="hms", precision=4)
    rows = [
        f"star{i} {a} {d} {m:.3f}"
        for i, (a, d, m) in enumerate(zip(ra_s, dec_s, mags, strict=True))
    ]
    cat = read_catalog(("NAME RA DEC MAG\n" + "\n".join(rows)).encode())
    np.testing.assert_allclose(cat.ra, ra, atol=1e-5)
    np.testing.assert_allclose(cat.dec, dec, atol=1e-5)
    assert not cat.has_errors and np.isnan(cat.mag_err).all()
    rows = [f"{a},{d},{m:.3f}" for a, d, m in zip(ra_h, dec_s, mags, strict=True)]
    cat = read_catalog(("ra,dec,mag\n" + "\n".join(rows)).encode())
    np.testing.assert_allclose(cat.ra, ra, atol=1e-5)


def test_fits_table_with_plain_names_and_string_positions():
    table = Table({"ra": ["10:00:00", "10:00:01"], "Dec": ["-05:00:00", "-05:00:10"],
                   "mag": [15.0, 16.0], "e_mag": [0.01, 0.02]})  # fmt: skip
    buf = io.BytesIO()
    table.write(buf, format="fits")
    cat = read_catalog(buf.getvalue())
    np.testing.assert_allclose(cat.ra, [150.0, 150.0 + 15 / 3600])
    np.testing.assert_allclose(cat.dec, [-5.0, -5.0 - 10 / 3600])
    assert cat.columns["mag_err"] == "E_MAG"


def test_check_columns_on_the_head_of_an_upload():
    good = simulate_field(1, n_stars=200).ascii_head()
    check_columns(good[:4096])  # no error
    check_columns(b"ra dec mag\n1 2 3\n")
    check_columns(b"SIMPLE  =                    T")  # FITS is left to the worker
    check_columns(b"# just a comment\n")  # header not reached yet: the worker decides
    with pytest.raises(CatalogError) as excinfo:
        check_columns(b"#   1 NUMBER\n#   2 X_IMAGE\n#   3 Y_IMAGE\n1 2 3\n4 5 6")
    message = str(excinfo.value)
    assert "columns found: NUMBER, X_IMAGE, Y_IMAGE" in message
    assert "ALPHA_J2000" in message and "MAG_AUTO" in message
    with pytest.raises(CatalogError, match="no magnitude column"):
        check_columns(b"RA,DEC,FLUX\n1,2,3\n")


def test_comment_lines_do_not_cost_memory():
    """48 MB of comment lines before (and inside) a small table: parsed in bounded memory."""
    import tracemalloc

    comments = b"#\n" * (24 << 20)
    data = comments + b"RA DEC MAG\n" + b"10 20 15\n# note\n11 21 16\n"
    tracemalloc.start()
    cat = read_catalog(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(cat) == 2
    assert peak < 4 * len(data)  # a list of 24M line strings would take > 1 GB
    with pytest.raises(CatalogError, match="no sources"):
        read_catalog(comments)
