"""`literal_value` answers as LibCST's `evaluated_value` does, without leaving reference
cycles behind (ast.literal_eval's do), and a linted file's analysis is freed by reference
counting, not left for the cyclic collector."""

from __future__ import annotations

import gc

import libcst as cst
import pytest

from evallint.source.literals import literal_value

LITERALS = [
    "0",
    "00",
    "42",
    "1_000",
    "0x1F",
    "0o17",
    "0b101",
    "0.5",
    "1.",
    ".25",
    "1e-3",
    "1_0.5e1_0",
    "3j",
    "1.5J",
    "'plain'",
    '"double"',
    "'''triple'''",
    '"""tri\nple"""',
    "'with \\n escape'",
    "'\\x41\\u00e9'",
    "r'raw \\d+'",
    "R'''raw \\n'''",
    "u'unicode'",
    "b'bytes \\x00'",
    "rb'raw bytes \\n'",
    "Br'x'",
    "''",
    '""""""',
    "'it''s'",
    "'a\\\nb'",
    "'a' 'b' \"c\"",
    "b'a' b'b'",
    "'a' f'{x}'",
]


@pytest.mark.parametrize("text", LITERALS)
def test_same_value_as_libcst(text: str) -> None:
    node = cst.parse_expression(text)
    expected = node.evaluated_value  # type: ignore[attr-defined]
    got = literal_value(node)
    assert got == expected and type(got) is type(expected)


def test_reading_literals_leaves_no_cycles() -> None:
    nodes = [cst.parse_expression(text) for text in LITERALS]
    gc.collect()
    gc.disable()
    try:
        for node in nodes:
            literal_value(node)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_linted_file_is_freed_without_the_collector() -> None:
    from evallint import lint_source

    source = (
        "import torch\nimport torch.nn as nn\n\n\nclass Helper:\n    def run(self, x):\n"
        "        return x\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.drop = nn.Dropout(0.5)\n\n"
        "    def forward(self, x):\n        return self.drop(x)\n\n\n"
        "def evaluate(model, x):\n    helper = Helper()\n    out = model(x)\n"
        "    return helper.run(out.argmax(1)) if x.shape[0] > 1 else 'one'\n\n\n"
        "model = Net()\nprint(evaluate(model, torch.zeros(2, 3)))\n"
    )
    assert lint_source(source, "probe.py")  # it analyses (the evaluation is reported)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        lint_source(source, "probe.py")
        gc.collect()
        left = {type(o).__module__.split(".")[0] + "." + type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    # the file's tree and analysis are freed by reference counting (an interpreter may
    # leave a few cycles of its own, e.g. typing's caches on Python 3.9)
    assert not {name for name in left if name.startswith(("libcst.", "evallint."))}


def test_analysis_reads_literals_through_literal_value() -> None:
    """A new `.evaluated_value` in the analysis or the rules would bring the cycles back."""
    from pathlib import Path

    import evallint

    root = Path(evallint.__file__).parent
    users = [
        str(path.relative_to(root))
        for room in ("analysis", "rules", "engine")
        for path in sorted((root / room).rglob("*.py"))
        if ".evaluated_value" in path.read_text(encoding="utf-8")
        or "literal_eval(" in path.read_text(encoding="utf-8")
    ]
    assert users == []
