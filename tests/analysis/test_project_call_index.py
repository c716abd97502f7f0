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
    # first the script calls nothing of metrics.py: the helper is judged alone
    unrelated = caller.replace("from metrics import accuracy", "from scoring import accuracy")
    _rewrite(tmp_path / "run.py", unrelated, 1)
    assert _lint_helper(tmp_path) == ["EVL001", "EVL002"]
    # then it imports the helper and calls it in eval mode under no_grad: read again, clean
    _rewrite(tmp_path / "run.py", caller, 2)
    assert _lint_helper(tmp_path) == []
    # called through a module alias (`import metrics as m; m.accuracy(...)`)
    _rewrite(tmp_path / "run.py", unrelated, 3)
    assert _lint_helper(tmp_path) == ["EVL001", "EVL002"]
    aliased = caller.replace("from metrics import accuracy", "import metrics as m")
    _rewrite(tmp_path / "run.py", aliased.replace("accuracy(net", "m.accuracy(net"), 4)
    assert _lint_helper(tmp_path) == []


def test_from_import_names_and_submodules_are_read() -> None:
    from evallint.analysis.project_files import imported_names, submodule_name

    assert imported_names("(engine,\n    metrics as m)") == [
        ("engine", "engine"),
        ("metrics", "m"),
    ]
    assert imported_names("engine as eng  ") == [("engine", "eng")]
    assert submodule_name(".", "engine") == ".engine"
    assert submodule_name("pkg.sub", "engine") == "pkg.sub.engine"
