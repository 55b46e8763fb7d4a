"""Alert feeds from a local HTTP server serving recorded copies of the Gaia alerts list and a TNS
export: synced without duplicates, updated, observed alerts never deleted, failures as warnings
in /healthz and /metrics."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from astropy.coordinates import SkyCoord
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, func, select

from config import Settings
from db.models import Alert, AlertFeed, Job, JobState, Observatory, Upload
from db.session import session_scope
from feeds.sync import sync_feed
from tests.helpers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "feeds"
GAIA = (DATA / "gaia-alerts.csv").read_text()
TNS = (DATA / "tns-export.csv").read_text()
GAIA_NAMES = [line.split(",")[0] for line in GAIA.splitlines()[1:]]
HEADER = GAIA.splitlines()[0] + "\n"


class FeedServer:
    """Serves `files` (path → text) over HTTP; `/slow/...` answers after `delay` seconds."""

    def __init__(self):
        self.files: dict[str, str] = {}
        self.delay = 5.0
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path.startswith("/slow/"):
                    time.sleep(server.delay)
                body = server.files.get(self.path.removeprefix("/slow"))
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, text: str) -> str:
        """A new path serving `text`: its URL (each test's feeds are its own)."""
        path = f"/{secrets.token_hex(4)}/alerts.csv"
        self.files[path] = text
        return self.url + path


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    s = FeedServer()
    yield s
    s.httpd.shutdown()


@pytest.fixture()
def fresh(database):
    """The recorded alerts are not in the database yet (another test may have synced them)."""

    def clear() -> None:
        with session_scope() as s:
            tns = ["2025rxz", "2025rwd", "2025ryc", "2025ryf", "2025ryk"]
            s.execute(delete(AlertFeed))
            s.execute(
                delete(Alert).where(
                    (Alert.name.in_(GAIA_NAMES) | Alert.tns_name.in_(tns))
                    & ~select(Job.id).where(Job.alert_id == Alert.id).exists()
                )
            )

    clear()
    yield
    clear()


def alerts_named(*names: str) -> dict[str, Alert]:
    with session_scope() as s:
        rows = s.scalars(select(Alert).where(Alert.name.in_(names))).all()
        s.expunge_all()
    return {a.name: a for a in rows}


def count_named(names) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).where(Alert.name.in_(list(names))))


def test_the_gaia_list_is_synced_once_and_updated(server, fresh):
    url = server.serve(GAIA)
    report = sync_feed(url, timeout_s=10)
    assert (report.read, report.added, report.updated) == (7, 7, 0)
    assert report.rejected == ["line 7: RaDeg '12:34:56.7' is not a number"]
    got = alerts_named(*GAIA_NAMES)
    assert set(got) == set(GAIA_NAMES) - {"Gaia25dpw"}  # the malformed row only
    a = got["Gaia25dqb"]
    assert (a.ra, a.dec, a.alert_mag, a.tns_name) == (284.31866, -2.84101, 17.62, "2025rxz")
    assert a.ivorn == "ivo://gaia-alerts/Gaia25dqb" and a.feed == url
    assert a.comment == "Candidate microlensing event in the Galactic plane, 1.8 mag rise"
    assert got["Gaia25dpy"].comment.endswith('2.1" offset')
    assert a.url == "https://gsaweb.ast.cam.ac.uk/alerts/alert/Gaia25dqb"

    again = sync_feed(url, timeout_s=10)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 7)
    assert count_named(GAIA_NAMES) == 7

    newer = (
        GAIA.replace(
            "Gaia25dqb,2025-08-19 02:11:37,284.31866,-2.84101,17.62",
            ("Gaia25dqb,2025-08-19 02:11:37,284.31866,-2.84101,16.80"),
        )
        + "Gaia25dqc,2025-08-20 04:00:00,101.5,-20.25,18.0,,,unknown,2025-08-21 09:00:00,,\n"
    )
    server.files[url.removeprefix(server.url)] = newer
    third = sync_feed(url, timeout_s=10)
    assert (third.added, third.updated, third.unchanged) == (1, 1, 6)
    assert alerts_named("Gaia25dqb")["Gaia25dqb"].alert_mag == 16.80
    assert count_named([*GAIA_NAMES, "Gaia25dqc"]) == 8  # never twice
    with session_scope() as s:
        status = s.get(AlertFeed, url)
        assert (status.kind, status.alerts, status.rejected_count, status.failures) == (
            "gaia", 8, 1, 0,
        )  # fmt: skip
        assert status.last_error is None and status.last_success_at is not None


