import subprocess
import sys
from pathlib import Path

from calib import calibrate
from calib.plot import render_calibration_plot
from calib.simulate import simulate_field


def test_plot_is_a_png(tmp_path):
    """Its speed is measured by bench/bench_plot.py."""
    field = simulate_field(1)
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    render_calibration_plot(result, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_importing_the_plot_leaves_the_matplotlib_backend_alone():
    code = (
        "import matplotlib; matplotlib.use('svg'); import calib.plot; "
        "print(matplotlib.get_backend())"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "svg"
