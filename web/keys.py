"""Observatory API keys ("hashtags"): made here, stored only as salted, peppered HMACs.

A key is `<prefix>.<secret>`; the prefix is stored in clear to find the row without scanning,
the HMAC is compared in constant time. Seed-era keys without a dot are looked up by their first
characters the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import settings
from web.models import Observatory

PREFIX_LEN = 8


def _digest(salt: str, key: str) -> str:
    pepper = settings().hashtag_pepper.encode()
    return hmac.new(pepper, (salt + key).encode(), hashlib.sha256).hexdigest()


def new_key() -> tuple[str, str, str, str]:
    """A fresh key and what to store of it: (key, prefix, salt, hash)."""
    key = secrets.token_urlsafe(8)[:PREFIX_LEN] + "." + secrets.token_urlsafe(24)
    salt = secrets.token_hex(16)
    return key, key[:PREFIX_LEN], salt, _digest(salt, key)


def set_key(observatory: Observatory) -> str:
    """Give the observatory a new key (rotation revokes the old one); returns it, shown once."""
    key, observatory.key_prefix, observatory.key_salt, observatory.key_hash = new_key()
    observatory.revoked = False
    return key


def lookup(session: Session, key: str | None) -> Observatory | None:
    """The active observatory owning `key`, or None."""
    if not key or len(key) > 256:
        return None
    key = key.strip()
    candidates = session.scalars(
        select(Observatory).where(
            Observatory.key_prefix == key[:PREFIX_LEN], Observatory.revoked.is_(False)
        )
    )
    found = None
    for obs in candidates:
        if hmac.compare_digest(_digest(obs.key_salt, key), obs.key_hash):
            found = obs
    return found


def session_token(observatory: Observatory) -> str:
    """What a login cookie holds: the observatory id and a fingerprint of its current key.

    Not the key itself (a signed cookie is readable); rotating or revoking the key ends the session.
    """
    return f"{observatory.id}:{observatory.key_hash[:24]}"


def lookup_session(session: Session, token: str | None) -> Observatory | None:
    """The active observatory a login cookie's token belongs to, or None."""
    obs_id, _, fingerprint = (token or "").partition(":")
    if not obs_id.isdigit() or not fingerprint:
        return None
    obs = session.get(Observatory, int(obs_id))
    if obs is None or obs.revoked:
        return None
    return obs if hmac.compare_digest(obs.key_hash[:24], fingerprint) else None
