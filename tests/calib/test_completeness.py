"""The 50 % completeness estimate against detections drawn from a known curve."""

import numpy as np
import pytest

from calib.completeness import completeness_50


@pytest.mark.parametrize("plateau", [1.0, 0.85])
def test_50_percent_point_with_a_bright_end_below_100_percent(plateau, rng):
    """Blends keep the bright stars' detected fraction below 1 (71-83 % at 14.5-15.5 mag on a
    rendered frame); a model forced to 1 put the 50 % point 0.4-0.65 mag too bright here."""
    for _ in range(3):
        mag = rng.uniform(14.0, 20.0, 3000)
        detected = rng.uniform(size=mag.size) < plateau / (1 + np.exp((mag - 18.0) / 0.15))
        truth = 18.0 + 0.15 * np.log(plateau / 0.5 - 1.0)  # where the curve is 50 %
        assert abs(completeness_50(mag, detected) - truth) < 0.12  # 5 sigma
