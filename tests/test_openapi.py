"""`/openapi.json` describes every route exactly, and the live gunicorn keeps to it: schemathesis
runs every check against it (a bounded number of requests) and finds nothing. `/docs` renders
from local assets under a CSP without inline scripts."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

from web.openapi import DOCS_CSP, UNDOCUMENTED, build_spec


def test_every_route_has_an_operation(app):
    spec = build_spec(app)
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented
    upload = spec["paths"]["/upload"]["post"]
    assert {"202", "401", "422", "413", "414", "431", "429", "507"} <= set(upload["responses"])
    assert upload["requestBody"]["required"] is True
    form = spec["components"]["schemas"]["UploadForm"]
    assert {"sexCat", "image"} <= set(form["properties"])
    assert {"anyOf": [{"required": ["sexCat"]}, {"required": ["image"]}]} in form["allOf"]
    ids = [
        o["operationId"]
        for ops in spec["paths"].values()
        for m, o in ops.items()
        if m != "parameters"
    ]
    assert len(ids) == len(set(ids)) and upload["operationId"] == "uploads_upload"
    job = spec["components"]["schemas"]["Job"]["properties"]
    assert job["created_at"]["format"] == job["date_obs"]["format"] == "date-time"


def test_the_live_server_serves_the_spec(app, live_server):
    with urllib.request.urlopen(f"{live_server}/openapi.json") as r:
        assert json.load(r) == json.loads(json.dumps(build_spec(app)))


CONFIG = Path(__file__).parent / "contract" / "schemathesis.toml"


def test_live_server_keeps_its_contract(live_server, runner, tmp_path):
    """schemathesis with every check (server errors, status codes, content types, answer
    schemas, invalid data refused, valid data accepted, unsupported methods, Allow headers,
    authentication...) over every operation, through all its phases, against gunicorn.

    Deterministic and bounded (a few examples per operation and phase: about a thousand
    requests). The key is a fresh observatory's, so generated withdrawals meet only 403/404.
    """
    out = runner.invoke(args=["observatory", "add", f"Contract {secrets.token_hex(3)}"])
    key = out.output.strip().splitlines()[-1]
    st = Path(sys.executable).parent / "st"
    args = [
        str(st), "--config-file", str(CONFIG), "run", f"{live_server}/openapi.json",
        "--checks", "all", "--header", f"Authorization: Token {key}",
        "--max-examples", "8", "--generation-deterministic", "--workers", "2",
        "--request-timeout", "30", "--no-color",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-30000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "Tested: " in done.stdout


def test_docs_page_uses_local_assets_and_no_inline_script(live_server):
    with urllib.request.urlopen(f"{live_server}/docs") as r:
        html = r.read().decode()
        assert r.headers["Content-Security-Policy"] == DOCS_CSP
    assert "'unsafe-inline'" not in DOCS_CSP.split("script-src", 1)[1].split(";")[0]
    assert "<script>" not in html and "http" not in html
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert asset in html
        with urllib.request.urlopen(live_server + asset) as r:
            assert r.status == 200 and len(r.read()) > 10_000
