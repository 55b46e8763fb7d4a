"""Database engine and sessions, shared by the web tier, the workers and the CLI.

No Flask here: workers open sessions with :func:`session_scope` outside any request. Each function
takes the database URL; without one, the process's settings (`config.settings()`, read once) name
it. The web tier always passes its app's URL.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from config import settings


def engine(url: str | None = None, autocommit: bool = False) -> Engine:
    """One pooled engine per URL and process, whose connections survive a Postgres restart.

    `autocommit=True` gives the engine of one-statement reads (job polls, the busiest request):
    psycopg2 opens every transaction with a BEGIN round trip of its own and the pool ends it with
    a ROLLBACK, two of the three round trips of such a read; this engine's connections skip both.
    """
    # One cache key however the caller spells it: `engine()` and `engine(url)` share one pool.
    return _engine(url or settings().database_url, autocommit)


@lru_cache(maxsize=8)
def _engine(url: str, autocommit: bool) -> Engine:
    eng = create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    event.listen(eng, "checkout", _refuse_closed_connection)
    return eng


def _refuse_closed_connection(dbapi_conn, record, proxy) -> None:
    """Replace a pooled connection the server has closed (a restart, an idle timeout), so that
    no request fails on it.

    An idle connection has nothing to read unless the server said goodbye (its FATAL message and
    EOF), so one non-blocking poll of the socket tells. The usual `pool_pre_ping` sends a
    `SELECT 1` instead: a round trip to Postgres on every request, a quarter of a job poll's time.
    """
    if dbapi_conn.closed:
        raise DisconnectionError("the connection was closed")
    readable = select.poll()  # poll, not select: any descriptor number
    readable.register(dbapi_conn.fileno(), select.POLLIN)
    if readable.poll(0):
        raise DisconnectionError("the server closed this connection")  # the pool reconnects


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """One factory per URL and process: each sessionmaker makes a Session subclass of its own,
    whose event registry is costly to set up and never freed."""
    return _session_factory(url or settings().database_url)


@lru_cache(maxsize=4)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
