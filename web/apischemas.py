"""The API's requests and answers as marshmallow schemas: the source of `/openapi.json`.

They describe what the views already produce (web.jobs.job_json, web.alert_pages.alert_dict,
web.followups.followup_dict, the light curve) and accept (web.job_submission); the calibration
result's keys come from `calib.schema`, written once. The schemathesis test
(tests/test_openapi.py) holds the live server to them.
"""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf, Range

from calib.schema import FIELDS, FOLLOWUP_COLUMNS, LIGHTCURVE_JSON_COLUMNS, RESULT_KEYS
from web.job_submission import FALSE, MAX_WAIT_S, TRUE

_FLAGS = sorted(TRUE | FALSE - {""})


def _num(description: str = "", **kw) -> fields.Float:
    return fields.Float(allow_none=True, metadata={"description": description}, **kw)


def _str(description: str = "", **kw) -> fields.String:
    return fields.String(allow_none=True, metadata={"description": description}, **kw)


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
    warnings = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "what needs an operator, e.g. an alert feed that fails"},
    )


def _hashtag() -> fields.String:
    return fields.String(
        metadata={
            "description": "the observatory's key; safer in the body or an "
            "`Authorization: Token <key>` header than in a URL (redacted from logs either way)"
        }
    )


class UploadParams(Schema):
    """The seed service's upload parameters; in the multipart body or the query string (the
    body wins)."""

    hashtag = _hashtag()
    EventID = fields.String(
        metadata={"description": "the alert's IVORN (ivo://...) or name", "example": "Gaia16aye"}
    )
    MJD = fields.Float(
        validate=Range(0, 200000),
        metadata={"description": "MJD of mid-exposure; required unless dryRun=1"},
    )
    expTime = fields.Float(validate=Range(0, 1e6), metadata={"description": "seconds"})
    matchDist = fields.Float(validate=Range(0, 60), metadata={"description": "arcsec"})
    comment = fields.String(validate=Length(max=2000))
    dryRun = fields.String(validate=OneOf(_FLAGS), metadata={"description": "1: no follow-up"})
    forceFilter = fields.String(
        metadata={"description": "`no`, or SURVEY/FILTER to calibrate against", "example": "no"}
    )
    noPlot = fields.String(validate=OneOf(_FLAGS))
    outputFormat = fields.String(validate=OneOf(["json", "html"]))
    wait = fields.Integer(
        validate=Range(0, MAX_WAIT_S), metadata={"description": "hold the answer up to N s"}
    )


class UploadForm(UploadParams):
    sexCat = fields.Raw(
        required=True,
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


class NewEventParams(Schema):
    """A new alert; in the body or the query string (the body wins)."""

    hashtag = _hashtag()
    EventID = fields.String(metadata={"description": "IVORN", "example": "ivo://110610"})
    name = fields.String(validate=Length(max=100), metadata={"example": "Gaia16aye"})
    ra = fields.Float(validate=Range(0, 360), metadata={"description": "degrees"})
    dec = fields.Float(validate=Range(-90, 90), metadata={"description": "degrees"})
    url = fields.String(validate=Length(max=1000))
    outputFormat = fields.String(validate=OneOf(["json", "html"]))


_KINDS = {str: fields.String, float: fields.Float, int: fields.Integer, bool: fields.Boolean}


def _result(name: str, nullable: bool = False) -> fields.Field:
    """The field of result key `name` (`calib.schema`): its type, meaning and nullability."""
    f = FIELDS[name]
    meta = {"description": f.meaning}
    opts = {"required": True, "allow_none": nullable or f.nullable, "metadata": meta}
    if f.type is list:
        return fields.List(fields.Raw(), **opts)
    return _KINDS[f.type](**opts)


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
        "date_obs": _str("the MJD as ISO 8601 UTC", required=True),
        "url_page": fields.String(required=True, metadata={"description": "the alert's page"}),
        "dry_run": fields.Boolean(required=True, allow_none=True),
        "created_at": _str("ISO 8601", required=True),
        "finished_at": _str("ISO 8601", required=True),
        "attempts": fields.Integer(required=True),
        **{key: _result(key, nullable=True) for key in RESULT_KEYS},
        "followup_id": fields.Integer(required=True, allow_none=True),
        "image_link": _str("the calibration plot", required=True),
        "error": fields.String(metadata={"description": "why the job failed (failed jobs only)"}),
    },
    name="Job",
)


