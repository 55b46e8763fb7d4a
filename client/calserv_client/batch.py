"""Upload many catalogues with bounded concurrency while collecting the jobs that end.

Submission and collection are decoupled: `jobs` threads keep uploading while the collector asks
for all the unfinished jobs at once (``POST /jobs/status``), a long-poll that the server answers
as soon as any of them ends. No thread sleeps per frame: the batch runs at the service's own
speed. Against an older calserv without that endpoint (404/405), each job is polled on its own.

Each distinct upload (catalogue sha256 + alert + parameters + server) is one key in the state
file. A re-run skips keys that already finished, collects the ones that were submitted, and
sends the rest; the server also returns the existing job for an identical re-upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from calserv_client.api import FINAL_STATES, CalservError, Client, Interrupted, form_fields
from calserv_client.inputs import Item
from calserv_client.state import StateFile

RESULT_KEYS = [
    "alert",
    "survey",
    "filter",
    "mag",
    "mag_err",
    "limit",
    "limiting_mag",
    "zeropoint",
    "zeropoint_err",
    "zeropoint_order",
    "scatter",
    "npoints",
    "target_flags",
    "warnings",
    "cutout_url",
    "instrument_checks",
    "followup_id",
    "image_link",
    "status_url",
]
#: Local statuses besides the server's queued/running/succeeded/failed.
ERROR = "error"  # the request was refused or could not be completed: not sent, or sent in vain
INTERRUPTED = "interrupted"  # stopped before the job ended; a re-run resumes it
#: Statuses meaning the observatory key itself was refused: every further upload would be too.
KEY_REFUSED = (401, 403)
#: The most job ids in one bulk status request (the server's limit).
MAX_IDS = 1000
#: Seconds the server may hold one bulk status request.
LONG_POLL_S = 20.0


@dataclass
class Options:
    """How the batch is sent (the per-file metadata lives in `Item`)."""

    match_dist: float | None = None
    dry_run: bool = False
    no_plot: bool = True
    jobs: int = 4
    wait: bool = True
    timeout: float = 3600.0
    retry_failed: bool = False
    #: Least seconds between two bulk status requests: each answers every job that ended in
    #: between, so the server reads the list a few times a second, not once per job.
    collect_interval: float = 0.5


@dataclass
class Task:
    key: str
    items: list[Item]
    fields: dict[str, str]
    sha256: str
    record: dict = field(default_factory=dict)

    @property
    def item(self) -> Item:
        return self.items[0]


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def upload_key(url: str, sha256: str, fields: dict[str, str]) -> str:
    payload = json.dumps({"url": url, "sha256": sha256, "fields": fields}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _fields(item: Item, opts: Options) -> dict[str, str]:
    return form_fields(
        item.event or "",
        mjd=item.mjd,
        exptime=item.exptime,
        match_dist=opts.match_dist,
        force_filter=item.force_filter,
        dry_run=opts.dry_run,
        no_plot=opts.no_plot,
        comment=item.comment,
    )


class Batch:
    """Runs one batch; `run` returns one result dict per input item, in input order."""

    def __init__(
        self,
        client: Client,
        items: list[Item],
        state: StateFile,
        opts: Options,
        on_done: Callable[[dict], None] | None = None,
    ):
        self.client, self.items, self.state, self.opts = client, items, state, opts
        self.on_done = on_done
        self.tasks: dict[str, Task] = {}
        self.problems: list[tuple[Item, dict]] = []
        #: Set when the server refused the key (401/403): the batch stopped there.
        self.key_refused: CalservError | None = None
        self._pending: dict[str, Task] = {}  # job id → task, oldest first; guarded by _cv
        self._sending = 0
        self._cv = threading.Condition()
        self._done_lock = threading.Lock()

    # -- planning ---------------------------------------------------------------------------
    def _plan(self) -> None:
        for item in self.items:
            if item.problem:
                self.problems.append((item, {"status": ERROR, "error": item.problem}))
                continue
            try:
                sha = sha256_file(item.path)
            except OSError as e:
                self.problems.append((item, {"status": ERROR, "error": f"unreadable: {e}"}))
                continue
            fields = _fields(item, self.opts)
            key = upload_key(self.client.url, sha, fields)
            if key in self.tasks:
                self.tasks[key].items.append(item)
            else:
                self.tasks[key] = Task(key, [item], fields, sha)

    def _base(self, task: Task) -> dict:
        it = task.item
        return {
            "file": str(it.path),
            "event": it.event,
            "mjd": it.mjd,
            "mjd_source": it.mjd_source,
            "sha256": task.sha256,
            "fields": task.fields,
            "url": self.client.url,
        }

    def _record(self, task: Task, durable: bool = False, **changes) -> None:
        task.record = {**task.record, **self._base(task), **changes}
        self.state.put(task.key, task.record, durable=durable)

    def _from_job(self, task: Task, job: dict, durable: bool = False) -> None:
        changes = {k: job.get(k) for k in RESULT_KEYS if k in job}
        changes.update(
            status=job.get("status"),
            job_id=job.get("job_id", task.record.get("job_id")),
            error=job.get("error") if job.get("status") == "failed" else None,
            http_status=None,
        )
        self._record(task, durable=durable, **changes)

    # -- work -------------------------------------------------------------------------------
    def _done(self, task: Task) -> None:
        if self.on_done is not None:
            with self._done_lock:
                self.on_done(task.record)

    def _submit(self, task: Task) -> None:
        it = task.item
        try:
            job = self.client.upload(
                it.path,
                it.event or "",
                mjd=it.mjd,
                exptime=it.exptime,
                match_dist=self.opts.match_dist,
                force_filter=it.force_filter,
                dry_run=self.opts.dry_run,
                no_plot=self.opts.no_plot,
                comment=it.comment,
            )
        except CalservError as e:
            self._record(task, status=ERROR, error=e.as_text(), http_status=e.status)
            if e.status in KEY_REFUSED and self.key_refused is None:
                self.key_refused = e
                self.client.stop.set()  # stop every other request now: they would fail alike
            return
        except OSError as e:
            self._record(task, status=ERROR, error=f"cannot read {it.path}: {e.strerror}")
            return
        self._from_job(task, job, durable=True)
        task.record.setdefault("submitted", time.time())

    def _send(self, task: Task) -> None:
        """Upload one task (a submitting thread), then hand it to the collector."""
        try:
            if not self.client.stop.is_set():
                self._submit(task)
        finally:
            with self._cv:
                self._sending -= 1
                collect = self._collectable(task)
                if collect:
                    self._pending[task.record["job_id"]] = task
                self._cv.notify_all()
        if not collect and task.record.get("status"):
            self._done(task)

    def _collectable(self, task: Task) -> bool:
        rec = task.record
        return (
            self.opts.wait
            and bool(rec.get("job_id"))
            and rec.get("status") not in (*FINAL_STATES, ERROR)
        )

    def _next_ids(self) -> list[str] | None:
        """The oldest pending job ids (at most MAX_IDS); None when nothing is left to collect."""
        with self._cv:
            while not self._pending and self._sending and not self.client.stop.is_set():
                self._cv.wait(0.5)
            if self.client.stop.is_set() or not self._pending:
                return None
            return list(self._pending)[:MAX_IDS]

    def _finish(self, job_id: str, **changes) -> None:
        with self._cv:
            task = self._pending.pop(job_id, None)
        if task is not None:
            if changes:
                self._record(task, **changes)
            self._done(task)

    def _collect(self) -> None:
        """Collect every submitted job: bulk long-polls, or one poll per job on an older server."""
        with contextlib.suppress(Interrupted):  # the key was refused, or the run was stopped
            self._collect_in_bulk()

    def _collect_in_bulk(self) -> None:
        while (ids := self._next_ids()) is not None:
            t0 = time.monotonic()
            states = {i: self._pending[i].record.get("status") or "queued" for i in ids}
            try:
                answer = self.client.statuses(ids, states, wait=LONG_POLL_S)
            except CalservError as e:  # keep the job ids: a re-run collects them
                for job_id in ids:
                    self._finish(job_id, error=e.as_text(), http_status=e.status)
                continue
            if answer is None:
                return self._collect_one_by_one()
            for job in answer.get("jobs", []):
                task = self._pending.get(job.get("job_id"))
                if task is None:
                    continue
                self._from_job(task, job)
                if job.get("status") in FINAL_STATES:
                    self._finish(task.record["job_id"])
            for job_id in answer.get("unknown", []):  # e.g. another database: send again
                self._finish(job_id, status=ERROR, error="HTTP 404: unknown job", http_status=404)
            self._drop_timed_out()
            self.client._sleep(self.opts.collect_interval - (time.monotonic() - t0))

    def _drop_timed_out(self) -> None:
        now = time.time()
        with self._cv:
            late = [
                i
                for i, t in self._pending.items()
                if now - t.record.get("submitted", now) > self.opts.timeout
            ]
        for job_id in late:
            self._finish(job_id)

    def _poll(self, task: Task) -> None:
        job_id = task.record["job_id"]
        try:
            job = self.client.wait(job_id, timeout=self.opts.timeout)
        except CalservError as e:
            if e.status == 404:  # the server forgot the job (e.g. another database): resend
                self._record(task, status=ERROR, error=e.as_text(), http_status=e.status)
            else:  # keep the job id: a re-run polls it again
                self._record(task, error=e.as_text(), http_status=e.status)
        else:
            self._from_job(task, job)
        self._finish(job_id)

    def _collect_one_by_one(self) -> None:
        """An older calserv: one polling thread per job in flight (`jobs` of them)."""
        with ThreadPoolExecutor(max(1, self.opts.jobs), thread_name_prefix="poll") as pool:
            try:
                self._hand_out_polls(pool)
            except KeyboardInterrupt:
                self.client.stop.set()  # before the pool waits for its polling threads
                raise

    def _hand_out_polls(self, pool: ThreadPoolExecutor) -> None:
        polling: set[str] = set()
        futures: list[Future] = []
        while True:
            with self._cv:
                new = [t for i, t in self._pending.items() if i not in polling]
                polling.update(self._pending)
                finished = sum(f.done() for f in futures)
                if not new and not self._sending and len(polling) == finished:
                    return
            futures += [pool.submit(self._poll, t) for t in new]
            if self.client.stop.wait(0.1):
                return

    def _needs_work(self, task: Task) -> bool:
        prior = self.state.get(task.key)
        if not prior:
            return True
        task.record = prior
        status = prior.get("status")
        if status == "succeeded" or (status == "failed" and not self.opts.retry_failed):
            task.record["resumed"] = True
            return False
        if status == "failed" or status == ERROR or not prior.get("job_id"):
            # send again (the server re-queues a failed job on an identical re-upload)
            task.record = {k: v for k, v in prior.items() if k not in ("job_id", "error")}
            task.record["status"] = ERROR
        return True

    def run(self) -> list[dict]:
        """Do the batch; on KeyboardInterrupt stops promptly, keeping the state, and re-raises
        after marking unfinished results ``interrupted``."""
        self._plan()
        todo = [t for t in self.tasks.values() if self._needs_work(t)]
        for t in self.tasks.values():
            if t not in todo:
                self._done(t)
        to_send = [t for t in todo if not t.record.get("job_id") or t.record.get("status") == ERROR]
        for t in todo:
            if t not in to_send and self._collectable(t):
                self._pending[t.record["job_id"]] = t
        self._sending = len(to_send)
        pool = ThreadPoolExecutor(max_workers=max(1, self.opts.jobs), thread_name_prefix="send")
        interrupted = False
        try:
            # Submissions are queued in input order, so the server sees the burst early.
            futures = [pool.submit(self._send, t) for t in to_send]
            if self.opts.wait:
                self._collect()
            pending = set(futures)
            while pending:  # --no-wait, or the key was refused: let the submissions end
                _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            interrupted = True
            self.client.stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for t in todo:
                if t.record.get("status") in (*FINAL_STATES, ERROR):
                    continue
                if self.key_refused is not None and not t.record.get("job_id"):
                    t.record = {
                        **t.record,
                        **self._base(t),
                        "status": ERROR,
                        "error": f"not sent: {self.key_refused.as_text()}",
                    }
                elif interrupted or self.key_refused is not None:
                    t.record = {**t.record, **self._base(t), "status": INTERRUPTED}
        return self.results()

    def results(self) -> list[dict]:
        by_item: dict[int, dict] = {}
        for t in self.tasks.values():
            for it in t.items:
                rec = {**t.record, **self._base(t)}
                rec["file"] = str(it.path)
                if not rec.get("status"):
                    rec["status"] = INTERRUPTED
                by_item[id(it)] = rec
        for it, rec in self.problems:
            by_item[id(it)] = {"file": str(it.path), "event": it.event, "mjd": it.mjd, **rec}
        return [by_item[id(it)] for it in self.items]


def is_failure(rec: dict, wait: bool = True) -> bool:
    status = rec.get("status")
    if status == "succeeded":
        return False
    return wait or status not in ("queued", "running")
