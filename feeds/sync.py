"""Keep the alerts table in step with an alert list: insert new alerts, update changed ones, never
duplicate one, never delete one that has observations.

An alert is matched by its name (case-insensitive), then by its TNS name, then by one of the
list's other names for it (a TNS object's discovery names), then by its IVORN. The feed that
created an alert (or adopted one added by hand) keeps it: its values replace the stored ones.
Another feed only fills what is missing (a TNS export adds the TNS name to a Gaia alert, never
moves it), so two feeds never undo each other. A feed alert that has left a complete read of its
feed is deleted, unless any job names it; a read that rejected rows, or that would delete more
than a tenth of the feed's alerts, deletes nothing.

`sync_feed` fetches a URL and records the outcome in `alert_feeds` (for /healthz and /metrics):
a feed that cannot be fetched or read is a warning there, never an exception.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import urllib3
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Alert, AlertFeed, Job
from db.session import session_scope
from feeds.parse import FeedAlert, FeedFormatError, Parsed, parse

log = logging.getLogger(__name__)

#: The fields a list sets (name and IVORN identify an alert and never change).
FIELDS = (
    "ra", "dec", "url", "tns_name", "alert_mag", "classification", "published", "discovered",
    "comment",
)  # fmt: skip
#: A read may delete at most this share of its feed's alerts (a truncated file deletes nothing).
MAX_REMOVED_SHARE = 0.1
#: How many rejected rows `alert_feeds.rejected` keeps.
KEEP_REJECTED = 20
MAX_FEED_BYTES = 64 * 1024 * 1024


@dataclass
class SyncReport:
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    #: Alerts that left the feed but stay: jobs name them, or the read could not delete safely.
    kept: int = 0
    rejected: list[str] = field(default_factory=list)


class FeedUnavailable(Exception):
    """The feed could not be fetched: the message says why."""


def upsert(
    s: Session, parsed: Parsed, feed: str | None = None, remove_missing: bool = False
) -> SyncReport:
    """Apply `parsed` to the alerts table in the session (the caller commits). `feed` is the
    URL the list came from (None: an operator's file, which keeps no alert)."""
    report = SyncReport(read=len(parsed.alerts), rejected=list(parsed.rejected))
    alerts = list(s.scalars(select(Alert)))
    by_tns = {a.tns_name: a for a in alerts if a.tns_name}
    by_name = {a.name.lower(): a for a in alerts}
    by_ivorn = {a.ivorn: a for a in alerts}
    seen: list[Alert] = []
    for rec in parsed.alerts:
        row = (
            by_name.get(rec.name.lower())
            or (by_tns.get(rec.tns_name) if rec.tns_name else None)
            or next((by_name[n.lower()] for n in rec.aliases if n.lower() in by_name), None)
            or by_ivorn.get(rec.ivorn)
        )
        if row is None:
            row = Alert(name=rec.name, ivorn=rec.ivorn, feed=feed, **_values(rec))
            s.add(row)
            report.added += 1
        elif _apply(row, rec, feed, by_tns):
            report.updated += 1
        else:
            report.unchanged += 1
        if row.tns_name:
            by_tns[row.tns_name] = row
        by_name[row.name.lower()] = row  # a name given twice in one list is the same alert
        by_ivorn[row.ivorn] = row
        seen.append(row)
    if remove_missing and feed is not None:
        kept = {id(a) for a in seen}
        _remove_missing(s, [a for a in alerts if a.feed == feed and id(a) not in kept], report)
    return report


def _values(rec: FeedAlert) -> dict:
    return {k: getattr(rec, k) for k in FIELDS}


def _apply(row: Alert, rec: FeedAlert, feed: str | None, by_tns: dict[str, Alert]) -> bool:
    """Update `row` from `rec`: every value the list has when this feed keeps the alert (or an
    operator imports), only the missing ones otherwise; True when something changed."""
    owns = feed is None or row.feed in (None, feed)
    changed = False
    for key, value in _values(rec).items():
        current = getattr(row, key)
        if value is None or value == current or not (owns or current is None):
            continue  # a list that lacks a value never erases one
        if key == "tns_name" and (current is not None or by_tns.get(value, row) is not row):
            continue  # a TNS name never moves between objects
        setattr(row, key, value)
        changed = True
    if feed is not None and row.feed is None:
        row.feed = feed
    return changed


def _remove_missing(s: Session, missing: list[Alert], report: SyncReport) -> None:
    if not missing:
        return
    kept_by_jobs = set(
        s.scalars(select(Job.alert_id).where(Job.alert_id.in_([a.id for a in missing])))
    )
    removable = [a for a in missing if a.id not in kept_by_jobs]
    total = report.read + len(missing)
    if report.rejected or len(removable) > MAX_REMOVED_SHARE * total:
        log.warning(
            "event=feed_removal_skipped missing=%d rejected=%d (the read may be incomplete)",
            len(removable),
            len(report.rejected),
        )
        report.kept += len(missing)
        return
    for a in removable:
        s.delete(a)
    report.removed += len(removable)
    report.kept += len(missing) - len(removable)


def fetch(url: str, timeout_s: float, max_bytes: int = MAX_FEED_BYTES) -> str:
    """The text at `url` (http or https), within `timeout_s` overall; FeedUnavailable else."""
    if not url.startswith(("http://", "https://")):
        raise FeedUnavailable(f"not an http(s) URL: {url[:80]!r}")
    deadline = time.monotonic() + timeout_s
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=timeout_s))
    try:
        resp = http.request("GET", url, preload_content=False, redirect=True)
        try:
            if resp.status != 200:
                raise FeedUnavailable(f"HTTP {resp.status}")
            chunks, size = [], 0
            for chunk in resp.stream(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise FeedUnavailable(f"larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FeedUnavailable(f"not read within {timeout_s:g} s")
                chunks.append(chunk)
        finally:
            resp.release_conn()
    except urllib3.exceptions.HTTPError as e:
        kind = "timed out" if "timeout" in type(e).__name__.lower() else "unreachable"
        raise FeedUnavailable(f"{kind}: {type(e).__name__}") from None
    body = b"".join(chunks)
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("latin-1")  # older exports; every byte is a character


def sync_feed(url: str, timeout_s: float) -> SyncReport | None:
    """Fetch and apply the feed at `url`, recording the outcome in `alert_feeds`; None (and a
    warning there) when it could not be fetched or read."""
    started = datetime.now(UTC)
    try:
        parsed = parse(fetch(url, timeout_s))
    except (FeedUnavailable, FeedFormatError) as e:
        log.warning("event=alert_feed_failed feed=%s error=%r", url, str(e))
        _record_failure(url, started, str(e))
        return None
    try:
        with session_scope() as s:
            # one sync of a feed at a time (two beat runs, or beat and an operator)
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(url.encode())})
            report = upsert(s, parsed, feed=url, remove_missing=True)
            status = _status(s, url)
            status.kind, status.last_attempt_at = parsed.kind, started
            status.last_success_at, status.last_error, status.failures = started, None, 0
            status.alerts, status.added, status.updated = report.read, report.added, report.updated
            status.removed, status.rejected_count = report.removed, len(report.rejected)
            status.rejected = report.rejected[:KEEP_REJECTED]
    except IntegrityError as e:  # e.g. /newevent added the same name meanwhile: next run will do
        log.exception("event=alert_feed_failed feed=%s (not stored)", url)
        _record_failure(url, started, f"not stored: {type(e.orig).__name__}")
        return None
    log.info(
        "event=alert_feed_synced feed=%s read=%d added=%d updated=%d removed=%d rejected=%d",
        url,
        report.read,
        report.added,
        report.updated,
        report.removed,
        len(report.rejected),
    )
    return report


def _record_failure(url: str, when: datetime, error: str) -> None:
    with session_scope() as s:
        status = _status(s, url)
        status.last_attempt_at, status.last_error = when, error[:500]
        status.failures = (status.failures or 0) + 1


def _status(s: Session, url: str) -> AlertFeed:
    status = s.get(AlertFeed, url, with_for_update=True)
    if status is None:
        status = AlertFeed(url=url, failures=0, rejected=[])
        s.add(status)
    return status


def feed_warnings(s: Session) -> list[str]:
    """One sentence per feed whose latest attempt failed or rejected rows (for /healthz)."""
    out = []
    for f in s.scalars(select(AlertFeed).order_by(AlertFeed.url)):
        if f.last_error:
            since = f.last_success_at.isoformat() if f.last_success_at else "never read"
            out.append(
                f"alert feed {f.url}: {f.last_error} ({f.failures} failed attempts; "
                f"last read: {since})"
            )
        elif f.rejected_count:
            first = f.rejected[0] if f.rejected else ""
            out.append(f"alert feed {f.url}: {f.rejected_count} rows not read ({first})")
    return out