class StatusQuery(Schema):
    """`POST /jobs/status`: the jobs a batch client waits for and the states it has seen."""

    ids = fields.List(fields.String(), required=True, validate=Length(max=1000))
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
    "date_obs": fields.String(required=True, metadata={"description": "the MJD as ISO 8601 UTC"}),
    "magerr": fields.Float(required=True, metadata={"description": "-1 for an upper limit"}),
    "caliberr": _num("the zero point's uncertainty", required=True),
    "observatory": fields.String(required=True),
    "followup_id": fields.Integer(required=True),
}
LightcurvePoint = Schema.from_dict(
    {
        k: _LIGHTCURVE_OWN[k] if k in _LIGHTCURVE_OWN else _result(k)
        for k in LIGHTCURVE_JSON_COLUMNS
    },
    name="LightcurvePoint",
)


class Lightcurve(Schema):
    alert = fields.String(required=True)
    ivorn = fields.String(required=True)
    columns = fields.List(fields.String(), required=True)
    items = fields.List(fields.Nested(LightcurvePoint), required=True)
    total = fields.Integer(required=True)


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
    last_date_obs = _str("last_mjd as ISO 8601 UTC", required=True)
    key = fields.String(required=True, metadata={"description": "the alert's key in /alerts/<key>"})
    url_page = fields.String(required=True)


class AlertDetail(Alert):
    lightcurve = fields.List(fields.Nested(LightcurvePoint), required=True)


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
        "date_obs": fields.String(required=True, metadata={"description": "ISO 8601 UTC"}),
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


class Format(Schema):
    outputFormat = fields.String(validate=OneOf(["json", "html", "csv"]))
    format = fields.String(validate=OneOf(["json", "html", "csv"]))


#: What lists are served as (web.negotiation); light curves and job status have no HTML.
_TABLES = ["votable", "ecsv", "fits"]
_LIST_FORMATS = ["html", "json", "csv", *_TABLES]


class ListFormat(Schema):
    outputFormat = fields.String(validate=OneOf(_LIST_FORMATS))
    format = fields.String(validate=OneOf(_LIST_FORMATS))


class LightcurveFormat(Schema):
    outputFormat = fields.String(validate=OneOf(["json", "csv", *_TABLES]))
    format = fields.String(validate=OneOf(["json", "csv", *_TABLES]))


class StatusFormat(Schema):
    format = fields.String(validate=OneOf(["json", *_TABLES]))


class Paging(ListFormat):
    page = fields.Integer(validate=Range(1, 10**6))
    per_page = fields.Integer(validate=Range(1, 500))


class AlertQuery(Paging):
    q = fields.String(metadata={"description": "searches name and IVORN"})
    ra = fields.Float(
        validate=Range(0, 360, max_inclusive=False), metadata={"description": "cone centre, deg"}
    )
    dec = fields.Float(validate=Range(-90, 90), metadata={"description": "cone centre, deg"})
    radius = fields.Float(
        validate=Range(0, 3600, min_inclusive=False),
        metadata={"description": "cone radius, arcsec (default 5); nearest first"},
    )
    observed_only = fields.String(validate=OneOf(_FLAGS))
    band = fields.String(metadata={"description": "substring of a current point's filter"})
    survey = fields.String(metadata={"description": "substring of a current point's survey"})
    observatory = fields.String(metadata={"description": "substring of a point's observatory"})
    sort = fields.String(metadata={"description": "a column, `-column` for descending"})


class FollowupQuery(Paging):
    alert = fields.String(metadata={"description": "name or IVORN"})
    observatory = fields.String(metadata={"description": "substring"})
    band = fields.String(metadata={"description": "substring of the filter"})
    survey = fields.String(metadata={"description": "substring"})
    mjd_min = fields.Float()
    mjd_max = fields.Float()
    sort = fields.String(metadata={"description": "a column, `-column` for descending"})


class Login(Schema):
    hashtag = fields.String(required=True)
    next = fields.String(metadata={"description": "a path on this site to go to afterwards"})
    csrf_token = fields.String(required=True)


class LoggedIn(Schema):
    observatory = fields.String(required=True)


class LoggedOut(Schema):
    logged_out = fields.Boolean(required=True)


class SubmitForm(UploadForm):
    csrf_token = fields.String(required=True)
