"""Local names that hold a class, not an instance: `model = DGCNN` (chosen by a setting),
then `self.gnn = model(latent_dim=...)`. A call of such a name builds what the class builds,
so it is read as a call of the class itself (values.py `_constructor_facts`)."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.reuse import memo
from evallint.analysis.walk import iter_nodes


def _class_reference(value: cst.BaseExpression) -> bool:
    """`DGCNN`, `models.ResNet`: a name whose last part is capitalised, as classes are."""
    if type(value) is cst.Name:
        return value.value[:1].isupper()
    if type(value) is cst.Attribute:
        return value.attr.value[:1].isupper() and type(value.value) in (cst.Name, cst.Attribute)
    return False


def _aliases(function: cst.CSTNode) -> dict[str, cst.BaseExpression]:
    """Name -> the one class every assignment of the name in the function's own body binds
    (names also bound any other way, or to two classes, are left out)."""
    found: dict[str, Optional[cst.BaseExpression]] = {}
    parameters: set[str] = set()
    if type(function) is cst.FunctionDef:
        params = function.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            parameters.add(param.name.value)
    body = getattr(function, "body", None)
    if body is None:
        return {}
    for node in iter_nodes(body):
        if type(node) is cst.Assign:
            for target in node.targets:
                if type(target.target) is not cst.Name:
                    continue
                name = target.target.value
                value = node.value
                if name in found or not _class_reference(value):
                    if name not in found or found[name] is None or not _same(found[name], value):
                        found[name] = None
                    continue
                found[name] = value
        elif type(node) in (cst.AugAssign, cst.AnnAssign, cst.For, cst.With, cst.NamedExpr):
            for bound in _bound_names(node):
                found[bound] = None
    return {
        name: value for name, value in found.items() if value is not None and name not in parameters
    }


def _same(first: Optional[cst.BaseExpression], second: cst.BaseExpression) -> bool:
    return first is not None and first.deep_equals(second)


def _bound_names(node: cst.CSTNode) -> list[str]:
    target = getattr(node, "target", None)
    if target is None:
        return []
    return [n.value for n in iter_nodes(target) if type(n) is cst.Name]


def class_alias(function: Optional[cst.CSTNode], name: str) -> Optional[cst.BaseExpression]:
    """The class `name` holds in `function` (None: not a class alias there)."""
    if function is None:
        return None
    return memo("class_aliases", function, _aliases).get(name)
