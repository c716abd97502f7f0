"""Every fixture yields exactly the (line, code) set written on its lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from evallint import lint_paths
from tests.expectations import expected_findings

FIXTURES = Path(__file__).parent / "fixtures"
SINGLE_FILES = sorted(FIXTURES.glob("*.py"))
PROJECTS = sorted(p for p in (FIXTURES / "projects").iterdir() if p.is_dir())


def _found(paths: list[Path]) -> dict[Path, set[tuple[int, str]]]:
    result: dict[Path, set[tuple[int, str]]] = {Path(p): set() for p in paths}
    for diagnostic in lint_paths([str(p) for p in paths]):
        result.setdefault(Path(diagnostic.path), set()).add((diagnostic.line, diagnostic.code))
    return result


@pytest.mark.parametrize("fixture", SINGLE_FILES, ids=lambda p: p.name)
def test_fixture(fixture: Path) -> None:
    assert _found([fixture])[fixture] == expected_findings(fixture)


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_project(project: Path) -> None:
    files = sorted(project.rglob("*.py"))  # with the files of its packages
    found = _found(files)
    for file in files:
        assert found[file] == expected_findings(file), file.name


def test_fixture_set_is_large_and_balanced() -> None:
    clean = [p for p in SINGLE_FILES if not expected_findings(p)]
    assert len(SINGLE_FILES) >= 60
    assert len(clean) * 3 >= len(SINGLE_FILES)
