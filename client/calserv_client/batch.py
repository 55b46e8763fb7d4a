"""Upload many catalogues with bounded concurrency, then poll every job until it ends.

Each distinct upload (catalogue sha256 + alert + parameters + server) is one key in the state
file. A re-run skips keys that already finished, polls again the ones that were submitted, and
sends the rest; the server also returns the existing job for an identical re-upload.
"""

from __future__ import annotations

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
    "followup_id",
    "image_link",
    "status_url",
]
#: Local statuses besides the server's queued/running/succeeded/failed.
ERROR = "error"  # the request was refused or could not be completed: not sent, or sent in vain
INTERRUPTED = "interrupted"  # stopped before the job ended; a re-run resumes it


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
        on_submit: Callable[[dict], None] | None = None,
    ):
        self.client, self.items, self.state, self.opts = client, items, state, opts
        self.on_done, self.on_submit = on_done, on_submit
        self.tasks: dict[str, Task] = {}
        self.problems: list[tuple[Item, dict]] = []
        self._lock = threading.Lock()

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
            return
        except OSError as e:
            self._record(task, status=ERROR, error=f"cannot read {it.path}: {e.strerror}")
            return
        self._from_job(task, job, durable=True)
        task.record.setdefault("submitted", time.time())
        if self.on_submit is not None:
            self.on_submit(task.record)

    def _poll(self, task: Task) -> None:
        job_id = task.record["job_id"]
        try:
            job = self.client.wait(job_id, timeout=self.opts.timeout)
        except CalservError as e:
            if e.status == 404:  # the server forgot the job (e.g. another database): resend
                self._record(task, status=ERROR, error=e.as_text(), http_status=e.status)
            else:  # keep the job id: a re-run polls it again
                self._record(task, error=e.as_text(), http_status=e.status)
            return
        self._from_job(task, job)

    def _work(self, task: Task) -> None:
        if not task.record.get("job_id") or task.record.get("status") == ERROR:
            self._submit(task)
        rec = task.record
        if self.opts.wait and rec.get("job_id") and rec.get("status") not in (*FINAL_STATES, ERROR):
            self._poll(task)

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
            if t not in todo and self.on_done is not None:
                self.on_done(t.record)
        pool = ThreadPoolExecutor(max_workers=max(1, self.opts.jobs), thread_name_prefix="calserv")
        futures: dict[Future, Task] = {}
        interrupted = False
        try:
            # Submissions are queued first, in input order, so the server sees the burst early.
            for t in todo:
                futures[pool.submit(self._work, t)] = t
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    exc = f.exception()
                    task = futures[f]
                    if isinstance(exc, Interrupted):
                        continue
                    if exc is not None:
                        self._record(task, status=ERROR, error=f"{type(exc).__name__}: {exc}")
                    if self.on_done is not None:
                        self.on_done(task.record)
        except KeyboardInterrupt:
            interrupted = True
            self.client.stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if interrupted:
                for t in todo:
                    if t.record.get("status") not in (*FINAL_STATES, ERROR):
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
