"""`/openapi.json` describes every route, and the live gunicorn keeps to it: schemathesis sends
generated requests (a bounded number per operation) and checks for 5xx and non-conforming answers.
`/docs` renders from local assets under a CSP without inline scripts."""

from __future__ import annotations

import json
import urllib.request

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from web import create_app
from web.openapi import DOCS_CSP, UNDOCUMENTED, build_spec


def test_every_route_has_an_operation(app):
    spec = build_spec(app)
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED:
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented
    upload = spec["paths"]["/upload"]["post"]
    assert {"202", "401", "422", "413"} <= set(upload["responses"])
    assert "sexCat" in spec["components"]["schemas"]["UploadForm"]["properties"]


def test_the_live_server_serves_the_spec(app, live_server):
    with urllib.request.urlopen(f"{live_server}/openapi.json") as r:
        assert json.load(r) == json.loads(json.dumps(build_spec(app)))


# Built from the app itself (the same document as /openapi.json, checked above): schemathesis'
# lazy fixture loader does not work with this pytest; the requests still go to the live server.
schema = schemathesis.openapi.from_dict(build_spec(create_app()))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_live_server_conforms_to_its_openapi(case, live_server, observatory):
    # With a valid key, generated uploads get past authentication into validation and storage.
    headers = {"Authorization": f"Token {observatory['hashtag']}"}
    case.call_and_validate(base_url=live_server, headers=headers, checks=CHECKS, timeout=30)


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
