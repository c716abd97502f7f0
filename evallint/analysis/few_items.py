"""Loops that run a fixed few times, counted from constants of the function.

`Mdeg = 180; Ndeg = int(Mdeg / 10) + 1; for deg in np.linspace(0, Mdeg, Ndeg):` runs 19
times, `for i in np.random.choice(range(n), 4):` four times, whatever the data: a container
filled only there holds that many values (the rotations of one image, the reconstructions of a
few chosen images), not one per batch. EVL006 asks this of the loops around a store that
trains nothing, as it does of a literal `for size in (3, 64):`.
"""

from __future__ import annotations

from typing import Optional, Union

import libcst as cst

from evallint.analysis.conditions import ring_operation
from evallint.analysis.reuse import memo
from evallint.analysis.walk import iter_nodes
from evallint.source.literals import literal_value

FEW = 32
"""At most this many iterations is a fixed few (a picture's panels, a sweep of settings)."""

Number = Union[int, float]


def _single_assignments(function: cst.CSTNode) -> dict[str, cst.BaseExpression]:
    """Names assigned exactly once in `function` (not in a nested scope) -> their value."""
    values: dict[str, cst.BaseExpression] = {}
    counts: dict[str, int] = {}
    for node in iter_nodes(function, enter_scopes=False):
        targets: list[cst.BaseExpression] = []
        if type(node) is cst.Assign:
            targets = [t.target for t in node.targets]
        elif type(node) in (cst.AugAssign, cst.AnnAssign, cst.For):
            targets = [node.target]  # type: ignore[attr-defined]
        for target in targets:
            for name in iter_nodes(target):
                if type(name) is cst.Name:
                    counts[name.value] = counts.get(name.value, 0) + 1
            if type(node) is cst.Assign and type(target) is cst.Name:
                values[target.value] = node.value
    return {name: value for name, value in values.items() if counts.get(name) == 1}


def constants_of(single: dict[str, cst.BaseExpression]) -> dict[str, Number]:
    """The single assignments whose value is an expression of numbers and earlier such
    names."""
    found: dict[str, Number] = {}
    for name, value in single.items():  # source order: earlier names are known first
        number = _evaluate(value, found)
        if number is not None:
            found[name] = number
    return found


def _evaluate(expr: cst.BaseExpression, known: dict[str, Number]) -> Optional[Number]:
    kind = type(expr)
    if kind is cst.Integer:
        return int(literal_value(expr))  # type: ignore[arg-type]
    if kind is cst.Float:
        return float(literal_value(expr))  # type: ignore[arg-type]
    if kind is cst.Name:
        return known.get(expr.value)  # type: ignore[attr-defined]
    if kind is cst.Call:
        call: cst.Call = expr  # type: ignore[assignment]
        if type(call.func) is cst.Name and call.func.value in ("int", "round") and call.args:
            inner = _evaluate(call.args[0].value, known)
            return int(inner) if inner is not None else None
        return None
    if kind is cst.BinaryOperation:
        operation: cst.BinaryOperation = expr  # type: ignore[assignment]
        left = _evaluate(operation.left, known)
        right = _evaluate(operation.right, known)
        if left is None or right is None:
            return None
        folded = ring_operation(operation.operator, left, right)
        if folded is not None:
            return folded
        operator = type(operation.operator)
        if operator is cst.Divide and right:
            return left / right
        if operator is cst.FloorDivide and right:
            return left // right
    return None


def _argument(call: cst.Call, index: int, keywords: tuple[str, ...]) -> Optional[cst.Arg]:
    positional = [a for a in call.args if a.keyword is None and not a.star]
    for argument in call.args:
        if argument.keyword is not None and argument.keyword.value in keywords:
            return argument
    return positional[index] if index < len(positional) else None


def fixed_count(iterable: cst.BaseExpression, known: dict[str, Number]) -> Optional[int]:
    """How many items `iterable` yields when constants decide it: `range(...)` and
    `arange(...)` of constants, `linspace(a, b, n)`, a random `choice(items, n)`, `enumerate`
    of such an iterable."""
    if type(iterable) is not cst.Call:
        return None
    call: cst.Call = iterable
    func = call.func
    name = (
        func.value
        if type(func) is cst.Name
        else func.attr.value
        if type(func) is cst.Attribute
        else ""
    )
    if name == "enumerate" and call.args:
        return fixed_count(call.args[0].value, known)
    if name in ("range", "arange"):
        bounds = [_evaluate(a.value, known) for a in call.args if a.keyword is None]
        if not 1 <= len(bounds) <= 3 or any(b is None for b in bounds):
            return None
        start, stop, step = (
            (0, bounds[0], 1)
            if len(bounds) == 1
            else (*bounds[:2], bounds[2] if len(bounds) == 3 else 1)
        )
        if not step:
            return None
        return max(0, int(-(-(stop - start) // step)))  # type: ignore[operator]
    if name == "linspace":
        count = _argument(call, 2, ("num", "steps"))
    elif name == "choice" and type(func) is cst.Attribute:
        count = _argument(call, 1, ("size",))
    else:
        return None
    value = _evaluate(count.value, known) if count is not None else None
    return int(value) if value is not None else None


def runs_few_times(iterable: cst.BaseExpression, function: cst.CSTNode) -> bool:
    """The loop over `iterable` runs at most FEW times, counted from constants."""
    kind = type(iterable)
    if kind is not cst.Call and kind is not cst.Name:
        return False  # neither counted nor a name bound to a count
    single = memo("few_items.single_assignments", function, _single_assignments)
    if type(iterable) is cst.Name and iterable.value in single:
        iterable = single[iterable.value]  # `idxs = np.random.choice(range(n), 4)`
    count = fixed_count(iterable, constants_of(single))
    return count is not None and count <= FEW
