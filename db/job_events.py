"""Job ends as events: whoever ends a job publishes it, web processes wake the requests waiting.

Ending a job (:func:`db.job_states.succeed` or :func:`db.job_states.fail`) also runs `pg_notify`
in the same transaction (:func:`publish_job_end`), so Postgres delivers the wake-up exactly when
the job's new row becomes visible: never before the commit (a woken reader would see the old
state), never lost while the row is committed. Each web process keeps one listening connection
to its app's database (:class:`JobEnds`, started on first use) and wakes the threads waiting
for the ended jobs; a waiter re-reads the job rows, so a notification only says "look now".
Redis pub/sub would have to be published after the commit, in a second step that a crash between
the two loses; Postgres NOTIFY costs no new service and no second round trip (the payload rides
on the commit).

The payload also carries the job's run time, so every web process knows the recent mean job time
without querying for it (for an honest ``Retry-After``).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg2
from sqlalchemy import ColumnElement, func, make_url, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "calserv_job_end"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
#: A waiter re-reads its jobs at least this often, whatever the listener says: a notification
#: lost while the listening connection was down delays an answer by at most this much.
RECHECK_S = 5.0
#: Mean job time assumed until this process has seen a job end.
DEFAULT_JOB_S = 1.0


def publish_job_end(s: Session, job_id: str, seconds: float | None) -> None:
    """Announce, on the commit of `s`, that the job ended after running `seconds` (None: it
    never ran, and says nothing about job times)."""
    s.execute(_NOTIFY, {"channel": CHANNEL, "payload": job_end_payload(job_id, seconds)})


def job_end_payload(job_id: str, seconds: float | None) -> str:
    """The notification's text: the job id, then its run time when it has one."""
    return job_id if seconds is None else f"{job_id} {seconds:.4f}"


def notify_job_end(payload: ColumnElement[str]) -> ColumnElement:
    """`pg_notify` of a job end as an SQL expression, for a statement that ends the job itself."""
    return func.pg_notify(CHANNEL, payload)


class JobEnds:
    """One process's view of job ends: a LISTEN connection on a daemon thread, the threads
    waiting for particular jobs, and a moving mean of recent job run times."""

    def __init__(self, database_url: str):
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.mean_job_s = DEFAULT_JOB_S
        self._seen = 0

    def start(self) -> None:
        """Start listening in this process (idempotent; a forked child starts its own)."""
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._waiting = {}
            self._thread = threading.Thread(target=self._listen, name="job-ends", daemon=True)
            self._thread.start()

    @contextmanager
    def watch(self, job_ids: Iterable[str]) -> Iterator[threading.Event]:
        """An event set whenever one of `job_ids` ends (or the listener reconnects, when ends may
        have been missed); register before reading the rows, so that no end falls in between."""
        self.start()
        event = threading.Event()
        ids = list(job_ids)
        with self._lock:
            for job_id in ids:
                self._waiting.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                for job_id in ids:
                    waiters = self._waiting.get(job_id)
                    if waiters is not None:
                        waiters.discard(event)
                        if not waiters:
                            del self._waiting[job_id]

    def _wake(self, job_id: str | None, seconds: float | None = None) -> None:
        with self._lock:
            if seconds is not None:
                # Mean of about the last 50 jobs: weight 1/n until 50 seen, then 1/50.
                self._seen += 1
                self.mean_job_s += (seconds - self.mean_job_s) / min(self._seen, 50)
            if job_id is None:
                events = [e for waiters in self._waiting.values() for e in waiters]
            else:
                events = list(self._waiting.get(job_id, ()))
        for event in events:
            event.set()

    def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = psycopg2.connect(self._dsn, connect_timeout=5)
            except psycopg2.Error as e:
                log.warning("event=listen_connect_failed error=%r", str(e).strip())
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5
            try:
                conn.autocommit = True
                conn.cursor().execute(f"LISTEN {CHANNEL}")
                self._wake(None)  # ends may have happened while we were not listening
                while True:
                    if select.select([conn], [], [], 30.0) == ([], [], []):
                        conn.cursor().execute("SELECT 1")  # notice a dead server while idle
                    conn.poll()
                    while conn.notifies:
                        job_id, _, seconds = conn.notifies.pop(0).payload.partition(" ")
                        self._wake(job_id, _seconds(seconds))
            except (psycopg2.Error, OSError) as e:
                log.warning("event=listen_lost error=%r (reconnecting)", str(e).strip())
            finally:
                conn.close()


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


_ENDS: dict[str, JobEnds] = {}
_ENDS_LOCK = threading.Lock()


def job_ends(database_url: str) -> JobEnds:
    """The process's :class:`JobEnds` of this database (the app's URL; listening from the first
    call on)."""
    with _ENDS_LOCK:
        ends = _ENDS.get(database_url)
        if ends is None:
            ends = _ENDS[database_url] = JobEnds(database_url)
    ends.start()
    return ends
