"""The reference surveys as the web tier sees them, for `/healthz` and `/metrics`: each one `ok`,
or `degraded: <reason>` (unreadable, no usable band, its location not answering).

A remote survey can hang for minutes, and a health probe must answer at once: the check runs in a
background thread at most every `CHECK_INTERVAL_S` per process, and a request waits at most
`WAIT_S` for the first one, reporting a survey still being checked as degraded. A survey is
optional to the service (calibration uses whichever surveys cover a frame), so its state never
fails the probe: operators see it in the answer and in `calserv_survey_up`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flask import Flask, current_app

CHECK_INTERVAL_S = 30.0
WAIT_S = 3.0
#: Row groups are never read here: a small cache is plenty.
CACHE_BYTES = 8 * 1024 * 1024


class SurveyStatus:
    """The last known state of every survey of a store root, refreshed in the background."""

    def __init__(self, root: Path, disk_cache_dir: Path, disk_cache_bytes: int):
        # The store's numpy and pyarrow load with the first check, not when the app is created.
        from refcats.location import PartitionCache
        from refcats.store import RefStore

        self.store = RefStore(root, CACHE_BYTES, PartitionCache(disk_cache_dir, disk_cache_bytes))
        self._states: dict[str, str] | None = None
        self._checked_at = float("-inf")
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def current(self) -> dict[str, str]:
        """Survey name → `ok` or `degraded: <reason>`, at most CHECK_INTERVAL_S old."""
        with self._lock:
            due = time.monotonic() - self._checked_at > CHECK_INTERVAL_S
            if due and (self._thread is None or not self._thread.is_alive()):
                self._checked_at = time.monotonic()
                self._thread = threading.Thread(target=self._check, daemon=True)
                self._thread.start()
            thread, states = self._thread, self._states
        if states is None and thread is not None:
            thread.join(WAIT_S)
            states = self._states
        if states is None:
            waiting = f"degraded: no answer within {WAIT_S:g} s (still checking)"
            return {name: waiting for name in self.store.survey_names()}
        return dict(states)

    def _check(self) -> None:
        states = {}
        for health in self.store.health():
            problem = health.problem or self.store.reachable(health.name)
            states[health.name] = "ok" if problem is None else f"degraded: {problem}"
        self._states = states


def survey_states() -> dict[str, str]:
    """The app's surveys' states (`SurveyStatus.current`)."""
    ext = current_app.extensions
    if "calserv_surveys" not in ext:  # made at first use: tests may point the app elsewhere
        cfg = current_app.config
        ext["calserv_surveys"] = SurveyStatus(
            Path(cfg["REFCAT_DIR"]),
            Path(cfg["REFCAT_DISK_CACHE_DIR"]),
            cfg["REFCAT_DISK_CACHE_BYTES"],
        )
    return ext["calserv_surveys"].current()


def init_app(app: Flask, disk_cache_dir: Path, disk_cache_bytes: int) -> None:
    app.config.setdefault("REFCAT_DISK_CACHE_DIR", str(disk_cache_dir))
    app.config.setdefault("REFCAT_DISK_CACHE_BYTES", disk_cache_bytes)
