"""A file's findings do not depend on the other files of the batch, their order, or the
process's string hashing.

The project index and the process-level caches outlive each file of a batch lint: an
answer kept there must not hold anything of the file that asked first. (Found: whether
`model.backbone.eval()` then `model(x)` runs `backbone` in eval mode was kept per project
root with the asking file's own classes in it, so `clean_batchnorm_freeze_backbone.py`
linted first made `clean_wrapper_forward_runs_the_switched_backbone.py` report a false
EVL001 in a whole-directory run and not alone.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from evallint import lint_paths

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
HELPER_PAST_EIGHT = FIXTURES / "projects" / "evl001_evl002_helper_past_eight_imported_files"

BATCH = [
    FIXTURES / "clean_batchnorm_freeze_backbone.py",  # asks about `backbone`, delegates nothing
    FIXTURES / "clean_wrapper_forward_runs_the_switched_backbone.py",
    FIXTURES / "evl001_wrapper_forward_runs_more_than_the_switched_backbone.py",
]


def _by_file(paths: list[Path]) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for d in lint_paths([str(p) for p in paths]):
        related = tuple((r.path, r.line, r.column, r.message) for r in d.related)
        found.setdefault(Path(d.path).name, []).append((d.code, d.line, d.column, related))
    return {name: sorted(items) for name, items in found.items()}


def test_findings_in_a_batch_are_those_of_each_file_alone() -> None:
    alone: dict[str, list[tuple]] = {}
    for path in BATCH:
        alone.update(_by_file([path]))
    assert _by_file(BATCH) == alone
    assert _by_file(list(reversed(BATCH))) == alone


def test_batch_output_is_the_same_under_other_string_hashes() -> None:
    outputs = set()
    for seed in ("0", "1", "12345"):
        run = subprocess.run(
            [sys.executable, "-m", "evallint", "--format", "json", "--no-cache", "--jobs", "1"]
            + [str(p.relative_to(ROOT)) for p in BATCH],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=False,
        )
        json.loads(run.stdout)  # a report, not an error
        outputs.add(run.stdout)
    assert len(outputs) == 1


def test_callers_reach_the_linted_file_across_a_cache_clear(monkeypatch) -> None:
    """The project index clears its tables every MAX_CACHED_ANALYSES files of a run; a clear
    while a caller of the linted file is analysed (here: while `train.py` reads its nine
    imports) must not give that caller a second analysis of the linted file, or the
    evaluation it reaches there loses its "reached from this call" location."""
    import evallint.analysis.project as project

    files = [str(p) for p in sorted(HELPER_PAST_EIGHT.glob("*.py"))]
    expected = _by_file([Path(f) for f in files])
    reached = [r for f in expected["evaluation.py"] for r in f[3] if "reached from" in r[3]]
    assert len(reached) == 2  # EVL001 and EVL002, each from train.py's call
    for limit in (3, 5, 8):
        monkeypatch.setattr(project, "MAX_CACHED_ANALYSES", limit)
        assert _by_file([Path(f) for f in files]) == expected, limit
