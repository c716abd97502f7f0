"""Property test for `--fix` (issue 19, item 1): generated fixable programs with random
indentation units, tabs, form feeds in indentation, CRLF, a BOM, comments, bracket
continuations and multi-line string literals (with tabs, form feeds and indentation inside)
are fixed through `fix_paths` (the path `--fix` takes, bytes in and out), and then:

- the fix happened and the written file compiles;
- the BOM and the line endings are kept, and every form feed is still there;
- fixing again changes nothing;
- the rest is untouched: aligning old and new lines, the only new lines are the fixes' own,
  a changed line differs only by more indentation, a line inside a string literal is byte
  for byte the same, and the program's string constants are the same.

2,000 examples took 13 minutes on the shared 2-core machine (about 0.4 s each: a fix, its proof
and a second fix), so the test is marked `fuzz` (opt-in; `.ci/run` runs it).
`EVALLINT_FIX_EXAMPLES=N` changes the count.
"""

from __future__ import annotations

import ast
import difflib
import io
import os
import tempfile
import tokenize
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evallint.engine.fixes import compile_error, fix_paths, fix_source
from evallint.source.text import decode_source, split_lines

EXAMPLES = int(os.environ.get("EVALLINT_FIX_EXAMPLES", "2000"))
FIX_LINES = {"model.eval()", "with torch.no_grad():", "@torch.no_grad()", "import torch"}
_WHITESPACE = " \t\f"

_string_text = st.text(alphabet=" \t\fabcXYZ#:'{}()=", max_size=12)


@st.composite
def _indent_noise(draw: st.DrawFn) -> str:
    """Text a form feed makes irrelevant: Python measures indentation after the last one."""
    if draw(st.integers(0, 3)) != 0:
        return ""
    return draw(st.text(alphabet=" \t", max_size=3)) + "\f"


@st.composite
def _body_statement(draw: st.DrawFn, indent: str) -> list[str]:
    """Lines (without line breaks) of one statement of the evaluation loop's body."""
    kind = draw(st.sampled_from(["call", "string", "comment", "continuation", "blank", "call2"]))
    if kind == "call":
        return [f"{indent}out = model(x)"]
    if kind == "call2":
        return [f"{indent}total = total + model(x).sum()  # a trailing comment"]
    if kind == "comment":
        return [f"{indent}# {draw(_string_text).replace(chr(12), ' ')}"]
    if kind == "blank":
        return [draw(st.sampled_from(["", "  ", "\t", "\f"]))]
    if kind == "continuation":
        inner = draw(st.text(alphabet=" \t", max_size=6))
        return [f"{indent}pair = (out,", f"{inner}x)"]
    quote = draw(st.sampled_from(['"""', "'''", 'f"""', "rb'''"]))
    content = draw(st.lists(_string_text, min_size=1, max_size=3))
    if quote.startswith("f"):
        content = [c.replace("{", "{{").replace("}", "}}") for c in content]
    if quote.startswith("rb"):
        content = [c.replace("\f", " ") for c in content]  # bytes: ASCII only (\f is ASCII)
    content = [_without(c, quote[-3:]) for c in content]  # a line may not close the string
    return [f"{indent}print({quote}{content[0]}", *content[1:], f"{quote[-3:]})"]


def _without(text: str, closing: str) -> str:
    while closing in text:
        text = text.replace(closing, "")
    return text


