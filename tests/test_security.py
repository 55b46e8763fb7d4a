"""Keys, rate limits, headers and health: what keeps the service safe to leave unattended."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets

from sqlalchemy import select, text

from config import Settings
from db.models import Observatory
from db.session import session_scope
from tests.helpers import DATA, add_alert, free_port

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()


def new_key(runner, name: str) -> str:
    out = runner.invoke(args=["observatory", "add", name, "--lon", "1", "--lat", "2"])
    assert out.exit_code == 0, out.output
    return out.output.strip().splitlines()[-1]


def upload(client, key: str, comment: str = ""):
    form = {
        "hashtag": key,
        "EventID": "ivo://security/1",
        "MJD": "60000",
        "outputFormat": "json",
        "comment": comment,
        "sexCat": (io.BytesIO(FRAME), "frame.cat"),
    }
    return client.post("/upload", data=form, content_type="multipart/form-data")


def test_hashtags_are_stored_only_as_salted_peppered_hashes(app, runner):
    key = new_key(runner, "Hashed Obs")
    twin = new_key(runner, "Hashed Twin")
    with session_scope() as s:
        row = s.execute(
            text("SELECT row_to_json(o)::text FROM observatories o WHERE name = 'Hashed Obs'")
        ).scalar_one()
        obs = s.scalars(select(Observatory).where(Observatory.name == "Hashed Obs")).one()
        other = s.scalars(select(Observatory).where(Observatory.name == "Hashed Twin")).one()
    secret = key.split(".", 1)[1]
    assert secret not in row and key not in row  # the stored row, every column, as Postgres has it
    pepper = app.config["HASHTAG_PEPPER"].encode()
    expected = hmac.new(pepper, (obs.key_salt + key).encode(), hashlib.sha256).hexdigest()
    assert obs.key_hash == expected
    unpeppered = hashlib.sha256((obs.key_salt + key).encode()).hexdigest()
    assert obs.key_hash != unpeppered
    assert obs.key_salt != other.key_salt and key != twin


def test_rotate_and_revoke_keys(app, client, runner):
    add_alert(app, "ivo://security/1", "SecurityAlert", 120.0, 45.0)
    old = new_key(runner, "Rotating Obs")
    out = runner.invoke(args=["observatory", "rotate", "Rotating Obs"])
    new = out.output.strip().splitlines()[-1]
    assert new != old
    assert upload(client, old).status_code == 401
    assert upload(client, new, "rotated").status_code == 202
    assert runner.invoke(args=["observatory", "revoke", "Rotating Obs"]).exit_code == 0
    assert upload(client, new, "revoked").status_code == 401


def test_uploads_are_rate_limited_per_key(app, client, runner, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT", "2 per minute")
    key = new_key(runner, "Busy Obs")
    other = new_key(runner, "Quiet Obs")
    statuses = [upload(client, key, f"burst-{i}").status_code for i in range(3)]
    assert statuses == [202, 202, 429]
    resp = upload(client, key, "burst-4")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "30"
    assert resp.get_json()["error"] == "too many requests"
    assert upload(client, other, "other-key").status_code == 202  # limits are per key
    assert client.get("/healthz").status_code == 200  # reads are not limited


def test_bogus_keys_cannot_lock_out_an_observatory(app, client, runner, monkeypatch):
    """Wrong keys sharing a real key's public prefix count against their sender's address, not
    against the observatory: the attacker is limited, the observatory is not."""
    monkeypatch.setitem(app.config, "RATE_LIMIT", "5 per minute")
    key = new_key(runner, "Targeted Obs")
    attacker = {"REMOTE_ADDR": f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.66"}
    bogus = key[:8] + "." + "x" * 32
    statuses = []
    for i in range(8):
        form = {"hashtag": bogus, "EventID": "ivo://security/1", "MJD": "60000"}
        form |= {"outputFormat": "json", "comment": f"bogus-{i}"}
        form["sexCat"] = (io.BytesIO(FRAME), "frame.cat")
        resp = client.post("/upload", data=form, environ_base=attacker)
        statuses.append(resp.status_code)
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    assert upload(client, key, "real-1").status_code in (200, 202)
    form = {"hashtag": key, "EventID": "ivo://security/1", "MJD": "60000", "comment": "real-2"}
    form["sexCat"] = (io.BytesIO(FRAME), "frame.cat")
    same_address = client.post("/upload", data=form, environ_base=attacker)
    assert same_address.status_code in (200, 202)  # a valid key has its own bucket
    logins = [
        client.post("/login", data={"hashtag": bogus}, environ_base=attacker).status_code
        for _ in range(6)
    ]
    assert logins == [401] * 5 + [429]  # failed logins count against the address too
    real = client.post("/login", data={"hashtag": key}, environ_base=attacker)
    assert real.status_code == 303


def test_security_headers_on_every_answer(client):
    for path in ("/", "/healthz", "/alerts", "/no-such-page"):
        resp = client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_healthz_reports_both_services(client, redis_client):
    body = client.get("/healthz").get_json()
    surveys = body.pop("surveys")  # the session's store, as built so far (tests/conftest.py)
    assert body == {"status": "ok", "postgres": "ok", "redis": "ok", "warnings": []}
    assert all(state == "ok" for state in surveys.values())


def test_healthz_names_the_service_that_is_down(database):
    from web import create_app

    nothing_there = f"redis://127.0.0.1:{free_port()}/0"  # a port no one listens on
    # The limiter is process-wide: keep its storage on the real Redis for the other tests.
    limiter_storage = {"RATELIMIT_STORAGE_URI": Settings.load().redis_url}
    app = create_app(
        Settings.load(redis_url=nothing_there), overrides={"TESTING": True, **limiter_storage}
    )
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    body = resp.get_json()
    assert body["status"] == "degraded" and body["postgres"] == "ok"
    assert body["redis"].startswith("down: ")


def test_internal_errors_show_no_stack_trace():
    from web import create_app

    app = create_app(overrides={"TESTING": False})

    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("secret internals")

    resp = app.test_client().get("/boom-for-test?format=json")
    assert resp.status_code == 500
    assert "secret" not in resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "internal error"
