"""Closures returned by factories of the same file: `loop = make_loop(model, optimizer)`,
then `loop(is_train=False)`. A call of the bound name runs the returned nested function;
the factory's parameters it captured are the factory call's arguments. Also names bound
only to functions of the file (`load_func = load_checkpoint`): a call runs one of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast

import libcst as cst

from evallint.analysis.reuse import memo
from evallint.analysis.scope import FunctionInfo
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis

Closure = tuple[FunctionInfo, FunctionInfo, cst.Call]
"""(the returned nested function, its factory, the factory call that made it)."""


def closure_bound(
    file: FileAnalysis, name: str, scope: Optional[FunctionInfo]
) -> Optional[Closure]:
    """The closure `name` is bound to in `scope` (or an enclosing scope, or the top level)
    by `name = factory(...)`, a function of this file that returns one of its nested
    functions by name (`return train_val_loop`); None otherwise. Each scope is read once."""
    factories = file.closures.get("<factories>")
    if factories is None:  # functions with nested ones that return one: rare, read once
        factories = file.closures["<factories>"] = {
            function_name: (returned, function, cst.Call(func=cst.Name(function_name)))
            for function_name, function in file.functions.items()
            if function.nested
            for returned in (_returned_nested(function),)
            if returned is not None
        }
    if not factories:
        return None
    key = scope.qualname if scope is not None else ""
    bound = file.closures.get(key)
    if bound is None:
        bound = file.closures[key] = {}
        body = scope.node.body.body if scope is not None else file.module.body
        for node in (n for statement in body for n in iter_nodes(statement)):
            if (
                type(node) is not cst.Assign
                or len(node.targets) != 1
                or type(node.targets[0].target) is not cst.Name
                or type(node.value) is not cst.Call
                or type(node.value.func) is not cst.Name
            ):
                continue
            made = factories.get(node.value.func.value)
            if made is not None and not any(_builds(arg.value) for arg in node.value.args):
                bound[node.targets[0].target.value] = (made[0], made[1], node.value)
    found = bound.get(name)
    if found is None and scope is not None:
        return closure_bound(file, name, scope.parent)
    return found


def _builds(value: cst.BaseExpression) -> bool:
    """`make_step(nn.Linear(4, 4))`: an argument built in the call holds no name the caller
    could map a captured module to; such a closure is judged as before, on its own."""
    if type(value) is not cst.Call:
        return False
    func = value.func
    last = func.attr.value if type(func) is cst.Attribute else getattr(func, "value", "")
    return last[:1].isupper()


def _returned_nested(factory: FunctionInfo) -> Optional[FunctionInfo]:
    """The nested function a factory returns by name, if one."""
    for node in iter_nodes(factory.node.body):
        if (
            type(node) is cst.Return
            and type(node.value) is cst.Name
            and node.value.value in factory.nested
        ):
            return factory.nested[node.value.value]
    return None


def returns_own_function(function: FunctionInfo) -> bool:
    """Whether every `return` of `function` (at least one; not those of its nested functions)
    gives one of its nested functions by name or a lambda: `def onehot_embedding(n): ...
    def encode(labels): return table[labels] ... return encode` makes a function, no
    module, for its caller. Read once per function node (every run of a function asked
    again, and LibCST's `children` walked whitespace too: 15% of a cold profile)."""
    return memo("returns_own_function", function.node, lambda _: _returns_own_function(function))


def _returns_own_function(function: FunctionInfo) -> bool:
    found = False
    for node in iter_nodes(function.node.body):  # nested scopes left out: their returns
        if type(node) is cst.Return:
            value = node.value
            if type(value) is cst.Lambda or (
                type(value) is cst.Name and value.value in function.nested
            ):
                found = True
                continue
            return False
    return found


def functions_bound(
    file: FileAnalysis, name: str, scope: Optional[FunctionInfo]
) -> tuple[str, ...]:
    """The top-level functions of this file that `name` may hold in `scope` (or an enclosing
    scope, or the top level), when every binding of `name` there is one of them by name
    (`load_func = load_checkpoint` on one branch, `load_pretrained` on the other, or
    `a if flag else b`): `load_func(...)` calls one of them. Empty otherwise. Each scope is
    read once."""
    cache: dict[str, dict[str, tuple[str, ...]]] = file.__dict__.setdefault("_functions_bound", {})
    key = scope.qualname if scope is not None else ""
    bound = cache.get(key)
    if bound is None:
        found: dict[str, list[Optional[str]]] = {}
        body = scope.node.body.body if scope is not None else file.module.body
        for node in (n for statement in body for n in iter_nodes(statement)):
            node_type = type(node)
            if node_type is cst.Assign:
                choices = _function_names(file, node.value)  # type: ignore[attr-defined]
                for target in node.targets:  # type: ignore[attr-defined]
                    for bound_name in iter_nodes(target.target):
                        if type(bound_name) is cst.Name:
                            found.setdefault(bound_name.value, []).extend(
                                choices if type(target.target) is cst.Name and choices else [None]
                            )
            elif node_type in (cst.AnnAssign, cst.AugAssign, cst.For, cst.AsName):
                target = node.name if node_type is cst.AsName else node.target  # type: ignore[attr-defined]
                for bound_name in iter_nodes(target):
                    if type(bound_name) is cst.Name:
                        found.setdefault(bound_name.value, []).append(None)
        bound = {
            variable: tuple(dict.fromkeys(cast("list[str]", choices)))
            for variable, choices in found.items()
            if None not in choices
        }
        cache[key] = bound
    if name in bound:
        return bound[name]
    if scope is not None:
        return functions_bound(file, name, scope.parent)
    return ()


def _function_names(file: FileAnalysis, value: cst.BaseExpression) -> list[Optional[str]]:
    """`load_checkpoint` (a top-level function of the file), or `a if flag else b` of two."""
    if type(value) is cst.IfExp:
        return _function_names(file, value.body) + _function_names(file, value.orelse)
    if type(value) is cst.Name and value.value in file.functions:
        return [value.value]
    return [None]
