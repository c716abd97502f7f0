"""Test-session settings: one torch thread per test process, fixtures never collected, and
property tests that replay the same examples in CI.

Parallel test files (pytest-xdist, or several suites on a 2-core machine) each starting a
thread per core oversubscribe the machine; OMP_NUM_THREADS is read when torch is imported,
and torch.set_num_threads covers a torch imported before this file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
