"""The web app loads neither the science stack nor the calibration pipeline when it is created.

Every `flask` command, script and test builds the app; numpy, astropy, matplotlib and the calib
modules would cost each of them seconds and a hundred megabytes, and only uploads (their header
checks), plots and alert pages need them. A server process imports those before it serves
(`web.warm_up`), and never the pipeline or the reference store's CLI (pyarrow, healpy). Checked
in a fresh interpreter, whose `sys.modules` no other test has filled.
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
from web import create_app, warm_up
app = create_app()
assert "refcat" in app.cli.list_commands(None)  # registered, not imported
if {warm}:
    warm_up()
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by_create_app(warm: bool = False) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(warm=warm)],
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
    assert {m for m in modules if m.startswith("calib.")} <= {
        "calib.options",
        "calib.errors",
        "calib.schema",
    }


def test_a_server_process_warms_up_without_the_pipeline():
    """gunicorn's workers import what requests would load on first use, and still no pipeline."""
    from web import ON_FIRST_USE

    modules = loaded_by_create_app(warm=True)
    assert set(ON_FIRST_USE) <= modules
    assert "calib.pipeline" not in modules and "refcats.cli" not in modules
