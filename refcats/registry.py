"""calserv's own list of registered surveys: existing HATS catalogues used in place.

Kept in ``ROOT/.registry.json`` of the store (hidden, so never mistaken for a survey), written
atomically. A registration names a catalogue or collection (local path or URL), an optional
band map ``{band: [mag column, error column or null]}``, fsspec storage options and the
epoch of the positions (for proper motions); nothing is
ever written into the registered catalogue itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from refcats.layout import RefcatError

REGISTRY = ".registry.json"
SURVEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-.]*$")
BAND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED = {"ra", "dec", "source_id", "pmra", "pmdec", "_healpix_29"}


@dataclass(frozen=True)
class Registration:
    """One registered survey (see the module docstring)."""

    name: str
    location: str
    bands: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    storage_options: dict[str, object] = field(default_factory=dict)
    epoch: float | None = None  # Julian epoch of the positions, for catalogues with pmra/pmdec

    @classmethod
    def from_json(cls, data: dict) -> Registration:
        bands = {b: (m, e) for b, (m, e) in data.get("bands", {}).items()}
        return cls(
            data["name"],
            data["location"],
            bands,
            data.get("storage_options", {}),
            data.get("epoch"),
        )


def check_survey_name(name: str) -> None:
    if not SURVEY_NAME.match(name or "") or name.endswith("_margin"):
        raise RefcatError(
            f"bad survey name {name!r}: use letters, digits and _+-. (not ending in _margin)"
        )


def check_band_name(band: str) -> None:
    if not BAND_NAME.match(band) or band.lower() in RESERVED or band.endswith("_err"):
        raise RefcatError(
            f"bad band name {band!r}: use letters, digits and _, not ra/dec/source_id/pmra/pmdec, "
            "not ending in _err"
        )


def load(root: Path) -> dict[str, Registration]:
    """The registrations of store ``root`` by name (empty when there is no registry)."""
    path = Path(root) / REGISTRY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RefcatError(f"{path}: unreadable survey registry: {exc}") from exc
    return {d["name"]: Registration.from_json(d) for d in data.get("surveys", [])}


def save(root: Path, registration: Registration) -> None:
    """Add or replace a registration."""
    with _locked(root):
        entries = load(root)
        entries[registration.name] = registration
        _write(root, entries)


def delete(root: Path, name: str) -> bool:
    """Remove a registration; False when there was none."""
    with _locked(root):
        entries = load(root)
        if entries.pop(name, None) is None:
            return False
        _write(root, entries)
        return True


def _write(root: Path, entries: dict[str, Registration]) -> None:
    data = {"surveys": [asdict(entries[n]) for n in sorted(entries)]}
    tmp = Path(root) / f".registry-{secrets.token_hex(4)}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, Path(root) / REGISTRY)


@contextmanager
def _locked(root: Path):
    Path(root).mkdir(parents=True, exist_ok=True)
    with open(Path(root) / ".registry.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
