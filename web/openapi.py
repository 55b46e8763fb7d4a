"""`GET /openapi.json` (OpenAPI 3, built from the app's routes and web.apischemas) and `GET /docs`
(Swagger UI from the swagger-ui-py package's files, served here: no CDN, no inline script).

Paths, methods and path parameters come from Flask's URL map; each (endpoint, method) has its
operation below, so a new route without one fails tests/test_openapi.py instead of going
undocumented. apispec turns the marshmallow schemas into JSON Schema; the views stay plain Flask.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import swagger_ui
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    render_template,
    send_from_directory,
)

from web import apischemas as s
from web.errors import ApiError

bp = Blueprint("openapi", __name__)
JSON, HTML, CSV, PNG, TEXT = "application/json", "text/html", "text/csv", "image/png", "text/plain"
#: The astronomy tables (web.tables): VOTable, ECSV, FITS.
TABLES = ("application/x-votable+xml", "text/x-ecsv", "application/fits")
BINARY = (PNG, "application/fits")
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
#: The Swagger UI page runs only our own scripts; its styles are set inline by the bundle.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
UNDOCUMENTED = {"static", "openapi.asset", "alert_pages.bokehjs"}

ERRORS = {
    400: "malformed request: a control character in the path, a header or a field, a missing "
    "sexCat, a missing CSRF token (forms)",
    401: "missing, unknown or revoked key (or not logged in)",
    403: "the follow-up point belongs to another observatory",
    404: "unknown job, alert, follow-up point or page (also a page past the last one)",
    409: "the alert exists already",
    406: "a format (format=, outputFormat= or Accept) this endpoint does not have; the JSON "
    "error lists the ones it has",
    413: "the upload is larger than MAX_UPLOAD_BYTES",
    422: "a parameter is missing, malformed or out of range (the error says which)",
    429: "over the rate limit; retry after Retry-After seconds",
    503: "a service (database, queue, file store) is restarting; retry after Retry-After seconds",
    507: "the upload disk is full, nothing was stored; retry after Retry-After seconds",
}
TEXT_BODY = {"type": "string"}


def _answer(description: str, schema: Any = None, *types: str) -> dict:
    content = {JSON: {"schema": schema}} if schema is not None else {}
    for t in types:
        content[t] = {
            "schema": {"type": "string", "format": "binary"} if t in BINARY else TEXT_BODY
        }
    return {"description": description, "content": content}


def _redirect(description: str) -> dict:
    return {
        **_answer(description, None, HTML),
        "headers": {"Location": {"schema": {"type": "string"}}},
    }


def _op(
    summary: str,
    ok: dict[int, dict],
    errors: tuple[int, ...] = (),
    *,
    tag: str,
    query: Any = None,
    form: Any = None,
    secured: bool = False,
) -> dict:
    """One operation: its answers, plus 400 and 503 (every request can meet those)."""
    responses = {str(code): answer for code, answer in ok.items()}
    for code in sorted({400, 503, *errors}):
        answer = _answer(ERRORS[code], "NotAcceptable") if code == 406 else None  # always JSON
        responses.setdefault(str(code), answer or _answer(ERRORS[code], "Error", HTML))
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if query is not None:
        op["parameters"] = [{"in": "query", "schema": query}]
    if form is not None:
        op["requestBody"] = {
            "content": {"multipart/form-data": {"schema": form}},
            "required": False,
        }
    if secured:
        op["security"] = [{"token": []}, {"bearer": []}, {"hashtag": []}, {}]
    return op


_WRITE = (401, 404, 413, 422, 429)
_JOB = _answer("the job; 200 when it has ended (wait=N), 202 while it runs", "Job", HTML)
_LOGIN = (303, 401)

OPERATIONS: dict[tuple[str, str], dict] = {
    ("uploads.upload", "post"): _op(
        "Queue the calibration of a SExtractor catalogue or a FITS image",
        {200: _JOB, 202: _JOB},
        (*_WRITE, 507),
        tag="calibration",
        query=s.UploadParams,
        form=s.UploadForm,
        secured=True,
    ),
    ("jobs.show", "get"): _op(
        "A job's state and result",
        {200: _answer("the job", "Job", HTML)},
        (404, 406),
        tag="calibration",
        query=s.Format,
    ),
    ("jobs.plot", "get"): _op(
        "The calibration plot of a job (uploaded with noPlot=0)",
        {200: _answer("PNG", None, PNG), 304: {"description": "not modified"}},
        (404,),
        tag="calibration",
    ),
    ("job_status.bulk_status", "post"): {
        **_op(
            "Many jobs' states at once, held until one ends (batch clients)",
            {200: _answer("the listed jobs whose state changed", "StatusAnswer", *TABLES)},
            (406, 422),
            tag="calibration",
            query=s.StatusFormat,
        ),
        "requestBody": {"content": {JSON: {"schema": "StatusQuery"}}, "required": True},
    },
    ("jobs.cutout", "get"): _op(
        "The cutout around the alert of a job (FITS image uploads with noPlot=0)",
        {200: _answer("PNG", None, PNG), 304: {"description": "not modified"}},
        (404,),
        tag="calibration",
    ),
    ("alerts.newevent", "post"): _op(
        "Insert an alert",
        {
            201: _answer("the new alert", "NewAlert"),
            303: _redirect("(outputFormat=html) to the alert's page"),
            200: _answer("(outputFormat=html) the form again, with the error", None, HTML),
        },
        (401, 409, 413, 422, 429),
        tag="alerts",
        query=s.NewEventParams,
        form=s.NewEventParams,
        secured=True,
    ),
    ("alerts.newevent_form", "get"): _op(
        "The new-alert form (logged-in browsers)",
        {200: _answer("the form", None, HTML), 303: _redirect("to /login")},
        (401,),
        tag="browser",
        query=s.Format,
    ),
    ("alert_pages.index", "get"): _op(
        "Alerts, most recently observed first",
        {200: _answer("a page of alerts", "AlertList", HTML, CSV, *TABLES)},
        (404, 406, 422),
        tag="alerts",
        query=s.AlertQuery,
    ),
    ("alert_pages.show", "get"): _op(
        "An alert with its light curve",
        {200: _answer("the alert", "AlertDetail", HTML)},
        (404, 406),
        tag="alerts",
        query=s.Format,
    ),
    ("alert_pages.lightcurve", "get"): _op(
        "An alert's light curve (JSON, CSV, VOTable, ECSV or FITS)",
        {200: _answer("the light curve", "Lightcurve", CSV, *TABLES)},
        (404, 406),
        tag="alerts",
        query=s.LightcurveFormat,
    ),
    ("alert_pages.lightcurve_png", "get"): _op(
        "An alert's light curve as a plot",
        {200: _answer("PNG", None, PNG), 304: {"description": "not modified"}},
        (404,),
        tag="alerts",
    ),
    ("alert_pages.lightcurve_bokeh", "get"): _op(
        "An alert's interactive light curve (a Bokeh json_item, embedded by the alert page)",
        {200: _answer("the plot", {"type": "object"}), 304: {"description": "not modified"}},
        (404,),
        tag="alerts",
    ),
    ("followups.index", "get"): _op(
        "Calibrated follow-up observations, newest first",
        {200: _answer("a page of follow-ups", "FollowupList", HTML, CSV, *TABLES)},
        (404, 406, 422),
        tag="alerts",
        query=s.FollowupQuery,
    ),
    ("followups.delete", "delete"): _op(
        "Withdraw a follow-up point (its own observatory only); it stays stored for audit",
        {204: {"description": "withdrawn (also when it already was)"}},
        (401, 403, 404, 429),
        tag="alerts",
        query=s.Format,
        secured=True,
    ),
    ("followups.withdraw_form", "post"): _op(
        "The Withdraw button of a logged-in observatory (CSRF-checked)",
        {303: _redirect("to the alert's page, or to /login")},
        (401, 403, 404, 413),
        tag="browser",
        query=s.Format,
    ),
    ("ops.healthz", "get"): _op(
        "Whether Postgres and Redis answer",
        {200: _answer("all up", "Health"), 503: _answer("one is down (named)", "Health")},
        tag="operations",
    ),
    ("metrics.metrics", "get"): _op(
        "Prometheus metrics: request latency, jobs by state, job latency, queue length",
        {200: _answer("Prometheus text format", None, TEXT)},
        tag="operations",
    ),
    ("openapi.spec", "get"): _op(
        "This description", {200: _answer("OpenAPI 3", {"type": "object"})}, tag="operations"
    ),
    ("openapi.docs", "get"): _op(
        "The API's documentation page", {200: _answer("Swagger UI", None, HTML)}, tag="operations"
    ),
    ("pages.home", "get"): _op(
        "The home page", {200: _answer("the page", None, HTML)}, tag="browser"
    ),
    ("pages.upload_page", "get"): _op(
        "A browser opening the script endpoint", {303: _redirect("to /submit")}, tag="browser"
    ),
    ("pages.submit_form", "get"): _op(
        "The upload form (logged-in browsers)",
        {200: _answer("the form", None, HTML), 303: _redirect("to /login")},
        (401,),
        tag="browser",
        query=s.Format,
    ),
    ("pages.submit", "post"): _op(
        "Upload through the form (logged-in browsers, CSRF-checked)",
        {
            303: _redirect("to the job's page, or to /login"),
            200: _answer("the form again", None, HTML),
        },
        (401, 404, 413, 422, 429, 507),
        tag="browser",
        form=s.SubmitForm,
    ),
    ("login.login_form", "get"): _op(
        "The login form", {200: _answer("the form", None, HTML)}, tag="browser"
    ),
    ("login.login", "post"): _op(
        "Log in with the observatory's key (CSRF-checked)",
        {200: _answer("logged in", "LoggedIn"), 303: _redirect("to `next`")},
        (401, 413, 429),
        tag="browser",
        form=s.Login,
    ),
    ("login.logout", "post"): _op(
        "Log out (CSRF-checked)",
        {200: _answer("logged out", "LoggedOut"), 303: _redirect("to the home page")},
        (413,),
        tag="browser",
        query=s.Format,
    ),
}
#: The schemas the operations name; apispec registers the nested and request ones itself.
_SCHEMAS = ("Error", "NotAcceptable", "Health", "Job", "NewAlert", "Lightcurve", "AlertDetail",
            "AlertList", "FollowupList", "LoggedIn", "LoggedOut", "StatusQuery",
            "StatusAnswer")  # fmt: skip
_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def build_spec(app: Flask) -> dict:
    """The OpenAPI 3 document of `app`'s routes; KeyError names a route without an operation."""
    spec = APISpec(
        title="calserv",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Photometric calibration of transient follow-up frames. Every "
            "answer is HTML unless `outputFormat=json` (or `Accept: application/json`)."
        },
    )
    for name in _SCHEMAS:
        spec.components.schema(name, schema=getattr(s, name))
    schemes = {
        "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                  "description": "`Authorization: Token <key>`"},
        "bearer": {"type": "http", "scheme": "bearer"},
        "hashtag": {"type": "apiKey", "in": "query", "name": "hashtag",
                    "description": "seed-era scripts; also accepted as a form field"},
    }  # fmt: skip
    for name, scheme in schemes.items():
        spec.components.security_scheme(name, scheme)
    paths: dict[str, dict[str, dict]] = {}
    args: dict[str, list[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED:
            continue
        path = _ARG.sub(r"{\1}", rule.rule)
        args[path] = sorted(rule.arguments)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            key = (rule.endpoint, method.lower())
            paths.setdefault(path, {})[method.lower()] = copy.deepcopy(OPERATIONS[key])
    for path in sorted(paths):
        params = [
            {"in": "path", "name": a, "required": True,
             "schema": {"type": "string", "pattern": "^[^/]+$"}}
            for a in args[path]
        ]  # fmt: skip
        spec.path(path=path, operations=paths[path], parameters=params)
    return spec.to_dict()


@bp.get("/openapi.json")
def spec():
    ext = current_app.extensions
    if "openapi" not in ext:
        ext["openapi"] = build_spec(current_app)
    return jsonify(ext["openapi"])


@bp.get("/docs")
def docs():
    resp = Response(render_template("docs.html"), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = DOCS_CSP
    return resp


@bp.get("/docs/assets/<filename>")
def asset(filename: str):
    if filename not in SWAGGER_FILES:
        raise ApiError(404, f"no such file: {filename[:60]}", "see /docs")
    return send_from_directory(SWAGGER_DIR, filename, max_age=86400)
