"""Fixtures for the browser-facing pages: rows made directly with SQLAlchemy, and a CSRF-on app."""

from __future__ import annotations

import hashlib
import re
import secrets

import pytest

from db.models import Alert, Followup, Job, JobState, Observatory, Upload
from db.session import session_scope
from web import keys


def token() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def csrf_app(database):
    """The app as production runs it: CSRF checks on."""
    from web import create_app

    return create_app(overrides={"TESTING": True, "WTF_CSRF_ENABLED": True})


@pytest.fixture()
def csrf_client(csrf_app):
    return csrf_app.test_client()


def csrf_token_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, hashtag: str) -> None:
    """Log in through the form, as a browser does (works with CSRF on or off)."""
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"hashtag": hashtag, "csrf_token": csrf_token_of(page)})
    assert resp.status_code == 303, resp.get_data(as_text=True)


def make_observatory(name: str | None = None) -> tuple[str, str]:
    """A new observatory: (name, hashtag); inside an app context (the key uses its pepper)."""
    name = name or f"Obs {token()}"
    with session_scope() as s:
        obs = Observatory(name=name, lon=10.0, lat=45.0, filters=["V", "R"])
        key = keys.set_key(obs)
        s.add(obs)
    return name, key


def make_alert(name: str | None = None, **extra) -> str:
    name = name or f"T{token()}"
    with session_scope() as s:
        s.add(Alert(ivorn=f"ivo://test/{name}", name=name, ra=120.0, dec=45.0, **extra))
    return name


def make_point(
    alert: str,
    observatory: str,
    mjd: float,
    mag: float,
    mag_err: float = 0.05,
    limit: bool = False,
    filt: str = "V",
    survey: str = "APASS",
    zeropoint_err: float = 0.02,
    plot: bool = False,
    target_flags: tuple[str, ...] = (),
) -> int:
    """A finished job and its follow-up point, as a worker would leave them; returns its id."""
    with session_scope() as s:
        a = s.query(Alert).filter_by(name=alert).one()
        o = s.query(Observatory).filter_by(name=observatory).one()
        sha = hashlib.sha256(token().encode()).hexdigest()
        key = f"uploads/{sha[:2]}/{sha}.cat"
        up = Upload(sha256=sha, size=10, original_name="frame.cat", path=key)
        s.add(up)
        s.flush()
        job = Job(
            idempotency_key=sha,
            observatory_id=o.id,
            alert_id=a.id,
            upload_id=up.id,
            params={"mjd": mjd, "dry_run": False},
            state=JobState.succeeded,
            result={"mag": mag, "mag_err": -1.0 if limit else mag_err, "limit": limit},
            image_path="plots/never-written.png" if plot else None,
        )
        s.add(job)
        s.flush()
        f = Followup(
            job_id=job.id,
            alert_id=a.id,
            observatory_id=o.id,
            mjd=mjd,
            survey=survey,
            filter=filt,
            mag=mag,
            mag_err=-1.0 if limit else mag_err,
            is_limit=limit,
            limiting_mag=mag if limit else mag + 2,
            zeropoint=22.0,
            zeropoint_err=zeropoint_err,
            npoints=42,
            scatter=0.03,
            target_flags=list(target_flags),
        )
        s.add(f)
        s.flush()
        return f.id


def make_failed_job(alert: str, observatory: str, error: str, file_name: str, **params) -> str:
    """A failed job as a worker leaves one; returns its id."""
    with session_scope() as s:
        a = s.query(Alert).filter_by(name=alert).one()
        o = s.query(Observatory).filter_by(name=observatory).one()
        sha = hashlib.sha256(token().encode()).hexdigest()
        up = Upload(sha256=sha, size=10, original_name=file_name, path=f"uploads/{sha}.cat")
        s.add(up)
        s.flush()
        job = Job(
            idempotency_key=sha,
            observatory_id=o.id,
            alert_id=a.id,
            upload_id=up.id,
            params={"mjd": 61000.5, "dry_run": False, **params},
            state=JobState.failed,
            error=error,
            attempts=1,
            file_name=file_name,
        )
        s.add(job)
        s.flush()
        return job.id


class Factory:
    """Row makers and browser helpers, handed to tests as the `make` fixture."""

    def __init__(self, app):
        self.app = app

    def observatory(self, name: str | None = None) -> tuple[str, str]:
        with self.app.app_context():
            return make_observatory(name)

    token = staticmethod(token)
    alert = staticmethod(make_alert)
    point = staticmethod(make_point)
    failed_job = staticmethod(make_failed_job)
    login = staticmethod(login)
    csrf_token_of = staticmethod(csrf_token_of)


@pytest.fixture()
def make(app) -> Factory:
    return Factory(app)
