"""The test loop's own promises (issue 18): lint fixtures are never collected, torch runs one
thread per test process (and its child processes), and the README names both loops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def test_no_collected_test_comes_from_the_fixtures(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    assert any(Path(item.path) == Path(__file__) for item in items)
    assert not [item.nodeid for item in items if FIXTURES in Path(item.path).parents]


def test_naming_the_fixtures_directory_collects_nothing(tmp_path: Path) -> None:
    """Even named on the command line (a project with a `test_*.py` inside), the conftest's
    `collect_ignore` keeps fixtures out: one of them trains a GRU at import."""
    tests = tmp_path / "tests"
    project = tests / "fixtures" / "projects" / "p"
    project.mkdir(parents=True)
    (tests / "conftest.py").write_text(
        (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (project / "test_train.py").write_text("def test_it():\n    raise SystemExit(3)\n")
    (tests / "test_real.py").write_text("def test_real():\n    pass\n")

    def collect(*arguments: str) -> str:
        listed = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
            + ["-c", os.devnull, "--rootdir", str(tmp_path), *arguments],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        return listed.stdout

    # The directory walked, then the fixtures named, in two runs: one run naming both
    # collected nothing at all on pytest 8.4 (CI's Python 3.9) and test_real on pytest 9.
    walked = collect("tests")
    assert "test_real.py::test_real" in walked, walked
    assert "test_train" not in walked, walked
    named = collect("tests/fixtures/projects")
    assert "test_train" not in named and "no tests collected" in named, named


def test_torch_runs_one_thread_in_tests_and_their_child_processes() -> None:
    torch = pytest.importorskip("torch")
    assert torch.get_num_threads() == 1
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['OMP_NUM_THREADS'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "1" == os.environ["OMP_NUM_THREADS"]


def test_readme_names_the_fast_loop_and_the_full_suite() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Tests", 1)[1].split("\n## ", 1)[0]
    assert "**Fast loop**: `pytest`" in section and '**Full suite**: `pytest -m ""`' in section
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pytest -q -m ""' in ci and "pytest -q -p no:cacheprovider" in ci


def test_the_fast_loop_alone_runs_on_every_core_and_everything_else_in_one_process(
    tmp_path: Path,
) -> None:
    """`pytest` with no arguments distributes over the cores (pytest-xdist); named tests,
    `-m ""` (the full suite) and `-n 0` run in one process, as pytest would."""
    pytest.importorskip("xdist")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: the fast loop stays in one process")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text(
        (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tests / "test_where.py").write_text(
        "import os\n\ndef test_in_a_worker():\n    assert os.environ.get('PYTEST_XDIST_WORKER')\n",
        encoding="utf-8",
    )
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ntestpaths = tests\naddopts = -m 'not slow'\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}

    def run(*arguments: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments],
            cwd=tmp_path,
            capture_output=True,
            env=env,
        ).returncode

    assert run() == 0  # in a worker
    assert run("-n", "0") == 1
    assert run("-m", "") == 1
    assert run("tests/test_where.py") == 1
