import time

from calib import calibrate
from calib.plot import render_calibration_plot
from calib.simulate import simulate_field


def test_plot_is_a_png_and_fast(tmp_path):
    field = simulate_field(1)
    result = calibrate(field.catalog, [field.reference], 150.1, 2.2)
    render_calibration_plot(result, tmp_path / "warmup.png")
    start = time.perf_counter()
    render_calibration_plot(result, tmp_path / "plot.png")
    elapsed = time.perf_counter() - start
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert elapsed < 1.0
