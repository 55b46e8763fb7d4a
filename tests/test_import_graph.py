"""The import graph has no upward edge and no cycle, between calserv's packages or inside one.

Parsed with `ast` (nothing is imported), so a forbidden import is caught even on a code path no
other test runs: an import inside a function, or a module named by a constant string to
`importlib.import_module` or Celery's `config_from_object` (or the constant head of an f-string,
`import_module(f"calib.{name}")`).
Imports under ``if TYPE_CHECKING:`` never run, and are left out. Every function takes the tree's
root, so the last tests plant each kind of violation in a copy of the tree and show it caught.
"""

from __future__ import annotations

import ast
import functools
import graphlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What is checked: each unit of calserv (its label) → its file or package directory, whose name
#: is its import name (the batch client is its own distribution, imported as `calserv_client`).
#: Tests and benchmarks may import anything.
UNITS = {
    "calib": "calib",
    "refcats": "refcats",
    "blobstore": "blobstore",
    "db": "db",
    "feeds": "feeds",
    "web": "web",
    "workers": "workers",
    "migrations": "migrations",
    "config": "config.py",
    "celeryconfig": "celeryconfig.py",
    "client": "client/calserv_client",
    "simfields": "simfields",
}
#: The top-level import name of each unit.
TOP_NAME = {label: Path(path).stem for label, path in UNITS.items()}
LABEL = {name: label for label, name in TOP_NAME.items()}
SERVER = set(UNITS) - {"client", "simfields"}

#: unit → the units it must not import (its own modules aside).
FORBIDDEN = {
    # The science, the reference store and the file store: libraries of their own.
    "calib": set(UNITS) - {"calib"},
    "refcats": set(UNITS) - {"refcats"},
    "blobstore": set(UNITS) - {"blobstore"},
    # Settings: read by everyone, so they read nobody (`blobstore` validates STORAGE_URL).
    "config": set(UNITS) - {"config", "blobstore"},
    "celeryconfig": set(UNITS) - {"celeryconfig", "config"},
    "db": {"web", "workers", "calib", "refcats", "migrations", "client", "feeds", "simfields"},
    # Alert feeds: parsing and syncing the alert table (db), run by workers and the CLI.
    "feeds": {"web", "workers", "calib", "refcats", "migrations", "client", "simfields"},
    "web": {"workers", "migrations", "client", "simfields"},
    "workers": {"web", "migrations", "client", "simfields"},
    "migrations": {"web", "workers", "calib", "refcats", "celeryconfig", "client", "simfields"},
    # The batch client talks to the server over HTTP only.
    "client": SERVER | {"simfields"},
    # Simulated fields for tests and benchmarks: built on the science library, never served.
    "simfields": set(UNITS) - {"simfields", "calib"},
}
#: The calib modules the web tier may import: numpy-free vocabulary and option parsing, the
#: upload's header checks (which it imports only when an upload arrives) and the light curve's
#: cross-observatory offsets (read-time statistics over stored points, loaded on first use).
#: Never the pipeline.
WEB_CALIB = {
    "calib.schema",
    "calib.options",
    "calib.errors",
    "calib.catalog",
    "calib.image",
    "calib.intercalibration",
}


@dataclass(frozen=True)
class Edge:
    """`source` (a file) makes module `importer` import module `imported`."""

    source: str
    importer: str
    imported: str

    @property
    def units(self) -> tuple[str, str]:
        return unit_of(self.importer), unit_of(self.imported)


def unit_of(module: str) -> str:
    return LABEL[module.split(".")[0]]


def modules(root: Path) -> dict[str, Path]:
    """Every checked module's dotted name → its file."""
    found = {}
    for label, rel in UNITS.items():
        path = root / rel
        base = path.parent
        for file in [path] if path.suffix == ".py" else sorted(path.rglob("*.py")):
            parts = file.relative_to(base).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
        assert any(unit_of(m) == label for m in found), f"{rel} has no Python files"
    return found


class _Imports(ast.NodeVisitor):
    """The dotted names a module imports, as written (relative ones resolved): a module, or
    `module.name` from ``from module import name`` (which is a module or a name in one)."""

    def __init__(self, package: str):
        self.package = package
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([base] if base else [])])
        self.names.update(f"{base}.{alias.name}" for alias in node.names)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in ("import_module", "__import__", "config_from_object") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self.names.add(arg.value)
            elif isinstance(arg, ast.JoinedStr) and arg.values:
                head = arg.values[0]
                if isinstance(head, ast.Constant) and "." in head.value:
                    self.names.add(head.value.rsplit(".", 1)[0])
        self.generic_visit(node)


@functools.cache
def imported_names(source: str, package: str) -> frozenset[str]:
    """What a module of `package` with this source imports (parsed once per source)."""
    visitor = _Imports(package)
    visitor.visit(ast.parse(source))
    return frozenset(visitor.names)


