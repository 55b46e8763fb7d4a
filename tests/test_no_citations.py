"""Code and docs cite nothing a reader of the repository cannot open: no issue or pull-request
numbers ("issue #11", "(#16)", "#16/#19"), no "the issue's ...", no documents beside the
checkout. What a change fixed belongs in its commit message; the code says why it is so."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "node_modules", "var", "__pycache__"}
#: Text that people read: code, docs, templates, scripts and settings.
SUFFIXES = {".py", ".md", ".sh", ".html", ".js", ".css", ".toml", ".txt", ".ini", ".cfg", ".mako"}
NAMES = {"Makefile", "Procfile", "run"}
#: Not checked: this file (its examples) and, for now, the science package (being rewritten).
OUTSIDE = ("tests/test_no_citations.py",)
CITATION = re.compile(
    r"\b(?:issue|pull request|PR)s?\s*#?\d+"
    r"|\(#\d{1,5}\)|#\d{1,5}/#\d{1,5}"
    r"|\bthe issue\b"
    r"|\.\./shared\b|/work/shared\b",
    re.IGNORECASE,
)


def texts(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not SKIP & set(p.relative_to(root).parts)
        and not any(part.startswith(".venv") for part in p.relative_to(root).parts)
        and (p.suffix in SUFFIXES or p.name in NAMES)
        and not str(p.relative_to(root)).startswith(OUTSIDE)
    )


def citations(root: Path) -> list[str]:
    found = []
    for path in texts(root):
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if CITATION.search(line):
                found.append(f"{path.relative_to(root)}:{n}: {line.strip()[:100]}")
    return found


def test_nothing_cites_an_issue_or_an_outside_document():
    found = citations(ROOT)
    assert not found, "say what and why instead:\n" + "\n".join(found)


def test_each_kind_of_citation_is_caught(tmp_path):
    (tmp_path / "docs").mkdir()
    cases = [
        "# fixed in issue #11",
        "see issue 16",
        "marked until #16/#19 land",
        "Pages observers trust (#16)",
        "frames made like the issue's crowded field",
        "samples in ../shared/samples",
    ]
    (tmp_path / "docs" / "a.md").write_text("\n".join(cases) + "\ncolour #222; 3 issues fixed\n")
    assert len(citations(tmp_path)) == len(cases)
