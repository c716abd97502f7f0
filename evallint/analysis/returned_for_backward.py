"""A function's result that every caller backpropagates.

`terms = self.penalty_terms(outputs, x)` then `loss = loss + sum(terms)`, `loss.backward()`:
the list `penalty_terms` fills with graphs and returns is kept for its caller's loss, so
keeping the graphs is the point. EVL006 asks this of a store whose container the function
returns. Callers are the calls of the function's name in its file (`name(...)` or
`obj.name(...)`); with none in view, nothing is known and the store stays reported.
"""

from __future__ import annotations

import libcst as cst

from evallint.analysis.statement_shapes import backpropagated_names
from evallint.analysis.walk import iter_nodes


def _index(module: cst.Module) -> dict[str, list[bool]]:
    """For each called name, whether each call's result is bound to a name that a
    `backward()` of the calling scope is computed from."""
    found: dict[str, list[bool]] = {}
    scopes: list[cst.CSTNode] = [module]
    scopes += [n for n in iter_nodes(module, enter_scopes=True) if type(n) is cst.FunctionDef]
    for scope in scopes:
        body = scope.body if type(scope) is cst.FunctionDef else scope
        backpropagated: frozenset[str] | None = None
        bound: dict[int, set[str]] = {}
        calls: list[cst.Call] = []
        for node in iter_nodes(body):
            if type(node) is cst.Assign and type(node.value) is cst.Call:
                bound[id(node.value)] = {
                    n.value
                    for target in node.targets
                    for n in iter_nodes(target.target)
                    if type(n) is cst.Name
                }
            elif type(node) is cst.Call:
                calls.append(node)
        for call in calls:
            func = call.func
            callee = func.attr if type(func) is cst.Attribute else func
            if type(callee) is not cst.Name:
                continue
            names = bound.get(id(call), set())
            if names and backpropagated is None:
                backpropagated = backpropagated_names(body)
            found.setdefault(callee.value, []).append(
                bool(names) and bool(names & (backpropagated or frozenset()))
            )
    return found


def every_caller_backpropagates(file: object, module: cst.Module, name: str) -> bool:
    """Every call of `name` in the file binds its result to a value that a `backward()` of
    the calling scope runs through (at least one such call)."""
    cache = file.__dict__.setdefault("_backpropagated_results", {})
    if not cache:
        cache.update(_index(module))
        cache.setdefault("", [])
    calls = cache.get(name, [])
    return bool(calls) and all(calls)
