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
                if type(func) is cst.Name and self._returns_no_graph(func.value):
                    continue  # `train_step(model, x)` whose every return is `loss.item()`
                qualified = self.imports.qualify(func)
                if qualified == "torch.autograd.grad":
                    if _creates_graph(node, qualified):
                        found.add("torch.autograd.grad")  # gradients with their own graph
                    continue  # plain gradients carry no graph
                target = self._forward_target(node, state)
                if target is not None and not (
                    type(func) is cst.Attribute and func.attr.value in NO_GRAD_METHODS
                ):
                    found.add(target[0])
                callee = (dotted_name(func) or "").split(".")[-1]
                for arg in node.args if not callee[:1].isupper() else ():
                    # `compute_loss(model, x)` may run the model; `Wrapper(model)` builds an
                    # object (a module or a helper), not a tensor with a graph
                    key = self.resolve(arg.value, state)
                    if key is not None:
                        found.add(key)
            name = (
                dotted_name(node) if node_type is cst.Name or node_type is cst.Attribute else None
            )
            if name is not None and name in self.taint:
                found |= self.taint[name]
            if node_type is cst.Attribute:
                stack.append(node.value)  # `outputs.loss`: `loss` here is no variable
                continue
            for child in _expression_children(node):
                stack.append(child)
        return frozenset(found)

    def graph_names(self, expr: cst.BaseExpression) -> frozenset:
        """Dotted names read by `expr` whose graph would reach its value (not through
        `.detach()`, `.item()`, a number conversion, a comparison or `.shape`)."""
        found: set[str] = set()
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            node_type = type(node)
            if node_type is cst.Comparison or node_type is cst.Lambda:
                continue
            if node_type is cst.Attribute and node.attr.value in _GRAPH_FREE_ATTRIBUTES:
                continue
            if node_type is cst.Call and _cuts_graph(node.func):
                continue
            if node_type is cst.Name or node_type is cst.Attribute:
                name = dotted_name(node)
                if name is not None:
                    found.add(name)
                    continue
            if node_type is cst.Attribute:
                stack.append(node.value)
                continue
            if node_type is cst.Call:
                # `f(x)` reads `x`; `loss.repeat(n)` reads `loss`; the function's name is no value
                func = node.func
                if type(func) is cst.Attribute:
                    stack.append(func.value)
                elif type(func) is not cst.Name:
                    stack.append(func)
                stack.extend(a.value for a in node.args)
                continue
            stack.extend(_expression_children(node))
        return frozenset(found)

    def _returns_no_graph(self, name: str) -> bool:
        """A function of this file (or enclosing scope) whose every `return` gives a plain
        number, text or a detached value."""
        cursor = self.info
        function = None
        while cursor is not None and function is None:
            function = cursor.nested.get(name)
            cursor = cursor.parent
        if function is None:
            function = self.file.functions.get(name)
        if function is None:
            return False
        returns = _returns_of(function.node)
        return bool(returns) and all(
            r.value is not None and _graph_free_value(r.value) for r in returns
        )


def _creates_graph(call: cst.Call, qualified: object) -> bool:
    """`torch.autograd.grad(..., create_graph=True)`: the gradients are differentiable."""
    return qualified == "torch.autograd.grad" and any(
        a.keyword is not None
        and a.keyword.value == "create_graph"
        and type(a.value) is cst.Name
        and a.value.value == "True"
        for a in call.args
    )


def _cuts_graph(func: cst.BaseExpression) -> bool:
    if type(func) is cst.Attribute:
        return func.attr.value in _GRAPH_CUTTING_METHODS
    return type(func) is cst.Name and func.value in ("float", "int", "bool", "len", "str")


def _graph_free_value(value: cst.BaseExpression) -> bool:
    if type(value) in (cst.Tuple, cst.List):
        return all(_graph_free_value(e.value) for e in value.elements)  # type: ignore[attr-defined]
    if type(value) in (cst.ListComp, cst.GeneratorExp, cst.SetComp):
        return _graph_free_value(value.elt)  # type: ignore[attr-defined]
    if type(value) is cst.Call:
        return _cuts_graph(value.func)
    return type(value) in (cst.Integer, cst.Float, cst.SimpleString, cst.FormattedString) or (
        type(value) is cst.Name and value.value in ("None", "True", "False")
    )


def _returns_of(function: cst.FunctionDef) -> list[cst.Return]:
    found: list[cst.Return] = []
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if type(node) is cst.Return:
            found.append(node)
        elif type(node) in (cst.FunctionDef, cst.ClassDef, cst.Lambda):
            continue
        else:
            stack.extend(node.children)
    return found
