"""`GET /openapi.json` (OpenAPI 3, built from the app's routes and web.apischemas) and `GET /docs`
(Swagger UI from the swagger-ui-py package's files, served here: no CDN, no inline script).

Paths, methods and path parameters come from Flask's URL map; each (endpoint, method) has its
operation below, so a new route without one fails tests/test_openapi.py instead of going
undocumented. apispec turns the marshmallow schemas into JSON Schema; the views stay plain Flask.
"""

from __future__ import annotations

import copy
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

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
    request,
    send_from_directory,
)
from marshmallow import Schema
from werkzeug.routing import Rule, UnicodeConverter

from web import apischemas as s
from web.errors import ApiError

bp = Blueprint("openapi", __name__)
JSON, HTML, CSV, PNG, TEXT = "application/json", "text/html", "text/csv", "image/png", "text/plain"
OPENMETRICS = "application/openmetrics-text"
#: The astronomy tables (web.tables): VOTable, ECSV, FITS.
TABLES = ("application/x-votable+xml", "text/x-ecsv", "application/fits")
BINARY = (PNG, "application/fits")
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
SWAGGER_VERSION = version("swagger-ui-py")
#: The Swagger UI page runs only our own scripts; its styles are set inline by the bundle.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
UNDOCUMENTED = {"static", "openapi.asset", "alert_pages.bokehjs"}

ERRORS = {
    400: "malformed request: a control character in the path or a header, a NUL in a field, a "
    "missing sexCat, a missing or stale CSRF token (forms)",
    401: "missing, unknown or revoked key (or not logged in)",
    403: "the follow-up point belongs to another observatory",
    404: "unknown job, alert, follow-up point or page (also a page past the last one)",
    409: "the alert exists already",
    406: "a format (format=, outputFormat= or Accept) this endpoint does not have; the JSON "
    "error lists the ones it has",
    413: "the body is too large: the upload (MAX_UPLOAD_BYTES), a text field (1 MB) or the "
    "number of form parts (200); the error says which",
    414: "the URL is longer than 8000 bytes: send long values as form fields",
    422: "a parameter is missing, malformed, repeated or out of range (the error says which)",
    429: "over the rate limit; retry after Retry-After seconds",
    431: "too many header fields, or one larger than 8190 bytes",
    503: "a service (database, queue, file store) is restarting; retry after Retry-After seconds",
    507: "the upload disk is full, nothing was stored; retry after Retry-After seconds",
}
TEXT_BODY = {"type": "string"}
#: What every request can meet: a malformed head, an over-long URL or header, a restart.
ANY_REQUEST = (400, 414, 431, 503)


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
    query: type[Schema] | None = None,
    form: type[Schema] | None = None,
    body_required: bool = False,
    seed_query: bool = False,
    secured: bool = False,
    description: str | None = None,
) -> dict:
    """One operation: its answers, plus those every request can meet (`ANY_REQUEST`), 422 when
    it takes parameters, 406 when it takes a format and 413 when it takes a body.

    `seed_query` means seed-era scripts may send the form's fields in the query string instead
    (checked like the form, see web.contract, but not described: the form is the interface).
    """
    codes = {*ANY_REQUEST, *errors}
    if query is not None or form is not None:
        codes.add(422)
    for params in (query, form):
        if params is not None and {"format", "outputFormat"} & set(params().fields):
            codes.add(406)
    if form is not None:
        codes.add(413)
    responses = {str(code): answer for code, answer in ok.items()}
    for code in sorted(codes):
        answer = _answer(ERRORS[code], "NotAcceptable") if code == 406 else None  # always JSON
        responses.setdefault(str(code), answer or _answer(ERRORS[code], "Error", HTML))
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if description:
        op["description"] = description
    if query is not None:
        op["parameters"] = [{"in": "query", "schema": query}]
    if form is not None:
        op["requestBody"] = {
            "content": {"multipart/form-data": {"schema": form}},
            "required": body_required,
        }
    if secured:
        op["security"] = [{"token": []}, {"bearer": []}, {"hashtag": []}, {}]
    op[CONTRACT] = RequestContract(query, form, seed_query)
    return op


