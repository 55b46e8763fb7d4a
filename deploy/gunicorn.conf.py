"""gunicorn settings of the web tier, shared by `make run`, the systemd unit and bench_load.py.

    gunicorn -c deploy/gunicorn.conf.py --bind 127.0.0.1:5000 'web:create_app()'

The web tier is latency-sensitive and its requests are short and CPU-bound in Python (parse the
form, hash and fsync the catalogue, a few indexed queries, one Redis push): the Celery workers,
which run at idle CPU priority (deploy/low-priority.sh), do the heavy work. Hence processes, not
threads, carry the concurrency: two threads of one process share one GIL, so a thread that got a
request just waits for its sibling; the threads here only hide the short I/O waits (fsync, commit).
About two processes per core keep every core busy while one of them waits. `WEB_CONCURRENCY`
overrides the number of processes (a bigger host, or a web host without workers).
"""

import os
import shutil
import tempfile
from pathlib import Path

workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "gthread"
# Requests waiting for a job's end (`wait=`) take at most CALSERV_MAX_WAITERS (default 1) of a
# process's threads, so another one is always free for everything else (docs/batch.md).
threads = 2
timeout = 90
# Keep a batch client's connection open between its requests (no new TCP handshake per poll).
keepalive = 5
# The worker heartbeat touches a file on every loop; on a disk filesystem that is a journalled
# metadata write per request (measured: ~15 % of a job poll's CPU). gunicorn's docs advise tmpfs.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The request head's limits sit above the app's own (web.ops.refuse_oversized_head), so an
# over-long URL or header gets the app's JSON 414/431 rather than gunicorn's HTML page; 8190 is
# the longest request line gunicorn reads.
limit_request_line = 8190
limit_request_field_size = 16384
limit_request_fields = 200
# Seed-era scripts send their key in the URL (`?hashtag=...`): redact it from every log line.
logger_class = "web.redact.RedactingAccessLogger"
# The control socket (`gunicornc`) of this instance, under its own var/: gunicorn's default,
# ~/.gunicorn/gunicorn.ctl, is shared by every instance of the user, and a second instance
# removes the first one's socket.
_var = os.environ.get("CALSERV_VAR_DIR", Path(__file__).resolve().parents[1] / "var")
control_socket = str(Path(_var) / "run" / "gunicorn.ctl")


def post_worker_init(worker):
    """Import what the app loads on first use (plots, pages, header checks), then move every
    import-time object (SQLAlchemy, numpy, matplotlib) out of the garbage collector's reach: a
    full collection then scans only what requests allocate."""
    import gc

    from web import warm_up

    warm_up()
    gc.freeze()


# Prometheus (web/metrics.py): each worker process writes its samples to files in this directory
# and /metrics sums them; a fresh directory per server (on tmpfs where there is one), so no
# sample of an earlier run is counted.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="calserv-metrics-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    )


def on_starting(server):
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
