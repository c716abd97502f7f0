"""Hostile inputs: every file either lints normally or gives exactly one one-line EVL999
naming the cause; never a traceback, and never stops the other files of the run.

Each case is a tiny file written to tmp_path next to a known-buggy companion file and linted
through `lint_paths` (the companion's findings prove the run went on); a handful also go
through the CLI subprocess. Deep nesting runs in a subprocess, so a segfault or a stack
overflow fails the test instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from evallint import lint_paths, lint_source
from evallint.diagnostics import Diagnostic
from evallint.engine.run import lint_file
from evallint.source.text import decode_source, split_lines

BUGGY = (
    "import torch\n"
    "model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))\n"
    "for x in val_loader:\n"
    "    out = model(x)\n"
)
"""Gives EVL001 and EVL002 at the start of `model(x)` on its last line."""
BUG_CODES = ["EVL001", "EVL002"]
BUG_COLUMN = 11

COMPANION = "zz_companion.py"
SUBPROCESS_TIMEOUT = 600


def bug_line(text: str, marker: str = "out = model(x)") -> int:
    """1-based line of `marker` counting only Python's line breaks (\\r\\n, \\r, \\n)."""
    before = text[: text.index(marker)]
    return (
        before.count("\r\n")
        + before.replace("\r\n", "").count("\r")
        + before.replace("\r\n", "").count("\n")
        + 1
    )


def write_companion(directory: Path) -> Path:
    path = directory / COMPANION
    path.write_text(BUGGY, encoding="utf-8")
    return path


def assert_companion_linted(found: list[Diagnostic], directory: Path) -> None:
    mine = [(d.line, d.column, d.code) for d in found if Path(d.path).name == COMPANION]
    assert mine == [(4, BUG_COLUMN, "EVL001"), (4, BUG_COLUMN, "EVL002")], found


def assert_one_clean_evl999(
    found: list[Diagnostic], cause: str = "", line: Optional[int] = None
) -> Diagnostic:
    """Exactly one EVL999, one line, naming the cause; not a caught internal error."""
    assert len(found) == 1, found
    diagnostic = found[0]
    assert diagnostic.code == "EVL999", found
    assert diagnostic.message and "\n" not in diagnostic.message and "\r" not in diagnostic.message
    assert "Traceback" not in diagnostic.message
    assert not diagnostic.message.startswith("internal error"), diagnostic.message
    assert cause.lower() in diagnostic.message.lower(), diagnostic.message
    if line is not None:
        assert diagnostic.line == line, diagnostic
    assert diagnostic.line >= 1 and diagnostic.column >= 1
    return diagnostic


def lint_with_companion(tmp_path: Path, name: str | bytes, data: bytes) -> list[Diagnostic]:
    """Lint `data` (as file `name`) and the companion in one directory run; the hostile
    file's findings, after checking that the companion was linted."""
    write_companion(tmp_path)
    if isinstance(name, bytes):
        target = os.path.join(os.fsencode(tmp_path), name)
        with open(target, "wb") as stream:
            stream.write(data)
        name = os.fsdecode(name)
    else:
        (tmp_path / name).write_bytes(data)
    found = lint_paths([tmp_path])
    assert_companion_linted(found, tmp_path)
    return [d for d in found if Path(d.path).name == name]


def cli(*args: str, cwd: Path, env: Optional[dict] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evallint", "--no-cache", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=SUBPROCESS_TIMEOUT,
        errors="backslashreplace",
    )


def finding_lines(stdout: str) -> list[str]:
    return [
        line for line in stdout.splitlines() if not line.startswith(("Found ", "All checks passed"))
    ]


# --- Files that cannot be analysed: exactly one EVL999 naming the cause ---------------------

