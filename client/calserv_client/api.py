"""The calserv HTTP API (uploads, job status) with retries that are safe to repeat.

Retry policy, in one place (`Client._request`):

* connection errors and timeouts, 502/503/504 and 507 (the server's disk is full): retried with
  exponential backoff and full jitter, waiting at least ``Retry-After`` when the server sends one;
* 429: retried after ``Retry-After`` (or the backoff when it is absent);
* every other 4xx and 500: never retried; the server's JSON ``{"error", "detail"}`` is raised as
  `CalservError`.

Repeating an upload is safe: the server returns the existing job for an identical re-upload.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError as TransportError

from calserv_client.version import __version__

DEFAULT_URL = "http://127.0.0.1:5000"
FINAL_STATES = ("succeeded", "failed")
RETRY_STATUSES = (429, 502, 503, 504, 507)
#: Statuses of a server whose API has no bulk job status (`POST /jobs/status`): an older calserv.
NO_BULK_STATUSES = (404, 405)
MAX_RETRY_AFTER_S = 300.0

#: Called after every HTTP attempt: (method, path, status or None on a connection error, seconds).
ResponseHook = Callable[[str, str, "int | None", float], None]


class CalservError(Exception):
    """A request the server refused or that could not be completed after the retries.

    ``status`` is the HTTP status (None when the server could not be reached), ``error`` and
    ``detail`` the server's explanation (or the network error).
    """

    def __init__(self, status: int | None, error: str, detail: str | None = None):
        super().__init__(f"{error}: {detail}" if detail else error)
        self.status, self.error, self.detail = status, error, detail

    def as_text(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status else ""
        return prefix + str(self)


class Interrupted(Exception):
    """Raised inside a request or wait loop when the caller's stop event is set."""


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` per request; backoff ``base_s * 2**k`` seconds, at most ``cap_s``."""

    max_attempts: int = 8
    base_s: float = 0.5
    cap_s: float = 60.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        delay = random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))  # full jitter
        if retry_after is not None:
            # The server said when; a little jitter keeps a burst of clients from returning at once.
            delay = retry_after + random.uniform(0, min(1.0, 0.1 * retry_after + 0.05))
        return delay


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP date), clipped to [0, 300]; else None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        seconds = (when - now_dt).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _text(resp: urllib3.BaseHTTPResponse) -> str:
    return " ".join(resp.data.decode("utf-8", "replace").split())[:200]


def _error_from(resp: urllib3.BaseHTTPResponse) -> CalservError:
    try:
        body = json.loads(resp.data)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return CalservError(resp.status, str(body["error"]), body.get("detail"))
    return CalservError(resp.status, resp.reason or "HTTP error", _text(resp) or None)


class Client:
    """A calserv API client for one observatory.

    >>> c = Client("http://127.0.0.1:5000", hashtag)            # doctest: +SKIP
    >>> job = c.upload("frame.cat", "ivo://110610", mjd=59000.5)  # doctest: +SKIP
    >>> c.wait(job["job_id"])["mag"]                             # doctest: +SKIP

    Thread-safe: one pool of keep-alive connections (urllib3: a fraction of the CPU of a
    higher-level HTTP library per request, which counts when a batch client shares the host).
    ``stop`` (a `threading.Event`) interrupts sleeps and waits promptly with `Interrupted`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        hashtag: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        poll_interval: float | None = None,
        stop: threading.Event | None = None,
        on_response: ResponseHook | None = None,
    ):
        if not hashtag:
            raise ValueError("a hashtag (the observatory's key) is required")
        self.url = url.rstrip("/")
        self._hashtag = hashtag
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self.stop = stop or threading.Event()
        self.on_response = on_response
        self._http = urllib3.PoolManager(
            maxsize=16,
            headers={"User-Agent": f"calserv-client/{__version__}", "Accept": "application/json"},
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            retries=False,  # the retry policy is ours, below
        )

    def __repr__(self) -> str:  # never show the key
        return f"Client({self.url!r}, hashtag=<hidden>)"

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(max(seconds, 0.0)):
            raise Interrupted()

    def _request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> urllib3.BaseHTTPResponse:
        """One API call with the retry policy above; returns the final 2xx/3xx response."""
        url = self.url + "/" + path.lstrip("/")
        headers = {"Content-Type": content_type} if content_type else None
        last: CalservError | None = None
        for attempt in range(self.retry.max_attempts):
            if self.stop.is_set():
                raise Interrupted()
            t0 = time.perf_counter()
            retry_after = None
            try:
                resp = self._http.request(method, url, body=body, headers=headers)
            except TransportError as e:
                self._hook(method, path, None, time.perf_counter() - t0)
                last = CalservError(None, "cannot reach calserv", f"{self.url}: {type(e).__name__}")
            else:
                self._hook(method, path, resp.status, time.perf_counter() - t0)
                if resp.status < 400:
                    return resp
                if resp.status not in RETRY_STATUSES:
                    raise _error_from(resp)
                last = _error_from(resp)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if attempt + 1 < self.retry.max_attempts:
                self._sleep(self.retry.backoff(attempt, retry_after))
        assert last is not None
        gave_up = f"gave up after {self.retry.max_attempts} attempts"
        raise CalservError(
            last.status, last.error, f"{last.detail}; {gave_up}" if last.detail else gave_up
        )

    def _hook(self, method: str, path: str, status: int | None, elapsed: float) -> None:
        if self.on_response is not None:
            self.on_response(method, path.split("?")[0], status, elapsed)

    # -- upload -------------------------------------------------------------------------------
    def upload(
        self,
        path: str | Path,
        event: str,
        *,
        mjd: float | None = None,
        exptime: float | None = None,
        match_dist: float | None = None,
        force_filter: str | None = None,
        dry_run: bool = False,
        no_plot: bool = True,
        comment: str | None = None,
        data: bytes | None = None,
        filename: str | None = None,
    ) -> dict:
        """Upload one catalogue for the alert ``event`` (IVORN or name); returns the job JSON
        (``job_id``, ``status``, ``status_url``, plus ``location``). Raises `CalservError`."""
        path = Path(path)
        if data is None:
            data = path.read_bytes()
        fields = form_fields(
            event,
            mjd=mjd,
            exptime=exptime,
            match_dist=match_dist,
            force_filter=force_filter,
            dry_run=dry_run,
            no_plot=no_plot,
            comment=comment,
        )
        fields["hashtag"] = self._hashtag
        catalogue = (filename or path.name, data, "application/octet-stream")
        form, content_type = urllib3.encode_multipart_formdata(
            [*fields.items(), ("sexCat", catalogue)]
        )
        resp = self._request("POST", "/upload", form, content_type)
        body = self._json(resp)
        body.setdefault("location", resp.headers.get("Location") or f"/jobs/{body.get('job_id')}")
        return body

    # -- job status ---------------------------------------------------------------------------
    def status(self, job_id: str) -> dict:
        """The job's JSON right now (``status`` is queued, running, succeeded or failed)."""
        return self._json(self._status(job_id))

    def _status(self, job_id: str) -> urllib3.BaseHTTPResponse:
        return self._request("GET", f"/jobs/{job_id}?" + urlencode({"outputFormat": "json"}))

    def wait(
        self,
        job_id: str,
        timeout: float = 3600.0,
        on_poll: Callable[[dict], None] | None = None,
    ) -> dict:
        """Poll the job until it succeeds or fails, or ``timeout`` seconds pass (then the last
        state is returned, still ``queued``/``running``). Polls as often as the server's
        ``Retry-After`` suggests unless ``poll_interval`` was given."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self._status(job_id)
            body = self._json(resp)
            if on_poll is not None:
                on_poll(body)
            if body.get("status") in FINAL_STATES:
                return body
            left = deadline - time.monotonic()
            if left <= 0:
                return body
            interval = self.poll_interval
            if interval is None:
                interval = parse_retry_after(resp.headers.get("Retry-After")) or 1.0
            self._sleep(min(max(interval, 0.05), 30.0, left))

    def statuses(
        self, job_ids: list[str], states: Mapping[str, str] | None = None, wait: float = 0
    ) -> dict | None:
        """Many jobs at once (``POST /jobs/status``, at most 1000 ids): the jobs whose state differs
        from ``states`` (job id → last seen state), as ``{"jobs": [...], "unknown": [...],
        "pending": n}``. With ``wait`` the server holds the answer until one of them ends (at
        most ``wait`` seconds). None when the server has no such endpoint (an older calserv)."""
        body = json.dumps({"ids": job_ids, "states": dict(states or {}), "wait": wait})
        try:
            resp = self._request("POST", "/jobs/status", body.encode(), "application/json")
        except CalservError as e:
            if e.status in NO_BULK_STATUSES:
                return None
            raise
        return self._json(resp)

    def submit_and_wait(self, path: str | Path, event: str, timeout: float = 3600, **kw) -> dict:
        job = self.upload(path, event, **kw)
        if job.get("status") in FINAL_STATES:
            return job
        return self.wait(job["job_id"], timeout=timeout)

    @staticmethod
    def _json(resp: urllib3.BaseHTTPResponse) -> dict:
        try:
            body = json.loads(resp.data)
        except ValueError:
            raise CalservError(
                resp.status, "calserv answered with something other than JSON", _text(resp)
            ) from None
        if not isinstance(body, dict):
            raise CalservError(resp.status, "unexpected JSON from calserv", str(body)[:200])
        return body


def form_fields(
    event: str,
    *,
    mjd: float | None = None,
    exptime: float | None = None,
    match_dist: float | None = None,
    force_filter: str | None = None,
    dry_run: bool = False,
    no_plot: bool = True,
    comment: str | None = None,
) -> dict[str, str]:
    """The seed form fields of POST /upload, except ``hashtag`` and ``sexCat``."""
    fields = {
        "EventID": event,
        "forceFilter": force_filter or "no",
        "dryRun": "1" if dry_run else "0",
        "noPlot": "1" if no_plot else "0",
        "outputFormat": "json",
    }
    optional: Mapping[str, Any] = {
        "MJD": mjd,
        "expTime": exptime,
        "matchDist": match_dist,
        "comment": comment,
    }
    fields.update({k: _fmt(v) for k, v in optional.items() if v is not None and v != ""})
    return fields


def _fmt(v: Any) -> str:
    return repr(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
