"""What the language server takes from its previous lint of a document never changes a
finding: after every edit of a random but valid editing session on real-ish training
scripts, the server's lint (incremental parse, the walks and node facts kept by
`evallint.analysis.reuse`, the CPython tree shared by its readers, its project index) equals
a from-scratch `lint_source` of the new text.

The server is driven in process (its lint method, as the lint thread calls it), so hundreds
of edits take seconds; `test_lsp_incremental.py` replays a session through a real client."""

from __future__ import annotations

import ast
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from evallint.analysis.forward_methods import forward_methods_of_text  # noqa: E402
from evallint.analysis.reuse import Reuse  # noqa: E402
from evallint.engine.run import lint_source  # noqa: E402
from evallint.lsp.program import Program  # noqa: E402
from evallint.lsp.server import EvallintServer, syntax_error  # noqa: E402
from tests.benchmark_scripts import latency_benchmark  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


BLOCK: str = latency_benchmark().BLOCK
"""The latency benchmark's block (`benchmarks/lsp_latency.py`), three times over."""

GENERATED = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n" + "".join(
    BLOCK.format(i=i) for i in range(3)
)

STATEMENTS = (
    "model.eval()",
    "model.train()",
    "self.eval()",
    "torch.set_grad_enabled(False)",
    "loss.backward()",
    "optimizer.step()",
    "optimizer.zero_grad()",
    "out = model(x)",
    "total += loss",
    "outputs.append(model(x))",
    "model.requires_grad_(False)",
    "evaluate(model, loader)",
    "pass",
    "# a comment",
    "with torch.no_grad():\n{indent}    out = model(x)",
    "for x, y in val_loader:\n{indent}    out = model(x)",
    "if train:\n{indent}    loss.backward()",
)
"""Statements typed at random places (at the indentation of the line they go before)."""

WORD = re.compile(r"\b[A-Za-z_]\w*\b")