UNANALYSABLE = {
    "syntax_error": (b"import torch\ndef f(:\n    pass\n", "cannot parse", None),
    "syntax_error_unclosed_paren": (b"import torch\nx = model(\n", "cannot parse", None),
    "syntax_error_unterminated_string": (b"import torch\nx = 'abc\n", "cannot parse", None),
    "syntax_error_bad_indent": (b"import torch\n    x = 1\n", "cannot parse", None),
    "syntax_error_stray_dedent": (
        b"import torch\nif x:\n        a = 1\n    b = 2\n",
        "cannot parse",
        None,
    ),
    "python2_print": (b'import torch\nprint "x"\n', "cannot parse", None),
    "python2_backticks_and_octal": (b"import torch\nx = `model`\ny = 0777\n", "cannot parse", None),
    "not_python_text": (
        b"This README explains how torch training works.\nRun it twice; enjoy!\n",
        "cannot parse",
        None,
    ),
    "not_python_markdown": (
        b"# Title\n\n* use torch.no_grad()\n* call model.eval()\n\n```\ncode\n```\n",
        "cannot parse",
        None,
    ),
    "binary_png_header": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR torch \x00\x01\x02", "", 1),
    "binary_nul_bytes": (b"import torch\n\x00\x00\x00\x01\x02 model.eval()\n", "binary", 1),
    "binary_all_bytes": (bytes(range(256)) * 8, "", 1),
    "nul_inside_valid_utf8": (b"import torch\nx = 1\x00\n", "binary", 1),
    "undecodable_utf8": (b"import torch\nx = '\xff\xfe'\n", "cannot decode", 1),
    "truncated_utf8_sequence": (b"import torch\nx = '\xe2\x82'\n", "cannot decode", 1),
    "utf8_cookie_with_latin1_bytes": (
        b"# -*- coding: utf-8 -*-\nimport torch\nx = 'caf\xe9'\n",
        "cannot decode",
        1,
    ),
    "unknown_cookie": (b"# -*- coding: no-such-codec -*-\nimport torch\n", "cannot decode", 1),
    "bom_and_conflicting_cookie": (
        b"\xef\xbb\xbf# coding: latin-1\nimport torch\n",
        "cannot decode",
        1,
    ),
    "ascii_cookie_with_high_bytes": (
        b"# coding: ascii\nimport torch\nx = '\xe9'\n",
        "cannot decode",
        1,
    ),
    "utf16_without_cookie": ("import torch\n".encode("utf-16"), "", 1),
    "inconsistent_tabs_and_spaces": (b"import torch\nif x:\n        a = 1\n\tb = 2\n", "", None),
    "indentation_over_100_levels": (
        (
            "import torch\n"
            + "".join("    " * i + "if x:\n" for i in range(120))
            + "    " * 120
            + "y = 1\n"
        ).encode(),
        "",
        None,
    ),
    "implicit_concatenation_of_5000_strings": (
        # valid Python; LibCST's parser gives up on it (a LibCST limit, reported cleanly)
        ("import torch\nx = " + " ".join(['"a"'] * 5000) + "\n").encode(),
        "cannot parse",
        None,
    ),
}


@pytest.mark.parametrize("data, cause, line", list(UNANALYSABLE.values()), ids=list(UNANALYSABLE))
def test_unanalysable_file_is_one_evl999_and_the_run_goes_on(
    tmp_path: Path, data: bytes, cause: str, line: Optional[int]
) -> None:
    found = lint_with_companion(tmp_path, "hostile.py", data)
    assert_one_clean_evl999(found, cause, line)
    assert lint_file(tmp_path / "hostile.py") == found


SYNTAX_ERROR_LINES = [
    pytest.param("import torch\ndef f(:\n", 2, id="bad_parameter_at_eof"),
    pytest.param("import torch\nprint 'x'\n", 2, id="python2_print"),
    pytest.param("import torch\nx = 1\n  y = 2\n", 3, id="unexpected_indent"),
    pytest.param("import torch\ndef f(:\n    pass\n", 2, id="bad_parameter_then_body"),
    pytest.param("import torch\nfor x in y\n    pass\n", 2, id="missing_colon"),
    pytest.param("import torch\nx = $\n", 2, id="invalid_character"),
    pytest.param("import torch\nx = 'abc\n", 2, id="unterminated_string"),
]


@pytest.mark.parametrize("source, line", SYNTAX_ERROR_LINES)
def test_syntax_error_is_reported_on_the_line_cpython_reports(source: str, line: int) -> None:
    with pytest.raises(SyntaxError) as error:
        compile(source, "bad.py", "exec")
    assert error.value.lineno == line  # the reference
    assert_one_clean_evl999(lint_source(source, "bad.py"), "cannot parse", line)


# --- Files that lint without any finding -------------------------------------------------------

CLEAN = {
    "empty": b"",
    "only_newlines": b"\n\n\n",
    "only_whitespace": b"   \n\t\n  ",
    "only_comments": b"# import torch\n# model.eval()\n# with torch.no_grad():\n",
    "only_comments_no_trailing_newline": b"# torch model.train()",
    "only_a_bom": b"\xef\xbb\xbf",
    "only_a_cookie": b"# -*- coding: latin-1 -*-\n",
    "docstring_only": b'"""A module about torch.no_grad() and model.eval()."""\n',
    "form_feed_only": b"\x0c\n\x0c",
    "line_continuation_at_eof": b"import torch\nx = 1 + \\\n    2\n",
}

