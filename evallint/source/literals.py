"""The value a literal node stands for, without `ast.literal_eval`.

LibCST's `evaluated_value` calls `ast.literal_eval`, whose nested helper functions refer to
each other: every call leaves a reference cycle (four functions and their cells) for the
cyclic collector, thousands per file when branch conditions and keys are read. Plain
literals are read directly here; anything else goes through `ast.parse`, which makes no
cycle.
"""

from __future__ import annotations

import ast
from typing import Union

import libcst as cst

Literal = Union[str, bytes, int, float, complex, None]
_READ = (cst.Integer, cst.Float, cst.SimpleString, cst.Imaginary)


def literal_value(node: cst.BaseExpression) -> Literal:
    """What `node.evaluated_value` returns: read here for a `SimpleString`, `Integer`,
    `Float`, `Imaginary` or `ConcatenatedString` node, LibCST's own answer for any other node."""
    kind = type(node)
    if kind is cst.ConcatenatedString:
        return _concatenated(node)  # type: ignore[arg-type]
    if kind not in _READ:
        return node.evaluated_value  # type: ignore[attr-defined]
    text: str = node.value  # type: ignore[attr-defined]
    if kind is cst.Integer:
        return int(text, 0)  # prefixes and underscores as in source
    if kind is cst.Float:
        return float(text)
    if kind is cst.SimpleString:
        quote = min(i for i in (text.find("'"), text.find('"')) if i >= 0)
        prefix = text[:quote].lower()
        width = 3 if text[quote : quote + 3] in ('"""', "'''") else 1
        inner = text[quote + width : len(text) - width]
        if "b" not in prefix and ("r" in prefix or "\\" not in inner):
            return inner
    return _parsed(text)


def _concatenated(node: cst.ConcatenatedString) -> Literal:
    """As LibCST: None if a part is an f-string or str and bytes are mixed."""
    if type(node.left) is cst.FormattedString or type(node.right) is cst.FormattedString:
        return None
    left, right = literal_value(node.left), literal_value(node.right)
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(left, bytes) and isinstance(right, bytes):
        return left + right
    return None


def _parsed(text: str) -> Literal:
    expression = ast.parse(text.strip(), mode="eval").body
    if isinstance(expression, ast.Constant) and expression.value is not Ellipsis:
        value: Literal = expression.value
        return value
    raise ValueError(f"not a literal: {text!r}")