def test_a_tns_export_meets_the_gaia_alerts(server, fresh):
    gaia_url, tns_url = server.serve(GAIA), server.serve(TNS)
    sync_feed(gaia_url, timeout_s=10)
    report = sync_feed(tns_url, timeout_s=10)
    # AT 2025rxz is Gaia25dqb (TNS name and discovery name), SN 2025rwd is Gaia25dpy
    assert (report.read, report.added, report.rejected) == (5, 3, [])
    got = alerts_named("Gaia25dqb", "Gaia25dpy", "AT 2025ryc", "SN 2025ryf", "AT 2025ryk")
    assert len(got) == 5 and count_named(["AT 2025rxz", "SN 2025rwd"]) == 0
    assert got["Gaia25dpy"].tns_name == "2025rwd" and got["Gaia25dpy"].feed == gaia_url
    assert got["Gaia25dpy"].classification == "SN"  # the feed that keeps it decides
    assert got["Gaia25dpy"].ra == 150.22671  # a second feed never moves an alert
    ryf = got["SN 2025ryf"]
    expected = SkyCoord("14:21:36.118 -07:14:02.90", unit=("hourangle", "deg"))
    assert abs(ryf.ra - expected.ra.deg) < 1e-9 and abs(ryf.dec - expected.dec.deg) < 1e-9
    assert (ryf.tns_name, ryf.classification, ryf.alert_mag) == ("2025ryf", "SN II", 17.48)
    assert ryf.ivorn == "ivo://tns/2025ryf" and ryf.url == "https://www.wis-tns.org/object/2025ryf"
    assert ryf.comment == 'Spectrum shows broad H-alpha, "young" SN II'
    assert sync_feed(tns_url, timeout_s=10).added == 0
    assert sync_feed(gaia_url, timeout_s=10).added == 0


def test_the_cli_reads_a_tns_export_too(runner, tmp_path, fresh):
    f = tmp_path / "tns.csv"
    f.write_text(TNS)
    result = runner.invoke(args=["alert", "import-csv", str(f)])
    assert result.exit_code == 0, result.output
    assert "5 alerts read: 5 added, 0 updated, 0 unchanged" in result.output
    assert alerts_named("AT 2025ryk")["AT 2025ryk"].feed is None  # an operator's, kept by hand


def observe(alert: str) -> None:
    """A job naming the alert, as an upload leaves one."""
    with session_scope() as s:
        a = s.scalars(select(Alert).where(Alert.name == alert)).one()
        obs = Observatory(
            name=f"Feed obs {secrets.token_hex(3)}", lon=0, lat=0, key_prefix="x", key_salt="x",
            key_hash="x",
        )  # fmt: skip
        sha = hashlib.sha256(secrets.token_bytes(8)).hexdigest()
        up = Upload(sha256=sha, size=1, path=f"uploads/{sha}.cat")
        s.add_all([obs, up])
        s.flush()
        s.add(
            Job(
                idempotency_key=sha, observatory_id=obs.id, alert_id=a.id, upload_id=up.id,
                params={}, state=JobState.failed,
            )
        )  # fmt: skip


def small_feed(tag: str, n: int) -> str:
    return HEADER + "".join(
        f"Gaia{tag}{i:02d},2025-01-01 00:00:00,{10 + i},{-5 - i},18.0,,,unknown,,,\n"
        for i in range(n)
    )


def test_alerts_leaving_the_feed_go_unless_observed(server, fresh):
    tag = secrets.token_hex(3)
    url = server.serve(small_feed(tag, 30))
    assert sync_feed(url, timeout_s=10).added == 30
    observe(f"Gaia{tag}01")
    # the list loses two alerts; one has been observed
    kept = small_feed(tag, 30).replace(f"Gaia{tag}01,", "#").replace(f"Gaia{tag}02,", "#")
    server.files[url.removeprefix(server.url)] = kept
    report = sync_feed(url, timeout_s=10)
    assert (report.removed, report.kept) == (1, 1)
    assert set(alerts_named(f"Gaia{tag}01", f"Gaia{tag}02")) == {f"Gaia{tag}01"}
    # a truncated read (a third of the list, the removed alert back in it) deletes nothing
    server.files[url.removeprefix(server.url)] = small_feed(tag, 10)
    report = sync_feed(url, timeout_s=10)
    assert (report.added, report.removed, report.kept) == (1, 0, 20)
    assert count_named([f"Gaia{tag}{i:02d}" for i in range(30)]) == 30
    # nor does a read that rejected a row
    server.files[url.removeprefix(server.url)] = (
        small_feed(tag, 29) + "GaiaBad,2025-01-01,abc,2,,,,,,,\n"
    )
    assert sync_feed(url, timeout_s=10).removed == 0


