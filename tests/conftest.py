"""Test-session settings: the fast loop on every core, one torch thread per test process,
fixtures never collected, and property tests that replay the same examples in CI.

Parallel test files (pytest-xdist, or several suites on a 2-core machine) each starting a
thread per core oversubscribe the machine; OMP_NUM_THREADS is read when torch is imported,
and torch.set_num_threads covers a torch imported before this file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

if "torch" in sys.modules:  # pragma: no cover - depends on the plugins loaded before
    sys.modules["torch"].set_num_threads(1)

collect_ignore = ["fixtures", "data"]
"""Lint fixtures are inputs, not tests (one of them trains a GRU at import)."""

_NOT_TESTS = tuple(Path(__file__).resolve().parent / name for name in collect_ignore)


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Fixtures stay uncollected even when named on the command line (`collect_ignore`
    covers only the directories pytest walks into)."""
    path = collection_path.resolve()
    if any(path == root or root in path.parents for root in _NOT_TESTS):
        return True
    return None


MAX_DEFAULT_WORKERS = 8


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """`pytest` with no arguments (the fast loop) runs on every core the process may use,
    when pytest-xdist is installed (the test extra brings it) and the machine has two or more:
    about half the wall time on two cores. Anything else stays in one process, as pytest
    runs it: named tests or paths, another marker selection (`-m ""`, the full suite that
    `.ci/run` runs), `-n N`, `-p no:xdist`, `--pdb`, `--collect-only`. Runs before
    pytest-xdist's own hook (both `tryfirst`; a conftest registers later, so runs first)."""
    option = config.option
    if getattr(option, "numprocesses", "absent") is not None:
        return  # xdist not loaded, or `-n` given
    if option.usepdb or option.collectonly or "PYTEST_XDIST_WORKER" in os.environ:
        return
    from_testpaths = getattr(pytest.Config, "ArgsSource", None)
    if from_testpaths is None or config.args_source != from_testpaths.TESTPATHS:
        return
    addopts = list(config.getini("addopts"))
    default_markers = addopts[addopts.index("-m") + 1] if "-m" in addopts[:-1] else None
    if default_markers is None or option.markexpr != default_markers:
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if cores >= 2:
        option.numprocesses = min(cores, MAX_DEFAULT_WORKERS)


try:
    from hypothesis import settings
except ImportError:  # pragma: no cover - hypothesis comes with the test extra
    pass
else:
    # CI (`CI` set, as .ci/run does) replays a fixed sequence of examples, so a landing
    # depends on the code, not on the draw; locally each run explores new examples.
    settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")
