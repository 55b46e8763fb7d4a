"""Requests are held to the API's description before any view runs: each documented operation's
query string and form fields are validated with the marshmallow schemas that `/openapi.json` is
made from (web.apischemas, web.openapi), so what the description calls invalid is refused here,
with a 422 naming the field, and nothing it calls valid is refused for its shape.

Checked: a parameter given more than once (which value would count is ambiguous), types,
ranges, lengths, enumerations and the text patterns (no control characters in one-line fields,
no invisible format characters in names). An unknown `format`/`outputFormat` is a 406. Empty
values count as absent, as a browser form sends an empty box. Required fields and cross-field
rules (`sexCat` or `image`; `MJD` unless a dry run) stay with the views, whose messages say
how to fix them.
"""

from __future__ import annotations

from flask import Flask, request
from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf, Range, Regexp
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from web.apischemas import FREE_TEXT, NAME, ONE_LINE, WEB_URL
from web.errors import ApiError
from web.hygiene import free_text, single_line
from web.negotiation import FormatNotAcceptable
from web.openapi import CONTRACT, OPERATIONS

FORMAT_KEYS = ("format", "outputFormat")
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def _choices(field: fields.Field) -> list[str]:
    return next((list(v.choices) for v in field.validators if isinstance(v, OneOf)), [])


def _refusal(name: str, field: fields.Field, raw: str) -> ApiError | None:
    """Why `raw` is no valid value of `field`, in the words of the views' own checks."""
    try:
        value = field._deserialize(raw, name, None)  # the type only: validators follow
    except ValidationError:
        kind = "an integer" if isinstance(field, fields.Integer) else "a number"
        return ApiError(422, f"{name} must be {kind}", f"got {raw[:40]!r}")
    for v in field.validators:
        if isinstance(v, Range) and not _in_range(v, value):
            return ApiError(422, f"{name} out of range", f"{name} must be {_range(v)}")
        if isinstance(v, Length) and v.max is not None and len(value) > v.max:
            return ApiError(
                422, f"{name} is too long ({len(value)} characters)", f"at most {v.max}"
            )
        if isinstance(v, Length) and v.min and len(value) < v.min:
            return ApiError(422, f"{name} is required", f"at least {v.min} characters")
        if isinstance(v, OneOf) and value not in v.choices:
            choices = ", ".join(str(c) for c in v.choices if c)
            return ApiError(422, f"{name} cannot be {raw[:40]!r}", f"{name}: one of {choices}")
        if isinstance(v, Regexp) and not v.regex.match(value):
            if v.regex.pattern == FREE_TEXT:
                free_text(name, value)  # raises, naming the character
            if v.regex.pattern in (ONE_LINE, NAME):
                single_line(name, value)
            if v.regex.pattern == WEB_URL:
                return ApiError(422, f"{name} must be an http(s) address", _URL_HINT)
            return ApiError(422, f"{name} contains a NUL character", "send printable text")
    return None


def _in_range(v: Range, value: float) -> bool:
    above = v.min is None or (value >= v.min if v.min_inclusive else value > v.min)
    below = v.max is None or (value <= v.max if v.max_inclusive else value < v.max)
    return above and below


def _range(v: Range) -> str:
    upper = "" if v.max_inclusive else " (exclusive)"
    return f"between {v.min} and {v.max}{upper}"


_URL_HINT = "e.g. https://example.org/alert"


def _check(values: MultiDict, schema_cls: type[Schema], where: str) -> None:
    schema = schema_cls()
    for name, given in values.lists():
        field = schema.fields.get(name)
        if field is None or field.dump_only:
            continue  # not a parameter of this operation (files, another form's fields)
        if len(given) > 1:
            raise ApiError(422, f"{name} is given {len(given)} times", f"send {name} once")
        value = given[0].strip()
        if not value:
            continue
        if name in FORMAT_KEYS:
            choices = _choices(field)
            if choices and value.lower() not in choices:
                formats = [c for c in choices if c]
                raise FormatNotAcceptable(f"unknown format {value[:40]!r}", formats)
            continue
        refusal = _refusal(name, field, value.lower() if _choices(field) else value)
        if refusal is not None:
            refusal.detail = f"{refusal.detail} ({where})"
            raise refusal


def check_request() -> None:
    """Validate the request's query string and form against its operation's schemas."""
    op = OPERATIONS.get((request.endpoint or "", request.method.lower()))
    if op is None:
        return
    contract = op[CONTRACT]
    if contract.query is not None:
        _check(request.args, contract.query, "query string")
    if contract.form is None or request.mimetype not in _FORMS:
        return
    try:
        form = request.form
    except HTTPException:  # too large: the view refuses it with the reason
        return
    if form.get("outputFormat", "").lower() == "html":
        return  # a browser form: its view checks each field and shows the form again, in place
    _check(form, contract.form, "form")
    if contract.seed_query:
        _check(request.args, contract.form, "query string")


def init_app(app: Flask) -> None:
    app.before_request(check_request)
