"""Test-session settings: one torch thread per test process, fixtures never collected.

Parallel test files (pytest-xdist, or several suites on a 2-core machine) each starting a
thread per core oversubscribe the machine; OMP_NUM_THREADS is read when torch is imported,
and torch.set_num_threads covers a torch imported before this file.
"""

from __future__ import annotations

import os
import sys

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

if "torch" in sys.modules:  # pragma: no cover - depends on the plugins loaded before
    sys.modules["torch"].set_num_threads(1)

collect_ignore = ["fixtures", "data"]
"""Lint fixtures are inputs, not tests (one of them trains a GRU at import)."""