def test_a_failing_feed_is_a_warning_and_a_metric_never_an_error(server, client, fresh):
    good = server.serve(GAIA)
    slow = server.url + "/slow" + good.removeprefix(server.url)
    started = time.monotonic()
    assert sync_feed(slow, timeout_s=1.0) is None
    assert time.monotonic() - started < 4  # the server waits 5 s; the timeout is 1 s
    assert sync_feed(server.url + "/nothing-here.csv", timeout_s=5) is None
    html = server.serve("<html><body>maintenance</body></html>\n")
    assert sync_feed(html, timeout_s=5) is None

    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    warnings = health.get_json()["warnings"]
    assert any(slow in w and "timed out" in w for w in warnings), warnings
    assert any("nothing-here.csv" in w and "HTTP 404" in w for w in warnings), warnings
    assert any(html in w and "header names neither" in w for w in warnings), warnings

    metrics = {f.name: f.samples for f in text_string_to_metric_families(client.get("/metrics")
               .get_data(as_text=True))}  # fmt: skip
    up = {s.labels["feed"]: s.value for s in metrics["calserv_alert_feed_up"]}
    assert up[slow] == 0 and up[html] == 0
    failures = {s.labels["feed"]: s.value for s in metrics["calserv_alert_feed_failures"]}
    assert failures[slow] == 1

    server.delay = 0.0  # the feed recovers: its warning goes, the malformed row's stays
    assert sync_feed(slow, timeout_s=5).added == 7
    warnings = client.get("/healthz").get_json()["warnings"]
    assert not any(slow in w and "timed out" in w for w in warnings)
    assert any(slow in w and "1 rows not read (line 7: RaDeg" in w for w in warnings)
    server.delay = 5.0


def test_the_beat_task_syncs_every_configured_feed(server, fresh, monkeypatch):
    from workers import tasks

    gaia, tns = server.serve(GAIA), server.serve(TNS)
    settings = Settings(alert_feed_url=f"{gaia} {tns}", alert_feed_timeout=10)
    monkeypatch.setattr(tasks, "settings", lambda: settings)
    out = tasks.sync_alert_feeds.run()
    assert out == {gaia: "7 added, 0 updated", tns: "3 added, 0 updated"}


def test_the_beat_schedule_has_the_task_only_when_configured():
    code = "import celeryconfig; print(sorted(celeryconfig.beat_schedule))"
    env = {k: v for k, v in os.environ.items() if k != "CALSERV_ALERT_FEED_URL"}
    feed = {"CALSERV_ALERT_FEED_URL": "https://gsaweb.ast.cam.ac.uk/alerts/alerts.csv"}
    for extra, expected in (({}, False), (feed, True)):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert ("sync-alert-feeds" in out) is expected
    with pytest.raises(ValueError, match="not an http"):
        Settings(alert_feed_url="ftp://example.org/alerts.csv")


def test_celery_beat_and_a_worker_keep_the_alerts_in_sync(server, fresh, tmp_path):
    """The real thing: `celery beat` schedules the task from CALSERV_ALERT_FEED_URL and a worker
    runs it (on a queue of their own, so the session's worker stays out of it)."""
    url = server.serve(GAIA)
    env = {
        "CALSERV_ALERT_FEED_URL": url,
        "CALSERV_ALERT_FEED_INTERVAL": "2",
        "CALSERV_QUEUE": f"feeds-{secrets.token_hex(3)}",
        "CALSERV_VAR_DIR": str(tmp_path),  # beat's schedule file
    }
    (tmp_path / "run").mkdir()
    worker = WorkerProcess("feeds", env=env)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat", "--loglevel=INFO"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while count_named(GAIA_NAMES) < 7 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert count_named(GAIA_NAMES) == 7
        server.files[url.removeprefix(server.url)] = GAIA.replace("17.62", "16.10")
        while time.monotonic() < deadline:  # the next run takes the change
            if alerts_named("Gaia25dqb")["Gaia25dqb"].alert_mag == 16.10:
                break
            time.sleep(0.5)
        assert alerts_named("Gaia25dqb")["Gaia25dqb"].alert_mag == 16.10
        assert count_named(GAIA_NAMES) == 7  # never twice, however many runs
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        worker.stop()