class RequestContract(NamedTuple):
    """What web.contract checks a request against: the operation's query and form schemas."""

    query: type[Schema] | None
    form: type[Schema] | None
    seed_query: bool


#: The key of an operation's RequestContract; left out of the published document.
CONTRACT = "x-calserv-contract"
SEED_QUERY_NOTE = (
    "Seed-era scripts may send these fields in the query string instead (the body wins; both "
    "must be valid); the key is safer in the body or an `Authorization` header."
)

_WRITE = (401, 404, 413, 422, 429)
_JOB = _answer("the job; 200 when it has ended (wait=N), 202 while it runs", "Job", HTML)
_LOGIN = (303, 401)

OPERATIONS: dict[tuple[str, str], dict] = {
    ("uploads.upload", "post"): _op(
        "Queue the calibration of a SExtractor catalogue or a FITS image",
        {200: _JOB, 202: _JOB},
        (*_WRITE, 507),
        tag="calibration",
        form=s.UploadForm,
        body_required=True,
        seed_query=True,
        secured=True,
        description=SEED_QUERY_NOTE,
    ),
    ("jobs.show", "get"): _op(
        "A job's state and result",
        {200: _answer("the job", "Job", HTML)},
        (404, 406),
        tag="calibration",
        query=s.Format,
    ),
    ("job_list.index", "get"): _op(
        "The calling observatory's own jobs, newest first, paged (key or login)",
        {
            200: _answer("a page of jobs", "JobList", HTML, CSV, *TABLES),
            303: _redirect("to /login"),
        },
        (401, 404, 406, 422),
        tag="calibration",
        query=s.JobListQuery,
        secured=True,
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
        form=s.NewEventParams,
        body_required=True,
        seed_query=True,
        secured=True,
        description=SEED_QUERY_NOTE,
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
        query=s.LightcurveQuery,
    ),
    ("alert_pages.lightcurve_png", "get"): _op(
        "An alert's light curve as a plot",
        {200: _answer("PNG", None, PNG), 304: {"description": "not modified"}},
        (404,),
        tag="alerts",
    ),
    ("alert_pages.finder", "get"): _op(
        "A finder chart: reference stars within 3′ of the alert, from calserv's own store",
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
        (401, 403, 404, 413, 429),
        tag="browser",
        query=s.Format,
    ),
    ("observatory_pages.index", "get"): _op(
        "Observatories, by name",
        {200: _answer("a page of observatories", "ObservatoryList", HTML, CSV, *TABLES)},
        (404, 406, 422),
        tag="observatories",
        query=s.ObservatoryQuery,
    ),
    ("observatory_pages.show", "get"): _op(
        "An observatory: its instrument model per filter and its most recent frames",
        {200: _answer("the observatory", "ObservatoryDetail", HTML)},
        (404,),
        tag="observatories",
        query=s.Format,
    ),
    ("observatory_pages.history_bokeh", "get"): _op(
        "An observatory's history plots (a Bokeh json_item, embedded by its page)",
        {200: _answer("the plots", {"type": "object"})},
        (404,),
        tag="observatories",
    ),
    ("followups.restore_form", "post"): _op(
        "Undo a withdrawal from the browser (CSRF-checked): the point is current again",
        {303: _redirect("to the alert's page, or to /login")},
        (401, 403, 404, 413),
        tag="browser",
        query=s.Format,
    ),
    ("ops.healthz", "get"): _op(
        "Whether Postgres and Redis answer, and each reference survey's state",
        {200: _answer("all up", "Health"), 503: _answer("one is down (named)", "Health")},
        tag="operations",
    ),
    ("metrics.metrics", "get"): _op(
        "Prometheus metrics: request latency, jobs, job latency and processing time, queue "
        "length, reference surveys",
        {200: _answer("the Prometheus text format, or OpenMetrics", None, TEXT, OPENMETRICS)},
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
        body_required=True,
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
        body_required=True,
    ),
    ("login.logout", "post"): _op(
        "Log out (CSRF-checked)",
        {200: _answer("logged out", "LoggedOut"), 303: _redirect("to the home page")},
        (413, 429),
        tag="browser",
        query=s.Format,
    ),
}
#: The schemas the operations name; apispec registers the nested and request ones itself.
_SCHEMAS = ("Error", "NotAcceptable", "Health", "Job", "NewAlert", "Lightcurve", "AlertDetail",
            "AlertList", "FollowupList", "JobList", "LoggedIn", "LoggedOut", "StatusQuery",
            "StatusAnswer", "ObservatoryList", "ObservatoryDetail")  # fmt: skip
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
    args: dict[str, dict[str, str]] = {}
    operation_ids: set[str] = set()
    # The seed's `/cgi/...` aliases after their plain paths: theirs are the operation ids.
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule.startswith("/cgi/")):
        if rule.endpoint in UNDOCUMENTED:
            continue
        path = _ARG.sub(r"{\1}", rule.rule)
        args[path] = {a: _segment(rule, a) for a in sorted(rule.arguments)}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = copy.deepcopy(OPERATIONS[(rule.endpoint, method.lower())])
            del op[CONTRACT]
            op["operationId"] = _operation_id(rule.endpoint, path, operation_ids)
            if rule.arguments:  # no such job, alert, point or file
                op["responses"].setdefault("404", _answer(ERRORS[404], "Error", HTML))
            paths.setdefault(path, {})[method.lower()] = op
    for path in sorted(paths):
        params = [
            {"in": "path", "name": a, "required": True,
             "schema": {"type": "string", "pattern": pattern}}
            for a, pattern in args[path].items()
        ]  # fmt: skip
        spec.path(path=path, operations=paths[path], parameters=params)
    doc = spec.to_dict()
    for name, rules in s.FORM_RULES.items():  # across fields: apispec has no words for these
        doc["components"]["schemas"][name].update(copy.deepcopy(rules))
    return doc


