"""Who is calling: the observatory behind a key (form field, query string or `Authorization`
header) or the logged-in session."""

from __future__ import annotations

from flask import g, request, session
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


def hashtag_owner(s: Session) -> keys.KeyOwner | None:
    """The observatory of the request's key (`presented_key`), or None; looked up once per
    request (the rate limit asks before the view does)."""
    if "hashtag_owner" not in g:
        g.hashtag_owner = keys.lookup(s, presented_key())
    return g.hashtag_owner


def authenticate(s: Session) -> keys.KeyOwner:
    """The observatory of a script (its key) or of a logged-in browser (cookie + CSRF)."""
    key = presented_key()
    if key:
        obs = hashtag_owner(s)
    elif session.get(SESSION_KEY):
        require_csrf()  # only the cookie vouches for this request: it must come from our form
        obs = session_observatory(s)
    else:
        raise ApiError(401, "hashtag is missing", HASHTAG_HINT)
    if obs is None:
        raise ApiError(401, "unknown or revoked hashtag", "check the key your operator gave you")
    return obs
