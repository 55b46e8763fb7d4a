"""The API's requests and answers as marshmallow schemas: the source of `/openapi.json`.

They describe what the views already produce (web.jobs.job_json, web.alert_pages.alert_dict,
web.followups.followup_dict, the light curve) and accept (web.job_submission); the calibration
result's keys come from `calib.schema`, written once. The schemathesis test
(tests/test_openapi.py) holds the live server to them.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields
from marshmallow.validate import Length, OneOf, Range, Regexp

from calib.schema import FIELDS, FOLLOWUP_COLUMNS, LIGHTCURVE_JSON_COLUMNS, RESULT_KEYS
from web.alert_pages import ALERT_SORTS, MAX_RADIUS_ARCSEC, MIN_RADIUS_ARCSEC
from web.alert_registry import MAX_NAME_CHARS
from web.followups import SORTS as FOLLOWUP_SORTS
from web.hygiene import FORMAT_CHARACTERS_BMP
from web.job_submission import FALSE, MAX_WAIT_S, TRUE
from web.listing import MAX_PER_PAGE
from web.observatory_pages import SORTS as OBSERVATORY_SORTS

#: Flag values; empty means "no", as a browser form sends an unticked box.
_FLAGS = sorted(TRUE | FALSE)
#: One line of printable text (web.hygiene): no C0/C1 control or line separator.
ONE_LINE = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
#: Free text (comments): tabs and line breaks too.
FREE_TEXT = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
#: A name: one line without invisible format characters either (those of the Basic
#: Multilingual Plane: JSON Schema's ECMA 262 patterns cannot name the others, which are refused
#: all the same).
NAME = f"^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029{FORMAT_CHARACTERS_BMP}]*$"
#: An http(s) URL with a host (web.alert_registry.is_web_url), or empty.
WEB_URL = (
    "^$|^[hH][tT][tT][pP][sS]?://[^/?#\\x00-\\x20\\x7f-\\x9f\\u2028\\u2029\\[\\]]+"
    "([/?#][^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*)?$"
)
#: No NUL (a job id: Postgres text cannot hold one).
NO_NUL = "^[^\\x00]*$"
#: The API's MJD range (web.job_submission).
MJD_RANGE = Range(0, 200000)


def _line(description: str = "", pattern: str = ONE_LINE, **kw) -> fields.String:
    """A text parameter: one line, unless `pattern` says otherwise."""
    validators = [Regexp(pattern), *kw.pop("validate", [])]
    metadata = {"description": description, **kw.pop("metadata", {})}
    return fields.String(validate=validators, metadata=metadata, **kw)


def _sorts(columns) -> OneOf:
    return OneOf([*columns, *(f"-{c}" for c in columns)])


def _num(description: str = "", **kw) -> fields.Float:
    return fields.Float(allow_none=True, metadata={"description": description}, **kw)


def _str(description: str = "", **kw) -> fields.String:
    return fields.String(allow_none=True, metadata={"description": description}, **kw)


def _date(description: str, **kw) -> fields.String:
    """An ISO 8601 / RFC 3339 UTC time (`2024-05-01T21:03:00.000Z`), null when unknown."""
    kw.setdefault("allow_none", True)
    return fields.String(metadata={"description": description, "format": "date-time"}, **kw)


class Error(Schema):
    error = fields.String(required=True, metadata={"description": "what went wrong"})
    detail = _str("what to do about it", required=True)


class NotAcceptable(Error):
    formats = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "the formats this endpoint has → their media types"},
    )


class Health(Schema):
    status = fields.String(required=True, validate=OneOf(["ok", "degraded"]))
    postgres = fields.String(required=True, metadata={"description": "`ok` or `down: <reason>`"})
    redis = fields.String(required=True, metadata={"description": "`ok` or `down: <reason>`"})
    surveys = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={
            "description": "each reference survey: `ok` or `degraded: <reason>`; a degraded "
            "survey makes `status` degraded but never the answer a 503"
        },
    )
    warnings = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "what needs an operator, e.g. an alert feed that fails"},
    )


class Params(Schema):
    """Request parameters; fields the operation does not take are ignored, not refused."""

    class Meta:
        unknown = EXCLUDE


def _hashtag() -> fields.String:
    return _line(
        "the observatory's key; safer in the body or an `Authorization: Token <key>` header "
        "than in a URL (redacted from logs either way)"
    )


class UploadParams(Params):
    """The seed service's upload parameters, as multipart form fields (seed-era scripts may put
    them in the query string instead; the body wins, and both must be valid)."""

    hashtag = _hashtag()
    EventID = _line("the alert's IVORN (ivo://...) or name", metadata={"example": "Gaia16aye"})
    MJD = fields.Float(
        validate=MJD_RANGE,
        metadata={"description": "MJD of mid-exposure; required unless dryRun=1"},
    )
    expTime = fields.Float(validate=Range(0, 1e6), metadata={"description": "seconds"})
    matchDist = fields.Float(validate=Range(0, 60), metadata={"description": "arcsec"})
    comment = _line("free text stored with the point", FREE_TEXT, validate=[Length(max=2000)])
    dryRun = fields.String(validate=OneOf(_FLAGS), metadata={"description": "1: no follow-up"})
    forceFilter = _line("`no`, or SURVEY/FILTER to calibrate against", metadata={"example": "no"})
    noPlot = fields.String(validate=OneOf(_FLAGS))
    outputFormat = fields.String(validate=OneOf(["json", "html", ""]))
    wait = fields.Integer(
        validate=Range(0, MAX_WAIT_S), metadata={"description": "hold the answer up to N s"}
    )


class UploadForm(UploadParams):
    """The upload's form: `sexCat` or its alias `image` carries the file (`sexCat` wins when
    both do)."""

    sexCat = fields.Raw(
        metadata={
            "type": "string",
            "format": "binary",
            "description": "SExtractor catalogue (ASCII_HEAD or FITS_LDAC), or a 2-D FITS image "
            "with a celestial WCS (.fits, .fits.gz, .fz)",
        },
    )
    image = fields.Raw(
        metadata={"type": "string", "format": "binary", "description": "alias of sexCat"}
    )


#: The upload carries `sexCat` or `image`, and `MJD` unless it is a dry run.
UPLOAD_RULES = {
    "allOf": [
        {"anyOf": [{"required": ["sexCat"]}, {"required": ["image"]}]},
        {
            "anyOf": [
                {"required": ["MJD"]},
                {"required": ["dryRun"], "properties": {"dryRun": {"enum": sorted(TRUE)}}},
            ]
        },
    ],
    "required": ["EventID"],
}


class NewEventParams(Params):
    """A new alert, as form fields (seed-era scripts may put them in the query string instead;
    the body wins, and both must be valid)."""

    hashtag = _hashtag()
    EventID = _line(
        "IVORN",
        required=True,
        validate=[Length(max=300)],
        metadata={"example": "ivo://example/alert-1"},
    )
    name = _line(
        "the alert's name; no invisible format characters",
        NAME,
        required=True,
        validate=[Length(min=1, max=MAX_NAME_CHARS)],
        metadata={"example": "ExampleAlert1"},
    )
    ra = fields.Float(
        required=True,
        validate=Range(0, 360, max_inclusive=False),
        metadata={"description": "degrees"},
    )
    dec = fields.Float(required=True, validate=Range(-90, 90), metadata={"description": "degrees"})
    url = _line("an http(s) page about the alert", WEB_URL, validate=[Length(max=1000)])
    outputFormat = fields.String(validate=OneOf(["json", "html", ""]))


_KINDS = {
    str: fields.String,
    float: fields.Float,
    int: fields.Integer,
    bool: fields.Boolean,
    dict: fields.Dict,
}


def _result(name: str, nullable: bool = False) -> fields.Field:
    """The field of result key `name` (`calib.schema`): its type, meaning and nullability."""
    f = FIELDS[name]
    meta = {"description": f.meaning}
    opts = {"required": True, "allow_none": nullable or f.nullable, "metadata": meta}
    if f.type is list:
        return fields.List(fields.Raw(), **opts)
    return _KINDS[f.type](**opts)


OPTIONS_MEANING = (
    "every upload option by its form name (MJD, expTime, matchDist, forceFilter, dryRun, "
    "noPlot, comment); null if not given"
)
#: A calibration job (`GET /jobs/<id>`, and the answer to an upload); result keys are null until
#: the job has succeeded.
Job = Schema.from_dict(
    {
        "status": fields.String(
            required=True, validate=OneOf(["queued", "running", "succeeded", "failed"])
        ),
        "job_id": fields.String(required=True),
        "status_url": fields.String(required=True),
        "alert": fields.String(required=True),
        "ivorn": fields.String(required=True),
        "observatory": fields.String(required=True),
        "mjd": _num("MJD of mid-exposure", required=True),
        "date_obs": _date("the MJD as ISO 8601 UTC", required=True),
        "url_page": fields.String(required=True, metadata={"description": "the alert's page"}),
        "dry_run": fields.Boolean(required=True, allow_none=True),
        "file_name": _str("the name the file was sent under", required=True),
        "options": fields.Dict(required=True, metadata={"description": OPTIONS_MEANING}),
        "created_at": _date("when the upload was accepted", required=True),
        "finished_at": _date("when the job ended", required=True),
        "attempts": fields.Integer(required=True),
        **{key: _result(key, nullable=True) for key in RESULT_KEYS},
        "followup_id": fields.Integer(required=True, allow_none=True),
        "image_link": _str("the calibration plot", required=True),
        "error": fields.String(metadata={"description": "why the job failed (failed jobs only)"}),
    },
    name="Job",
)


class JobListItem(Schema):
    job_id = fields.String(required=True)
    status = fields.String(
        required=True, validate=OneOf(["queued", "running", "succeeded", "failed"])
    )
    status_url = fields.String(required=True)
    file_name = _str("the name the file was sent under", required=True)
    alert = fields.String(required=True)
    url_page = fields.String(required=True, metadata={"description": "the alert's page"})
    mjd = _num("MJD of mid-exposure", required=True)
    date_obs = _str("the MJD as ISO 8601 UTC", required=True)
    created_at = _date("when the upload was accepted", required=True)
    finished_at = _date("when the job ended", required=True)
    mag = _num("the magnitude, or the limit when `limit`", required=True)
    mag_err = _num(required=True)
    limit = fields.Boolean(required=True, allow_none=True)
    filter = _str(required=True)
    survey = _str(required=True)
    error = _str("why it failed", required=True)
    followup_id = fields.Integer(required=True, allow_none=True)


class JobList(Schema):
    items = fields.List(fields.Nested(JobListItem), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class StatusQuery(Params):
    """`POST /jobs/status`: the jobs a batch client waits for and the states it has seen."""

    ids = fields.List(
        fields.String(validate=Regexp(NO_NUL)), required=True, validate=Length(max=1000)
    )
    states = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "job id → last seen state; a job missing here counts as changed"},
    )
    wait = fields.Float(
        validate=Range(0, MAX_WAIT_S),
        metadata={"description": "hold the answer until a listed job ends, up to N s"},
    )


class StatusAnswer(Schema):
    jobs = fields.List(fields.Nested(Job), required=True)
    unknown = fields.List(fields.String(), required=True)
    pending = fields.Integer(required=True)


class NewAlert(Schema):
    id = fields.Integer(required=True)
    ivorn = fields.String(required=True)
    name = fields.String(required=True)
    ra = fields.Float(required=True)
    dec = fields.Float(required=True)


_LIGHTCURVE_OWN = {
    "mjd": fields.Float(required=True),
    "date_obs": _date("the MJD as ISO 8601 UTC", required=True, allow_none=False),
    "magerr": fields.Float(required=True, metadata={"description": "-1 for an upper limit"}),
    "caliberr": _num("the zero point's uncertainty", required=True),
    "observatory": fields.String(required=True),
    "followup_id": fields.Integer(required=True),
    "outlier": fields.Boolean(
        required=True,
        metadata={"description": "disagrees with most same-night points of other observatories"},
    ),
}
LightcurvePoint = Schema.from_dict(
    {
        k: _LIGHTCURVE_OWN[k] if k in _LIGHTCURVE_OWN else _result(k)
        for k in LIGHTCURVE_JSON_COLUMNS
    },
    name="LightcurvePoint",
)


class PairOffset(Schema):
    filter = fields.String(required=True)
    observatory_a = fields.String(required=True)
    observatory_b = fields.String(required=True)
    offset = _num("mag(a) - mag(b), from same-night points", required=True)
    offset_err = _num(required=True)
    scatter = _num("what the points' errors do not explain", required=True)
    n_pairs = fields.Integer(required=True)


class SystemOffset(Schema):
    observatory = fields.String(required=True)
    filter = fields.String(required=True)
    reference = fields.String(required=True, metadata={"description": "the band's reference"})
    offset = _num("subtracted by aligned=1; null: not tied to the reference", required=True)
    offset_err = _num(required=True)
    n_points = fields.Integer(required=True)


class Lightcurve(Schema):
    alert = fields.String(required=True)
    ivorn = fields.String(required=True)
    columns = fields.List(fields.String(), required=True)
    items = fields.List(fields.Nested(LightcurvePoint), required=True)
    total = fields.Integer(required=True)
    aligned = fields.Boolean(required=True)
    offsets = fields.List(fields.Nested(PairOffset), required=True)
    alignment = fields.List(fields.Nested(SystemOffset), required=True)


class LastPoint(Schema):
    mag = fields.Float(required=True, metadata={"description": "the limit when `limit`"})
    mag_err = fields.Float(required=True, metadata={"description": "-1 for a limit"})
    limit = fields.Boolean(required=True)
    filter = fields.String(required=True)
    survey = fields.String(required=True)
    observatory = fields.String(required=True)


class Alert(Schema):
    name = fields.String(required=True)
    ivorn = fields.String(required=True)
    ra = fields.Float(required=True)
    dec = fields.Float(required=True)
    ra_hms = fields.String(required=True, metadata={"description": "RA as hh:mm:ss.ss"})
    dec_dms = fields.String(required=True, metadata={"description": "Dec as ±dd:mm:ss.s"})
    alert_mag = _num(required=True)
    classification = _str(required=True)
    discovered = _str("discovery date (Gaia alerts list)", required=True)
    published = _str(required=True)
    comment = _str(required=True)
    url = _str("an http(s) page about the alert", required=True)
    npoints = fields.Integer(required=True)
    last_mjd = _num(required=True)
    last_date_obs = _date("last_mjd as ISO 8601 UTC", required=True)
    last_point = fields.Nested(
        LastPoint,
        required=True,
        allow_none=True,
        metadata={"description": "the newest current point (null without one)"},
    )
    key = fields.String(required=True, metadata={"description": "the alert's key in /alerts/<key>"})
    url_page = fields.String(required=True)


class AlertDetail(Alert):
    lightcurve = fields.List(fields.Nested(LightcurvePoint), required=True)
    offsets = fields.List(fields.Nested(PairOffset), required=True)


class _Page(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class AlertList(_Page):
    items = fields.List(fields.Nested(Alert), required=True)


Followup = Schema.from_dict(
    {
        "followup_id": fields.Integer(required=True),
        "alert": fields.String(required=True),
        "ivorn": fields.String(required=True),
        "observatory": fields.String(required=True),
        "mjd": fields.Float(required=True),
        "date_obs": _date("the MJD as ISO 8601 UTC", required=True, allow_none=False),
        "exptime": _num(required=True),
        **{key: _result(key) for key in FOLLOWUP_COLUMNS.values()},
        "comment": _str(required=True),
        "job_id": fields.String(required=True),
        "job_url": fields.String(required=True),
        "plot_url": _str(required=True),
        "url_page": fields.String(required=True, metadata={"description": "the alert's page"}),
        "lightcurve_url": fields.String(required=True),
    },
    name="Followup",
)


class FollowupList(_Page):
    items = fields.List(fields.Nested(Followup), required=True)


#: What lists are served as (web.negotiation); light curves and job status have no HTML.
_TABLES = ["votable", "ecsv", "fits"]
_LIST_FORMATS = ["html", "json", "csv", *_TABLES]


def _formats(names: list[str]) -> fields.String:
    """`format`/`outputFormat`: one of `names`; empty means the default, as a browser form sends
    it."""
    return fields.String(validate=OneOf([*names, ""]))


class Format(Params):
    """A page or a job: HTML or JSON."""

    outputFormat = _formats(["json", "html"])
    format = _formats(["json", "html"])


class ListFormat(Params):
    outputFormat = _formats(_LIST_FORMATS)
    format = _formats(_LIST_FORMATS)


class LightcurveFormat(Params):
    outputFormat = _formats(["json", "csv", *_TABLES])
    format = _formats(["json", "csv", *_TABLES])


class LightcurveQuery(LightcurveFormat):
    aligned = fields.String(
        validate=OneOf(_FLAGS),
        metadata={"description": "1: each system moved onto its band's reference (never default)"},
    )


class StatusFormat(Params):
    format = _formats(["json", *_TABLES])


class Paging(ListFormat):
    page = fields.Integer(validate=Range(1, 10**6))
    per_page = fields.Integer(validate=Range(1, MAX_PER_PAGE))


class AlertQuery(Paging):
    q = _line("searches name and IVORN")
    ra = fields.Float(
        validate=Range(0, 360, max_inclusive=False), metadata={"description": "cone centre, deg"}
    )
    dec = fields.Float(validate=Range(-90, 90), metadata={"description": "cone centre, deg"})
    radius = fields.Float(
        validate=Range(MIN_RADIUS_ARCSEC, MAX_RADIUS_ARCSEC),
        metadata={"description": "cone radius, arcsec (default 5); nearest first"},
    )
    observed_only = fields.String(validate=OneOf(_FLAGS))
    band = _line("substring of a current point's filter")
    survey = _line("substring of a current point's survey")
    observatory = _line("substring of a point's observatory")
    sort = fields.String(
        validate=_sorts(ALERT_SORTS), metadata={"description": "`-column` for descending"}
    )


class FollowupQuery(Paging):
    alert = _line("substring of the name or IVORN, any case")
    observatory = _line("substring, any case")
    band = _line("substring of the filter, any case")
    survey = _line("substring, any case")
    mjd_min = fields.Float(validate=Range(-1e9, 1e9))
    mjd_max = fields.Float(validate=Range(-1e9, 1e9))
    sort = fields.String(
        validate=_sorts(FOLLOWUP_SORTS), metadata={"description": "`-column` for descending"}
    )


class Login(Params):
    hashtag = _line("the observatory's key", required=True)
    next = fields.String(
        metadata={"description": "a path on this site to go to afterwards (else the home page)"}
    )
    csrf_token = _line("from the login form", required=True)


class LoggedIn(Schema):
    observatory = fields.String(required=True)


class LoggedOut(Schema):
    logged_out = fields.Boolean(required=True)


class SubmitForm(UploadForm):
    """The browser's upload form: `MJD` may also be a JD or an ISO 8601 date."""

    MJD = _line("MJD, JD or ISO 8601 date of mid-exposure; required unless dryRun=1")
    csrf_token = _line("from the upload form", required=True)


