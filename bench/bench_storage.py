"""What the object store costs: per-upload and per-job storage time of the S3 backend (a real
moto server on loopback) beside the local directory, in one run (prints a table; not a test).

    .venv/bin/python bench/bench_storage.py

Each operation is what calserv does with the store, through `blobstore`:

- upload: the web tier streams the catalogue (1 MiB chunks) into a writer and commits it under
  its sha256 (local: fsync'd file + directory; S3: spooled, then one PUT);
- job: the worker reads the upload back and writes its calibration plot;
- plot: the web tier reads a plot to serve it.

Medians of REPEATS runs, after a warm-up (connections, imports). The job's own work (calibrate a
simulated frame and render its plot) is measured in the same run as the yardstick: `/job` is the
S3 extra over it. moto is a Python server without fsync or network latency: against MinIO or S3
add one network round trip per request: an upload is 1 PUT, a job HEAD + GET of the upload and
a PUT of the plot, serving a plot HEAD + GET.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blobstore import BlobStore, open_store  # noqa: E402
from blobstore.keys import plot_key, upload_key  # noqa: E402
from calib import calibrate  # noqa: E402
from calib.plot import render_calibration_plot  # noqa: E402
from calib.simulate import simulate_field  # noqa: E402

REPEATS = 31
CATALOGUE = (ROOT / "tests" / "data" / "synth-deep" / "frame.cat").read_bytes()
BIG = CATALOGUE * (8 * (1 << 20) // len(CATALOGUE))  # an 8 MiB catalogue (a deep wide field)


def median_ms(fn) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def upload(store: BlobStore, data: bytes) -> str:
    """As web.job_submission does: chunks hashed and written, committed under the sha256."""
    data = data + os.urandom(8)  # new bytes each time: a new object, never a no-op
    digest = hashlib.sha256()
    with store.writer() as w:
        for i in range(0, len(data), 1 << 20):
            chunk = data[i : i + (1 << 20)]
            digest.update(chunk)
            w.write(chunk)
        key = upload_key(digest.hexdigest())
        w.commit(key)
    return key


def job(store: BlobStore, key: str, png: bytes) -> None:
    """As workers.calibration does: read the upload back, write the plot."""
    with store.open(key) as f:
        f.read()
    store.put(plot_key("bench"), png)


def serve(store: BlobStore) -> None:
    with store.open(plot_key("bench")) as f:
        f.read()


def moto_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    field = simulate_field(1)
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    png_buf = io.BytesIO()
    render_calibration_plot(result, png_buf)
    png = png_buf.getvalue()

    def job_work() -> None:
        r = calibrate(field.catalog, [field.reference], 150.1, 2.2)
        render_calibration_plot(r, io.BytesIO())

    work = median_ms(job_work)
    proc, endpoint = moto_server()
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        with tempfile.TemporaryDirectory(prefix="calserv-bench-store-") as d:  # a real disk here
            stores = {"local": open_store(d), "s3": open_store("s3://bench/calserv", endpoint)}
            rows = {}
            for name, store in stores.items():
                key = upload(store, CATALOGUE)
                rows[name] = [
                    median_ms(lambda s=store: upload(s, CATALOGUE)),
                    median_ms(lambda s=store: upload(s, BIG)),
                    median_ms(lambda s=store, k=key: job(s, k, png)),
                    median_ms(lambda s=store: serve(s)),
                ]
    finally:
        proc.terminate()
        proc.wait()
    names = [
        f"upload {len(CATALOGUE) // 1024} KiB",
        f"upload {len(BIG) / (1 << 20):.0f} MiB",
        f"job: read upload + write {len(png) // 1024} KiB plot",
        "serve the plot",
    ]
    local, s3 = rows["local"], rows["s3"]
    lines = [f"{'operation (median ms)':<36} {'local':>7} {'s3':>7} {'s3-local':>9} {'/job':>6}"]
    for i, name in enumerate(names):
        extra = s3[i] - local[i]
        lines.append(
            f"{name:<36} {local[i]:>7.1f} {s3[i]:>7.1f} {extra:>9.1f} {extra / work:>6.0%}"
        )
    lines.append(f"{'job work (calibrate + render plot)':<36} {work:>7.1f}")
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / "storage.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
