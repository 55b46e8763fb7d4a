"""The light curve across observatories: offsets between their systems, outliers, and the
aligned light curve only when asked for."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from tests.web.conftest import make_alert, make_observatory, make_point

OFFSETS = (0.0, 0.15, -0.1)


@pytest.fixture(scope="module")
def curve(app):
    with app.app_context():
        sites = [make_observatory()[0] for _ in OFFSETS]
        alert = make_alert()
        rng = np.random.default_rng(5)
        bad = None
        for night in range(12):
            for site, off in zip(sites, OFFSETS, strict=True):
                mjd = 60100.0 + night + rng.uniform(0, 0.2)
                mag = 15.0 + 0.05 * night + off + rng.normal(0, 0.01)
                if night == 6 and site == sites[2]:
                    mag += 0.8  # a bad point
                point = make_point(alert, site, mjd, mag, mag_err=0.01, filt="R")
                if night == 6 and site == sites[2]:
                    bad = point
        make_point(alert, sites[0], 60120.0, 19.0, limit=True, filt="R")
    return {"alert": alert, "sites": sites, "bad": bad}


def test_offsets_and_outliers_in_the_light_curve_json(client, curve):
    data = client.get(f"/alerts/{curve['alert']}/lightcurve?format=json").get_json()
    assert data["aligned"] is False
    pairs = {(o["observatory_a"], o["observatory_b"]): o for o in data["offsets"]}
    for (x, y), o in pairs.items():
        truth = OFFSETS[curve["sites"].index(x)] - OFFSETS[curve["sites"].index(y)]
        assert o["offset"] == pytest.approx(truth, abs=0.02) and o["filter"] == "R"
        assert o["n_pairs"] >= 10
    assert len(pairs) == 3
    flagged = [r["followup_id"] for r in data["items"] if r["outlier"]]
    assert flagged == [curve["bad"]]
    assert all(r["outlier"] is False for r in data["items"] if r["limit"])
    reference = {s["reference"] for s in data["alignment"]}
    assert len(reference) == 1


def test_aligned_light_curve_applies_the_offsets_only_when_asked(client, curve):
    raw = client.get(f"/alerts/{curve['alert']}/lightcurve?format=json").get_json()
    aligned = client.get(f"/alerts/{curve['alert']}/lightcurve?format=json&aligned=1").get_json()
    assert aligned["aligned"] is True and "offset_applied" in aligned["columns"]
    shift = {s["observatory"]: s["offset"] for s in aligned["alignment"]}
    for r, q in zip(raw["items"], aligned["items"], strict=True):
        assert q["mag"] == pytest.approx(r["mag"] - shift[r["observatory"]])
        assert q["offset_applied"] == pytest.approx(shift[r["observatory"]])
        if not r["limit"]:
            assert q["magerr"] >= r["magerr"]

    def night_spread(items):
        good = [r for r in items if not r["limit"] and not r["outlier"]]
        nights = {}
        for r in good:
            nights.setdefault(round(r["mjd"]), []).append(r["mag"])
        return np.mean([np.ptp(v) for v in nights.values() if len(v) > 1])

    assert night_spread(aligned["items"]) < 0.3 * night_spread(raw["items"])
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/alerts/{curve['alert']}/lightcurve?format=csv&aligned=1").get_data(as_text=True)
    )))  # fmt: skip
    assert float(rows[0]["mag"]) == pytest.approx(aligned["items"][0]["mag"], abs=1e-6)


def test_the_alert_page_shows_offsets_and_outliers(client, curve):
    page = client.get(f"/alerts/{curve['alert']}", headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert 'id="offsets"' in html and "outlier" in html
    data = client.get(f"/alerts/{curve['alert']}?format=json").get_json()
    assert len(data["offsets"]) == 3
    assert sum(r["outlier"] for r in data["lightcurve"]) == 1
