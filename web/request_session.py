"""The request-scoped database session of the web tier."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from db.session import session_factory


def db() -> Session:
    """The session of the current request, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = session_factory(current_app.config["DATABASE_URL"])()
    return g.db


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def _close(exc: BaseException | None) -> None:
        s = g.pop("db", None)
        if s is not None:
            if exc is not None:
                s.rollback()
            s.close()