def _scripts() -> list[tuple[str, str]]:
    """(name, text): the benchmark's script, the examples and fixtures with findings."""
    chosen = [("generated", GENERATED)]
    for path in sorted((ROOT / "examples").glob("*.py")):
        chosen.append((path.name, path.read_text(encoding="utf-8")))
    fixtures = sorted(p for p in FIXTURES.glob("*.py") if "# expect:" in p.read_text("utf-8"))
    for path in random.Random(9).sample(fixtures, 6):
        chosen.append((path.name, path.read_text(encoding="utf-8")))
    return chosen


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _edit(text: str, rng: random.Random) -> str:
    """One random edit: a line deleted, duplicated, swapped with the next, a statement
    inserted, a word replaced by another of the file, two top-level statements swapped,
    or a character typed (the text may then not parse: an editor's text often does not)."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return "import torch\n"
    at = rng.randrange(len(lines))
    kind = rng.randrange(7)
    if kind == 0 and len(lines) > 1:
        del lines[at]
    elif kind == 1:
        lines.insert(at, lines[at])
    elif kind == 2 and at + 1 < len(lines):
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    elif kind == 3:
        indent = re.match(r"[ \t]*", lines[at]).group()  # type: ignore[union-attr]
        statement = rng.choice(STATEMENTS).format(indent=indent)
        lines.insert(at, indent + statement + "\n")
    elif kind == 4:
        words = WORD.findall(text)
        spots = list(WORD.finditer(lines[at]))
        if words and spots:
            spot = rng.choice(spots)
            lines[at] = lines[at][: spot.start()] + rng.choice(words) + lines[at][spot.end() :]
    elif kind == 5:
        try:
            body = ast.parse(text).body
        except (SyntaxError, ValueError):
            body = []
        if len(body) > 2:
            first = rng.randrange(len(body) - 1)
            a, b = body[first], body[first + 1]
            start_a = a.lineno - 1 - len(getattr(a, "decorator_list", ()) or ())
            start_b = b.lineno - 1 - len(getattr(b, "decorator_list", ()) or ())
            end_b = b.end_lineno or b.lineno
            if start_a < start_b <= end_b and (a.end_lineno or a.lineno) <= start_b:
                lines = (
                    lines[:start_a] + lines[start_b:end_b] + lines[start_a:start_b] + lines[end_b:]
                )
    else:
        column = rng.randrange(len(lines[at].rstrip("\r\n")) + 1)
        lines[at] = lines[at][:column] + rng.choice("x(:=.1 ") + lines[at][column:]
    return "".join(lines)


def _found(found: list) -> list[tuple[object, ...]]:
    return sorted({(d.code, d.line, d.column, d.end_line, d.end_column, d.message) for d in found})


@pytest.mark.parametrize(("name", "script"), _scripts(), ids=lambda v: v if len(v) < 60 else "")
def test_random_editing_session_finds_what_a_fresh_lint_finds(
    name: str, script: str, tmp_path: Path
) -> None:
    (tmp_path / "README.md").write_text("a project of its own\n", encoding="utf-8")
    path = tmp_path / "train.py"
    uri = path.as_uri()
    server = EvallintServer()
    rng = random.Random(name)
    text = valid = script
    compared = linted = 0
    for version in range(1, 41):
        if version > 1:
            # mostly valid texts (they are the ones analysed); an invalid one now and then,
            # which the next edit repairs (it edits the last valid text)
            for _ in range(8):
                text = _edit(valid, rng)
                if _parses(text) or rng.random() < 0.1:
                    break
            if _parses(text):
                valid = text
        found = server.lint(Program.of_text(uri, str(path), version, text))
        if syntax_error(text, str(path)) is not None:
            continue  # the server shows the error beside the last findings, moved
        compared += 1
        assert _found(found) == _found(lint_source(text, str(path))), (name, version, text)
        reuse = server.reuse.get(uri)
        linted += reuse is not None and reuse.hits > 0
    assert compared >= 20
    assert linted >= 10  # the lints did take walks from the previous lint


@pytest.mark.parametrize(
    "path",
    sorted(FIXTURES.glob("*.py"))[::7] + sorted((ROOT / "examples").glob("*.py")),
    ids=lambda p: p.name,
)
def test_forward_methods_kept_by_statement_equal_a_whole_file_pass(path: Path) -> None:
    """The per-statement pass `forward_methods_of_text` makes under a store (classes kept
    by their statement's text, merged in `ast.walk`'s order) answers as the whole-file pass;
    twice, so that the second answer is taken from the store."""
    text = path.read_text(encoding="utf-8")
    edited = text + "\n\nclass Net(nn.Module):\n    def predict(self, x):\n        return self(x)\n"
    store = Reuse()
    for source in (text, edited, text):
        expected = forward_methods_of_text(source)
        with store.active():
            assert forward_methods_of_text(source) == expected
            assert forward_methods_of_text(source) == expected


def test_store_keeps_what_the_last_lint_used_and_drops_the_rest() -> None:
    """A document's store holds about one lint's worth: an entry unused by one whole lint
    is gone, and an entry is only ever answered for its own node object."""
    import libcst as cst

    from evallint.analysis.walk import iter_nodes

    first = cst.parse_module("x = f(a)\n")
    second = cst.parse_module("x = f(a)\n")  # equal text, other nodes
    store = Reuse()
    with store.active():
        walked = list(iter_nodes(first.body[0]))
        assert list(iter_nodes(first.body[0])) == walked and store.hits == 1
        assert list(iter_nodes(second.body[0])) != walked  # other objects, never shared
    with store.active():  # the next lint uses the first statement only
        assert list(iter_nodes(first.body[0])) == walked and store.hits == 1
    with store.active():  # the second statement was not used by the last lint: recomputed
        list(iter_nodes(second.body[0]))
        assert store.misses == 1
    assert list(iter_nodes(first.body[0])) == walked  # no store active: a plain walk


def test_python_tree_is_one_parse_per_text() -> None:
    from evallint.source.parse import python_tree

    text = "import torch\nmodel = torch.nn.Linear(2, 2)\n"
    tree = python_tree(text)
    assert python_tree(text[:5] + text[5:]) is tree  # an equal text, another string
    assert ast.dump(tree) == ast.dump(ast.parse(text))
    with pytest.raises(SyntaxError):
        python_tree("model = (\n")
    assert python_tree(text + "x = 1\n") is not tree


CITES_A_LINE = """\
import torch
from transformers import AutoModelForSequenceClassification


def train(model, loader, optimizer):
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
train(model, loader, optimizer)
"""


def test_comment_edit_above_a_cited_line_lints_again(tmp_path: Path) -> None:
    """A comment-only edit moves the last findings instead of linting, but a message that
    cites a line (EVL003: "reached through the call at line 15") would keep the old number:
    such findings are linted again (found by the random session, on the base code too)."""
    path = tmp_path / "train.py"
    server = EvallintServer()
    first = server.lint(Program.of_text(path.as_uri(), str(path), 1, CITES_A_LINE))
    assert any("at line 15" in d.message for d in first)
    text = CITES_A_LINE.replace("\nmodel = ", "\n# the pretrained model\nmodel = ")
    found = server.lint(Program.of_text(path.as_uri(), str(path), 2, text))
    assert any("at line 16" in d.message for d in found)
    assert _found(found) == _found(lint_source(text, str(path)))