UNPARSABLE_WITHOUT_TORCH_TEXT = {
    "non_python_without_torch_words": b"Just some prose. Nothing to see.\n",
    "python2_without_torch_words": b'print "hello"\n',
    "deep_expression_without_torch_words": b"x = " + b"(" * 5000 + b"1" + b")" * 5000 + b"\n",
}
"""The prefilter skips these before any parse (no torch words), yet each is one EVL999: a
file that does not parse must never pass silently (issue 19; they passed once)."""


@pytest.mark.parametrize(
    "data", list(UNPARSABLE_WITHOUT_TORCH_TEXT.values()), ids=list(UNPARSABLE_WITHOUT_TORCH_TEXT)
)
def test_unparsable_file_without_torch_text_is_one_evl999(tmp_path: Path, data: bytes) -> None:
    found = lint_with_companion(tmp_path, "harmless.py", data)
    assert [d.code for d in found] == ["EVL999"], found
    assert found[0].message.startswith(("cannot parse", "cannot analyse"))


@pytest.mark.parametrize("data", list(CLEAN.values()), ids=list(CLEAN))
def test_harmless_file_has_no_findings(tmp_path: Path, data: bytes) -> None:
    assert lint_with_companion(tmp_path, "harmless.py", data) == []


# --- Files that must lint normally: the buggy snippet is found, on the right line -----------


def _with_lines(text: str, newline: str) -> str:
    return text.replace("\n", newline)


def _mixed_newlines(text: str) -> str:
    breaks = ["\r\n", "\n", "\r"]
    lines = text.split("\n")
    return "".join(line + breaks[i % 3] for i, line in enumerate(lines[:-1])) + lines[-1]


LATIN1 = b"# -*- coding: latin-1 -*-\nlabel = 'caf\xe9 \xfc\xdf \xa9'\n" + BUGGY.replace(
    "    out = model(x)\n", "    out = model(x)  # r\xe9sultat\n"
).encode("latin-1")
CP1252 = b"# vim: set fileencoding=cp1252 :\nquote = '\x93smart\x94 \x80 \x85'\n" + BUGGY.encode(
    "cp1252"
)
LONG_LINE = BUGGY.replace("for x", "padding = '" + "p" * 10_000 + "'\nfor x")
LONG_FINDING_LINE = BUGGY.replace(
    "    out = model(x)\n",
    "    out = model(x); pad = [" + "0, " * 3_000 + "]  # " + "c" * 1_000 + "\n",
)

NORMAL = {
    "utf8": BUGGY.encode(),
    "utf8_bom": b"\xef\xbb\xbf" + BUGGY.encode(),
    "utf8_bom_and_utf8_cookie": b"\xef\xbb\xbf# coding: utf-8\n" + BUGGY.encode(),
    "latin1_cookie": LATIN1,
    "latin1_cookie_second_line": b"#!/usr/bin/env python\n# coding=latin-1\nname = '\xc5ngstr\xf6m'\n"
    + BUGGY.encode(),
    "cp1252_cookie": CP1252,
    "non_ascii_utf8": ("# café ünïcödé 漢字 🙂\nname = '日本語'\n" + BUGGY).encode(),
    "crlf": _with_lines(BUGGY, "\r\n").encode(),
    "cr_only": _with_lines(BUGGY, "\r").encode(),
    "mixed_line_endings": _mixed_newlines("import os\n\n# a comment\n\n" + BUGGY).encode(),
    "crlf_with_blank_lines_before": _with_lines("\n\n\n" + BUGGY, "\r\n").encode(),
    "tabs": BUGGY.replace("    ", "\t").encode(),
    "tabs_crlf": _with_lines(BUGGY.replace("    ", "\t"), "\r\n").encode(),
    "form_feeds": ("\x0c" + BUGGY.replace("for x", "\x0c\n\x0cfor x")).encode(),
    "form_feed_after_indent": BUGGY.replace("    out", "\x0c    out").encode(),
    "unicode_line_separators_in_comment_and_string": BUGGY.replace(
        "for x", "# para\u2028graph\u2029sep\x1c\x1d\x1e\x85\nlabel = 'a\u2028b\x0bc'\nfor x"
    ).encode(),
    "no_trailing_newline": BUGGY.rstrip("\n").encode(),
    "no_trailing_newline_crlf": _with_lines(BUGGY, "\r\n").rstrip("\r\n").encode(),
    "trailing_whitespace_and_blank_lines": (BUGGY.replace("\n", "   \n") + "\n\n   \n\t").encode(),
    "line_of_10000_characters_before": LONG_LINE.encode(),
    "line_of_10000_characters_is_the_finding_line": LONG_FINDING_LINE.encode(),
    "backslash_continuations": BUGGY.replace(
        "for x in val_loader", "for x in \\\n    val_loader"
    ).encode(),
    "semicolons": BUGGY.replace("import torch\n", "import torch; import os; pass\n").encode(),
}


