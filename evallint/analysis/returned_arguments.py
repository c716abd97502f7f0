"""Modules a function hands back inside a returned tuple (issue 16, item 3).

`model, history = train_model(model, loaders)` where `train_model` ends with `return model,
history`: the first name is the module the caller passed, whatever the function did to it
(trained it, switched it, loaded weights into it). Read from the function's own `return`
statements, not from names: a position counts when every `return` gives a tuple of that
length with the same parameter there, and the body rebinds that parameter only to itself
(`model = model.to(device)`, `model = model.eval()`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import libcst as cst

from evallint.analysis.walk import iter_nodes


def _own_nodes(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node of a function body, nested functions, classes and lambdas excluded: the
    analysis's lean walk (a slice of the file's listing in a batch lint). LibCST's
    `children`, used here before, rebuilt every node's child list through a visitor and was
    ~5% of a cold lint of the torch-heavy sample for this module alone."""
    return iter_nodes(node)


def _names(target: cst.CSTNode) -> set[str]:
    """The names a target binds: `a`, `(a, *b)`; an attribute or item target binds none."""
    if type(target) is cst.Name:
        return {target.value}
    if type(target) in (cst.Tuple, cst.List):
        return set().union(*(_names(e.value) for e in target.elements))  # type: ignore[attr-defined]
    if type(target) is cst.StarredElement:
        return _names(target.value)
    return set()


def _root(expr: cst.BaseExpression) -> Optional[str]:
    """`model.to(device).eval()` -> 'model'."""
    while True:
        if type(expr) is cst.Call:
            expr = expr.func
        elif type(expr) is cst.Attribute:
            expr = expr.value
        else:
            break
    return expr.value if type(expr) is cst.Name else None


def returned_parameters(function: cst.FunctionDef, count: int) -> list[Optional[str]]:
    """Per position of a returned `count`-tuple, the parameter returned there (see above)."""
    params = [p.name.value for p in (*function.params.posonly_params, *function.params.params)]
    params += [p.name.value for p in function.params.kwonly_params]
    returned: Optional[list[Optional[str]]] = None
    for node in _own_nodes(function.body):
        if type(node) is cst.Return:
            value = node.value
            if type(value) is not cst.Tuple or len(value.elements) != count:
                return [None] * count
            here = [
                e.value.value if type(e.value) is cst.Name and e.value.value in params else None
                for e in value.elements
            ]
            returned = (
                here
                if returned is None
                else [a if a == b else None for a, b in zip(returned, here)]
            )
    rebound = _rebound(function)
    if returned is None:
        return [None] * count
    return [name if name is not None and name not in rebound else None for name in returned]


def argument_for(
    function: cst.FunctionDef, call: cst.Call, param: str
) -> Optional[cst.BaseExpression]:
    """The expression `call` passes for `param` of `function` (positional or keyword)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == param:
            return arg.value
    positional = [p.name.value for p in (*function.params.posonly_params, *function.params.params)]
    if param not in positional:
        return None
    index = positional.index(param)
    given = [a for a in call.args if a.keyword is None and not a.star]
    if any(a.star for a in call.args[: index + 1]):
        return None
    return given[index].value if index < len(given) else None


def rebinds_to_another(function: cst.FunctionDef, name: str) -> bool:
    """Whether the body binds `name` to a value not built from itself (`model = VQVAE()` for
    a parameter `model` that held a string): what it returns under that name may be new."""
    return name in _rebound(function)


def _rebound(function: cst.FunctionDef) -> set[str]:
    """Names the body binds to something other than a chain of calls on themselves."""
    rebound: set[str] = set()
    for node in _own_nodes(function.body):
        if type(node) is cst.Assign:
            for target in node.targets:
                bound = target.target
                if type(bound) is cst.Name:
                    if _root(node.value) != bound.value:
                        rebound.add(bound.value)  # `model = model.to(device)` keeps it
                else:
                    rebound.update(_names(bound))
        elif type(node) in (cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr):
            rebound.update(_names(node.target))  # type: ignore[attr-defined]
        elif type(node) is cst.AsName:
            rebound.update(_names(node.name))
    return rebound
