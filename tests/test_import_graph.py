"""The import graph has no upward or circular edges between calserv's packages.

Parsed with `ast` (nothing is imported), so a forbidden import is caught even on a code path no
other test runs, such as an import inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The top-level packages and modules of calserv (not tests, bench or the separate client).
CALSERV = {
    *("calib", "refcats", "blobstore", "db", "feeds", "web", "workers"),
    *("config", "celeryconfig", "migrations"),
}
#: package → the calserv packages it must not import.
FORBIDDEN = {
    "calib": CALSERV - {"calib"},
    "refcats": CALSERV - {"refcats"},
    "blobstore": CALSERV - {"blobstore"},
    "db": {"web", "workers", "calib", "refcats", "migrations", "feeds"},
    "feeds": {"web", "workers", "calib", "refcats", "migrations"},
    "web": {"workers", "migrations"},
    "workers": {"web", "migrations"},
    "migrations": {"web", "workers"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every module `path` imports (relative imports stay in the package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def edges(package: str) -> list[tuple[str, str, str]]:
    """(file, `package`, imported package) for every import of another calserv package."""
    return [
        (str(path.relative_to(ROOT)), package, name)
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_packages(path) & CALSERV - {package})
    ]


def test_the_checked_packages_exist():
    for package in FORBIDDEN:
        assert list((ROOT / package).rglob("*.py")), f"{package}/ has no Python files"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports(package):
    bad = [f"{f} imports {name}" for f, pkg, name in edges(package) if name in FORBIDDEN[pkg]]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from workers.tasks import run\n    import web.jobs\n")
    assert imported_packages(module) == {"workers", "web"}
