"""Who is calling: the observatory behind a key (form field, query string or `Authorization`
header) or the logged-in session."""

from __future__ import annotations

from flask import request, session
from sqlalchemy.orm import Session

from web import keys
from web.csrf import require_csrf
from web.errors import ApiError
from web.seedparams import seed_value

HASHTAG_HINT = (
    "send your observatory's key as hashtag=... or an `Authorization: Token <key>` header, "
    "or log in at /login"
)
SESSION_KEY = "observatory_token"
#: `Authorization` schemes that carry a key: astrometry.net and BHTOM clients send `Token`.
AUTH_SCHEMES = ("token", "bearer")


def session_observatory(s: Session) -> keys.KeyOwner | None:
    """The logged-in observatory, or None (also when its key was rotated or revoked since)."""
    return keys.lookup_session(s, session.get(SESSION_KEY))


def presented_key() -> str | None:
    """The key the request carries: `hashtag` in the body, else in the query string, else an
    `Authorization: Token <key>` (or `Bearer <key>`) header; None when there is none."""
    key = seed_value("hashtag")
    if key:
        return key
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() in AUTH_SCHEMES and value.strip():
        return value.strip()
    return None


def authenticate(s: Session) -> keys.KeyOwner:
    """The observatory of a script (its key) or of a logged-in browser (cookie + CSRF)."""
    key = presented_key()
    if key:
        obs = keys.lookup(s, key)
    elif session.get(SESSION_KEY):
        require_csrf()  # only the cookie vouches for this request: it must come from our form
        obs = session_observatory(s)
    else:
        raise ApiError(401, "hashtag is missing", HASHTAG_HINT)
    if obs is None:
        raise ApiError(401, "unknown or revoked hashtag", "check the key your operator gave you")
    return obs