@st.composite
def fixable_programs(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(text without BOM, line break, BOM)."""
    unit = draw(st.sampled_from(["    ", "  ", " ", "\t", "        ", "   "]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.booleans())
    in_function = draw(st.booleans())
    missing = draw(st.sampled_from(["both", "eval", "no_grad"]))
    outer = unit if in_function else ""
    lines = ["import torch", "import torch.nn as nn", ""]
    if in_function:
        lines += ["def run(val_loader):"]
    lines += [
        f"{draw(_indent_noise())}{outer}model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))",
        f"{draw(_indent_noise())}{outer}total = 0",
    ]
    if missing == "no_grad":
        lines.append(f"{draw(_indent_noise())}{outer}model.eval()")
    loop = outer
    if missing == "eval":
        lines.append(f"{draw(_indent_noise())}{outer}with torch.no_grad():")
        loop = outer + unit
    lines.append(f"{draw(_indent_noise())}{loop}for x, y in val_loader:")
    body = loop + unit
    lines.append(f"{draw(_indent_noise())}{body}out = model(x)")
    for statement in draw(st.lists(_body_statement(body), max_size=4)):
        lines += [draw(_indent_noise()) + statement[0], *statement[1:]]
    if in_function:
        lines += [f"{draw(_indent_noise())}{outer}return total", "", "run([])"]
    lines += ['DONE = """after', draw(_string_text), '"""']
    return newline.join(lines) + newline, newline, bom


def _inside_strings(text: str) -> set[int]:
    """1-based lines that start inside a string literal."""
    inside: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING:
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return inside


def _column(indent: str) -> tuple[int, int]:
    """Python's (column, alternative column) of an indentation (tabs to 8 and to 1)."""
    column = alternative = 0
    for char in indent:
        if char == "\f":
            column = alternative = 0
        elif char == "\t":
            column, alternative = (column // 8 + 1) * 8, alternative + 1
        else:
            column, alternative = column + 1, alternative + 1
    return column, alternative


def _strings(text: str) -> Counter[object]:
    return Counter(
        node.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    )


def _assert_only_fix_lines_and_indentation_changed(old: str, new: str) -> None:
    old_lines, new_lines = split_lines(old), split_lines(new)
    frozen = _inside_strings(old)

    def key(line: str) -> str:
        return line.lstrip(_WHITESPACE).rstrip("\r\n")

    matcher = difflib.SequenceMatcher(
        None, [key(x) for x in old_lines], [key(x) for x in new_lines], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "insert":
            assert {key(line) for line in new_lines[j1:j2]} <= FIX_LINES, new_lines[j1:j2]
            continue
        assert tag == "equal", (tag, old_lines[i1:i2], new_lines[j1:j2])
        for number, (before, after) in enumerate(zip(old_lines[i1:i2], new_lines[j1:j2]), i1 + 1):
            if before == after:
                continue
            assert number not in frozen, f"line {number} inside a string changed: {after!r}"
            assert key(before) and after.endswith(before.lstrip(_WHITESPACE))
            old_indent = before[: len(before) - len(before.lstrip(_WHITESPACE))]
            new_indent = after[: len(after) - len(after.lstrip(_WHITESPACE))]
            assert all(a > b for a, b in zip(_column(new_indent), _column(old_indent)))


@pytest.mark.fuzz
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fixable_programs())
def test_fixing_generated_programs_compiles_is_idempotent_and_touches_nothing_else(
    program: tuple[str, str, bool],
) -> None:
    text, newline, bom = program
    assert compile_error(text) == "", text  # the generator writes valid Python
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / "evaluate.py"
        target.write_bytes(data)
        [result] = fix_paths([target], write=True)
        written = target.read_bytes()
        leftovers = sorted(p.name for p in Path(directory).iterdir())
    assert leftovers == ["evaluate.py"]
    assert result.error == "" and result.fixed, (result.error, result.unfixed, text)
    assert [d.code for d in result.remaining if d.code in ("EVL001", "EVL002")] == []
    assert written.startswith(b"\xef\xbb\xbf") == bom
    new = decode_source(written)
    assert new == result.new and compile_error(new) == ""
    assert all(line.endswith(newline) for line in split_lines(new)), "mixed line breaks"
    assert new.count("\f") == text.count("\f")
    assert fix_source(new, str(target)).new_source == new
    _assert_only_fix_lines_and_indentation_changed(text, new)
    assert _strings(new) == _strings(text)
