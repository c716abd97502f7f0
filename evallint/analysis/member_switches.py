"""Loops that switch every member of a module or a container of modules (issue 16).

`if type(net) is dict: for subnet in net.values(): subnet.eval()` (a model passed as a dict
of parts, or as a module), `for part in model.children(): part.train()`: the loop's body does
nothing but switch its target, so after it every member of `net` is in that mode, as after
`net.eval()`; what runs `net` (or its parts) afterwards runs them in it. A body that does
anything else (`if isinstance(m, nn.BatchNorm2d): m.eval()`, a partial freeze) is read as
usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.lattice import Mode, ModeFact, Origin

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterPart, States

_MEMBER_METHODS = frozenset({"values", "children", "modules"})


def _iterated(node: cst.For) -> Optional[cst.BaseExpression]:
    """The container a loop runs over: `net` in `for m in net`, `net.values()`,
    `net.children()`, `net.modules()`, and `for _, m in net.items()`."""
    iterable = node.iter
    if type(node.target) is cst.Tuple:
        elements = node.target.elements
        if (
            len(elements) != 2
            or type(iterable) is not cst.Call
            or type(iterable.func) is not cst.Attribute
            or iterable.func.attr.value not in ("items", "named_children", "named_modules")
            or iterable.args
        ):
            return None
        return iterable.func.value
    if type(iterable) is cst.Call:
        func = iterable.func
        if type(func) is cst.Attribute and func.attr.value in _MEMBER_METHODS and not iterable.args:
            return func.value
        return None
    return iterable if type(iterable) in (cst.Name, cst.Attribute) else None


def _target_name(node: cst.For) -> Optional[str]:
    target: cst.BaseExpression = node.target
    if type(target) is cst.Tuple:
        if len(target.elements) != 2:
            return None  # `for idx, in loader:` (one element), `for a, b, c in rows:`
        target = target.elements[1].value
    return target.value if type(target) is cst.Name else None


def _switches(node: cst.For, name: str) -> list[cst.Call]:
    """The body's calls when it is nothing but `name.eval()` / `name.train(...)`; else []."""
    if node.orelse is not None:
        return []
    body = node.body.body if type(node.body) is cst.IndentedBlock else ()
    calls: list[cst.Call] = []
    for statement in body:
        if type(statement) is not cst.SimpleStatementLine:
            return []
        for small in statement.body:
            value = small.value if type(small) is cst.Expr else None
            if (
                type(value) is not cst.Call
                or type(value.func) is not cst.Attribute
                or value.func.attr.value not in ("eval", "train")
                or type(value.func.value) is not cst.Name
                or value.func.value.value != name
            ):
                return []
            calls.append(value)
    return calls if body else []


def every_member_switched(part: InterpreterPart, node: cst.For, entry: States) -> Optional[States]:
    """The states after a loop that switches every member of a container the analysis
    knows as a module (see the module docstring); None for any other loop."""
    iterated = _iterated(node)
    name = _target_name(node)
    if iterated is None or name is None:
        return None
    calls = _switches(node, name)
    if not calls:
        return None
    last = calls[-1]
    method = last.func.attr.value  # type: ignore[attr-defined]
    mode = Mode.EVAL if method == "eval" else part._mode_argument(last)
    if mode is None or (method == "eval" and last.args):
        return None
    keys = [part.resolve(iterated, state) for state in entry]
    if any(key is None for key in keys):
        return None
    if mode is Mode.EVAL:
        part.eval_switches.append(last)
    return tuple(
        state.with_mode_tree(key, {ModeFact(mode, Origin.SWITCHED, last)})
        for state, key in zip(entry, keys)
        if key is not None
    )