class Observatory(Schema):
    name = fields.String(required=True)
    lon = fields.Float(required=True)
    lat = fields.Float(required=True)
    filters = fields.List(fields.String(), required=True)
    npoints = fields.Integer(required=True, metadata={"description": "current follow-up points"})
    last_mjd = _num(required=True)
    last_date_obs = _date("last_mjd as ISO 8601 UTC", required=True)
    key = fields.String(required=True, metadata={"description": "its key in /observatories/<key>"})
    url_page = fields.String(required=True)


class ObservatoryList(_Page):
    items = fields.List(fields.Nested(Observatory), required=True)


class ObservatoryQuery(Paging):
    sort = fields.String(
        validate=_sorts(OBSERVATORY_SORTS), metadata={"description": "`-column` for descending"}
    )


class InstrumentFilterModel(Schema):
    colour_term = _num("weighted, clipped mean over frames", required=True)
    colour_term_err = _num("its 1-sigma uncertainty", required=True)
    zeropoint_median = fields.Float(required=True, metadata={"description": "at exptime_ref"})
    zeropoint_scatter = fields.Float(required=True, metadata={"description": "around the trend"})
    depth_median = _num("5-sigma limiting magnitude, at exptime_ref", required=True)
    fwhm_median = _num("arcsec", required=True)
    n_frames = fields.Integer(required=True)
    last_date_obs = fields.String(required=True)
    colour_term_scatter = _num("frame-to-frame scatter its errors do not explain", required=True)
    zeropoint_trend = fields.Float(required=True, metadata={"description": "mag per year"})
    exptime_scaling = fields.Boolean(
        required=True, metadata={"description": "the catalogue's magnitudes scale with exptime"}
    )
    exptime_ref = _num("seconds", required=True)
    depth_scatter = _num(required=True)
    fwhm_scatter = _num(required=True)
    first_date_obs = fields.String(required=True)


