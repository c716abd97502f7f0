"""Is the `if` around a layer's construction taken? Three-valued: True, False or None (not known).

A layer built only under a condition exists only when the condition holds, so it may decide a
verdict only when the condition was resolved: from literals, bound parameters (call arguments
or defaults), module-level constants and `self.x` set unconditionally earlier in the same
method. Nothing is executed.
"""

from __future__ import annotations

import operator
from dataclasses import replace
from typing import Any, Callable, Optional

import libcst as cst

from evallint.verifier.layer_spec import UNKNOWN
from evallint.verifier.resolution import Ctx, Found, last_assignment, literal
from evallint.verifier.source_index import Assignment, dotted_or_none

Guard = tuple[cst.BaseExpression, bool]

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    cst.Is: operator.is_,
    cst.IsNot: operator.is_not,
    cst.Equal: operator.eq,
    cst.NotEqual: operator.ne,
    cst.GreaterThan: operator.gt,
    cst.GreaterThanEqual: operator.ge,
    cst.LessThan: operator.lt,
    cst.LessThanEqual: operator.le,
}


def value_of(expr: cst.BaseExpression, ctx: Ctx) -> Any:
    """A constant, or `self.x` given a constant unconditionally earlier in the same method."""
    dotted = dotted_or_none(expr)
    if dotted is not None and (dotted.count(".") == 0 or dotted.startswith("self.")):
        # a name (re)assigned earlier in this function, or `self.x`: its last value here
        assign = last_assignment(ctx.file, dotted, ctx.func, ctx.line - 1)
        if assign is not None:
            return UNKNOWN if assign.guards else literal(assign.value, ctx.at(assign.line))
        if dotted.startswith("self."):
            return UNKNOWN
    return literal(expr, ctx)


def truth(test: cst.BaseExpression, ctx: Ctx) -> Optional[bool]:
    """Whether `test` holds, or None when it cannot be decided from the source."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = truth(test.expression, ctx)
        return None if inner is None else not inner
    if isinstance(test, cst.BooleanOperation):
        left, right = truth(test.left, ctx), truth(test.right, ctx)
        if isinstance(test.operator, cst.And):
            if left is False or right is False:
                return False
            return True if left and right else None
        if left is True or right is True:
            return True
        return False if left is False and right is False else None
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        target = test.comparisons[0]
        compare = _COMPARE.get(type(target.operator))
        left, right = value_of(test.left, ctx), value_of(target.comparator, ctx)
        if compare is None or left is UNKNOWN or right is UNKNOWN:
            return None
        try:
            return bool(compare(left, right))
        except TypeError:
            return None
    value = value_of(test, ctx)
    if value is UNKNOWN:
        return None
    return bool(value)


def guards_hold(guards: tuple[Guard, ...], ctx: Ctx) -> tuple[Optional[bool], str]:
    """All guards together: False if one is certainly not taken, True if all certainly are,
    else None with the first undecided test (as written, `not (...)` for an `else` side)."""
    undecided = ""
    for test, taken in guards:
        held = truth(test, ctx)
        if held is not None and held != taken:
            return False, ""
        if held is None and not undecided:
            code = ctx.file.code(test)
            undecided = code if taken else f"not ({code})"
    return (None, undecided) if undecided else (True, "")


def live_assignments(
    assigns: list[Assignment], ctx_of: Callable[[Assignment], Ctx]
) -> list[tuple[Assignment, str]]:
    """The assignments to one attribute (in source order) whose value may be the live one,
    each with the test it depends on that was not decided ("" when none): from the last one
    that certainly runs onwards, dropping those whose condition certainly fails."""
    out: list[tuple[Assignment, str]] = []
    for assign in reversed(assigns):
        held, undecided = guards_hold(assign.guards, ctx_of(assign))
        if held is False:
            continue
        out.append((assign, undecided))
        if held:
            break  # it runs whenever the constructor does: earlier values are replaced
    return out[::-1]


def only_if(found: Found, undecided: str, what: str) -> Found:
    """The layers of `what` (an assignment or an element added to a list), made only if
    `undecided` holds: they may decide nothing (neither `confirmed` nor `not affected`) when
    one of them depends on the mode."""
    if not undecided:
        return found
    if all(layer.sensitivity is False for layer in found.layers):
        # it cannot make the module mode-dependent; kept, marked, out of the size figures
        layers = [replace(layer, condition=undecided) for layer in found.layers]
        return replace(found, layers=layers, unresolved=list(found.unresolved))
    reason = f"{what} is built only if `{undecided}`, which evallint could not decide"
    return Found(
        layers=[layer for layer in found.layers if layer.sensitivity is False],
        unresolved=[reason, *found.unresolved],
        root=found.root,
        caller=found.caller,
    )
