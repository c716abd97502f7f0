"""The whole-file tables of a file's analysis (file_tables.py, issue 20 step 1): filled
before the first summary, immutable, and compared between two lints of one document. An
edit inside a function body that binds no new name and adds no optimizer, step, backward or
forward method leaves them equal (the gate a later per-function reuse reads); an edit that
adds an optimizer or a forward method changes the table that says so."""

from __future__ import annotations

import textwrap
from dataclasses import FrozenInstanceError
from typing import Callable, Optional

import pytest

from evallint.analysis.file_analysis import FileAnalysis
from evallint.analysis.file_tables import FileTables, changed_tables, file_tables, same_tables
from evallint.analysis.forward_methods import SELF_SWITCHED, forward_methods_of_text
from evallint.analysis.reuse import Reuse
from evallint.engine.run import analyse_source
from evallint.source.incremental import IncrementalParser

SCRIPT = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(self.fc(x))


    def train(model, data, opt):
        model.train()
        for x, y in data:
            loss = (model(x) - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()


    def evaluate(model, data):
        total = 0.0
        for x, y in data:
            total += (model(x) - y).abs().sum().item()
        return total


    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    """
)


def _tables(source: str, parser: Optional[IncrementalParser] = None) -> FileTables:
    """The tables of a lint through an editor's parser (only those fill them eagerly)."""
    analysis = analyse_source(source, "train.py", parser=parser or IncrementalParser())
    assert isinstance(analysis, FileAnalysis)
    assert analysis.tables is not None
    return analysis.tables


def _edited(old: str, new: str) -> str:
    assert SCRIPT.count(old) == 1
    return SCRIPT.replace(old, new)


TYPING = [
    ("(model(x) - y).abs().sum().item()", "(model(x) - y).abs().sum().item() * 2"),
    ("total = 0.0", "total = 1.0"),
    ("model.train()", "model.train()  # typing a comment"),
    ("return total", "return total / 2"),
]


@pytest.mark.parametrize("old,new", TYPING)
def test_typing_in_a_body_leaves_the_tables_equal(old: str, new: str) -> None:
    before = _tables(SCRIPT)
    after = _tables(_edited(old, new))
    assert changed_tables(before, after) == ()
    assert same_tables(before, after)
    assert before == after and hash(before) == hash(after)


def test_typing_through_the_incremental_parser_leaves_the_tables_equal() -> None:
    """The language server's path: the second text re-parses only the edited statement."""
    parser = IncrementalParser()
    before = _tables(SCRIPT, parser)
    text = SCRIPT
    for old, new in TYPING:
        text = text.replace(old, new)
        assert changed_tables(before, _tables(text, parser)) == ()


def test_adding_an_optimizer_changes_the_tables() -> None:
    without = _tables(SCRIPT.replace("opt = torch.optim.SGD(model.parameters(), lr=0.1)", ""))
    with_one = _tables(SCRIPT)
    changed = changed_tables(without, with_one)
    assert "optimizer_links" in changed and "optimizer_params" in changed
    assert not same_tables(without, with_one)
    assert with_one.optimizer_params == (("opt", frozenset({"model"})),)


def test_a_file_gaining_its_first_optimizer_changes_has_optimizer() -> None:
    bare = SCRIPT.replace("opt = torch.optim.SGD(model.parameters(), lr=0.1)", "")
    bare = bare.replace("        opt.step()\n", "").replace("opt.zero_grad()", "pass")
    assert "step" not in bare and "optim" not in bare
    before = _tables(bare)
    after = _tables(bare + "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n")
    assert not before.has_optimizer and after.has_optimizer
    assert {"has_optimizer", "steps_parameters", "backward_reach"} <= set(
        changed_tables(before, after)
    )


def test_adding_a_forward_method_changes_the_tables() -> None:
    before = _tables(SCRIPT)
    after = _tables(
        _edited(
            "    def forward(self, x):",
            "    def predict(self, x):\n        return self(x)\n\n    def forward(self, x):",
        )
    )
    assert "predict" not in before.forward_method_names
    assert "predict" in after.forward_method_names
    assert "forward_method_names" in changed_tables(before, after)


def test_calling_under_no_grad_changes_calls_by_grad() -> None:
    before = _tables(SCRIPT)
    after = _tables(SCRIPT + "with torch.no_grad():\n    evaluate(model, [])\n")
    assert dict(after.calls_by_grad)["evaluate"] == (True,)
    assert "calls_by_grad" in changed_tables(before, after)


def test_tables_are_immutable_and_filled_before_the_summaries() -> None:
    analysis = analyse_source(SCRIPT, "train.py", parser=IncrementalParser())
    assert isinstance(analysis, FileAnalysis)
    tables = analysis.tables
    assert tables is not None
    with pytest.raises(FrozenInstanceError):
        tables.has_optimizer = False  # type: ignore[misc]
    # the summaries read the values the tables hold: asking again after the lint answers the same
    assert file_tables(analysis) == tables
    assert tables.backward_reach == (True,)
    assert tables.module_keys == frozenset({"model"})


def test_a_batch_lint_fills_its_tables_on_demand() -> None:
    analysis = analyse_source(SCRIPT, "train.py")
    assert isinstance(analysis, FileAnalysis) and analysis.tables is None
    assert file_tables(analysis) == _tables(SCRIPT)


def test_a_lazy_analysis_has_no_tables_until_completed() -> None:
    linted = analyse_source(SCRIPT, "t.py")
    assert isinstance(linted, FileAnalysis)
    analysis = FileAnalysis(linted.module, "t.py", source=SCRIPT, lazy=True, eager_tables=True)
    assert analysis.tables is None
    assert not same_tables(None, None)
    assert analysis.completed().tables == _tables(SCRIPT)


def test_binding_a_new_name_in_a_body_leaves_the_tables_equal() -> None:
    """`own_bound_names` keeps only names the file calls as an attribute (what
    `binds_attribute` is asked for): a typed `scale = 2.0` binds a name no `self.X(...)`
    reads, so the tables stay equal, through the editor's parser too."""
    parser = IncrementalParser()
    before = _tables(SCRIPT, parser)
    after = _tables(_edited("total = 0.0", "total = 0.0\n    scale = 2.0"), parser)
    assert changed_tables(before, after) == ()


def test_binding_a_called_attribute_changes_own_bound_names() -> None:
    before = _tables(SCRIPT + "class Runner:\n    def go(self):\n        self.net(1)\n")
    after = _tables(
        SCRIPT + "class Runner:\n    def go(self):\n        self.net = Net()\n        self.net(1)\n"
    )
    assert "net" not in before.own_bound_names and "net" in after.own_bound_names
    assert "own_bound_names" in changed_tables(before, after)


SWITCHING = """
class Memory(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x)

    def build(self, x):
        self.eval()
        return self(x)
"""


def test_an_edit_elsewhere_keeps_the_per_statement_tables_of_an_editor() -> None:
    """The editor's tables are combined from per-statement parts kept by text or node
    (forward methods, self-switching methods, backward reach's definitions): after an edit
    in another statement, and after one in the class itself, they equal a fresh lint's."""
    parser = IncrementalParser()
    text = SCRIPT + SWITCHING
    for version in (
        text,
        text.replace("total = 0.0", "total = 0.5"),
        text.replace("self.eval()", "self.train()"),
        text,
    ):
        assert _tables(version, parser) == _tables(version)


def test_self_switching_methods_kept_per_statement_equal_a_fresh_read() -> None:
    """`forward_methods_of_text` in a language server's store (its classes' parts kept by
    statement text) answers as with no store, edit after edit."""
    store = Reuse()
    text = SCRIPT + SWITCHING
    for version in (
        text,
        text.replace("total = 0.0", "total = 0.5"),
        text.replace("self.eval()", "self.train()"),
        text,
    ):
        with store.active():
            kept = forward_methods_of_text(version)
        assert kept == forward_methods_of_text(version)
        assert ("build" in kept.get(SELF_SWITCHED, ())) == ("self.eval()" in version)


def test_bound_names_kept_per_piece_equal_the_whole_text_scan() -> None:
    """`text_bound_names` with a store scans the pieces between column-0 lines (the line
    patterns match within a line; `_PROPERTY`, which spans a decorator's lines, the whole
    text) and finds what one scan of the whole text finds, CRLF texts too."""
    from evallint.analysis.bound_names import bound_names, text_bound_names

    kept: dict[tuple[str, str], frozenset[str]] = {}

    def store(name: str, text: str, compute: Callable[[], frozenset[str]]) -> frozenset[str]:
        return kept.setdefault((name, text), compute())

    decorated = (
        "class A:\n    @property\n    @cache\n    def late(self):\n        return 1\n"
        "@property\ndef top(self): pass\nx = f(key='named', other=1)\n"
        "self.a, self.b = 1, 2\nq: int = 3\n'''\nsplit=1\n'''\n"
    )
    for text in (SCRIPT, SCRIPT + SWITCHING, decorated, decorated.replace("\n", "\r\n")):
        assert text_bound_names(text, store) == bound_names((text,))
    assert {"late", "top", "key", "other", "a", "split", "q"} <= text_bound_names(decorated, store)