@pytest.mark.parametrize("data", list(NORMAL.values()), ids=list(NORMAL))
def test_odd_but_valid_file_lints_normally(tmp_path: Path, data: bytes) -> None:
    found = lint_with_companion(tmp_path, "odd.py", data)
    text = decode_source(data)
    line = bug_line(text)
    column = (
        split_lines(text)[line - 1].index("model(x)") + 1
    )  # code points: a tab or form feed is one
    assert [(d.line, d.column, d.code) for d in found] == [
        (line, column, code) for code in BUG_CODES
    ], found


def test_column_counts_code_points_after_wide_characters(tmp_path: Path) -> None:
    source = BUGGY.replace("    out = model(x)", "    out = ('🙂漢é', model(x))")
    found = lint_with_companion(tmp_path, "wide.py", source.encode())
    column = "    out = ('🙂漢é', model(x))".index("model(x)") + 1
    assert [(d.line, d.column, d.code) for d in found] == [(4, column, code) for code in BUG_CODES]


# --- Python 3.9-3.14 syntax: each lints without EVL999, and the bug after it is found -------

MODERN = {
    "match_statement": (
        "match command:\n"
        "    case [x, *rest] if x:\n        pass\n"
        "    case {'k': v, **kw}:\n        pass\n"
        "    case Point(x=0) | None:\n        pass\n"
        "    case str() as s:\n        pass\n"
        "    case _:\n        pass\n"
    ),
    "match_soft_keyword_as_names": "match = 1\ncase = 2\n_ = match + case\n",
    "match_with_model_calls": (
        "def run(model, phase, batch):\n"
        "    match phase:\n"
        "        case 'train':\n            model.train()\n            return model(batch)\n"
        "        case _:\n            model.eval()\n            return model(batch)\n"
    ),
    "walrus": "if (n := len(a)) > 10:\n    pass\nwhile (chunk := read()):\n    pass\ny = [z for w in a if (z := w)]\n",
    "pep695_generic_function": "def f[T](x: T) -> T:\n    return x\n",
    "pep695_generic_class": "class C[T, *Ts, **P]:\n    def m[U: int](self, u: U) -> U:\n        return u\n",
    "pep695_type_alias": "type X = int\ntype Y[T] = list[T]\n",
    "pep696_type_parameter_default": "def g[T = int]():\n    pass\n",
    "pep701_nested_fstrings": "x = f\"{f\"{f'{1}'}\"}\"\ny = f\"{'\\n'.join(a)}\"\nz = f'{x!r:>{10}}'\n",
    "pep701_comment_in_fstring": "w = f'''{\n    x  # a comment\n}'''\n",
    "fstring_debug_specifier": "v = f'{x=}, {y = !r:>10}'\n",
    "except_star": "try:\n    pass\nexcept* ValueError as e:\n    pass\nexcept* (TypeError, KeyError):\n    pass\n",
    "async_comprehensions": (
        "async def f(model):\n"
        "    a = [x async for x in aiter() if await x]\n"
        "    b = {k: v async for k, v in pairs()}\n"
        "    c = (await y for y in ys)\n"
        "    async with lock:\n        async for item in stream:\n            pass\n"
        "    return a, b, c\n"
    ),
    "parenthesized_context_managers": "with (open('a') as a, open('b') as b):\n    pass\n",
    "positional_only_parameters": "def p(a, /, b, *, c):\n    pass\n",
    "relaxed_decorators": "@buttons[0].clicked.connect\ndef q():\n    pass\n",
    "star_in_index_and_annotation": "x = a[*b]\ndef h(*args: *Ts):\n    pass\n",
    "pep758_except_without_parentheses": "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",
    "pep750_template_string": "x = t'hello {name}'\n",
    "dict_and_set_unpacking": "d = {**a, 'k': 1}\ns = {*a, *b}\nt = *a, *b\n",
    "lambda_defaults_and_kwonly": "f = lambda a, /, b=1, *c, d, **e: (a, b, c, d, e)\n",
    "global_nonlocal": "def o():\n    x = 1\n    def i():\n        nonlocal x\n        global y\n        x = y = 2\n    return i\n",
    "yield_from_and_await": "def gen():\n    yield from range(3)\n    z = yield\nasync def co():\n    await gen()\n",
    "unicode_identifiers": "modèle = 1\nπ = 3.14\n変数 = modèle + π\n",
    "numeric_literals": "n = 1_000_000 + 0x_ff + 0o17 + 0b1010 + 1.5e-3j + 1_0.0_1\n",
    "byte_and_raw_strings": "b = rb'\\d' + Rb\"x\" + br'''y'''\nr = r'\\n' f'' u'x'\n",
    "ellipsis_and_annotations": "x: int\ny: 'Forward' = ...\ndef f(a: 'int' = 1) -> None: ...\n",
}


