"""The seed service's parameters may come in the body or in the query string; the body wins.

Scripts written for the seed service put `hashtag`, `EventID`, `MJD`... in the URL
(`curl -F sexCat=@frame.cat "https://host/upload?hashtag=...&EventID=..."`); every upload and
new-alert parameter is read through :func:`seed_value` so both forms give the same request.
A key in a URL is kept out of the logs by :mod:`web.redact`.
"""

from __future__ import annotations

from flask import request


def seed_value(name: str, default: str | None = None) -> str | None:
    """The parameter `name` from the form body when it carries it, else from the query string."""
    form = request.form
    if name in form:
        return form[name]
    return request.args.get(name, default)
