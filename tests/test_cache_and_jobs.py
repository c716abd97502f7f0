"""The result cache and process parallelism change speed, never results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from evallint import lint_paths

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "projects" / "evl001_evl002_crossfile_evaluate"


def _codes(found) -> list[tuple[str, int, str]]:
    return [(Path(d.path).name, d.line, d.code) for d in found]


def test_parallel_run_equals_serial_run() -> None:
    files = sorted(FIXTURES.glob("*.py"))[:40]
    assert _codes(lint_paths(files, jobs=2)) == _codes(lint_paths(files, jobs=1))


def test_warm_cache_returns_the_same_findings(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    monkeypatch.chdir(tmp_path)
    cold = lint_paths([project], use_cache=True)
    entries = list((tmp_path / ".evallint_cache").rglob("*.json"))
    assert entries and (tmp_path / ".evallint_cache" / ".gitignore").read_text().strip().endswith(
        "*"
    )
    warm = lint_paths([project], use_cache=True)
    assert _codes(warm) == _codes(cold) and [d.subject for d in warm] == [d.subject for d in cold]
    assert warm[0].related == cold[0].related


def test_editing_an_imported_helper_invalidates_its_importers(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    monkeypatch.chdir(tmp_path)
    before = [
        c for c in _codes(lint_paths([project / "train.py"], use_cache=True)) if c[0] == "train.py"
    ]
    assert before
    engine = project / "engine.py"
    text = engine.read_text(encoding="utf-8")
    # the helper now switches to eval mode and disables autograd itself: train.py is clean
    fixed = text.replace(
        "def evaluate(model, loader", "@torch.no_grad()\ndef evaluate(model, loader"
    )
    fixed = fixed.replace(
        "    correct, loss_sum = 0, 0.0", "    model.eval()\n    correct, loss_sum = 0, 0.0", 1
    )
    assert fixed != text
    engine.write_text(fixed, encoding="utf-8")
    after = [
        c for c in _codes(lint_paths([project / "train.py"], use_cache=True)) if c[0] == "train.py"
    ]
    assert after == []


def test_a_long_lived_project_index_rereads_an_edited_helper(tmp_path: Path) -> None:
    """flake8 and the language server keep one project index per process: an imported file
    edited meanwhile must be read again, and re-reading must not use up the import budget."""
    from evallint.engine.config import Config
    from evallint.engine.run import lint_source, process_project

    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    train, engine = project / "train.py", project / "engine.py"
    shared = process_project(Config())
    lint = lambda: [
        (d.line, d.code)
        for d in lint_source(train.read_text(encoding="utf-8"), str(train), project=shared)
    ]  # noqa: E731
    before = lint()
    assert before
    original = engine.read_text(encoding="utf-8")
    fixed = original.replace(
        "def evaluate(model, loader", "@torch.no_grad()\ndef evaluate(model, loader"
    )
    fixed = fixed.replace(
        "    correct, loss_sum = 0, 0.0", "    model.eval()\n    correct, loss_sum = 0, 0.0", 1
    )
    for round_trip in range(6):  # more rounds than files an importer may pull
        engine.write_text(fixed + "\n" * round_trip, encoding="utf-8")
        assert lint() == []
        engine.write_text(original + "\n" * round_trip, encoding="utf-8")
        assert lint() == before


def test_a_corrupt_entry_is_ignored(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "train.py"
    shutil.copy(FIXTURES / "evl001_flat_script_no_eval.py", source)
    monkeypatch.chdir(tmp_path)
    expected = _codes(lint_paths([source], use_cache=True))
    for entry in (tmp_path / ".evallint_cache").rglob("*.json"):
        entry.write_text('{"version": "0.1.0", "dependen', encoding="utf-8")  # a killed writer
    assert _codes(lint_paths([source], use_cache=True)) == expected


def test_warm_cli_run_does_not_import_libcst(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "evl001_flat_script_no_eval.py", tmp_path / "train.py")
    probe = "import sys, runpy; sys.argv = ['evallint', 'train.py']\ntry:\n    runpy.run_module('evallint', run_name='__main__')\nexcept SystemExit:\n    pass\nprint('LIBCST' if 'libcst' in sys.modules else 'NO-LIBCST')"
    cold = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    warm = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert cold.stdout.strip().endswith("LIBCST") and "EVL001" in cold.stdout
    assert warm.stdout.strip().endswith("NO-LIBCST") and "EVL001" in warm.stdout
    assert json.loads(json.dumps(warm.stdout.count("EVL001"))) == cold.stdout.count("EVL001")


def _age(directory: Path) -> None:
    """Files last modified a minute ago: fresher ones are not indexed by their time."""
    import os
    import time

    for path in directory.rglob("*.py"):
        os.utime(path, ns=(time.time_ns() - 60_000_000_000,) * 2)


def test_a_warm_run_is_answered_from_the_index_alone(tmp_path: Path, monkeypatch) -> None:
    import evallint.engine.run as run

    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    _age(project)
    monkeypatch.chdir(tmp_path)
    cold = lint_paths([project], use_cache=True)
    cache = tmp_path / ".evallint_cache"
    [index] = cache.glob("index-*.json")
    for entry in cache.glob("*/*.json"):
        entry.unlink()  # only the index is left
    monkeypatch.setattr(
        run,
        "_lint_files",
        lambda files, *args: (
            (_ for _ in ()).throw(AssertionError(f"linted {files}")) if files else []
        ),
    )
    warm = lint_paths([project], use_cache=True)
    assert _codes(warm) == _codes(cold) and warm[0].related == cold[0].related
    assert index.exists()


def test_an_edit_is_seen_through_the_index(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "train.py"
    shutil.copy(FIXTURES / "evl001_flat_script_no_eval.py", source)
    _age(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _codes(lint_paths([source], use_cache=True))
    assert _codes(lint_paths([source], use_cache=True))  # now answered through the index
    source.write_text(
        source.read_text(encoding="utf-8").replace(
            "import torch", "import torch\nimport torch as t2", 1
        ),
        encoding="utf-8",
    )
    edited = _codes(lint_paths([source], use_cache=True))
    assert edited and all(line > 1 for _, line, _ in edited)
    source.write_text("x = 1  # no torch at all\n", encoding="utf-8")
    assert lint_paths([source], use_cache=True) == []


def test_a_file_modified_just_now_is_not_indexed_by_its_time(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "train.py"
    shutil.copy(FIXTURES / "evl001_flat_script_no_eval.py", source)
    monkeypatch.chdir(tmp_path)
    lint_paths([source], use_cache=True)
    assert not list(
        (tmp_path / ".evallint_cache").glob("index-*.json")
    )  # nothing old enough to index
    _age(tmp_path)
    lint_paths([source], use_cache=True)
    [index] = (tmp_path / ".evallint_cache").glob("index-*.json")
    header, body = index.read_bytes().split(b"\n", 1)
    assert header.startswith(b"evallint-cache-2 ")
    assert list(json.loads(body)["files"]) == ["train.py"]  # relative to the project root
