"""An observatory's frames build its instrument model through the real worker, and a frame that
departs from that history (clouds, poor seeing) is checked and flagged in its result."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from db import instrument as store
from db.models import Observatory
from db.session import session_scope
from tests.helpers import DATA, add_alert, wait_job

SYNTH = DATA / "synth-deep"
ZP_TRUE, COLOUR_TERM = 25.3, 0.07  # tests/data/synth-deep/truth.json
MAG_COLUMNS, FWHM_COLUMN = (5, 7), 11  # MAG_AUTO, MAG_APER, FWHM_IMAGE (0-based)


def frame(dmag: float, fwhm_scale: float = 1.0, seed: int = 0) -> bytes:
    """The synth-deep catalogue made fainter by `dmag` (a lower zero point: clouds), its FWHM
    scaled, and a millimagnitude of noise so that each frame is new."""
    rng = np.random.default_rng(seed)
    out = []
    for line in (SYNTH / "frame.cat").read_text().splitlines():
        if line.startswith("#"):
            out.append(line)
            continue
        cells = line.split()
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
    with session_scope() as s:
        model = store.model(s, site["id"], "R")
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
    with session_scope() as s:
        assert store.model(s, site["id"], "R")["n_frames"] == 7


def test_a_withdrawn_frame_leaves_the_model_at_the_next_rebuild(client, worker, site):
    from workers.instrument import rebuild

    r = send(client, site, frame(0.02, seed=20), 61010.1)
    with session_scope() as s:
        before = store.model(s, site["id"], "R")["n_frames"]
    resp = client.delete(
        f"/followup/{r['followup_id']}", headers={"Authorization": f"Token {site['hashtag']}"}
    )
    assert resp.status_code == 204
    with session_scope() as s:
        assert rebuild(s, site["id"], "R").n_frames == before - 1
