import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from calib import CatalogError, read_catalog
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
        (b"1 2 3\n4 5 6\n", "no SExtractor header"),
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
