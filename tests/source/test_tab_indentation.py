"""Indentation that mixes tabs and spaces the way CPython accepts but LibCST's tokenizer
rejects is parsed from a copy with those tabs expanded; lines stay on their numbers, string
literals keep their tabs, and a file CPython rejects is still a parse failure."""

from __future__ import annotations

import ast

import libcst as cst
import pytest

from evallint.engine.run import lint_source
from evallint.source.parse import ParseFailure, parse_module, with_indentation_tabs_expanded

MIXED = (
    "def run(model, loader):\n"
    "    for batch in loader:\n"
    "        text = '''\n"
    "\tkept\n"
    "'''\n"
    "        if batch:\n"
    "     \t    x = batch\n"  # column 12 to CPython, not below the block's 8 spaces to LibCST
    "        y = model(x)\n"
    "    return y\n"
)


def test_libcst_alone_rejects_the_text_that_cpython_accepts() -> None:
    ast.parse(MIXED)
    with pytest.raises(cst.ParserSyntaxError):
        cst.parse_module(MIXED)


def test_expanded_text_keeps_every_line_and_the_string_literal() -> None:
    expanded = with_indentation_tabs_expanded(MIXED)
    assert expanded.splitlines()[6] == " " * 12 + "x = batch"
    before, after = MIXED.splitlines(), expanded.splitlines()
    assert len(before) == len(after)
    assert [b for b in before if "\t" not in b or "kept" in b] == [
        a for a, b in zip(after, before) if "\t" not in b or "kept" in b
    ]
    assert ast.dump(ast.parse(expanded)) == ast.dump(ast.parse(MIXED))


def test_mixed_indentation_parses_and_findings_keep_their_lines() -> None:
    module = parse_module(MIXED)
    assert isinstance(module, cst.Module)
    source = "import torch\nloader = []\nmodel = torch.nn.Dropout(0.5)\n" + MIXED.replace(
        "def run", "def evaluate"
    ).replace("loader):\n", "loader):\n    model.eval()\n", 1)
    source += "evaluate(model, loader)\n"
    lines = source.splitlines()
    found = {(d.line, d.code) for d in lint_source(source, "mixed.py")}
    assert (lines.index("        y = model(x)") + 1, "EVL002") in found
    assert not any(code == "EVL999" for _, code in found)


def test_text_cpython_rejects_is_left_alone_and_still_fails() -> None:
    inconsistent = "if x:\n    a = 1\n\tb = 2\n"  # tab at column 8, spaces at 4: TabError
    assert with_indentation_tabs_expanded(inconsistent) is inconsistent
    failure = parse_module(inconsistent)
    assert isinstance(failure, ParseFailure)
    assert failure.line == 3


def test_text_without_indentation_tabs_is_returned_unchanged() -> None:
    plain = "if x:\n    a = '\t'\n"
    assert with_indentation_tabs_expanded(plain) is plain
