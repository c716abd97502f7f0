"""What a list of layers holds, read from the scope that fills it (issue 16, real code).

`layers = [nn.Flatten()]; for n in sizes: layers.append(nn.Linear(m, n)); layers.append(
nn.ReLU())`, then `nn.Sequential(*layers)` or `nn.ModuleList(layers)`: the container holds
what the list was given, so whether its mode matters is decided by those layers. Read
syntactically, on the statements of one scope: every binding of the list (a literal, a
comprehension, a concatenation of literals), every `append`/`insert`/`extend`/`+=` on it;
an element that is a name is followed to what the scope binds that name to. Anything else
(a list from a parameter or a call, a starred element, a name bound to no call) leaves the
contents unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional

import libcst as cst

from evallint.analysis.walk import iter_nodes

_ADDING = frozenset({"append", "insert"})


def scope_nodes(statements: Iterable[cst.CSTNode]) -> list[cst.CSTNode]:
    """Every node of these statements, in source order (what `listed_layers` reads)."""
    return [node for statement in statements for node in iter_nodes(statement)]


def listed_layers(nodes: Sequence[cst.CSTNode], name: str) -> Optional[list[cst.Call]]:
    """The calls that build what list `name` holds, read from `nodes` (every node of a
    scope, see `scope_nodes`), or None when some element is not read (see the module
    docstring) or nothing binds `name` to a list there."""
    elements: list[cst.BaseExpression] = []
    bound = False
    for node in nodes:
        if type(node) is cst.Assign and any(
            type(t.target) is cst.Name and t.target.value == name for t in node.targets
        ):
            if len(node.targets) != 1:
                return None
            values = _list_elements(node.value)
            if values is None:
                return None
            elements += values
            bound = True
        elif (
            type(node) is cst.AugAssign
            and type(node.target) is cst.Name
            and node.target.value == name
        ):
            values = _list_elements(node.value)
            if values is None:
                return None
            elements += values
        elif type(node) is cst.Call and _on_list(node.func, name):
            method = node.func.attr.value  # type: ignore[attr-defined]
            if method in _ADDING and node.args:
                elements.append(node.args[-1].value)
            elif method == "extend" and len(node.args) == 1:
                values = _list_elements(node.args[0].value)
                if values is None:
                    return None
                elements += values
            elif method not in ("pop", "clear", "reverse", "copy", "index", "count"):
                return None
    if not bound:
        return None
    calls: list[cst.Call] = []
    for element in elements:
        built = _built_by(element, nodes)
        if built is None:
            return None
        calls += built
    return calls


def _on_list(func: cst.BaseExpression, name: str) -> bool:
    return type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value == name


def _list_elements(value: cst.BaseExpression) -> Optional[list[cst.BaseExpression]]:
    """The elements of a list or tuple literal, a comprehension's element, both sides of a
    `+` of such; None for anything else."""
    kind = type(value)
    if kind in (cst.List, cst.Tuple):
        elements = value.elements  # type: ignore[attr-defined]
        if any(type(e) is cst.StarredElement for e in elements):
            return None
        return [e.value for e in elements]
    if kind in (cst.ListComp, cst.GeneratorExp):
        return [value.elt]  # type: ignore[attr-defined]
    if kind is cst.BinaryOperation and type(value.operator) is cst.Add:  # type: ignore[attr-defined]
        left = _list_elements(value.left)  # type: ignore[attr-defined]
        right = _list_elements(value.right)  # type: ignore[attr-defined]
        return None if left is None or right is None else left + right
    return None


def _built_by(
    element: cst.BaseExpression, nodes: Sequence[cst.CSTNode]
) -> Optional[list[cst.Call]]:
    """The calls that build an element: itself when it is a call, what the scope assigns a
    name element to (every assignment: `layer = nn.Linear(m, n)` in a loop)."""
    if type(element) is cst.Call:
        return [element]
    if type(element) is not cst.Name:
        return None
    name = element.value
    found: list[cst.Call] = []
    for node in nodes:
        if type(node) is cst.Assign and any(
            type(t.target) is cst.Name and t.target.value == name for t in node.targets
        ):
            if type(node.value) is not cst.Call:
                return None
            found.append(node.value)
        elif type(node) in (cst.For, cst.AugAssign, cst.AnnAssign) and any(
            type(n) is cst.Name and n.value == name
            for n in iter_nodes(node.target)  # type: ignore[attr-defined]
        ):
            return None  # bound by a loop or otherwise: not read
    return found or None
