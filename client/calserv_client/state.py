"""The resume file: what was sent, which job it became and how it ended.

A JSON-lines journal (one JSON object per line, the last line for a key wins): every change is
appended and flushed at once — submissions are also fsync'd — so a killed run loses nothing it
had been told by the server; a torn last line is ignored. On close the journal is compacted to one
line per key through a temporary file, fsync and an atomic rename. A lock file keeps two runs from
writing the same state at once. The observatory key is never written here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_NAME = ".calserv-upload-state.json"
HEADER = {"calserv_upload_state": 1}


class StateError(Exception):
    pass


class StateFile:
    """Records keyed by upload key (sha256 of the catalogue, alert and parameters)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._lockfile = None
        self._fh = None

    def __enter__(self) -> StateFile:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self._lockfile = open(lock_path, "a")  # noqa: SIM115 - held until close()
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(
                f"{self.path} is in use by another calserv-upload run (lock {lock_path})"
            ) from None
        except OSError as e:
            raise StateError(f"cannot use state file {self.path}: {e.strerror}") from None
        self._load()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        if self._fh.tell() == 0:
            self._fh.write(json.dumps(HEADER) + "\n")
            self._fh.flush()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    print(
                        f"calserv: warning: {self.path}:{n}: unreadable line ignored",
                        file=sys.stderr,
                    )
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                    self.records[rec["key"]] = rec

    def get(self, key: str) -> dict | None:
        with self._lock:
            rec = self.records.get(key)
            return dict(rec) if rec else None

    def put(self, key: str, record: dict, durable: bool = False) -> None:
        """Record (and append) the new state of ``key``; ``durable`` also fsyncs."""
        rec = {**record, "key": key, "updated": round(time.time(), 3)}
        line = json.dumps(rec, sort_keys=True, default=str) + "\n"
        with self._lock:
            self.records[key] = rec
            if self._fh is not None:
                self._fh.write(line)
                self._fh.flush()
                if durable:
                    os.fsync(self._fh.fileno())

    def compact(self) -> None:
        """Rewrite the journal as one line per key, atomically."""
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(json.dumps(HEADER) + "\n")
                    for rec in self.records.values():
                        out.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            if self._fh is not None:
                self._fh.close()
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        try:
            if self._fh is not None:
                self.compact()
                self._fh.close()
                self._fh = None
        finally:
            if self._lockfile is not None:
                self._lockfile.close()
                self._lockfile = None


def default_state_path(files: list[Path], manifest: str | Path | None) -> Path:
    """Next to the manifest, else in the deepest directory holding all the inputs; when that
    directory is not writable (a read-only archive), in ``$XDG_STATE_HOME/calserv/`` (default
    ``~/.local/state/calserv/``) under a name made from the directory's path."""
    if manifest:
        home = Path(manifest).expanduser().resolve().parent
    elif not files:
        home = Path.cwd()
    else:
        home = Path(os.path.commonpath([str(f.parent) for f in files]))
    if os.access(home, os.W_OK):
        return home / DEFAULT_NAME
    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    tag = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    return state_home / "calserv" / f"upload-{home.name or 'root'}-{tag}.json"
