"""Who is calling: the observatory behind the `hashtag` form field or the logged-in session."""

from __future__ import annotations

from flask import request, session
from sqlalchemy.orm import Session

from web import keys
from web.csrf import require_csrf
from web.errors import ApiError

HASHTAG_HINT = "send your observatory's key as hashtag=..., or log in at /login"
SESSION_KEY = "observatory_token"


def session_observatory(s: Session) -> keys.KeyOwner | None:
    """The logged-in observatory, or None (also when its key was rotated or revoked since)."""
    return keys.lookup_session(s, session.get(SESSION_KEY))


def authenticate(s: Session) -> keys.KeyOwner:
    """The observatory of a script (hashtag field) or of a logged-in browser (cookie + CSRF)."""
    key = request.form.get("hashtag")
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
