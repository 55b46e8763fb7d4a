"""Browser login with the observatory's hashtag: `GET/POST /login`, `POST /logout`.

The session cookie is signed (SECRET_KEY) and HttpOnly; it holds the observatory id and a
fingerprint of its key (never the key), checked on every request, so a rotated or revoked key logs
the browser out at its next request.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, render_template, request, session, url_for

from web import keys
from web.auth import HASHTAG_HINT, SESSION_KEY, session_observatory
from web.errors import ApiError
from web.hygiene import local_path
from web.negotiation import output_format
from web.ops import rate_limited
from web.request_session import db

bp = Blueprint("login", __name__)


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the home page (no open redirects)."""
    return local_path(target) or url_for("pages.home")


def current_observatory() -> keys.KeyOwner | None:
    """The logged-in observatory, or None (also when its key was revoked since the login)."""
    obs = session_observatory(db())
    if obs is None and session:
        session.clear()
    return obs


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a browser that is not logged in to the login page, then back here."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        obs = current_observatory()
        if obs is None:
            if output_format() == "json":
                raise ApiError(401, "not logged in", HASHTAG_HINT)
            # Back to this page after the login, without a key the URL carried (it would sit
            # in the login page's URL, its history entry and its access-log line).
            query = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "hashtag"])
            return redirect(login_url(f"{request.path}?{query}" if query else request.path), 303)
        return view(obs, *args, **kwargs)

    return wrapped


@bp.get("/login")
def login_form():
    return render_template("login.html", next=safe_next(request.args.get("next")), error=None)


@bp.post("/login")
@rate_limited
def login():
    key = request.form.get("hashtag", "").strip()
    nxt = safe_next(request.form.get("next"))
    obs = keys.lookup(db(), key)
    if obs is None:
        if output_format() == "json":
            resp = jsonify(
                error="unknown or revoked hashtag", detail="check the key your operator gave you"
            )
        else:
            resp = Response(
                render_template("login.html", next=nxt, error="Unknown or revoked hashtag."),
                mimetype="text/html",
            )
        resp.status_code = 401
        return resp
    session.clear()  # a fresh session (and CSRF secret) for the new identity
    session[SESSION_KEY] = keys.session_token(obs)
    session["observatory"] = obs.name
    if output_format() == "json":
        return jsonify(observatory=obs.name)
    return redirect(nxt, 303)


@bp.post("/logout")
@rate_limited
def logout():
    obs = session_observatory(db())
    if obs is not None:
        keys.end_sessions(db(), obs)  # a copy of this cookie stops working too
    session.clear()
    if output_format() == "json":
        return jsonify(logged_out=True)
    return redirect(url_for("pages.home"), 303)


def login_url(next_path: str) -> str:
    return url_for("login.login_form") + "?" + urlencode({"next": next_path})
