import json
import sys
from pathlib import Path

import pytest
from astropy.table import Table

# The repository root must win over this folder (also named calib) when pytest is started as
# `.venv/bin/pytest` without a pythonpath setting.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from calib import RefCatalog

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def load_sample(name: str, survey: str):
    folder = DATA / name
    table = Table.read(folder / "ref.csv", format="ascii.csv", guess=False)
    ref = RefCatalog.from_columns(survey, {c: table[c] for c in table.colnames})
    truth = json.loads((folder / "truth.json").read_text())
    return folder, ref, truth


@pytest.fixture(scope="session")
def gaia_demo():
    return load_sample("gaia-demo", "GaiaDR3")


@pytest.fixture(scope="session")
def synth_deep():
    return load_sample("synth-deep", "SYNTH")
