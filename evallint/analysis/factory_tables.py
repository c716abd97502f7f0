"""Dicts of factories: `MODELS = {"small": Model.build_small, "large": build_large}`, then
`model = MODELS[name]()`. The call runs one of the dict's values; the module it returns is
in a mode every value agrees on (each a factory the analysis follows like any other), so
`MODELS[name]()` is read as a call of each value in turn and the modes joined."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import FunctionInfo

_MUTATORS = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__"})


def factory_entries(
    file: FileAnalysis, name: str, scope: Optional[FunctionInfo]
) -> tuple[cst.BaseExpression, ...]:
    """The values of the dict literal that `name` holds in `scope` (else an enclosing scope,
    else the top level of the file): when the nearest scope binding `name` binds it exactly
    once, to a dict whose every value names a function or method without calling it
    (`build_large`, `Model.build_small`), and nothing there adds entries (`name[k] = f`,
    `name.update(...)`). Empty otherwise: a registry filled elsewhere holds anything."""
    cache: dict = file.__dict__.setdefault("_factory_tables", {})
    while True:
        key = (scope.qualname if scope is not None else "", name)
        if key not in cache:
            body = scope.node.body.body if scope is not None else file.module.body
            cache[key] = _bound_table(body, name)
        found = cache[key]
        if found is not None:
            return found
        if scope is None:
            return ()
        scope = scope.parent


def _bound_table(body, name: str) -> Optional[tuple[cst.BaseExpression, ...]]:
    """None when the body never binds `name`; () when it does but not as a table of
    factories; else the table's values."""
    tables: list[cst.Dict] = []
    other = False
    for node in (n for statement in body for n in iter_nodes(statement)):
        node_type = type(node)
        if node_type is cst.Assign:
            for target in node.targets:  # type: ignore[attr-defined]
                if type(target.target) is cst.Name and target.target.value == name:
                    if type(node.value) is cst.Dict:  # type: ignore[attr-defined]
                        tables.append(node.value)  # type: ignore[attr-defined]
                    else:
                        other = True
                elif _mentions_table(target.target, name):
                    other = True  # `name[k] = f`, `a, name = ...`
        elif node_type in (cst.AnnAssign, cst.AugAssign, cst.For, cst.AsName):
            target = node.name if node_type is cst.AsName else node.target  # type: ignore[attr-defined]
            if _mentions_table(target, name):
                other = True
        elif node_type is cst.Call:
            func = node.func  # type: ignore[attr-defined]
            if (
                type(func) is cst.Attribute
                and func.attr.value in _MUTATORS
                and type(func.value) is cst.Name
                and func.value.value == name
            ):
                other = True
    if not tables and not other:
        return None
    if other or len(tables) != 1:
        return ()
    values: list[cst.BaseExpression] = []
    for element in tables[0].elements:
        if type(element) is not cst.DictElement or dotted_name(element.value) is None:
            return ()  # `**defaults`, or a value that is no function's name
        values.append(element.value)
    return tuple(values)


def _mentions_table(target: cst.BaseExpression, name: str) -> bool:
    if type(target) is cst.Name:
        return target.value == name
    if type(target) is cst.Subscript:
        return type(target.value) is cst.Name and target.value.value == name
    if type(target) in (cst.Tuple, cst.List):
        return any(
            _mentions_table(e.value, name)
            for e in target.elements  # type: ignore[attr-defined]
        )
    return False
