"""The real flake8 executable runs the EVL plugin: exact lines, 1-based columns, flake8's own noqa and selection."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from evallint import __version__, lint_source
from evallint.flake8_plugin import Checker

FLAKE8 = Path(sys.executable).parent / "flake8"

BUGGY = """\
import torch
import torch.nn as nn
model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
for x, y in val_loader:
    out = model(x)
"""


def expected_lines(source: str, name: str = "train.py") -> list[str]:
    """What flake8 must print: the engine's own findings, with the engine's 1-based columns."""
    return [
        f"./{name}:{d.line}:{d.column}: {d.code} {d.message}" for d in lint_source(source, name)
    ]


def flake8(tmp_path: Path, source: str, *args: str) -> list[str]:
    (tmp_path / "train.py").write_text(source, encoding="utf-8")
    completed = subprocess.run(
        [str(FLAKE8), "--isolated", *args, "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return [line for line in completed.stdout.splitlines() if ": EVL" in line]


def test_engine_finds_evl001_and_evl002_on_the_forward_line() -> None:
    assert {(d.line, d.column, d.code) for d in lint_source(BUGGY, "train.py")} == {
        (5, 11, "EVL001"),
        (5, 11, "EVL002"),
    }


def test_checker_yields_zero_based_columns() -> None:
    lines = BUGGY.splitlines(keepends=True)
    results = list(Checker(ast.parse(BUGGY), lines, "train.py").run())
    assert [(line, col, text.split(" ", 1)[0]) for line, col, text, _ in results] == [
        (5, 10, "EVL001"),
        (5, 10, "EVL002"),
    ]
    assert all(kind is Checker for *_, kind in results)


@pytest.mark.integration
def test_select_evl_prints_exact_lines(tmp_path: Path) -> None:
    lines = flake8(tmp_path, BUGGY, "--select", "EVL")
    assert lines == expected_lines(BUGGY)
    assert [line.split(" ", 1)[0] for line in lines] == ["./train.py:5:11:", "./train.py:5:11:"]


@pytest.mark.integration
def test_default_selection_includes_evl(tmp_path: Path) -> None:
    assert flake8(tmp_path, BUGGY) == expected_lines(BUGGY)


@pytest.mark.integration
def test_bare_noqa_silences_everything(tmp_path: Path) -> None:
    assert (
        flake8(tmp_path, BUGGY.replace("model(x)\n", "model(x)  # noqa\n"), "--select", "EVL") == []
    )


@pytest.mark.integration
def test_noqa_with_a_code_silences_only_that_code(tmp_path: Path) -> None:
    source = BUGGY.replace("model(x)\n", "model(x)  # noqa: EVL001\n")
    lines = flake8(tmp_path, source, "--select", "EVL")
    assert lines == [line for line in expected_lines(source) if " EVL001 " not in line]
    assert [line.split(" ")[1] for line in lines] == ["EVL002"]


@pytest.mark.integration
def test_extend_ignore(tmp_path: Path) -> None:
    lines = flake8(tmp_path, BUGGY, "--select", "EVL", "--extend-ignore", "EVL002")
    assert lines == [line for line in expected_lines(BUGGY) if " EVL002 " not in line]
    assert [line.split(" ")[1] for line in lines] == ["EVL001"]


@pytest.mark.integration
def test_per_file_ignores(tmp_path: Path) -> None:
    lines = flake8(tmp_path, BUGGY, "--select", "EVL", "--per-file-ignores", "train.py:EVL001")
    assert [line.split(" ")[1] for line in lines] == ["EVL002"]
    assert flake8(
        tmp_path, BUGGY, "--select", "EVL", "--per-file-ignores", "other.py:EVL"
    ) == expected_lines(BUGGY)


@pytest.mark.integration
def test_version_lists_the_plugin() -> None:
    """flake8 7 names the distribution (torch-evallint), not `Checker.name`, and wraps the line."""
    completed = subprocess.run(
        [str(FLAKE8), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert f"torch-evallint: {__version__}" in " ".join(completed.stdout.split())