def edges(root: Path) -> Iterator[Edge]:
    """Every import of one checked module by another (a self-import left out)."""
    known = modules(root)
    for module, file in known.items():
        package = module if file.name == "__init__.py" else module.rpartition(".")[0]
        for name in imported_names(file.read_text(), package or module):
            if name.split(".")[0] not in LABEL:
                continue
            # `from web import keys` imports the module web.keys; `from web import create_app`
            # the package web: the longest module the dotted name starts with.
            while name not in known and "." in name:
                name = name.rpartition(".")[0]
            if name != module:
                yield Edge(str(file.relative_to(root)), module, name)


def forbidden_imports(root: Path) -> list[str]:
    return sorted(
        f"{e.source} imports {e.imported}"
        for e in edges(root)
        if e.units[1] in FORBIDDEN[e.units[0]]
        or (e.units == ("web", "calib") and e.imported not in WEB_CALIB)
    )


def cycles(root: Path) -> list[str]:
    """Cycles between units, and between the modules of one unit: each as `a → b → a`."""
    between: dict[str, set[str]] = {}
    within: dict[str, dict[str, set[str]]] = {}
    for e in edges(root):
        src, dst = e.units
        if src != dst:
            between.setdefault(src, set()).add(dst)
        else:
            within.setdefault(src, {}).setdefault(e.importer, set()).add(e.imported)
    found = []
    for graph in [between, *within.values()]:
        while True:
            try:
                graphlib.TopologicalSorter(graph).prepare()
                break
            except graphlib.CycleError as err:
                cycle = err.args[1]
                found.append(" → ".join(reversed(cycle)))
                graph[cycle[1]].discard(cycle[0])  # break it, and look for the next one
    return sorted(found)


def test_every_unit_is_checked():
    labels = {unit_of(m) for m in modules(ROOT)}
    assert labels == set(UNITS)
    assert {"config", "celeryconfig", "migrations.env", "calserv_client.api"} <= set(modules(ROOT))


def test_every_package_has_rules():
    """A new top-level package or module is checked once it says what it may import."""
    top = {p.stem for p in ROOT.glob("*.py")} | {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert top <= set(UNITS), f"add {sorted(top - set(UNITS))} to UNITS and FORBIDDEN"
    assert set(FORBIDDEN) == set(UNITS)


def test_no_forbidden_imports():
    bad = forbidden_imports(ROOT)
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(ROOT)
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_checker_sees_imports_in_functions_and_by_name(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "if TYPE_CHECKING:\n    import refcats.store\n"
        "def f():\n    from workers.tasks import run\n    import web.jobs\n"
        "    importlib.import_module('db.dispatch')\n"
        "    app.config_from_object('celeryconfig')\n"
        "    return importlib.import_module(f'blobstore.{run}')\n"
    )
    visitor = _Imports("")
    visitor.visit(ast.parse(module.read_text()))
    assert visitor.names == {
        "typing.TYPE_CHECKING",
        "importlib",
        "workers.tasks.run",
        "web.jobs",
        "db.dispatch",
        "celeryconfig",
        "blobstore",
    }


def _not_python(folder: str, names: list[str]) -> list[str]:
    return [
        n for n in names if n == "__pycache__" or ((Path(folder) / n).is_file() and n[-3:] != ".py")
    ]


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of calserv's checked source, to plant violations in."""
    for rel in UNITS.values():
        src = ROOT / rel
        if src.is_file():
            shutil.copy(src, tmp_path / rel)
        else:
            shutil.copytree(src, tmp_path / rel, ignore=_not_python)
    return tmp_path


def plant(tree: Path, rel: str, code: str) -> None:
    path = tree / rel
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_the_copy_is_clean(tree):
    assert forbidden_imports(tree) == [] and cycles(tree) == []


@pytest.mark.parametrize(
    ("rel", "code", "caught"),
    [
        ("config.py", "import web", "config.py imports web"),
        ("celeryconfig.py", "import workers", "celeryconfig.py imports workers"),
        (
            "client/calserv_client/api.py",
            "def f():\n    from db.models import Job",
            "client/calserv_client/api.py imports db.models",
        ),
        (
            "db/session.py",
            "def f():\n    importlib.import_module('web.keys')",
            "db/session.py imports web.keys",
        ),
        (
            "web/jobs.py",
            "from calib.pipeline import calibrate",
            "web/jobs.py imports calib.pipeline",
        ),
        (
            "workers/calibration.py",
            "from simfields.render import render_frame",
            "workers/calibration.py imports simfields.render",
        ),
        (
            "refcats/store.py",
            "def f():\n    return import_module(f'config.{x}')",
            "refcats/store.py imports config",
        ),
    ],
)
def test_a_planted_forbidden_import_is_caught(tree, rel, code, caught):
    plant(tree, rel, code)
    assert caught in forbidden_imports(tree)


def test_a_planted_cycle_between_units_is_caught(tree):
    plant(tree, "config.py", "def f():\n    import web.jobs")  # web imports config
    assert any({"config", "web"} <= set(c.split(" → ")) for c in cycles(tree))


def test_a_planted_cycle_inside_a_unit_is_caught(tree):
    plant(tree, "db/models.py", "def f():\n    from db.jobs import find_job")  # db.jobs imports it
    assert [set(c.split(" → ")) for c in cycles(tree)] == [{"db.jobs", "db.models"}]
