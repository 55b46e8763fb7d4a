"""The real gunicorn in front of the app: over-long request heads get the app's JSON errors (not
gunicorn's HTML pages), and its access log keeps no key however the request spells it."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from urllib.parse import urlsplit

from tests.helpers import TMP

#: Every request header gunicorn can log, the credential ones included.
LOG_FORMAT = '%(h)s "%(r)s" %(s)s "%(f)s" auth="%({authorization}i)s" cookie="%({cookie}i)s"'


def _request(url: str, method: str, path: str, headers: dict | None = None):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_long_urls_and_headers_get_json_errors(live_server):
    comment = "%C3%A9" * 700  # 700 × "é": 4.2 kB, over gunicorn's default request line
    status, headers, body = _request(live_server, "POST", f"/upload?comment={comment}")
    assert status == 401, body  # read by the app: the missing key is the real problem
    comment = "%C3%A9" * 1340  # 8 kB: over the app's URL limit, under gunicorn's
    status, headers, body = _request(live_server, "GET", f"/alerts?q={comment}")
    assert status == 414 and headers["Content-Type"] == "application/json", body
    assert json.loads(body)["error"].startswith("URL too long")
    status, headers, body = _request(live_server, "GET", "/healthz", {"X-Big": "a" * 12_000})
    assert status == 431 and json.loads(body)["error"] == "header X-Big too large"
    status, headers, body = _request(live_server, "TRACE", "/upload")
    assert status == 405 and headers["Allow"] and "POST" in headers["Allow"]


def test_access_log_redacts_keys_however_spelled(start_gunicorn, observatory):
    name = f"redact-{secrets.token_hex(3)}"
    server = start_gunicorn(
        env={"GUNICORN_CMD_ARGS": f"--access-logformat '{LOG_FORMAT}'"}, name=name, workers=1
    )
    key = observatory["hashtag"]
    secret_part = key.split(".", 1)[1]
    marker = secrets.token_hex(4)
    paths = [
        f"/upload?%68ashtag={key}&comment={marker}",
        f"/upload?HASHTAG={key}&comment={marker}",
        f"/upload?%2568ashtag={key}&comment={marker}",
        f"/login?next=%2Fupload%3Fhashtag%3D{key}&comment={marker}",
        f"/upload?comment={marker}&hash%74ag={key}",
    ]
    for path in paths:
        _request(server.url, "POST", path)
    for scheme in ("Token", "Bearer", "token"):
        _request(
            server.url, "POST", f"/upload?comment={marker}", {"Authorization": f"{scheme} {key}"}
        )
    _request(
        server.url,
        "GET",
        f"/?comment={marker}",
        {"Cookie": f"session={key}", "Referer": f"http://x/?%68ashtag={key}"},
    )
    log_file = TMP / f"{name}-access.log"
    deadline = time.monotonic() + 10
    while (log := log_file.read_text()).count(marker) < len(paths) + 4:
        assert time.monotonic() < deadline, log
        time.sleep(0.1)
    assert key not in log and secret_part not in log, log
    assert log.count("[redacted]") >= len(paths) + 4
    assert f"comment={marker}" in log  # the rest of the line is kept
