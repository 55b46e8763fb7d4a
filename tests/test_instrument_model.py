"""An observatory's frames build its instrument model through the real worker, and a frame that
departs from that history (clouds, poor seeing) is checked and flagged in its result."""

from __future__ import annotations

import secrets
import time

import numpy as np
import pytest

from db import instrument as store
from db.models import Observatory
from db.session import session_scope
from tests.helpers import DATA, add_alert, wait_job

SYNTH = DATA / "synth-deep"
ZP_TRUE, COLOUR_TERM = 25.3, 0.07  # tests/data/synth-deep/truth.json
MAG_COLUMNS, FWHM_COLUMN = (5, 7), 11  # MAG_AUTO, MAG_APER, FWHM_IMAGE (0-based)


def frame(dmag: float, fwhm_scale: float = 1.0, seed: int = 0, stars: int | None = None) -> bytes:
    """The synth-deep catalogue made fainter by `dmag` (a lower zero point: clouds), its FWHM
    scaled, and a millimagnitude of noise so that each frame is new; `stars`: only that many
    unflagged stars of R 13.5-16 and the sources near the alert (a frame with few calibrators)."""
    rng = np.random.default_rng(seed)
    out = []
    kept = 0
    for line in (SYNTH / "frame.cat").read_text().splitlines():
        if line.startswith("#"):
            out.append(line)
            continue
        cells = line.split()
        if stars is not None:
            near = abs(float(cells[3]) - 150.1) < 0.003 and abs(float(cells[4]) - 2.2) < 0.003
            usable = cells[12] == "0" and -11.8 < float(cells[5]) < -9.3
            if not near and not (usable and kept < stars):
                continue
            kept += not near
        noise = rng.normal(0, 0.002)
        for c in MAG_COLUMNS:
            cells[c] = f"{float(cells[c]) + dmag + noise:.4f}"
        cells[FWHM_COLUMN] = f"{float(cells[FWHM_COLUMN]) * fwhm_scale:.2f}"
        out.append(" ".join(cells))
    return ("\n".join(out) + "\n").encode()


@pytest.fixture(scope="module")
def site(app):
    name = f"Instrument Site {secrets.token_hex(3)}"
    result = app.test_cli_runner().invoke(
        args=["observatory", "add", name, "--lon", "-17.9", "--lat", "28.8", "--filters", "R"]
    )
    assert result.exit_code == 0, result.output
    add_alert(app, "ivo://instrument/synth", "InstrumentSynth", 150.1, 2.2)
    with session_scope() as s:
        obs_id = s.query(Observatory.id).filter(Observatory.name == name).scalar()
    return {"name": name, "id": obs_id, "hashtag": result.output.strip().splitlines()[-1]}


