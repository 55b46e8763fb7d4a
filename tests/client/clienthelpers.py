"""Helpers shared by the client tests (a uniquely named module: every conftest is `conftest`)."""

from __future__ import annotations

import json
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
