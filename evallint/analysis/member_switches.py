"""Loops that switch every member of a module or a container of modules (issue 16).

`if type(net) is dict: for subnet in net.values(): subnet.eval()` (a model passed as a dict
of parts, or as a module), `for part in model.children(): part.train()`, `for k in net:
net[k].eval()` and the comprehension statement `_ = [net[k].eval() for k in net]`: the loop
does nothing but switch each member, so after it every member of `net` is in that mode, as
after `net.eval()`; what runs `net` (or its parts, `net.decoder(x)`, `net[k](x)`) afterwards
runs them in it. A body that does anything else (`if isinstance(m, nn.BatchNorm2d):
m.eval()`, a partial freeze) is read as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast

import libcst as cst

from evallint.analysis.lattice import Mode, ModeFact, Origin
from evallint.analysis.symbols import dotted_name

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterPart, States

_MEMBER_METHODS = frozenset({"values", "children", "modules"})


def _iterated(node: cst.For | cst.CompFor) -> Optional[cst.BaseExpression]:
    """The container a loop runs over: `net` in `for m in net`, `net.values()`,
    `net.children()`, `net.modules()`, `net.keys()`, and `for _, m in net.items()`."""
    iterable = node.iter
    if type(iterable) is cst.Call and type(iterable.func) is cst.Attribute and not iterable.args:
        if iterable.func.attr.value == "keys" and type(node.target) is cst.Name:
            return iterable.func.value
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


def _target_name(node: cst.For | cst.CompFor) -> Optional[str]:
    target: cst.BaseExpression = node.target
    if type(target) is cst.Tuple:
        if len(target.elements) != 2:
            return None  # `for idx, in loader:` (one element), `for a, b, c in rows:`
        target = target.elements[1].value
    return target.value if type(target) is cst.Name else None


def _switches(node: cst.For, name: str, iterated: cst.BaseExpression) -> list[cst.Call]:
    """The body's calls when it is nothing but switches of the member: `name.eval()` /
    `name.train(...)`, or `net[name].eval()` over the keys of `net`; else []."""
    if node.orelse is not None:
        return []
    body = node.body.body if type(node.body) is cst.IndentedBlock else ()
    calls: list[cst.Call] = []
    for statement in body:
        if type(statement) is not cst.SimpleStatementLine:
            return []
        for small in statement.body:
            value = small.value if type(small) is cst.Expr else None
            if value is None or not _switches_member(value, name, iterated):
                return []
            calls.append(cast(cst.Call, value))
    return calls if body else []


def _switches_member(value: cst.BaseExpression, name: str, iterated: cst.BaseExpression) -> bool:
    """`name.eval()`, `name.train(...)`, or `net[name].eval()` with `net` the container."""
    if (
        type(value) is not cst.Call
        or type(value.func) is not cst.Attribute
        or value.func.attr.value not in ("eval", "train")
    ):
        return False
    receiver = value.func.value
    if type(receiver) is cst.Name:
        return receiver.value == name
    if type(receiver) is not cst.Subscript or len(receiver.slice) != 1:
        return False
    index = receiver.slice[0].slice
    container = dotted_name(receiver.value)
    return (
        type(index) is cst.Index
        and type(index.value) is cst.Name
        and index.value.value == name
        and container is not None
        and container == dotted_name(iterated)
    )


def members_switched_by_comprehension(
    part: InterpreterPart, value: cst.BaseExpression, entry: States
) -> Optional[States]:
    """The states after a statement `[net[k].eval() for k in net]` (or a generator or set
    comprehension over `net.values()` switching each element): every member of `net`
    switched, as by the loops above; None for any other expression."""
    if type(value) not in (cst.ListComp, cst.GeneratorExp, cst.SetComp) or not entry:
        return None
    comprehension = cast("cst.ListComp | cst.GeneratorExp | cst.SetComp", value)
    loop = comprehension.for_in
    if loop.inner_for_in is not None or loop.ifs:
        return None
    iterated = _iterated(loop)
    name = _target_name(loop)
    if iterated is None or name is None:
        return None
    if not _switches_member(comprehension.elt, name, iterated):
        return None
    return _switched(part, iterated, cast(cst.Call, comprehension.elt), entry)


def every_member_switched(part: InterpreterPart, node: cst.For, entry: States) -> Optional[States]:
    """The states after a loop that switches every member of a container the analysis
    knows as a module (see the module docstring); None for any other loop."""
    iterated = _iterated(node)
    name = _target_name(node)
    if iterated is None or name is None:
        return None
    calls = _switches(node, name, iterated)
    if not calls:
        return None
    return _switched(part, iterated, calls[-1], entry)


def _switched(
    part: InterpreterPart, iterated: cst.BaseExpression, last: cst.Call, entry: States
) -> Optional[States]:
    """Every member of the module `iterated` holds in the mode `last` switches to."""
    method = last.func.attr.value  # type: ignore[attr-defined]
    mode = Mode.EVAL if method == "eval" else part._mode_argument(last)
    if mode is None or (method == "eval" and last.args):
        return None
    name = dotted_name(iterated)
    members = part.containers.get(name or "", ())  # `{"enc": Encoder(), ...}`: its elements
    keys = [
        part.resolve(iterated, state)
        or (name if name is not None and state.mode_of(name) is not None else None)
        for state in entry
    ]  # a dict of parts the state tracks by name (`model.decoder` switched before)
    if any(key is None for key in keys) and not members:
        return None
    if mode is Mode.EVAL:
        part.eval_switches.append(last)
    facts = {ModeFact(mode, Origin.SWITCHED, last)}
    switched = []
    for state, key in zip(entry, keys):
        if key is not None:
            state = state.with_mode_tree(key, facts)
        for member in members:
            state = state.with_mode_tree(member, facts)
        switched.append(state)
    return tuple(switched)
