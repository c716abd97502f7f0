"""Cold-path cut of session 21 (issue 20 item 2): the file of an override that another class
dispatches to is analysed lazily (overrides.py): the findings, the summaries read and the
analysis a whole-caller request gets must be the ones the complete analysis gives. And the
project-wide text searches that start at a word (a leading `\\b`) run without it, checking
the boundary themselves (word_pattern.py): the same answers as the bounded pattern."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from evallint.analysis.project import ProjectIndex
from evallint.engine.run import lint_source, new_project
from evallint.source.word_pattern import WordPattern

BASE = textwrap.dedent(
    """
    import torch


    class Solver:
        def __init__(self, model: torch.nn.Module, criterion, optimizer):
            self.model = model
            self.criterion = criterion
            self.optimizer = optimizer

        def _predict(self, batch):
            raise NotImplementedError

        def step(self, batch):
            self.optimizer.zero_grad()
            loss = self.criterion(self._predict(batch), batch[1])
            loss.backward()
            self.optimizer.step()

        def validate(self, loader):
            self.model.eval()
            total = 0.0
            for batch in loader:
                total += self.criterion(self._predict(batch), batch[1]).item()
            return total

        def fit(self, loader, valid_loader, every):
            self.model.train()
            for number, batch in enumerate(loader):
                self.step(batch)
                if number % every == 0:
                    self.validate(valid_loader)
    """
)
SUBCLASS = textwrap.dedent(
    """
    from solver_base import Solver


    def first(model, batch):
        return model(batch)


    class SingleSolver(Solver):
        def _predict(self, batch):
            return self.model(first(self.model, batch[0]))


    class Report:
        def show(self, model, loader):
            model.eval()
            return [model(x) for x in loader]


    RESULT = Report().show(None, [])
    """
)


def _project(tmp_path: Path, subclass: str = SUBCLASS) -> tuple[Path, Path]:
    (tmp_path / "solver_base.py").write_text(BASE, encoding="utf-8")
    (tmp_path / "single.py").write_text(subclass, encoding="utf-8")
    return tmp_path / "solver_base.py", (tmp_path / "single.py").resolve()


def _lint(base: Path, project: ProjectIndex) -> list:
    return lint_source(base.read_text(encoding="utf-8"), str(base), project=project)


def _complete_caller_analyses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session 20's overrides: every candidate file analysed whole."""
    original = ProjectIndex.caller_analysis

    def whole(self: ProjectIndex, path: Path, lazy: bool = False):  # type: ignore[no-untyped-def]
        return original(self, path)

    monkeypatch.setattr(ProjectIndex, "caller_analysis", whole)


def test_override_file_is_summarised_up_to_the_override(tmp_path: Path) -> None:
    base, single = _project(tmp_path)
    project = new_project()
    found = _lint(base, project)
    assert sorted((d.code, d.line) for d in found) == [
        ("EVL002", 24),
        ("EVL002", 24),
        ("EVL003", 17),
    ]
    lazy = project._caller_analyses[(single, None)]
    assert lazy is not None and not lazy.complete
    # the functions before the override and the override itself, in order; not the methods
    # of the classes after it, nor the top level
    assert set(lazy.summaries) == {"first", "SingleSolver._predict"}
    assert lazy.top_exit_states == ()


def test_findings_equal_the_complete_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = _project(tmp_path)
    lazily = _lint(base, new_project())
    _complete_caller_analyses(monkeypatch)
    assert _lint(base, new_project()) == lazily


def test_whole_caller_request_completes_it_and_reads_as_built_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, single = _project(tmp_path)
    project = new_project()
    _lint(base, project)
    lazy = project._caller_analyses[(single, None)]
    assert lazy is not None
    asked: list[object] = []
    interpret = type(lazy)._interpret

    def interpret_and_ask(self, judge_uncalled):  # type: ignore[no-untyped-def]
        asked.append(project.caller_analysis(single, lazy=True))  # re-entrant, mid-completion
        asked.append(project.caller_analysis(single))
        interpret(self, judge_uncalled)

    monkeypatch.setattr(type(lazy), "_interpret", interpret_and_ask)
    whole = project.caller_analysis(single)
    monkeypatch.setattr(type(lazy), "_interpret", interpret)
    assert whole is lazy and whole.complete
    assert asked == [None, None]  # as while a complete analysis is being built
    assert project.caller_analysis(single) is whole  # kept, not built again
    # the same summaries as an analysis built whole from the start
    _complete_caller_analyses(monkeypatch)
    other = new_project()
    _lint(base, other)
    complete = other._caller_analyses[(single, None)]
    assert complete is not None and complete.complete
    assert (
        set(whole.summaries)
        == set(complete.summaries)
        == {
            "first",
            "SingleSolver._predict",
            "Report.show",
        }
    )
    for name, summary in complete.summaries.items():
        mine = whole.summaries[name]
        assert (mine is None) == (summary is None)
        if summary is not None and mine is not None:
            assert len(mine.forwards) == len(summary.forwards)
    assert whole.call_counts == complete.call_counts


def test_a_changed_override_file_is_read_again_by_a_new_index(tmp_path: Path) -> None:
    """The per-process text cache (`_file_facts`, by modification time and size) serves the
    lazy analysis: an override that stops running the model is seen by the next index."""
    base, single = _project(tmp_path)
    assert _lint(base, new_project())
    quiet = SUBCLASS.replace("return self.model(first(self.model, batch[0]))", "return batch[0]")
    assert quiet != SUBCLASS
    single.write_text(quiet + "\n# changed\n", encoding="utf-8")
    assert _lint(base, new_project()) == []


PATTERNS = (
    r"def\s+(\w+)\s*\(\s*self\b",
    r"def\s+load\s*\(",
    r"class\s+\w+\s*\([^)]*\bKernel\b",
    r"evaluate\s*\(",
    r"self\.forward\s*\(",
    r"self\.(\w+)\.(\w+)\(",
)
TEXTS = (
    "",
    "def load(self): pass",
    "undef load(x)\ndef load (self, y)\n  xdef f(self)\nasync def g( self ):",
    "class A(Kernel):\nclass B(nn.Kernel, X)\nsubclass C(Kernel)\n_class D(Kernel)",
    "evaluate(1) re_evaluate(2) pre.evaluate (3) évaluate(4) éevaluate(5) 9evaluate(6)",
    "self.forward(x) myself.forward(y) _self.forward(z) (self.forward (w))",
    "xdef def(self) def def_(self) def  f(self)defg(self)",
    "self.a.b( myself.a.b( self.é.é( xself.c.d(",
)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_word_pattern_answers_as_the_bounded_pattern(pattern: str) -> None:
    bounded = re.compile(r"\b" + pattern)
    fast = WordPattern(pattern)
    for text in TEXTS + ("\n".join(TEXTS), " ".join(reversed(TEXTS))):
        assert fast.findall(text) == bounded.findall(text), text
        mine, theirs = fast.search(text), bounded.search(text)
        assert (mine and (mine.span(), mine.groups())) == (
            theirs and (theirs.span(), theirs.groups())
        )


def test_word_pattern_refuses_patterns_not_starting_with_a_word() -> None:
    for pattern in (r"\w+\(", r"a?b", r"(def)", r"def|class", r".x"):
        with pytest.raises(ValueError):
            WordPattern(pattern)
