"""benchmarks/verify_reach.py: matching runtime events to static findings, and the counting.

Pure functions on hand-made JSON: no mirror, no network, no torch run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "verify_reach.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_reach", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_reach"] = module
    spec.loader.exec_module(module)
    return module


vr = _load()


def _finding(code: str, path: str, line: int, verdict: str) -> object:
    return vr.Finding("o/r", code, path, line, verdict, "")


def _report(root: Path) -> dict[str, object]:
    lib = str(root / "pkg" / "base.py")
    return {
        "events": [
            # EVL001 reported at a test's call, the library line is a related location
            {
                "code": "EVL001",
                "path": str(root / "pkg" / "fit.py"),
                "line": 40,
                "related": [{"path": lib, "line": 12, "column": 8}],
            },
            # an event no static finding stands at
            {"code": "EVL002", "path": lib, "line": 99, "related": []},
            # not a rule the benchmark counts
            {"code": "EVL006", "path": lib, "line": 5, "related": []},
        ],
        "sites": [{"chain": [[lib, 30, 4], ["/usr/lib/python3/x.py", 1, 0]]}],
        "resumed": [
            {"backward_chain": [[lib, 50, 0]], "forward_chain": [], "step_chain": [[lib, 51, 0]]}
        ],
    }


def test_events_match_by_code_and_any_location(tmp_path: Path) -> None:
    findings = [
        _finding("EVL001", "pkg/base.py", 12, "unresolved"),  # the event's related line
        _finding("EVL002", "pkg/base.py", 12, "unresolved"),  # same line, other code: no event
        _finding("EVL002", "pkg/base.py", 30, "unresolved"),  # a forward ran here, no event
        _finding("EVL003", "pkg/base.py", 51, "confirmed"),  # the optimizer step's line
        _finding("EVL001", "pkg/other.py", 12, "unresolved"),  # never reached
    ]
    marked, missed = vr.match_runtime(findings, _report(tmp_path), str(tmp_path))
    assert [f.runtime for f in marked] == ["event", "", "reached", "reached", ""]
    assert [(e["code"], e["line"]) for e in missed] == [("EVL002", 99)]


def test_counting_per_rule_and_contradicted_not_affected() -> None:
    findings = [
        _finding("EVL001", "a.py", 1, "confirmed"),
        _finding("EVL001", "a.py", 2, "not-affected"),
        _finding("EVL001", "a.py", 3, "unresolved"),
        _finding("EVL001", "a.py", 4, "unresolved"),
        _finding("EVL002", "a.py", 5, "error"),
    ]
    findings[1].runtime = "event"  # a false `not affected`
    findings[2].runtime = "event"
    findings[3].runtime = "reached"
    rows = vr.count(findings)
    one = rows["EVL001"]
    assert (one.findings, one.static_numeric, one.confirmed, one.not_affected) == (4, 2, 1, 1)
    assert (one.runtime_event, one.runtime_reached, one.runtime_only) == (2, 1, 2)
    assert one.total == 4 and one.share() == 1.0
    assert one.strict_share() == 0.75  # the `reached` finding is not counted without an event
    assert one.contradicted == ["o/r:a.py:2"]
    assert rows["EVL002"].share() == 0.0 and rows["EVL003"].share() is None
    assert rows["all"].findings == 5 and rows["all"].total == 4


def test_paths_outside_the_root_stay_absolute(tmp_path: Path) -> None:
    assert vr._rel(str(tmp_path / "a" / "b.py"), str(tmp_path)) == "a/b.py"
    assert vr._rel("/elsewhere/c.py", str(tmp_path)) == "/elsewhere/c.py"
    assert vr._rel("a/./b.py", str(tmp_path)) == "a/b.py"