class InstrumentFrame(Schema):
    followup_id = fields.Integer(required=True)
    job_id = fields.String(required=True)
    alert = fields.String(required=True)
    alert_url = fields.String(required=True, metadata={"description": "the alert's page"})
    mjd = fields.Float(required=True)
    date_obs = fields.String(required=True)
    filter = fields.String(required=True)
    survey = fields.String(required=True)
    exptime = _num(required=True)
    zeropoint = fields.Float(required=True)
    zeropoint_err = fields.Float(required=True)
    colour_term = _num(required=True)
    colour_term_err = _num(required=True)
    depth = _num("the frame's limiting magnitude", required=True)
    fwhm = _num("arcsec", required=True)
    npoints = fields.Integer(required=True)
    flags = fields.List(fields.String(), required=True)


class ObservatoryDetail(Schema):
    name = fields.String(required=True)
    lon = fields.Float(required=True)
    lat = fields.Float(required=True)
    filters = fields.List(fields.String(), required=True)
    url_page = fields.String(required=True)
    instrument = fields.Dict(
        keys=fields.String(), values=fields.Nested(InstrumentFilterModel), required=True
    )
    frames = fields.List(fields.Nested(InstrumentFrame), required=True)


#: JSON Schema rules across a form's fields, added to its component in /openapi.json.
FORM_RULES = {"UploadForm": UPLOAD_RULES, "SubmitForm": UPLOAD_RULES}


class JobListQuery(Paging):
    state = fields.String(validate=OneOf(["queued", "running", "succeeded", "failed"]))
