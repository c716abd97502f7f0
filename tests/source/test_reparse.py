"""CPython's tree of an edited text, built from the old tree and the edited lines parsed
alone (`evallint.source.reparse`), equals a whole parse of the new text in every field and
position; an edit whose lines do not parse alone is left to the whole parse."""

from __future__ import annotations

import ast
import random
import re
from pathlib import Path

import pytest

from evallint.source.parse import python_tree
from evallint.source.reparse import edited_tree
from tests.benchmark_scripts import latency_benchmark

ROOT = Path(__file__).resolve().parents[2]
WORD = re.compile(r"\b[A-Za-z_]\w*\b")


def _texts() -> list[tuple[str, str]]:
    """The latency benchmark's script (200 lines), the examples, 25 fixtures."""
    benchmark = latency_benchmark()
    fixtures = sorted((ROOT / "tests" / "fixtures").glob("*.py"))
    chosen = sorted((ROOT / "examples").glob("*.py")) + random.Random(3).sample(fixtures, 25)
    return [("generated", benchmark.training_script(200))] + [
        (p.name, p.read_text(encoding="utf-8")) for p in chosen
    ]


def _edit(text: str, rng: random.Random) -> str:
    """A random edit that keeps the number of lines (a character typed or deleted, a word
    replaced, a line swapped or replaced), or now and then one that does not."""
    lines = text.split("\n")
    at = rng.randrange(len(lines))
    line = lines[at]
    kind = rng.randrange(7)
    if kind == 0:
        column = rng.randrange(len(line) + 1)
        lines[at] = line[:column] + rng.choice("x(:=.1 )'\"\\#[],@") + line[column:]
    elif kind == 1 and line:
        column = rng.randrange(len(line))
        lines[at] = line[:column] + line[column + 1 :]
    elif kind == 2:
        spots = list(WORD.finditer(line))
        words = WORD.findall(text)
        if spots and words:
            spot = rng.choice(spots)
            lines[at] = line[: spot.start()] + rng.choice(words) + line[spot.end() :]
    elif kind == 3 and at + 1 < len(lines):
        lines[at], lines[at + 1] = lines[at + 1], line
    elif kind == 4:
        lines[at] = rng.choice(lines)
    elif kind == 5:
        lines.insert(at, rng.choice(lines))  # one more line: the whole parse decides
    else:
        lines[at] = "    " + line  # indented: may join the statement above
    return "\n".join(lines)


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, include_attributes=True)


@pytest.mark.parametrize(("name", "script"), _texts(), ids=lambda v: v if len(v) < 60 else "")
def test_edited_tree_equals_a_whole_parse(name: str, script: str) -> None:
    rng = random.Random(name)
    text, tree = script, ast.parse(script)
    built = 0
    for _ in range(80):
        new = _edit(text, rng)
        found = edited_tree(text, tree, new)
        try:
            whole = ast.parse(new)
        except (SyntaxError, ValueError):
            assert found is None, (name, new)  # never a tree for a text that does not parse
            continue
        if found is not None:
            built += 1
            assert _dump(found) == _dump(whole), (name, new)
        text, tree = new, found or whole  # edit on: built trees are the base of the next
    # the benchmark's script and the examples must mostly be rebuilt from the last tree; a
    # sampled fixture may be one statement over half its lines (parsed whole), so for
    # fixtures only the equality above is asserted
    if name == "generated":
        assert built >= 25
    elif (ROOT / "examples" / name).exists():
        assert built >= 3


def test_python_tree_of_an_edit_is_built_and_a_syntax_error_is_the_whole_parses() -> None:
    text = "import torch\n\n\ndef f(x):\n    return x\n\n\ndef g(y):\n    return y + 1\n"
    python_tree(text)
    edited = text.replace("y + 1", "y + 2")
    assert edited_tree(text, ast.parse(text), edited) is not None
    assert _dump(python_tree(edited)) == _dump(ast.parse(edited))
    broken = edited.replace("y + 2", "y + (2")
    with pytest.raises(SyntaxError) as raised:
        python_tree(broken)
    with pytest.raises(SyntaxError) as expected:
        ast.parse(broken)
    assert (raised.value.msg, raised.value.lineno) == (expected.value.msg, expected.value.lineno)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("import torch\nx = 1\ny = 2\nz = 3\n", "import torch\nx = 1\ny = 2\nz = 3\nw = 4\n"),
        ("x = 1\ny = 2\nz = 3\nw = 4\n", "x = 2\ny = 2\nz = 3\nw = 4\n"),  # line 1: a coding line
        ("a = 1\nb = 2\nc = 3\nd = 4\n", "a = 1\nb = 2\nc = 3\r\nd = 4\n"),
    ],
)
def test_whole_parse_when_lines_move_or_the_start_or_a_carriage_return_changes(
    old: str, new: str
) -> None:
    assert edited_tree(old, ast.parse(old), new) is None


def test_a_lone_line_continuation_is_left_to_the_whole_parse() -> None:
    """`\\` alone on a line before a statement: Python 3.9 rejects or places the statement
    otherwise in the whole text than in the re-parsed piece, so the piece is not used."""
    old = "import os\n\n\nx = 1\n\n\ndef f():\n    return os.sep\n\n\ny = 2\n"
    new = old.replace("\n\n\ndef f", "\n\n\\\ndef f")
    assert edited_tree(old, ast.parse(old), new) is None
