"""The real-code corpus scorer (benchmarks/realcode/score.py) on synthetic labels and findings.

No mirror, no network, no evallint run: `score_repo` is pure, and `main` must skip a labels
file whose mirror is missing instead of failing. (One test imports evallint in a child to
see which checkout the scorer's environment loads.)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCORE_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "realcode" / "score.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("realcode_score", SCORE_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["realcode_score"] = module
    spec.loader.exec_module(module)
    return module


score = _load()

LABELS = {
    "repo": "someone/tutorial",
    "commit": "0" * 40,
    "kind": "tutorial",
    "labeller": "test",
    "files": [
        {
            "path": "train.py",
            "findings": [
                {"code": "EVL001", "lines": [10, 12], "reason": "periodic test in train mode"},
                {"code": "EVL003", "lines": [30, 30], "reason": "backward after eval"},
            ],
            "accept": [{"code": "EVL002", "lines": [40, 40], "reason": "debatable"}],
            "clean": "",
        },
        {
            "path": "demo.ipynb",
            "findings": [{"code": "EVL002", "cell": 3, "lines": [5, 5], "reason": "no grad"}],
            "accept": [],
            "clean": "",
        },
        {"path": "clean.py", "findings": [], "accept": [], "clean": "all clean"},
    ],
}


def _f(path: str, line: int, code: str, cell: int | None = None) -> object:
    return score.Finding(path, line, code, cell, "msg")


def test_hits_misses_accepts_and_false_alarms() -> None:
    findings = [
        _f("./train.py", 11, "EVL001"),  # hit (path normalised)
        _f("train.py", 12, "EVL001"),  # same range again: counts once, not a false alarm
        _f("train.py", 40, "EVL002"),  # inside an accept range: neutral
        _f("train.py", 50, "EVL002"),  # outside every range: false alarm
        _f("train.py", 30, "EVL001"),  # right line, wrong code: false alarm, EVL003 missed
        _f("demo.ipynb", 5, "EVL002", cell=4),  # wrong cell: false alarm, label missed
        _f("clean.py", 1, "EVL001"),  # a clean labelled file: false alarm
        _f("unlabelled.py", 1, "EVL001"),  # file not labelled: not scored
    ]
    result = score.score_repo(LABELS, findings)
    t1, t2, t3 = (result.per_rule[c] for c in ("EVL001", "EVL002", "EVL003"))
    assert (t1.tp, t1.fn, t1.fp) == (1, 0, 2)
    assert (t2.tp, t2.fn, t2.fp) == (0, 1, 2)
    assert (t3.tp, t3.fn, t3.fp) == (0, 1, 0)
    assert sorted((m.path, m.code) for m in result.misses) == [
        ("demo.ipynb", "EVL002"),
        ("train.py", "EVL003"),
    ]
    assert {(o.path, o.line) for o in result.false_alarms} == {
        ("train.py", "50"),
        ("train.py", "30"),
        ("demo.ipynb", "cell 4:5"),
        ("clean.py", "1"),
    }


def test_summary_totals_core_rules_and_kinds() -> None:
    findings = [_f("train.py", 10, "EVL001"), _f("demo.ipynb", 5, "EVL002", cell=3)]
    summary = score.summarise([score.score_repo(LABELS, findings)])
    core = summary["per_rule"]["EVL001-003"]
    assert (core["tp"], core["fn"], core["fp"]) == (2, 1, 0)
    assert core["recall"] == pytest.approx(2 / 3)
    assert core["precision"] == 1.0
    assert summary["per_kind"]["tutorial"]["tp"] == 2
    assert [m["code"] for m in summary["misses"]] == ["EVL003"]


def test_nothing_found_gives_no_precision() -> None:
    summary = score.summarise([score.score_repo(LABELS, [])])
    assert summary["per_rule"]["EVL001"]["precision"] is None
    assert summary["per_rule"]["EVL001"]["recall"] == 0.0


def test_missing_mirror_is_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "someone__tutorial.json").write_text(json.dumps(LABELS), encoding="utf-8")
    out = tmp_path / "result.json"
    code = score.main(
        ["--labels", str(labels), "--mirror", str(tmp_path / "none"), "--json", str(out)]
    )
    assert code == 0
    assert "skip someone/tutorial: no mirror" in capsys.readouterr().err
    assert json.loads(out.read_text())["repos"] == 0


def test_manifest_lists_every_repository(tmp_path: Path) -> None:
    target = tmp_path / "manifest.md"
    score.write_manifest([LABELS], target)
    text = target.read_text()
    assert "[someone/tutorial](https://github.com/someone/tutorial)" in text
    assert "| tutorial | test | 3 | 1 | 3 | 1 |" in text


def test_evallint_runs_from_this_checkout_whatever_the_callers_pythonpath(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """evallint runs inside each exported repository: `PYTHONPATH=.` given by the caller must
    not name the export, and this checkout's code must come first (not an editable install
    of another checkout)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", ".")
    env = score.evallint_environment()
    entries = env["PYTHONPATH"].split(os.pathsep)
    assert entries[0] == str(SCORE_PY.parents[2])
    assert entries[1] == str(tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", "import evallint; print(evallint.__file__)"],
        cwd=tmp_path.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(probe.stdout.strip()).resolve().parents[1] == Path(entries[0])
