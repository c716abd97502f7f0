"""A project file analysed because a linted file imports it is summarised on demand: up to
the function asked for, in the order a complete analysis summarises, so each summary is the
complete analysis's whatever the importer asks first (file_analysis.py, `lazy`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import libcst as cst

from evallint.analysis import project as project_module
from evallint.analysis.file_analysis import FileAnalysis
from evallint.analysis.project import ProjectIndex
from evallint.engine.run import lint_paths

_HELPERS = """\
import torch


def evaluate(model, loader):
    return [model(x) for x in loader]


def recurse_a(model, n):
    return recurse_b(model, n - 1) if n else model(n)


def recurse_b(model, n):
    model.eval()
    return recurse_a(model, n)


def train(model, loader, optimizer):
    model.train()
    for x in loader:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()


class Trainer:
    def fit(self, model, loader, optimizer):
        train(model, loader, optimizer)
        return evaluate(model, loader)
"""


def _reader(path: Path) -> Optional[str]:
    return path.read_text(encoding="utf-8")


def _project(tmp_path: Path) -> tuple[ProjectIndex, str]:
    (tmp_path / "helpers.py").write_text(_HELPERS, encoding="utf-8")
    return ProjectIndex(_reader, analyse=FileAnalysis), str(tmp_path / "train.py")


def _described(summary: object) -> str:
    """The summary with object addresses left out (the two analyses have their own trees)."""
    text = re.sub(r" at 0x[0-9a-f]+", "", repr(summary))
    # set members in a fixed order (sets built in another order print in another order)
    return re.sub(
        r"frozenset\(\{([^{}]*)\}\)",
        lambda m: "frozenset({" + ", ".join(sorted(m.group(1).split(", "))) + "})",
        text,
    )


def test_an_imported_file_is_summarised_only_up_to_the_function_asked(tmp_path: Path) -> None:
    project, importer = _project(tmp_path)
    analysis = project.analysis(importer, "helpers")
    assert analysis is not None and not analysis.complete
    assert analysis.summaries_computed == 0  # reading its classes costs no summary
    assert project.summary(importer, "helpers", "evaluate") is not None
    assert analysis.summaries_computed == 1
    assert set(analysis.summaries) == {"evaluate"}
    project.summary(importer, "helpers", "evaluate")
    assert analysis.summaries_computed == 1  # kept


def test_lazy_summaries_are_the_complete_analysis_s_in_any_order(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(_HELPERS, encoding="utf-8")
    complete = FileAnalysis(
        cst.parse_module(_HELPERS),
        str(tmp_path / "helpers.py"),
        source=_HELPERS,
        judge_uncalled=False,
    )
    names = ["train", "recurse_b", "evaluate", "recurse_a"]  # not the file's order
    project, importer = _project(tmp_path)
    for name in names:
        lazy = project.summary(importer, "helpers", name)
        assert _described(lazy) == _described(complete.summaries[name])
    method = project.analysis(importer, "helpers")
    assert method is not None
    fit = method.classes["Trainer"].methods["fit"]
    assert _described(method.summary_for(fit)) == _described(complete.summaries["Trainer.fit"])


def test_reading_the_facts_of_an_imported_file_completes_it(tmp_path: Path) -> None:
    project, importer = _project(tmp_path)
    project.summary(importer, "helpers", "evaluate")
    analysed = project.analysed(str(tmp_path / "helpers.py"))
    assert analysed is not None and analysed.complete
    assert set(analysed.summaries) == {"evaluate", "recurse_a", "recurse_b", "train", "Trainer.fit"}


def test_a_run_summarises_the_imported_file_up_to_what_the_linted_file_calls(
    tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "README.md").write_text("a project\n", encoding="utf-8")
    (tmp_path / "helpers.py").write_text(_HELPERS, encoding="utf-8")
    (tmp_path / "train.py").write_text(
        "import torch\nfrom helpers import train\n\n"
        "model = torch.nn.Linear(2, 2)\n"
        "train(model, [torch.ones(2)], torch.optim.SGD(model.parameters(), lr=0.1))\n",
        encoding="utf-8",
    )
    helpers: list[FileAnalysis] = []
    original = FileAnalysis.summary_for

    def noting(self: FileAnalysis, info):  # type: ignore[no-untyped-def]
        if Path(self.path).name == "helpers.py" and self not in helpers:
            helpers.append(self)
        return original(self, info)

    monkeypatch.setattr(FileAnalysis, "summary_for", noting)
    lint_paths([str(tmp_path / "train.py")], use_cache=False)
    # its functions in their order up to `train`; the class after it is never summarised,
    # nor is the file's top level interpreted
    (analysis,) = helpers
    assert list(analysis.summaries) == ["evaluate", "recurse_b", "recurse_a", "train"]
    assert analysis.summaries_computed == 4 and not analysis.complete


def test_an_imported_analysis_is_kept_by_its_text_over_the_index_clearing(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(project_module, "MAX_CACHED_ANALYSES", 3)
    project, importer = _project(tmp_path)
    first = project.analysis(importer, "helpers")
    project.summary(importer, "helpers", "train")
    assert first is not None and project.parses == 1
    for number in range(3):  # linted files fill the index: its tables are cleared
        project.remember(str(tmp_path / f"other{number}.py"), "import torch\n")
    assert project.analysed(str(tmp_path / "helpers.py")) is None  # cleared
    assert project.analysis(importer, "helpers") is first  # the same text: kept
    assert project.parses == 1 and first.summaries_computed == 4
    for number in range(3, 6):
        project.remember(str(tmp_path / f"other{number}.py"), "import torch\n")
    changed = _HELPERS.replace("model.train()", "model.train(True)")
    (tmp_path / "helpers.py").write_text(changed, encoding="utf-8")
    second = project.analysis(importer, "helpers")  # another text: parsed and analysed again
    assert second is not None and second is not first and project.parses == 2


def test_a_kept_analysis_is_not_taken_when_a_file_it_read_changed(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(project_module, "MAX_CACHED_ANALYSES", 3)
    (tmp_path / "other.py").write_text(
        "import torch\n\n\ndef scores(outputs):\n    return outputs.detach()\n", encoding="utf-8"
    )
    (tmp_path / "helpers.py").write_text(
        "import torch\nfrom other import scores\n\n\n"
        "def predict(model, x):\n    return scores(model(x))\n",
        encoding="utf-8",
    )
    project = ProjectIndex(_reader, analyse=FileAnalysis)
    importer = str(tmp_path / "train.py")
    project.summary(importer, "helpers", "predict")  # reads what `scores` returns
    first = project.analysis(importer, "helpers")
    parsed = project.parses  # helpers.py and other.py
    for number in range(3):
        project.remember(str(tmp_path / f"other{number}.py"), "import torch\n")
    (tmp_path / "other.py").write_text(
        "import torch\n\n\ndef scores(outputs):\n    return outputs\n", encoding="utf-8"
    )
    second = project.analysis(importer, "helpers")  # its text is the same, what it read is not
    assert second is not None and first is not None and second is not first
    assert project.parses == parsed  # the tree is the text's alone: kept
