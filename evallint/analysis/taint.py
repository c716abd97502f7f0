"""Which modules' autograd graph flows into an expression."""

from __future__ import annotations

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.lattice import (
    PathState,
)
from evallint.analysis.symbols import dotted_name
from evallint.analysis.vocabulary import (
    NO_GRAD_METHODS,
)

_GRAPH_CUTTING_METHODS = frozenset(
    {
        "detach",
        "detach_",
        "item",
        "tolist",
        "numpy",
        "argmax",
        "argmin",
        "argsort",
        "long",
        "int",
        "bool",
        "eq",
        "ne",
        "gt",
        "lt",
        "ge",
        "le",
        "size",
        "dim",
        "numel",
        "sign",
        "round",
        "floor",
        "ceil",
        "batch_decode",
        "decode",
    }
)
"""Calls whose result carries no autograd graph (numbers, indices, booleans, text)."""


_GRAPH_FREE_ATTRIBUTES = frozenset({"data", "grad", "shape", "dtype", "device", "ndim"})


_EXPRESSION_PARTS = (cst.BaseExpression, cst.Arg, cst.Element, cst.BaseElement)


_IS_EXPRESSION_PART: dict[type, bool] = {}
"""type -> whether `_expression_children` follows it (cached: ABC isinstance checks are slow)."""


def _expression_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    from evallint.analysis.walk import _child_fields, _kind

    children: list[cst.CSTNode] = []
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        value_type = type(value)
        if value_type is list or value_type is tuple:
            children.extend(v for v in value if _kind(type(v)))
            continue
        follows = _IS_EXPRESSION_PART.get(value_type)
        if follows is None:
            follows = _IS_EXPRESSION_PART[value_type] = issubclass(value_type, _EXPRESSION_PARTS)
        if follows:
            children.append(value)
    return children


class Taint(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    def taint_of(self, expr: cst.BaseExpression, state: PathState) -> frozenset:
        """Modules whose forward output flows into `expr` with its graph (not through
        `.detach()`, `.item()` or a number conversion)."""
        found: set[str] = set()
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            node_type = type(node)  # exact types: these classes have no subclasses
            if node_type is cst.Comparison:
                continue  # a boolean tensor has no graph
            if node_type is cst.Attribute and node.attr.value in _GRAPH_FREE_ATTRIBUTES:
                continue
            if node_type is cst.Call:
                func = node.func
                if type(func) is cst.Attribute and func.attr.value in _GRAPH_CUTTING_METHODS:
                    continue
                if type(func) is cst.Name and func.value in ("float", "int", "bool", "len", "str"):
                    continue
                if (self.imports.qualify(func) or "").split(".")[-1] in _GRAPH_CUTTING_METHODS:
                    continue
                target = self._forward_target(node, state)
                if target is not None and not (
                    type(func) is cst.Attribute and func.attr.value in NO_GRAD_METHODS
                ):
                    found.add(target[0])
                for arg in node.args:
                    key = self.resolve(arg.value, state)
                    if key is not None:
                        found.add(key)
            name = (
                dotted_name(node) if node_type is cst.Name or node_type is cst.Attribute else None
            )
            if name is not None and name in self.taint:
                found |= self.taint[name]
            for child in _expression_children(node):
                stack.append(child)
        return frozenset(found)