#: A path parameter: one segment without a control character (those are a 400).
PATH_SEGMENT = "^[^/\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]+$"


def _segment(rule: Rule, arg: str) -> str:
    """The pattern of path parameter `arg`: its converter's, or any one segment."""
    converter = rule._converters[arg]
    return PATH_SEGMENT if type(converter) is UnicodeConverter else f"^{converter.regex}$"


def _operation_id(endpoint: str, path: str, taken: set[str]) -> str:
    """`uploads_upload`; an alias path of the same view gets its path as a suffix
    (`uploads_upload_cgi_upload`)."""
    name = endpoint.replace(".", "_")
    if name in taken:
        name += "_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    taken.add(name)
    return name


@bp.get("/openapi.json")
def spec():
    ext = current_app.extensions
    if "openapi" not in ext:
        ext["openapi"] = build_spec(current_app)
    return jsonify(ext["openapi"])


@bp.get("/docs")
def docs():
    html = render_template("docs.html", swagger_version=SWAGGER_VERSION)  # in the site's layout
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = DOCS_CSP
    return resp


@bp.get("/docs/assets/<filename>")
def asset(filename: str):
    if filename not in SWAGGER_FILES:
        raise ApiError(404, f"no such file: {filename[:60]}", "see /docs")
    # `?v=` naming the installed package's version (as docs.html links them): cached for a year.
    versioned = request.args.get("v") == SWAGGER_VERSION
    resp = send_from_directory(SWAGGER_DIR, filename, max_age=365 * 86400 if versioned else 86400)
    resp.cache_control.immutable = versioned or None
    return resp
