"""The object store unreachable: uploads get a 503 with Retry-After and leave nothing behind."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from config import Settings
from db.models import Job
from db.session import session_scope
from tests.helpers import DATA, MotoServer, add_alert, free_port

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()


def test_upload_while_the_store_is_down_is_503_and_no_job(app, observatory, monkeypatch):
    from web import create_app

    for name, value in MotoServer.CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    add_alert(app, "ivo://outage/1", "OutageAlert", 120.0, 45.0)
    down = Settings.load(
        env="development",
        storage_url="s3://calserv/uploads-test",
        storage_endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
    )
    client = create_app(down, overrides={"TESTING": True}).test_client()
    with session_scope() as s:
        jobs_before = s.scalar(select(func.count()).select_from(Job))
    resp = client.post(
        "/upload",
        data={
            "hashtag": observatory["hashtag"],
            "EventID": "ivo://outage/1",
            "MJD": "59000.5",
            "outputFormat": "json",
            "sexCat": (io.BytesIO(FRAME), "frame.cat"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "the file store is unavailable"
    assert resp.headers["Retry-After"] == "5"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == jobs_before
