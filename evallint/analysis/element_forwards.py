"""Forwards of the elements of a module the loop walks (issue 16).

`for model in models: out = model(x)` with `models` a module the function was given (an
ensemble's members, handed over as one value), or `for layer in net.body: x = layer(x)` with
`net.body` a part of a module (an nn.Sequential, an nn.ModuleList): each element the loop
binds is one of that module's submodules, in that module's mode (`eval()` reaches every
submodule) and run in the grad state of the loop. Calling the element is a forward of the
module the loop walks, so the evaluation it belongs to sees it.

Only a loop over a module key the function already knows (a parameter named or used as a
module, a module global, a module attribute), or an attribute of one (`net.body`, not
`self.transforms` of the module's own method: its own attributes are known by its class),
whose body calls its target. A walk over the members handed over as one value may also
switch each (`for m in models: m.eval()` switches them all); a walk over the parts of a
module that switches some of them (`for m in net.body: if isinstance(m, nn.BatchNorm1d):
m.eval()`, a partial freeze) is left alone. Known containers of modules (`nets = [g, d]`)
are unrolled by flow.py instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterPart, States
    from evallint.analysis.lattice import PathState

_WALKERS = ("enumerate", "reversed")
"""Calls that hand the loop the elements of their first argument (`enumerate` as the
second element of the target's tuple)."""

_SWITCHES = ("eval", "train", "requires_grad_")


def _walked(loop: cst.For) -> Optional[tuple[str, cst.BaseExpression]]:
    """(the name bound to each element, the expression whose elements it is)."""
    iterable: cst.BaseExpression = loop.iter
    target: cst.BaseExpression = loop.target
    if type(iterable) is cst.Call and type(iterable.func) is cst.Name and iterable.args:
        walker = iterable.func.value
        if walker not in _WALKERS or len(iterable.args) != 1:
            return None
        if walker == "enumerate":
            if type(target) is not cst.Tuple or len(target.elements) != 2:
                return None
            target = target.elements[1].value
        iterable = iterable.args[0].value
    if type(target) is not cst.Name or type(iterable) not in (cst.Name, cst.Attribute):
        return None
    return target.value, iterable


def _uses(body: cst.CSTNode, name: str) -> tuple[bool, bool]:
    """(the body calls `name(...)`, the body calls a mode switch on it)."""
    called = switched = False
    for node in iter_nodes(body):
        if type(node) is not cst.Call:
            continue
        func = node.func
        if type(func) is cst.Name and func.value == name:
            called = True
        elif (
            type(func) is cst.Attribute
            and func.attr.value in _SWITCHES
            and type(func.value) is cst.Name
            and func.value.value == name
        ):
            switched = True
    return called, switched


def _module_walked(
    part: InterpreterPart, iterable: cst.BaseExpression, state: PathState
) -> Optional[str]:
    """The module key whose elements the loop walks, if the function knows it as a module."""
    key = part.resolve(iterable, state)
    if key is not None:
        return key
    if type(iterable) is not cst.Attribute:
        return None
    path = dotted_name(iterable)
    owner: cst.BaseExpression = iterable.value
    while type(owner) is cst.Attribute:
        owner = owner.value
    if path is None or type(owner) is not cst.Name or owner.value in ("self", "cls"):
        return None
    root = part.resolve(owner, state)
    if root is None:
        return None
    return root + path[len(owner.value) :]


def bind_walked_module(part: InterpreterPart, loop: cst.For, states: States) -> States:
    """The loop's states with its target bound to the module whose elements it walks."""
    walked = _walked(loop)
    if walked is None:
        return states
    name, iterable = walked
    called, switched = _uses(loop.body, name)
    members = type(iterable) is cst.Name
    if name in part.submodule_variables or not (called or (switched and members)):
        return states
    if switched and not members:
        return states  # some parts of a module switched: a partial freeze
    if part.container_loop(loop.iter, loop.target) is not None:
        return states  # a known container: unrolled per member
    bound = []
    for state in states:
        key = _module_walked(part, iterable, state)
        bound.append(state if key is None else state.with_alias(name, key))
    return tuple(bound)