@pytest.mark.parametrize("construct", list(MODERN.values()), ids=list(MODERN))
def test_modern_syntax_lints_without_evl999(construct: str) -> None:
    source = construct + BUGGY
    found = lint_source(source, "modern.py")
    assert "EVL999" not in {d.code for d in found}, found
    line = bug_line(source)
    assert [(d.line, d.column, d.code) for d in found if d.line == line] == [
        (line, BUG_COLUMN, c) for c in BUG_CODES
    ], found


# --- Deep nesting: run in a subprocess (a segfault must fail the test, not kill pytest) ------

HEAD = "import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))\n"


def _blocks(depth: int, header: str) -> str:
    return (
        HEAD
        + "".join("    " * i + header + "\n" for i in range(depth))
        + "    " * depth
        + "y = model(x)\n"
    )


DEEP = {
    "parentheses_5000": HEAD + "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "parentheses_100000": HEAD + "x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n",
    "unclosed_parentheses_50000": HEAD + "x = " + "(" * 50_000 + "\n",
    "lists_5000": HEAD + "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "dicts_3000": HEAD + "x = " + "{1: " * 3000 + "1" + "}" * 3000 + "\n",
    "calls_3000": HEAD + "x = " + "model(" * 3000 + "1" + ")" * 3000 + "\n",
    "subscripts_5000": HEAD + "x = " + "a[" * 5000 + "1" + "]" * 5000 + "\n",
    "binary_operators_20000": HEAD + "x = " + " + ".join(["1"] * 20_000) + "\n",
    "comparisons_5000": HEAD + "x = " + " < ".join(["a"] * 5000) + "\n",
    "attribute_chain_20000": HEAD + "x = model" + ".a" * 20_000 + "\n",
    "unary_minus_10000": HEAD + "x = " + "-" * 10_000 + "1\n",
    "not_5000": HEAD + "x = " + "not " * 5000 + "1\n",
    "lambdas_3000": HEAD + "f = " + "lambda: " * 3000 + "model\n",
    "conditional_expressions_3000": HEAD + "x = " + "1 if x else " * 3000 + "1\n",
    "nested_fstrings_150": HEAD + "x = " + 'f"{' * 150 + "1" + '}"' * 150 + "\n",
    "comprehensions_1000": HEAD + "x = " + "[" * 1000 + "y" + " for y in z]" * 1000 + "\n",
    "if_blocks_99": _blocks(99, "if x:"),
    "for_blocks_99": _blocks(99, "for x in val_loader:"),
    "with_no_grad_blocks_99": _blocks(99, "with torch.no_grad():"),
    "try_blocks_99": HEAD
    + "".join("    " * i + "try:\n" for i in range(99))
    + "    " * 99
    + "y = model(x)\n"
    + "".join("    " * i + "finally:\n" + "    " * (i + 1) + "pass\n" for i in reversed(range(99))),
    "def_blocks_99": _blocks(99, "def f(model):"),
    "class_blocks_99": _blocks(99, "class C:"),
    "if_blocks_1000": _blocks(1000, "if x:"),
    "elif_chain_5000": HEAD
    + "if x == 0:\n    pass\n"
    + "".join(f"elif x == {i}:\n    y = model(x)\n" for i in range(1, 5000)),
    "statements_on_one_line_20000": HEAD + "; ".join(["y = model(x)"] * 20_000) + "\n",
    "decorators_5000": HEAD + "@torch.no_grad()\n" * 5000 + "def f(x):\n    return model(x)\n",
}

_RUNNER = """
import sys
from evallint import lint_paths
found = lint_paths([sys.argv[1]])
for d in found:
    print(f"{d.line}:{d.column}:{d.code}:{d.message}")
raise SystemExit(1 if found else 0)
"""


