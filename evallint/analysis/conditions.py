"""Branch conditions as comparable keys, so two `if`s on the same flag can be correlated."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name


def _atom(node: cst.BaseExpression) -> Optional[str]:
    name = dotted_name(node)
    if name is not None:
        return name
    if type(node) is cst.SimpleString:
        return repr(node.evaluated_value) if isinstance(node.evaluated_value, str) else None
    if type(node) is cst.Integer:
        return node.value
    if (
        type(node) is cst.Subscript
        and len(node.slice) == 1
        and type(node.slice[0].slice) is cst.Index
    ):
        base, index = _atom(node.value), _atom(node.slice[0].slice.value)
        return f"{base}[{index}]" if base and index else None
    return None


_NEGATED = {"!=": "==", "is not": "is", "not in": "in"}


def condition_key(test: cst.BaseExpression) -> Optional[tuple[str, bool]]:
    """(normalised text, polarity) for simple conditions: `flag`, `not flag`, `a.b`,
    `phase == 'train'`, `mode != "val"`; None for anything else."""
    polarity = True
    while type(test) is cst.UnaryOperation and type(test.operator) is cst.Not:
        polarity = not polarity
        test = test.expression
    atom = _atom(test)
    if atom is not None:
        return atom, polarity
    if type(test) is cst.Comparison and len(test.comparisons) == 1:
        target = test.comparisons[0]
        operator = {
            cst.Equal: "==",
            cst.NotEqual: "!=",
            cst.Is: "is",
            cst.IsNot: "is not",
            cst.In: "in",
            cst.NotIn: "not in",
        }.get(type(target.operator))
        left, right = _atom(test.left), _atom(target.comparator)
        if operator is None or left is None or right is None:
            return None
        if operator in _NEGATED:
            operator, polarity = _NEGATED[operator], not polarity
        return f"{left} {operator} {right}", polarity
    return None
