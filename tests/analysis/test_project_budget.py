"""What a linted file follows into other project files is bounded by the text it pulls in,
charged per importer: many small modules are all followed, a few large ones use it up, and
a file without torch text costs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from evallint.analysis import project as project_module
from evallint.analysis.file_analysis import FileAnalysis
from evallint.analysis.project import MAX_IMPORTED_CHARS, ProjectIndex


def _reader(path: Path) -> Optional[str]:
    text = path.read_text(encoding="utf-8")
    return text if "torch" in text else None


def _index() -> ProjectIndex:
    return ProjectIndex(_reader, analyse=FileAnalysis)


def _write(root: Path, name: str, size: int, torch: bool = True) -> None:
    head = "import torch\n" if torch else "import os\n"
    (root / f"{name}.py").write_text(head + "#" * size + "\n", encoding="utf-8")


def test_many_small_files_are_all_followed(tmp_path: Path) -> None:
    for number in range(30):
        _write(tmp_path, f"small{number}", 200)
    importer = str(tmp_path / "train.py")
    index = _index()
    assert all(index.located_source(importer, f"small{n}") for n in range(30))


def test_large_files_use_up_the_budget_of_one_importer_only(tmp_path: Path) -> None:
    share = MAX_IMPORTED_CHARS // 3
    for name in ("big0", "big1", "big2", "big3"):
        _write(tmp_path, name, share)
    index = _index()
    first, second = str(tmp_path / "a.py"), str(tmp_path / "b.py")
    assert index.located_source(first, "big0") and index.located_source(first, "big1")
    assert index.located_source(first, "big2") is None  # over the budget
    assert index.located_source(first, "big0")  # what it already follows stays followed
    # another importer has its own budget, whatever the first one read
    assert index.located_source(second, "big2") and index.located_source(second, "big3")


def test_files_without_torch_text_cost_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(project_module, "MAX_IMPORTED_CHARS", 1_000)
    for number in range(20):
        _write(tmp_path, f"plain{number}", 900, torch=False)
    _write(tmp_path, "helpers", 500)
    importer = str(tmp_path / "train.py")
    index = _index()
    assert all(index.located_source(importer, f"plain{n}") is None for n in range(20))
    assert index.located_source(importer, "helpers")
