"""Property-based bad input: whatever bytes or form fields arrive, calserv answers with a 4xx
and a JSON error, or a job that fails with a reason — never a 500, never an unhandled exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calib import CatalogError, read_catalog
from tests.helpers import DATA, add_alert

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()
HEADER = b"".join(line + b"\n" for line in FRAME.splitlines() if line.startswith(b"#"))
COLUMN_NAMES = ["ALPHA_J2000", "DELTA_J2000", "MAG_AUTO", "MAGERR_AUTO", "FLAGS", "X", "MAG"]


def parses_or_refuses(data: bytes) -> None:
    try:
        cat = read_catalog(data)
    except CatalogError as e:
        assert str(e)  # a reason the user can act on
    else:
        assert len(cat.ra) == len(cat.dec) == len(cat.mag)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    parses_or_refuses(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_valid_header_then_junk(body):
    parses_or_refuses(HEADER + body)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 2000), st.sampled_from(COLUMN_NAMES)), min_size=0, max_size=8
    ),
    st.lists(st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=5)), max_size=8)),
)
def test_scrambled_ascii_headers(columns, rows):
    head = "".join(f"#{n:4d} {name:<22s} description\n" for n, name in columns)
    body = "".join(" ".join(str(v) for v in row) + "\n" for row in rows)
    parses_or_refuses((head + body).encode())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fits_variants(data):
    """Real FITS structures with odd contents: images, empty tables, wrong dtypes, NaNs."""
    kind = data.draw(st.sampled_from(["image", "empty", "strings", "nan", "ok", "truncated"]))
    n = data.draw(st.integers(0, 50))
    if kind == "image":
        hdul = fits.HDUList([fits.PrimaryHDU(np.zeros((8, 8), dtype=np.float32))])
    elif kind == "strings":
        cols = [fits.Column(name=c, format="10A", array=np.array(["x"] * n)) for c in COLUMN_NAMES]
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)])
    else:
        value = np.nan if kind == "nan" else 1.0
        rows = 0 if kind == "empty" else n
        cols = [
            fits.Column(name=c, format="D", array=np.full(rows, value)) for c in COLUMN_NAMES[:4]
        ]
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)])
    buf = io.BytesIO()
    hdul.writeto(buf)
    raw = buf.getvalue()
    if kind == "truncated":
        raw = raw[: data.draw(st.integers(1, len(raw) - 1))]
    parses_or_refuses(raw)


def test_compressed_image_hdu_is_refused():
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.zeros((64, 64), np.float32))])
    buf = io.BytesIO()
    hdul.writeto(buf)
    with pytest.raises(CatalogError):
        read_catalog(buf.getvalue())


def test_huge_column_count_is_refused():
    head = "".join(f"#{i:5d} COL{i}  c\n" for i in range(1, 20001)).encode()
    with pytest.raises(CatalogError):
        read_catalog(head + b"1 " * 20000 + b"\n")


FIELD_VALUES = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["0", "1", "-1", "nan", "inf", "1e309", "APASS/V", "any/any", "//", "ivo://"]),
)


@pytest.fixture(scope="module")
def fuzz_alert(app):
    add_alert(app, "ivo://fuzz/1", "FuzzAlert", 120.0, 45.0)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.fixed_dictionaries(
        {
            k: FIELD_VALUES
            for k in ("matchDist", "MJD", "expTime", "dryRun", "noPlot", "forceFilter", "comment")
        }
    ),
    event=st.one_of(st.just("ivo://fuzz/1"), st.text(max_size=40)),
    catalogue=st.one_of(st.just(FRAME), st.binary(max_size=256)),
)
def test_upload_form_fuzz(client, observatory, fuzz_alert, fields, event, catalogue):
    form = {k: v for k, v in fields.items() if v is not None}
    form.update(
        hashtag=observatory["hashtag"],
        EventID=event,
        outputFormat="json",
        sexCat=(io.BytesIO(catalogue), "c.cat"),
    )
    resp = client.post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code in (200, 202) or 400 <= resp.status_code < 500, resp.status_code
    body = resp.get_json()
    if resp.status_code >= 400:
        assert set(body) == {"error", "detail"} and body["error"]
    else:
        assert body["job_id"]