def model_of(site, n_frames: int, timeout: float = 20.0) -> dict:
    """The site's R model once it has `n_frames`: the worker rebuilds it just after the job's
    end is committed, so a client can see the job end a moment before."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as s:
            model = next((m for m in store.models(s, site["id"]) if m["filter"] == "R"), None)
        if (model and model["n_frames"] == n_frames) or time.monotonic() > deadline:
            return model
        time.sleep(0.1)


def send(client, site, data: bytes, mjd: float, **fields) -> dict:
    import io

    form = {
        "EventID": "InstrumentSynth",
        "hashtag": site["hashtag"],
        "MJD": str(mjd),
        "expTime": "60",
        "noPlot": "1",
        "forceFilter": "SYNTH/R",
        "matchDist": "0",
        "outputFormat": "json",
        "sexCat": (io.BytesIO(data), "frame.cat"),
        **fields,
    }
    resp = client.post("/upload", data=form, content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_data(as_text=True)
    result = wait_job(client, resp.get_json()["job_id"])
    assert result["status"] == "succeeded", result
    return result


def test_history_builds_the_model_and_checks_new_frames(client, worker, site):
    results = []
    for i in range(5):
        r = send(client, site, frame(0.01 * (i % 3 - 1), seed=i), 61000.1 + i)
        results.append(r)
        assert "instrument_checks" not in r or r["instrument_checks"] is None  # young model
    assert results[0]["fwhm"] == pytest.approx(2.9 * 0.6, rel=0.1)  # FWHM_IMAGE x 0.6"/px
    assert results[0]["colour_term_err"] > 0
    model = model_of(site, 5)
    assert model["n_frames"] == 5
    assert model["zeropoint_median"] == pytest.approx(ZP_TRUE, abs=0.03)
    assert model["colour_term"] == pytest.approx(COLOUR_TERM, abs=0.03)
    assert model["fwhm_median"] == pytest.approx(results[0]["fwhm"], rel=0.05)
    assert model["last_mjd"] == pytest.approx(61004.1)

    good = send(client, site, frame(0.0, seed=10), 61005.1)
    checks = good["instrument_checks"]
    assert checks["flags"] == [] and abs(checks["zeropoint_offset"]) < 0.03
    assert checks["fwhm_ratio"] == pytest.approx(1.0, abs=0.05)

    cloudy = send(client, site, frame(0.6, 1.6, seed=11), 61006.1)
    flags = cloudy["instrument_checks"]["flags"]
    assert {"zeropoint_low", "seeing_poor"} <= set(flags), cloudy["instrument_checks"]
    assert cloudy["instrument_checks"]["zeropoint_offset"] == pytest.approx(-0.6, abs=0.05)
    assert any("clouds" in w for w in cloudy["warnings"])
    assert any("FWHM" in w for w in cloudy["warnings"])

    # A dry run is checked too, but is no frame of the history.
    dry = send(client, site, frame(0.0, seed=12), 61007.1, dryRun="1")
    assert dry["instrument_checks"]["flags"] == []
    assert model_of(site, 7)["n_frames"] == 7


def test_a_frame_with_few_stars_takes_its_colour_term_from_history(client, worker, site):
    model_of(site, 7)
    few = send(client, site, frame(0.0, seed=30, stars=8), 61008.1)
    assert few["npoints"] < 10
    assert any("history gives" in line for line in few["log"]), few["log"]
    with session_scope() as s:
        model = next(m for m in store.models(s, site["id"]) if m["filter"] == "R")
    assert few["colour_term"] == pytest.approx(model["colour_term"], abs=1e-9)
    assert few["mag"] == pytest.approx(16.0, abs=0.05)  # synth-deep's alert


def test_a_withdrawn_frame_leaves_the_model_at_the_next_rebuild(client, worker, site):
    from workers.instrument import rebuild

    r = send(client, site, frame(0.02, seed=20), 61010.1)
    before = model_of(site, 9)["n_frames"]
    assert before == 9
    resp = client.delete(
        f"/followup/{r['followup_id']}", headers={"Authorization": f"Token {site['hashtag']}"}
    )
    assert resp.status_code == 204
    with session_scope() as s:
        assert rebuild(s, site["id"], "R").n_frames == before - 1


def test_observatory_pages_show_the_model_and_history_never_the_key(client, worker, site):
    listing = client.get("/observatories?format=json&per_page=500").get_json()
    mine = next(o for o in listing["items"] if o["name"] == site["name"])
    assert mine["npoints"] >= 7 and mine["filters"] == ["R"]
    key = mine["key"]
    assert key == f"{site['id']}-{site['name'].lower().replace(' ', '-')}"  # spaces: <id>-<slug>
    assert mine["url_page"].endswith(f"/observatories/{key}")

    page = client.get(f"/observatories/{key}?format=json")
    assert page.status_code == 200
    data = page.get_json()
    assert {"name", "lon", "lat", "filters", "instrument", "frames"} <= set(data)
    model = data["instrument"]["R"]
    for k in ("colour_term", "colour_term_err", "zeropoint_median", "zeropoint_scatter",
              "depth_median", "fwhm_median", "n_frames", "last_date_obs"):  # fmt: skip
        assert k in model
    assert model["zeropoint_median"] == pytest.approx(ZP_TRUE, abs=0.03)
    assert len(data["frames"]) == model["n_frames"]
    assert [f["mjd"] for f in data["frames"]] == sorted(f["mjd"] for f in data["frames"])
    flagged = [f for f in data["frames"] if "zeropoint_low" in f["flags"]]
    assert len(flagged) == 1 and flagged[0]["alert"] == "InstrumentSynth"
    assert flagged[0]["alert_url"].endswith("/alerts/InstrumentSynth")

    html = client.get(f"/observatories/{key}", headers={"Accept": "text/html"})
    assert html.status_code == 200 and b"Instrument model" in html.data
    assert b"observatory-history" in html.data
    plots = client.get(f"/observatories/{key}/history.bokeh.json")
    assert plots.get_json()["root_id"] and "doc" in plots.get_json()
    table = client.get("/observatories?format=csv&per_page=500").get_data(as_text=True)
    assert f"{site['name']},-17.9,28.8,R," in table
    listing_html = client.get("/observatories", headers={"Accept": "text/html"})
    assert site["name"].encode() in listing_html.data
    for body in (page.data, html.data, plots.data, listing_html.data):
        assert site["hashtag"].encode() not in body
        assert site["hashtag"][:8].encode() not in body  # not even its prefix

    assert client.get("/observatories/no-such-place?format=json").status_code == 404
    wrong_slug = client.get(f"/observatories/{site['id']}-elsewhere?format=json")
    assert wrong_slug.status_code == 404
