"""Time to render the calibration plot (calib.plot) against its floor: the same-size empty Agg
figure written as PNG in the same run (prints a table; not a test).

    .venv/bin/python bench/bench_plot.py

The fastest of REPEATS renders is kept for each, after a warm-up (font cache, imports). Also
prints the time of one light-curve plot (web.lightcurve_png) of 50 points against the same floor.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib import calibrate  # noqa: E402
from calib.plot import render_calibration_plot  # noqa: E402
from calib.simulate import simulate_field  # noqa: E402
from web.lightcurve_png import plot_png  # noqa: E402

REPEATS = 7


def fastest(fn) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def empty_png(size: tuple[float, float], dpi: int) -> bytes:
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    fig.add_subplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def main() -> None:
    field = simulate_field(1)
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    points = [
        {"mjd": 60000 + i, "mag": 15 + i % 5 * 0.1, "magerr": -1.0 if i % 7 == 0 else 0.05,
         "filter": "VR"[i % 2], "observatory": f"obs{i % 3}"}
        for i in range(50)
    ]  # fmt: skip
    sink = io.BytesIO()
    rows = [
        ("calibration plot", fastest(lambda: render_calibration_plot(result, sink)),
         fastest(lambda: empty_png((6.4, 6.0), 90))),
        ("light curve, 50 points", fastest(lambda: plot_png(points, "bench")),
         fastest(lambda: empty_png((8, 4.5), 100))),
    ]  # fmt: skip
    lines = [f"{'plot':<24} {'ms':>7} {'floor ms':>9} {'ratio':>6}"]
    lines += [f"{name:<24} {t * 1e3:>7.1f} {f * 1e3:>9.1f} {t / f:>6.1f}" for name, t, f in rows]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results" / "plot.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
