"""Settings a layer reads from `self.x` in a method other than the constructor.

`nn.Dropout(self.dropout_rate)` in `fit()` reads what `__init__` stored: `self.dropout_rate =
dropout_rate`. When the call that built the object was not followed, the parameter's default
is only an assumption: it is reported as assumed (`Assumed`), may support `confirmed` (the
verdict names it), and never `not affected` (`LayerSpec.sensitivity`). Nothing is executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import libcst as cst

from evallint.verifier.layer_spec import UNKNOWN
from evallint.verifier.resolution import Ctx, keyed_args, literal
from evallint.verifier.source_index import dotted_or_none, init_of, inside


@dataclass(frozen=True)
class Assumed:
    value: Any
    note: str
    """`dropout_rate=0.2`, the default of ALAD.__init__ (what the caller passed was not followed)."""


def assumed_literal(expr: cst.BaseExpression, ctx: Ctx, depth: int = 0) -> Any:
    """`literal`, else the value `self.x` gets from a constructor default, as `Assumed`, else
    UNKNOWN. Followed through bound parameters (`dropout=self.dropout` passed on)."""
    value = literal(expr, ctx)
    if value is not UNKNOWN or depth > 8:
        return value
    if isinstance(expr, cst.Name) and expr.value in ctx.bindings:
        bound = ctx.bindings[expr.value]
        if bound.expr is None or bound.ctx is None:
            return UNKNOWN
        return assumed_literal(bound.expr, bound.ctx, depth + 1)
    dotted = dotted_or_none(expr)
    if dotted is None or not dotted.startswith("self.") or dotted.count(".") != 1:
        return UNKNOWN
    return _constructor_default(dotted, ctx)


def _constructor_default(target: str, ctx: Ctx) -> Any:
    """`self.x` assigned exactly once in its class, unconditionally in `__init__`, from a
    parameter with a literal default (or from a literal)."""
    cls = ctx.cls
    if cls is None:
        return UNKNOWN
    init = init_of(cls)
    assigns = [
        a
        for a in ctx.file.assignments
        if a.target == target and a.func is not None and inside(ctx.file, a.func, cls)
    ]
    if init is None or len(assigns) != 1 or assigns[0].func is not init or assigns[0].guards:
        return UNKNOWN
    value = assigns[0].value
    if ctx.func is init and ctx.bindings:
        return literal(value, ctx)
    if not isinstance(value, cst.Name):
        return literal(value, Ctx(ctx.file, init, cls, {}, assigns[0].line, ctx.depth + 1))
    params = init.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == value.value and param.default is not None:
            default = literal(param.default, Ctx(ctx.file, None, None, {}, 0, ctx.depth + 1))
            if default is UNKNOWN:
                return UNKNOWN
            note = (
                f"`{value.value}={ctx.file.code(param.default)}`, the default of "
                f"{cls.name.value}.__init__ (the construction call was not followed)"
            )
            return Assumed(default, note)
    return UNKNOWN


def unwrap(value: Any) -> tuple[Any, Optional[str]]:
    if isinstance(value, Assumed):
        return value.value, value.note
    return value, None


def assumed_args(
    call: cst.Call, names: tuple[str, ...], ctx: Ctx, unread: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """For the arguments `literal_args` left unread: the values assumed from constructor
    defaults (`Assumed`), and (name, note) for each."""
    values: dict[str, Any] = {}
    notes: list[tuple[str, str]] = []
    for key, arg in keyed_args(call, names):
        if key is None or key not in unread:
            continue
        value = assumed_literal(arg.value, ctx)
        if isinstance(value, Assumed):
            values[key] = value.value
            notes.append((key, value.note))
    return values, tuple(notes)
