"""The part of a function that runs when one of its parameters is bound to a constant.

`def forward(self, data, mode): ... elif mode == "inference": with torch.no_grad(): ...`
called as `model(data, mode="inference")` runs only the `inference` branch: the other
branches (a loss forward with autograd on) do not run for that call. Read from the `if`
tests of the function itself (`p == c`, `p != c`, `p in (c1, c2)`, `p is None`, `if p:`),
never from the names involved. A test that does not depend on the parameter alone keeps
both of its branches. CPython's `ast`, no other part of the analysis.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any, Optional

import libcst as cst

from evallint.source.literals import literal_value

_UNDECIDED = object()


def binding_keys(parameter: str, index: Optional[int], value: Any) -> tuple[str, ...]:
    """The keys of a binding of `parameter` (the `index`-th after `self`, None for a
    keyword-only one) to the constant `value`: by name and by position, so that a call
    that passes the constant either way finds it."""
    keys = (f"{parameter}={value!r}",)
    return keys if index is None else (*keys, f"#{index}={value!r}")


def constant_bindings(call: cst.Call) -> list[tuple[str, ...]]:
    """The keys (see binding_keys) of each argument of `call` that is a literal: a
    positional one by its position (`model(x, "test")` -> `#1='test'`), a keyword one by
    its name (`mode="inference"` -> `mode='inference'`)."""
    found: list[tuple[str, ...]] = []
    for index, argument in enumerate(call.args):
        if argument.star:
            break  # positions after `*args` are unknown
        value = _cst_constant(argument.value)
        if value is _UNDECIDED:
            continue
        if argument.keyword is not None:
            found.append((f"{argument.keyword.value}={value!r}",))
        else:
            found.append((f"#{index}={value!r}",))
    return found


def _cst_constant(node: cst.BaseExpression) -> Any:
    if isinstance(node, cst.SimpleString):
        return literal_value(node)
    if isinstance(node, (cst.Integer, cst.Float)):
        return literal_value(node)
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    return _UNDECIDED


def _constant(node: ast.expr) -> Any:
    """The value of a literal (`"val"`, `0`, `True`, `None`, a tuple of them), else
    _UNDECIDED."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        values = tuple(_constant(e) for e in node.elts)
        return _UNDECIDED if any(v is _UNDECIDED for v in values) else values
    return _UNDECIDED


def _decide(test: ast.expr, parameter: str, value: Any) -> Optional[bool]:
    """The truth of `test` with `parameter` bound to `value`; None when it depends on
    anything else."""
    if isinstance(test, ast.Name):
        return bool(value) if test.id == parameter else None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _decide(test.operand, parameter, value)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        parts = [_decide(v, parameter, value) for v in test.values]
        if isinstance(test.op, ast.And):
            if any(p is False for p in parts):
                return False
            return True if all(p is True for p in parts) else None
        if any(p is True for p in parts):
            return True
        return False if all(p is False for p in parts) else None
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if (
        isinstance(right, ast.Name)
        and right.id == parameter
        and isinstance(op, (ast.Eq, ast.NotEq))
    ):
        left, right = right, left
    if not (isinstance(left, ast.Name) and left.id == parameter):
        return None
    other = _constant(right)
    if other is _UNDECIDED:
        return None
    try:
        if isinstance(op, ast.Eq):
            return bool(value == other)
        if isinstance(op, ast.NotEq):
            return bool(value != other)
        if isinstance(op, ast.Is):
            return value is other if other is None or isinstance(other, bool) else None
        if isinstance(op, ast.IsNot):
            return value is not other if other is None or isinstance(other, bool) else None
        if isinstance(op, ast.In) and isinstance(other, tuple):
            return value in other
        if isinstance(op, ast.NotIn) and isinstance(other, tuple):
            return value not in other
    except TypeError:
        return None
    return None


def tested_constants(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, set[Any]]:
    """Per parameter of `function`, the constants its `if` tests compare it with (True and
    False for a bare `if p:`): the bindings under which some branch is decided."""
    parameters = {a.arg for a in (*function.args.args, *function.args.kwonlyargs)}
    found: dict[str, set[Any]] = {}
    for node in ast.walk(function):
        if not isinstance(node, (ast.If, ast.IfExp)):
            continue
        for inner in ast.walk(node.test):
            if isinstance(inner, ast.Name) and inner.id in parameters and inner is node.test:
                found.setdefault(inner.id, set()).update((True, False))
            if isinstance(inner, ast.Compare) and len(inner.ops) == 1:
                sides = (inner.left, inner.comparators[0])
                for name, other in (sides, sides[::-1]):
                    if isinstance(name, ast.Name) and name.id in parameters:
                        value = _constant(other)
                        if isinstance(value, tuple):
                            found.setdefault(name.id, set()).update(
                                v for v in value if _hashable(v)
                            )
                        elif value is not _UNDECIDED and _hashable(value):
                            found.setdefault(name.id, set()).add(value)
    return found


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def live_nodes(
    function: ast.FunctionDef | ast.AsyncFunctionDef, parameter: str, value: Any
) -> Iterator[ast.AST]:
    """Every node of `function`'s body that can run with `parameter` bound to `value`: the
    branch an `if` on the parameter does not take is left out (and so is what follows a
    `return`/`raise` that the binding always reaches)."""
    yield from _statements(function.body, parameter, value)


def _statements(body: list[ast.stmt], parameter: str, value: Any) -> Iterator[ast.AST]:
    for statement in body:
        if isinstance(statement, ast.If):
            decided = _decide(statement.test, parameter, value)
            if decided is None:
                yield from ast.walk(statement.test)
                yield from _statements(statement.body, parameter, value)
                yield from _statements(statement.orelse, parameter, value)
                continue
            chosen = statement.body if decided else statement.orelse
            yield from _statements(chosen, parameter, value)
            if chosen and isinstance(chosen[-1], (ast.Return, ast.Raise)):
                return  # the binding always leaves the function here
            continue
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield statement
            continue  # defined, not run here
        if isinstance(statement, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            yield statement
            for item in getattr(statement, "items", ()):
                yield from ast.walk(item)
            for part in ("target", "iter", "test"):
                node = getattr(statement, part, None)
                if node is not None:
                    yield from ast.walk(node)
            yield from _statements(statement.body, parameter, value)
            yield from _statements(getattr(statement, "orelse", []), parameter, value)
            continue
        if isinstance(statement, ast.Try):
            yield statement
            yield from _statements(statement.body, parameter, value)
            for handler in statement.handlers:
                yield from _statements(handler.body, parameter, value)
            yield from _statements(statement.orelse, parameter, value)
            yield from _statements(statement.finalbody, parameter, value)
            continue
        yield from ast.walk(statement)
