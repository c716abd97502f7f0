"""Torch containers assembled from parts of modules that already exist (issue 16, item 8).

`nn.Sequential(*list(net.children())[:-1])`, `nn.Sequential(net.conv, net.bn, net.layer1)`,
`parts = [net.layer3, net.pool]` then `nn.Sequential(*parts)`: the new container's own
`.training` starts True, but it has no behaviour of its own: its forward runs the parts it
holds, each in the mode its module left it in (`nn.Sequential(...)` does not call `train()` on
what it is given). So such a container is in the mode of the module it was cut from, and
`net.eval()` before it reaches what it runs. This module finds the parts; the interpreter
(values.py) resolves them to module keys.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.walk import iter_nodes

_PART_METHODS = frozenset({"children", "modules", "values"})
"""`net.children()`, `net.modules()`, `blocks.values()` (an nn.ModuleDict): parts of the
receiver, in its mode."""

_SEQUENCE_BUILDERS = frozenset({"list", "tuple"})

_GROWN_BY = frozenset({"append", "extend", "insert", "__setitem__"})


def _strip(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`list(net.children())[:-1]` -> `net.children()`: copies and slices of a sequence hold
    the same modules."""
    while True:
        if type(expr) is cst.Subscript:
            expr = expr.value
        elif (
            type(expr) is cst.Call
            and type(expr.func) is cst.Name
            and expr.func.value in _SEQUENCE_BUILDERS
            and len(expr.args) == 1
            and not expr.args[0].star
        ):
            expr = expr.args[0].value
        else:
            return expr


def _bound_values(
    body: cst.CSTNode, name: str, call: cst.Call
) -> Optional[list[cst.BaseExpression]]:
    """What `name` is assigned in this scope before `call` (`parts = [...]` on each branch;
    `parts = nn.Sequential(*parts)` rebinds it by the call itself); None when it is bound
    otherwise too (a loop target, `+=`, `parts.append(...)`): its elements are then not all
    written down."""
    values: list[cst.BaseExpression] = []
    for node in iter_nodes(body):
        if node is call:
            break
        if type(node) is cst.Assign:
            for target in node.targets:
                if type(target.target) is cst.Name and target.target.value == name:
                    if len(node.targets) != 1:
                        return None
                    if not any(inner is call for inner in iter_nodes(node.value)):
                        values.append(node.value)
        elif type(node) in (cst.AugAssign, cst.AnnAssign, cst.For):
            target = node.target  # type: ignore[attr-defined]
            if type(target) is cst.Name and target.value == name:
                return None
        elif (
            type(node) is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value in _GROWN_BY
            and type(node.func.value) is cst.Name
            and node.func.value.value == name
        ):
            return None
    return values or None


def _sequence_parts(
    expr: cst.BaseExpression, body: cst.CSTNode, call: cst.Call, depth: int = 0
) -> Optional[list[cst.BaseExpression]]:
    """The modules a sequence expression holds (`[a.x, a.y]`, `parts`, `a.children()`; a
    module itself, `*net.layer3`, holds its children)."""
    expr = _strip(expr)
    if type(expr) in (cst.List, cst.Tuple):
        found: list[cst.BaseExpression] = []
        for element in expr.elements:  # type: ignore[attr-defined]
            if type(element) is cst.StarredElement:
                inner = _sequence_parts(element.value, body, call, depth + 1) if depth < 3 else None
                if inner is None:
                    return None
                found.extend(inner)
            else:
                found.append(element.value)
        return found
    if type(expr) is cst.Dict:
        return [e.value for e in expr.elements if type(e) is cst.DictElement] or None
    if (
        type(expr) is cst.Call
        and type(expr.func) is cst.Attribute
        and expr.func.attr.value in _PART_METHODS
        and not expr.args
    ):
        return [expr.func.value]
    if type(expr) is cst.Name and depth < 3:
        values = _bound_values(body, expr.value, call)
        if values is not None:
            found = []
            for value in values:
                inner = _sequence_parts(value, body, call, depth + 1)
                if inner is None:
                    return None
                found.extend(inner)
            return found
    if type(expr) in (cst.Name, cst.Attribute):
        return [expr]  # a module (its children), or a name the caller cannot resolve
    return None


def container_parts(call: cst.Call, body: cst.CSTNode) -> Optional[list[cst.BaseExpression]]:
    """The expressions a torch container call (`nn.Sequential(...)`, `nn.ModuleList([...])`,
    `nn.ModuleDict({...})`) is given as its modules, `body` being the scope it is called in;
    None when some argument's modules cannot be read off the code."""
    parts: list[cst.BaseExpression] = []
    for arg in call.args:
        if arg.keyword is not None or arg.star == "**":
            return None
        if arg.star == "*" or type(arg.value) in (cst.List, cst.Tuple, cst.Dict):
            found = _sequence_parts(arg.value, body, call)
            if found is None:
                return None
            parts.extend(found)
        else:
            parts.append(arg.value)
    return parts or None


def part_of(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`net.features[:5]`, `net.blocks[0]`: an item or slice of a part is in that part's
    mode tree."""
    return _strip(expr) if type(expr) is cst.Subscript else expr


def common_key(keys: list[str]) -> Optional[str]:
    """The deepest module key every one of `keys` is (under): `net` for `net.conv` and
    `net.layer1`; None when they belong to different modules."""
    if not keys:
        return None
    split = [key.split(".") for key in keys]
    shared: list[str] = []
    for pieces in zip(*split):
        if any(piece != pieces[0] for piece in pieces):
            break
        shared.append(pieces[0])
    return ".".join(shared) or None
