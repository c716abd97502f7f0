"""Callers in other files are found through an index of what each project file calls and
imports. Its facts are kept for the process per file and (mtime, size), so linting file after
file with fresh project indexes (the `lint_source` API, tests) does not re-read the project;
a caller that changes on disk is read again."""

from __future__ import annotations

import os
from pathlib import Path

from evallint.engine.run import lint_source

PROJECT = Path(__file__).parents[1] / "fixtures" / "projects" / "clean_helper_every_caller_switches"


def _lint_helper(root: Path) -> list[str]:
    helper = root / "metrics.py"
    return sorted(d.code for d in lint_source(helper.read_text(encoding="utf-8"), str(helper)))


def _rewrite(path: Path, text: str, tick: int) -> None:
    path.write_text(text, encoding="utf-8")
    # a distinct modification time even where the clock is coarse
    os.utime(path, ns=(10**18 + tick, 10**18 + tick))


def test_a_caller_changed_on_disk_is_read_again(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("project root marker\n", encoding="utf-8")
    (tmp_path / "metrics.py").write_text(
        (PROJECT / "metrics.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    caller = (PROJECT / "run.py").read_text(encoding="utf-8")
    _rewrite(tmp_path / "run.py", caller, 1)
    assert _lint_helper(tmp_path) == []  # every caller switches to eval and no_grad

    careless = caller.replace("    net.eval()\n", "").replace("net.eval()\n", "")
    careless = careless.replace("with torch.no_grad():\n    print", "if True:\n    print")
    careless = careless.replace(
        "    with torch.no_grad():\n        print", "    if True:\n        print"
    )
    assert "eval()" not in careless and "no_grad" not in careless
    _rewrite(tmp_path / "run.py", careless, 2)
    assert _lint_helper(tmp_path) == ["EVL001", "EVL002"]

    # called through a module alias (`import metrics as m; m.accuracy(...)`) and switching
    aliased = caller.replace("from metrics import accuracy", "import metrics as m")
    aliased = aliased.replace("accuracy(net, val_batches)", "m.accuracy(net, val_batches)")
    _rewrite(tmp_path / "run.py", aliased, 3)
    assert _lint_helper(tmp_path) == []
    _rewrite(tmp_path / "run.py", careless.replace("from metrics import accuracy", "import x"), 4)
    assert _lint_helper(tmp_path) == ["EVL001", "EVL002"]  # no caller left: judged alone
