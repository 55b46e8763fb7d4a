"""Helpers shared by the client tests (a uniquely named module: every conftest is `conftest`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GAIA = ROOT / "tests" / "data" / "gaia-demo"


CLI = [sys.executable, "-m", "calserv_client.cli"]


def cli_env(env: dict) -> dict:
    """`env` with the client importable from the checkout, as `make` installs it."""
    return {**env, "PYTHONPATH": str(ROOT / "client")}


def default_sigint() -> None:
    """Give the child Python's own SIGINT handling back (as `preexec_fn`): a shell run in the
    background, as CI may run the suite, ignores SIGINT and its children inherit that, while an
    observer's Ctrl-C reaches a terminal's foreground process with the default handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=cli_env(env), timeout=timeout
    )


class FakeCalserv:
    """A scripted stand-in for calserv on 127.0.0.1: ``script[(method, path)]`` is a list of
    ``(status, headers, json_body)`` answered in turn (the last one repeats)."""

    def __init__(self):
        self.script: dict[tuple[str, str], list] = defaultdict(list)
        self.requests: list[tuple[str, str, float, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                fake.requests.append((self.command, path, time.monotonic(), body))
                answers = fake.script.get((self.command, path)) or [(404, {}, {"error": "nope"})]
                status, headers, payload = answers.pop(0) if len(answers) > 1 else answers[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if (m, p) == (method, path))


class FakeQueue:
    """A stand-in for calserv's job API with a queue behind it, on 127.0.0.1: uploads become jobs
    that run one after another, each taking ``job_s`` seconds; ``GET /jobs/<id>`` and (unless
    ``bulk=False``, an older calserv) ``POST /jobs/status`` with its long-poll answer for them.
    ``upload_status`` answers every upload with that status instead (e.g. 401)."""

    def __init__(self, job_s: float = 0.01, bulk: bool = True, upload_status: int | None = None):
        self.job_s, self.bulk, self.upload_status = job_s, bulk, upload_status
        self.jobs: dict[str, float] = {}  # job id → when it ends (monotonic)
        self.by_body: dict[bytes, str] = {}
        self.requests: list[tuple[str, str, float]] = []
        self._free_at = time.monotonic()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                fake.requests.append(("POST", path, time.monotonic()))
                if path == "/upload":
                    if fake.upload_status:
                        return self._send(fake.upload_status, {"error": "refused"})
                    return self._send(202, fake.job(fake.submit(body)))
                if path == "/jobs/status" and fake.bulk:
                    return self._send(200, fake.statuses(json.loads(body)))
                self._send(404 if path != "/jobs/status" else 405, {"error": "not found"})

            def do_GET(self):
                path = self.path.split("?")[0]
                fake.requests.append(("GET", path, time.monotonic()))
                job_id = path.rsplit("/", 1)[-1]
                if job_id not in fake.jobs:
                    return self._send(404, {"error": "unknown job"})
                job = fake.job(job_id)
                self._send(200, job, {} if job["status"] == "succeeded" else {"Retry-After": "1"})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def submit(self, body: bytes) -> str:
        """A new job for a catalogue/fields never seen, else the existing one (as calserv)."""
        key = body.split(b"\r\n", 1)[1].replace(body.split(b"\r\n", 1)[0], b"")  # sans boundary
        with self._lock:
            if key not in self.by_body:
                job_id = f"{len(self.jobs):032x}"
                self._free_at = max(self._free_at, time.monotonic()) + self.job_s
                self.jobs[job_id] = self._free_at
                self.by_body[key] = job_id
            return self.by_body[key]

    def job(self, job_id: str) -> dict:
        ended = time.monotonic() >= self.jobs[job_id]
        out = {"job_id": job_id, "status": "succeeded" if ended else "queued"}
        if ended:
            out.update(mag=9.5, mag_err=0.01, survey="GaiaDR3", filter="G", limit=False)
        return out

    def statuses(self, body: dict) -> dict:
        ids, seen = body["ids"], body.get("states", {})
        deadline = time.monotonic() + float(body.get("wait", 0))
        while True:
            known = [self.job(i) for i in ids if i in self.jobs]
            changed = [j for j in known if seen.get(j["job_id"]) != j["status"]]
            if changed or time.monotonic() >= deadline:
                pending = sum(j["status"] != "succeeded" for j in known)
                return {
                    "jobs": changed,
                    "unknown": [i for i in ids if i not in self.jobs],
                    "pending": pending,
                }
            time.sleep(0.005)  # the fake's stand-in for the job-end notification

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.startswith(prefix))