def _check_subprocess(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode in (0, 1), (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-2000:]
    assert "RecursionError" not in result.stdout + result.stderr
    assert "internal error" not in result.stdout


FAST_DEEP = {"parentheses_5000", "unclosed_parentheses_50000", "if_blocks_1000", "not_5000"}
"""The deep inputs the fast loop keeps (one per kind of nesting: brackets, an unclosed
bracket, blocks, unary operators). Every other one runs in a subprocess for 3-50 s, so it is
marked slow: `pytest -m slow`, and `.ci/run` runs them all."""


def _deep_params(names: list[str]) -> list[object]:
    return [
        pytest.param(name, marks=() if name in FAST_DEEP else pytest.mark.slow) for name in names
    ]


@pytest.mark.parametrize("name", _deep_params(list(DEEP)))
def test_deep_nesting_never_crashes(tmp_path: Path, name: str) -> None:
    path = tmp_path / "deep.py"
    path.write_text(DEEP[name], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(path)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    _check_subprocess(result)
    evl999 = [line for line in result.stdout.splitlines() if ":EVL999:" in line]
    assert len(evl999) <= 1, result.stdout
    if evl999:
        assert len(result.stdout.splitlines()) == 1, result.stdout


@pytest.mark.parametrize(
    "name",
    _deep_params(
        ["parentheses_100000", "if_blocks_1000", "elif_chain_5000", "binary_operators_20000"]
    ),
)
def test_deep_nesting_through_the_cli(tmp_path: Path, name: str) -> None:
    (tmp_path / "deep.py").write_text(DEEP[name], encoding="utf-8")
    write_companion(tmp_path)
    result = cli(".", cwd=tmp_path)
    _check_subprocess(result)
    assert result.returncode == 1
    assert any(
        line.startswith(f"{COMPANION}:4:11: EVL001") for line in result.stdout.splitlines()
    ), result.stdout


def test_long_elif_chain_is_analysed() -> None:
    source = (
        HEAD
        + "if x == 0:\n    pass\n"
        + "".join(f"elif x == {i}:\n    y = i\n" for i in range(1, 600))
        + BUGGY
    )
    compile(source, "elif.py", "exec")  # CPython has no problem with it
    found = lint_source(source, "elif.py")
    assert "EVL999" not in {d.code for d in found}, found


# --- Big inputs ------------------------------------------------------------------------------

FUNCTION = """def evaluate_{i}(model, loader):
    model.eval()
    with torch.no_grad():
        for x in loader:
            y = model(x)
    return y


"""


@pytest.mark.slow  # ~2 minutes: LibCST parses 10 MB
def test_ten_megabyte_generated_file_finishes(tmp_path: Path) -> None:
    parts = ["import torch\n\n\n"]
    size = 0
    count = 0
    while size < 10_000_000:
        part = FUNCTION.format(i=count)
        parts.append(part)
        size += len(part)
        count += 1
    parts.append(BUGGY.replace("import torch\n", ""))
    text = "".join(parts)
    write_companion(tmp_path)
    (tmp_path / "big.py").write_text(text, encoding="utf-8")
    found = lint_paths([tmp_path])
    assert_companion_linted(found, tmp_path)
    mine = [(d.line, d.code) for d in found if Path(d.path).name == "big.py"]
    assert mine == [(bug_line(text), code) for code in BUG_CODES]


def test_many_small_files_in_one_run(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"f{i:02}.py").write_text(
            BUGGY if i % 2 else "import torch\n", encoding="utf-8"
        )
    (tmp_path / "f_broken.py").write_bytes(b"import torch\ndef (\n")
    found = lint_paths([tmp_path])
    assert len([d for d in found if d.code == "EVL999"]) == 1
    assert len([d for d in found if d.code in BUG_CODES]) == 40


# --- File-system oddities ----------------------------------------------------------------------


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.py"
    path.write_text(BUGGY, encoding="utf-8")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that read a mode-000 file (root)")
        write_companion(tmp_path)
        found = lint_paths([tmp_path])
        assert_companion_linted(found, tmp_path)
        assert_one_clean_evl999(
            [d for d in found if Path(d.path).name == "secret.py"], "permission denied", 1
        )
    finally:
        path.chmod(0o644)


def _symlinks_supported(tmp_path: Path) -> None:
    try:
        os.symlink("target", tmp_path / ".probe")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks are not supported here")
    os.unlink(tmp_path / ".probe")


def test_broken_symlink(tmp_path: Path) -> None:
    _symlinks_supported(tmp_path)
    os.symlink(tmp_path / "does_not_exist.py", tmp_path / "dangling.py")
    write_companion(tmp_path)
    found = lint_paths([tmp_path])
    assert_companion_linted(found, tmp_path)
    assert_one_clean_evl999(
        [d for d in found if Path(d.path).name == "dangling.py"], "no such file", 1
    )
    assert_one_clean_evl999(lint_paths([tmp_path / "dangling.py"]), "no such file", 1)


def test_symlink_loops(tmp_path: Path) -> None:
    _symlinks_supported(tmp_path)
    os.symlink("loop_b.py", tmp_path / "loop_a.py")
    os.symlink("loop_a.py", tmp_path / "loop_b.py")
    os.symlink("self.py", tmp_path / "self.py")
    (tmp_path / "sub").mkdir()
    os.symlink(
        "..", tmp_path / "sub" / "up"
    )  # a directory loop: the walk must not follow it forever
    (tmp_path / "sub" / "inner.py").write_text(BUGGY, encoding="utf-8")
    write_companion(tmp_path)
    found = lint_paths([tmp_path])
    assert_companion_linted(found, tmp_path)
    for name in ("loop_a.py", "loop_b.py", "self.py"):
        assert_one_clean_evl999(
            [d for d in found if Path(d.path).name == name], "symbolic links", 1
        )
    assert [d.code for d in found if Path(d.path).name == "inner.py"] == BUG_CODES


def test_symlink_to_a_good_file_is_linted(tmp_path: Path) -> None:
    _symlinks_supported(tmp_path)
    real = tmp_path / "real"
    real.mkdir()
    (real / "target.txt").write_text(BUGGY, encoding="utf-8")
    os.symlink(real / "target.txt", tmp_path / "link.py")
    found = lint_paths([tmp_path / "link.py"])
    assert [(d.line, d.code) for d in found] == [(4, code) for code in BUG_CODES]


def test_directory_named_like_a_python_file(tmp_path: Path) -> None:
    package = tmp_path / "x.py"
    package.mkdir()
    (package / "inside.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "empty.py").mkdir()
    write_companion(tmp_path)
    found = lint_paths([tmp_path])
    assert_companion_linted(found, tmp_path)
    assert [d.code for d in found if Path(d.path).name == "inside.py"] == BUG_CODES
    assert not [d for d in found if Path(d.path).name in ("x.py", "empty.py")]
    # named explicitly, it is walked like any directory; lint_file on it is one EVL999
    assert [d.code for d in lint_paths([package])] == BUG_CODES
    assert lint_paths([tmp_path / "empty.py"]) == []
    assert_one_clean_evl999(lint_file(package), "directory", 1)


def test_file_deleted_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_companion(tmp_path)
    (tmp_path / "vanishing.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "a_before.py").write_text(BUGGY, encoding="utf-8")
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "vanishing.py":
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    found = lint_paths([tmp_path])
    assert_companion_linted(found, tmp_path)
    assert [d.code for d in found if Path(d.path).name == "a_before.py"] == BUG_CODES
    assert_one_clean_evl999(
        [d for d in found if Path(d.path).name == "vanishing.py"], "no such file", 1
    )


def test_file_really_deleted_after_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with a real deletion: the walk has listed the file, then it disappears."""
    import evallint.engine.run as run

    write_companion(tmp_path)
    doomed = tmp_path / "doomed.py"
    doomed.write_text(BUGGY, encoding="utf-8")
    real_iter = run.iter_source_files

    def iter_then_delete(paths, *rest):  # type: ignore[no-untyped-def]
        listed = list(real_iter(paths, *rest))
        doomed.unlink()
        return iter(listed)

    monkeypatch.setattr(run, "iter_source_files", iter_then_delete)
    found = lint_paths([tmp_path])
    assert_companion_linted(found, tmp_path)
    assert_one_clean_evl999(
        [d for d in found if Path(d.path).name == "doomed.py"], "no such file", 1
    )


def _non_utf8_name(tmp_path: Path) -> bytes:
    name = b"caf\xe9_\xff.py"
    try:
        with open(os.path.join(os.fsencode(tmp_path), name), "wb"):
            pass
    except (OSError, UnicodeError):
        pytest.skip("the file system does not allow non-UTF-8 file names")
    os.unlink(os.path.join(os.fsencode(tmp_path), name))
    return name


def test_non_utf8_file_name(tmp_path: Path) -> None:
    name = _non_utf8_name(tmp_path)
    found = lint_with_companion(tmp_path, name, BUGGY.encode())
    assert [(d.line, d.code) for d in found] == [(4, code) for code in BUG_CODES]
    assert [
        (d.line, d.code)
        for d in lint_paths(
            [os.path.join(os.fsencode(tmp_path), name).decode(errors="surrogateescape")]
        )
    ] == [(4, code) for code in BUG_CODES]


def _cli_non_utf8(
    tmp_path: Path, *args: str, env: Optional[dict] = None
) -> subprocess.CompletedProcess[str]:
    name = _non_utf8_name(tmp_path)
    with open(os.path.join(os.fsencode(tmp_path), name), "wb") as stream:
        stream.write(BUGGY.encode())
    write_companion(tmp_path)
    return cli(*args, ".", cwd=tmp_path, env=env)


@pytest.mark.parametrize("output", ["text", "json", "github"])
def test_non_utf8_file_name_through_the_cli(tmp_path: Path, output: str) -> None:
    result = _cli_non_utf8(tmp_path, "--format", output)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "caf" in result.stdout and COMPANION in result.stdout


def test_non_utf8_file_name_through_the_cli_sarif(tmp_path: Path) -> None:
    result = _cli_non_utf8(tmp_path, "--format", "sarif")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_non_utf8_file_name_through_the_cli_with_strict_utf8_stdout(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    result = _cli_non_utf8(tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr


# --- The CLI on a handful of hostile files in one run --------------------------------------


def test_cli_on_a_directory_of_hostile_files(tmp_path: Path) -> None:
    hostile = {
        "a_syntax.py": UNANALYSABLE["syntax_error"][0],
        "b_binary.py": UNANALYSABLE["binary_png_header"][0],
        "c_undecodable.py": UNANALYSABLE["undecodable_utf8"][0],
        "d_python2.py": UNANALYSABLE["python2_print"][0],
        "e_latin1.py": NORMAL["latin1_cookie"],
        "f_crlf.py": NORMAL["mixed_line_endings"],
        "g_empty.py": b"",
        "h_bom.py": NORMAL["utf8_bom"],
    }
    for name, data in hostile.items():
        (tmp_path / name).write_bytes(data)
    write_companion(tmp_path)
    result = cli(".", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    lines = finding_lines(result.stdout)
    by_file: dict[str, list[str]] = {}
    for line in lines:
        path, rest = line.split(":", 1)
        by_file.setdefault(path, []).append(rest)
    for name in ("a_syntax.py", "b_binary.py", "c_undecodable.py", "d_python2.py"):
        assert len(by_file[name]) == 1 and " EVL999 " in by_file[name][0], by_file
    assert "cannot decode" in by_file["c_undecodable.py"][0]
    for name in ("e_latin1.py", "f_crlf.py", "h_bom.py"):
        line = bug_line(decode_source(hostile[name]))
        assert [r.split(" ", 2)[:2] for r in by_file[name]] == [
            [f"{line}:{BUG_COLUMN}:", code] for code in BUG_CODES
        ]
    assert "g_empty.py" not in by_file
    assert len(by_file[COMPANION]) == 2


@pytest.mark.parametrize(
    "name", ["syntax_error", "binary_all_bytes", "unknown_cookie", "indentation_over_100_levels"]
)
def test_cli_single_unanalysable_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "one.py").write_bytes(UNANALYSABLE[name][0])
    result = cli("one.py", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == ""
    lines = finding_lines(result.stdout)
    assert len(lines) == 1 and lines[0].startswith("one.py:") and " EVL999 " in lines[0]


def test_cli_broken_symlink_named_explicitly_is_a_usage_error(tmp_path: Path) -> None:
    _symlinks_supported(tmp_path)
    os.symlink("nowhere.py", tmp_path / "dangling.py")
    result = cli("dangling.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "dangling.py" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_fix_leaves_hostile_files_untouched(tmp_path: Path) -> None:
    originals = {
        "a_syntax.py": UNANALYSABLE["syntax_error"][0],
        "b_binary.py": UNANALYSABLE["binary_png_header"][0],
        "c_undecodable.py": UNANALYSABLE["undecodable_utf8"][0],
    }
    for name, data in originals.items():
        (tmp_path / name).write_bytes(data)
    write_companion(tmp_path)
    result = cli("--fix", ".", cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1)
    for name, data in originals.items():
        assert (tmp_path / name).read_bytes() == data
    assert "model.eval()" in (tmp_path / COMPANION).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name",
    [
        "latin1_cookie",
        "cp1252_cookie",
        "crlf",
        "mixed_line_endings",
        "utf8_bom",
        "no_trailing_newline",
        "tabs",
        "form_feeds",
    ],
)
def test_fix_keeps_encoding_and_newlines(tmp_path: Path, name: str) -> None:
    """--fix on an odd-but-valid file: the written bytes decode, parse, and lint clean of
    the fixed findings; the encoding (cookie / BOM) and the first line break are kept."""
    data = NORMAL[name]
    path = tmp_path / "odd.py"
    path.write_bytes(data)
    result = cli("--fix", "odd.py", cwd=tmp_path)
    assert "Traceback" not in result.stderr
    new = path.read_bytes()
    text = decode_source(new)  # still decodes as declared
    assert new.startswith(b"\xef\xbb\xbf") == data.startswith(b"\xef\xbb\xbf")
    if b"\r\n" in data:
        assert b"\r\n" in new
    remaining = {d.code for d in lint_source(text, "odd.py")}
    assert not remaining & set(BUG_CODES), remaining
    assert "EVL999" not in remaining
