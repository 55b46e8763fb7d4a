"""tom_calserv in a real TOM Toolkit project (Django, SQLite) against the live calserv (gunicorn and
a Celery worker): a TOM user's frame becomes the target's photometry, with calserv's job URL.

TOM Toolkit 3 pins numpy < 2.2 and astropy < 8, calserv's own stack is newer: the TOM runs from
its own environment, `.venv-tom` (`make tom-venv`: tomtoolkit and its closure, pinned in
tom_calserv/requirements-test.txt), as a TOM is deployed apart from calserv. The plugin under test
is this repository's tom_calserv/, put on the TOM's path.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import Alert
from db.session import session_scope
from tests.helpers import DATA, ROOT, add_alert
from tests.synth_image import synth_frame

TOM_PYTHON = os.environ.get("CALSERV_TOM_PYTHON", str(ROOT / ".venv-tom" / "bin" / "python"))
TOM_DIR = ROOT / "tests" / "tom"
FRAME = DATA / "gaia-demo" / "frame.cat"
TRUTH = json.loads((DATA / "gaia-demo" / "truth.json").read_text())
IMAGE_MJD = 61000.25

pytestmark = pytest.mark.skipif(
    not os.path.exists(TOM_PYTHON), reason=f"no TOM environment at {TOM_PYTHON}: make tom-venv"
)


def job(url: str) -> dict:
    with urllib.request.urlopen(f"{url}?outputFormat=json") as r:
        return json.load(r)


@pytest.fixture(scope="module")
def tom_run(app, live_server, observatory, tmp_path_factory) -> dict:
    """One TOM session: three targets of one user, one of a user with a wrong key."""
    tag = secrets.token_hex(3)
    known = f"TomKnown{tag}"  # calserv knows it by name, a little off the TOM's position
    add_alert(app, f"ivo://tom-test/{known}", known, 120.004, 44.997)
    add_alert(app, f"ivo://tom-test/pos{tag}", f"TomPos{tag}", 120.0, 45.0)  # by position
    plan = {
        "frame": str(FRAME),
        "users": {"observer": observatory["hashtag"], "stranger": "not-a-calserv-key-" + tag},
        "targets": [
            # at the demo frame's target (G = 9.50): calserv knows an alert there by position
            {"user": "observer", "name": f"AT 2026tom{tag}", "ra": 120.0, "dec": 45.0,
             "mjd": TRUTH["mjd"]},
            # by name (an alias), though the TOM's position differs by 3 arcsec
            {"user": "observer", "name": f"Tom target {tag}", "aliases": [known],
             "ra": 120.004, "dec": 44.99783, "mjd": TRUTH["mjd"] + 0.01},
            # unknown to calserv: created there with /newevent
            {"user": "observer", "name": f"TomNew{tag}", "ra": 120.02, "dec": 45.02,
             "mjd": TRUTH["mjd"] + 0.02},
            {"user": "stranger", "name": f"TomStranger{tag}", "ra": 120.0, "dec": 45.0,
             "mjd": TRUTH["mjd"]},
        ],
    }  # fmt: skip
    work = tmp_path_factory.mktemp("tom")
    image, truth = synth_frame((-30, 60), 16.0, seed=5)  # a FITS image; its MJD in the header
    image.header["MJD-OBS"] = IMAGE_MJD
    (work / "image.fits").write_bytes(image.to_fits())
    plan["targets"].append(
        {"user": "observer", "name": f"TomImage{tag}", "ra": truth.target_ra,
         "dec": truth.target_dec, "frame": str(work / "image.fits"), "mjd": None}
    )  # fmt: skip
    (work / "plan.json").write_text(json.dumps(plan))
    env = {
        **os.environ,
        "TOM_TEST_DIR": str(work),
        "CALSERV_URL": live_server,
        "PYTHONPATH": os.pathsep.join([str(TOM_DIR / "tomproject"), str(ROOT / "tom_calserv")]),
    }
    for name in ("VIRTUAL_ENV", "PYTHONHOME", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    done = subprocess.run(
        [TOM_PYTHON, str(TOM_DIR / "tom_scenario.py"), str(work / "plan.json")],
        cwd=TOM_DIR / "tomproject",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return {"plan": plan, "tag": tag, "known": known, **json.loads(done.stdout.splitlines()[-1])}


def test_a_frame_becomes_the_targets_photometry(tom_run, live_server):
    got = tom_run["targets"][f"AT 2026tom{tom_run['tag']}"]
    assert got["status"] == "succeeded", got["error"]
    d = got["datum"]
    calserv = job(got["job_url"])  # the job the TOM points at says the same
    assert d["source_name"] == "calserv" and d["source_location"] == got["job_url"]
    assert got["job_url"].startswith(live_server) and got["page_shows_job"]
    assert d["brightness"] == calserv["mag"] and d["brightness_error"] == calserv["mag_err"]
    assert abs(d["brightness"] - TRUTH["target_mag"]) < 0.05 and d["bandpass"] == "G"
    assert d["limit"] is None and d["unit"] == "mag" and d["exposure_time"] == 60
    assert d["value"]["job_url"] == got["job_url"] and d["value"]["limit"] is False
    assert d["value"]["filter"] == "G" and d["value"]["magnitude"] == calserv["mag"]
    assert d["value"]["error"] == calserv["mag_err"] and d["data_product"]
    when = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=TRUTH["mjd"])
    assert abs(datetime.fromisoformat(d["timestamp"]) - when) < timedelta(milliseconds=1)
    assert calserv["mjd"] == TRUTH["mjd"] and calserv["observatory"] == d["telescope"]


def test_targets_meet_calserv_alerts_by_name_or_position(tom_run):
    tag = tom_run["tag"]
    by_position = tom_run["targets"][f"AT 2026tom{tag}"]
    by_name = tom_run["targets"][f"Tom target {tag}"]
    assert by_name["status"] == "succeeded" and by_name["alert"] == tom_run["known"]
    with session_scope() as s:  # neither made a new alert on calserv
        names = set(s.scalars(select(Alert.name).where(Alert.name.contains(tag))))
    assert f"AT 2026tom{tag}" not in names and f"Tom target {tag}" not in names
    with session_scope() as s:  # the alert it met is at the target's position (120, 45)
        met = s.scalars(select(Alert).where(Alert.name == by_position["alert"])).one()
        assert abs(met.ra - 120.0) * 3600 < 5 and abs(met.dec - 45.0) * 3600 < 5


def test_a_target_calserv_lacks_is_created_with_newevent(tom_run):
    got = tom_run["targets"][f"TomNew{tom_run['tag']}"]
    assert got["status"] == "succeeded", got["error"]
    with session_scope() as s:
        alert = s.scalars(select(Alert).where(Alert.name == f"TomNew{tom_run['tag']}")).one()
        assert alert.ivorn.startswith("ivo://tom-calserv/calserv-test-TOM/")
        assert (alert.ra, alert.dec) == (120.02, 45.02)
    d = got["datum"]
    calserv = job(got["job_url"])
    if calserv["limit"]:  # nothing there in the frame: an upper limit, stored as one
        assert d["limit"] == calserv["mag"] and d["brightness"] is None
    else:
        assert d["brightness"] == calserv["mag"] and d["limit"] is None
    assert d["value"]["limit"] is calserv["limit"]


def test_a_wrong_key_is_a_clear_failure_and_keys_are_encrypted(tom_run):
    got = tom_run["targets"][f"TomStranger{tom_run['tag']}"]
    assert got["status"] == "failed" and got["datum"] is None
    assert "hashtag" in got["error"].lower() or "key" in got["error"].lower(), got["error"]
    assert tom_run["keys_stored"] == 2 and not tom_run["key_in_clear"]


def test_a_fits_image_is_calibrated_at_its_header_date(tom_run):
    got = tom_run["targets"][f"TomImage{tom_run['tag']}"]
    assert got["status"] == "succeeded", got["error"]
    d = got["datum"]
    calserv = job(got["job_url"])
    assert calserv["mjd"] == IMAGE_MJD and d["bandpass"] == "R" and d["limit"] is None
    assert abs(d["brightness"] - 16.0) <= 2 * d["brightness_error"]  # rendered at R = 16.0
    when = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=IMAGE_MJD)
    assert abs(datetime.fromisoformat(d["timestamp"]) - when) < timedelta(milliseconds=1)
