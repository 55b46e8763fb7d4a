"""Observatory API keys ("hashtags"): made here, stored only as salted, peppered HMACs.

A key is `<prefix>.<secret>`; the prefix is stored in clear to find the row without scanning,
the HMAC is compared in constant time. Seed-era keys without a dot are looked up by their first
characters the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from db.models import Observatory

PREFIX_LEN = 8


class KeyOwner(NamedTuple):
    """What a request needs of the observatory a key belongs to (read with Core: every upload
    authenticates, and loading the ORM entity would cost several times the query)."""

    id: int
    name: str
    key_hash: str
    session_generation: int = 0


_OBS = Observatory.__table__
_ACTIVE = select(
    _OBS.c.id, _OBS.c.name, _OBS.c.key_hash, _OBS.c.key_salt, _OBS.c.session_generation
).where(_OBS.c.revoked.is_(False))
_BY_PREFIX = _ACTIVE.where(_OBS.c.key_prefix == bindparam("prefix"))
_BY_ID = _ACTIVE.where(_OBS.c.id == bindparam("id"))


def _digest(salt: str, key: str) -> str:
    pepper = current_app.config["HASHTAG_PEPPER"].encode()
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


def lookup(session: Session, key: str | None) -> KeyOwner | None:
    """The active observatory owning `key`, or None."""
    if not key or len(key) > 256:
        return None
    key = key.strip()
    found = None
    for obs_id, name, key_hash, salt, generation in session.execute(
        _BY_PREFIX, {"prefix": key[:PREFIX_LEN]}
    ):
        if hmac.compare_digest(_digest(salt, key), key_hash):
            found = KeyOwner(obs_id, name, key_hash, generation)
    return found


def session_token(owner: KeyOwner) -> str:
    """What a login cookie holds: the observatory id, a fingerprint of its current key and its
    session generation.

    Not the key itself (a signed cookie is readable); rotating or revoking the key ends the
    session, and so does a logout (it raises the generation, see `end_sessions`).
    """
    return f"{owner.id}:{owner.key_hash[:24]}:{owner.session_generation}"


def lookup_session(session: Session, token: str | None) -> KeyOwner | None:
    """The active observatory a login cookie's token belongs to, or None."""
    obs_id, fingerprint, generation = ([*(token or "").split(":"), "", ""])[:3]
    if not obs_id.isdigit() or len(obs_id) > 9 or not fingerprint:  # 9 digits fit an integer
        return None
    row = session.execute(_BY_ID, {"id": int(obs_id)}).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash[:24], fingerprint):
        return None
    if generation != str(row.session_generation):  # logged out since this cookie was issued
        return None
    return KeyOwner(row.id, row.name, row.key_hash, row.session_generation)


_END_SESSIONS = (
    update(_OBS)
    .where(_OBS.c.id == bindparam("obs_id"))
    .values(session_generation=_OBS.c.session_generation + 1)
)


def end_sessions(session: Session, owner: KeyOwner) -> None:
    """Log every browser of the observatory out, on the server: copies of their cookies too."""
    session.execute(_END_SESSIONS, {"obs_id": owner.id})
    session.commit()
