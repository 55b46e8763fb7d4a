"""The web app loads neither the science stack nor the calibration pipeline when it is created.

Every web process builds the app; numpy, astropy, matplotlib and the calib modules cost each of
them about a second and a hundred megabytes, and only the first upload (its header checks), plot
or alert page needs them. Checked in a fresh interpreter, whose `sys.modules` no other test has
filled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import ROOT

HEAVY = ("numpy", "astropy", "matplotlib", "pandas", "pyarrow", "calib.pipeline", "refcats.cli")

PROBE = """
import json, sys
from web import create_app
app = create_app()
assert "refcat" in app.cli.list_commands(None)  # registered, not imported
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by_create_app() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "CALSERV_ENV": "development"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_creating_the_app_loads_no_science_stack():
    modules = loaded_by_create_app()
    assert "web.upload_api" in modules and "calib.options" in modules  # the probe saw the app
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    assert not loaded, f"create_app() loaded {loaded}"
    assert {m for m in modules if m.startswith("calib.")} <= {"calib.options", "calib.schema"}
