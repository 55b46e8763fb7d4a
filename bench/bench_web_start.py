"""What building the web app costs a process, against its floor: a bare Flask app (prints a table;
not a test).

    .venv/bin/python bench/bench_web_start.py [RUNS]

Each case runs RUNS times (default 3) in a fresh interpreter, as a `flask` command, a script or a
gunicorn worker starts: `create_app()` alone (commands, scripts, tests), then with `warm_up()`
(what a gunicorn worker imports before it serves: plots, pages, the upload's header checks). The
median wall time, peak RSS and modules loaded are shown, and whether numpy and the calibration
pipeline were loaded. Writes the table to bench/results/web_start.txt.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
{code}
print(json.dumps({{
    "seconds": time.perf_counter() - t0,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "modules": len(sys.modules),
    "numpy": "numpy" in sys.modules,
    "pipeline": "calib.pipeline" in sys.modules,
}}))
"""
CASES = {
    "floor: Flask(__name__)": "from flask import Flask\nFlask(__name__)",
    "create_app()": "from web import create_app\ncreate_app()",
    "create_app() + warm_up()": "from web import create_app, warm_up\ncreate_app()\nwarm_up()",
}


def measure(code: str) -> dict:
    env = {**os.environ, "CALSERV_ENV": os.environ.get("CALSERV_ENV", "development")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def main(runs: int) -> str:
    lines = [
        f"{'case':<28} {'seconds':>8} {'x floor':>8} {'peak RSS MB':>12} {'modules':>8} "
        f"{'numpy':>6} {'pipeline':>9}"
    ]
    floor = None
    for name, code in CASES.items():
        results = [measure(code) for _ in range(runs)]
        seconds = statistics.median(r["seconds"] for r in results)
        floor = floor or seconds
        last = results[-1]
        lines.append(
            f"{name:<28} {seconds:>8.2f} {seconds / floor:>8.1f} {last['rss_mb']:>12.0f} "
            f"{last['modules']:>8} {last['numpy']!s:>6} {last['pipeline']!s:>9}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    table = main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    print(table)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "web_start.txt").write_text(table + "\n")
