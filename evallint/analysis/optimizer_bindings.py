"""Which binding of an optimizer variable a `step()` steps.

`OptimizerFacts.optimizer_params` maps each optimizer variable to the modules of one of its
constructions, file-wide: with `optimizer = Adam(model.parameters())` in one function and
`optimizer = Adam(self.matcher.parameters())` in another (or a notebook that rebinds
`optimizer` cell after cell), every `optimizer.step()` of the file would train the modules of
whichever construction came last. A step whose own scope binds the variable before it steps
the latest such binding: a helper network trained elsewhere and kept in eval mode while
another model trains (a frozen feature extractor, a teacher) is not trained by it. Steps of
a variable the scope does not bind (a parameter, `self.optimizer`) keep the file-wide answer.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.reuse import memo
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

_Events = tuple[tuple[tuple[str, cst.Call], ...], dict[int, int]]


def _events(scope: cst.CSTNode) -> _Events:
    """The scope's `name = call(...)` bindings in source order, and for each call node of
    the scope how many bindings come before it."""
    bindings: list[tuple[str, cst.Call]] = []
    before: dict[int, int] = {}
    for node in iter_nodes(scope):
        if type(node) is cst.Assign:
            if len(node.targets) == 1 and type(node.value) is cst.Call:
                name = dotted_name(node.targets[0].target)
                if name is not None:
                    bindings.append((name, node.value))
        elif type(node) is cst.Call:
            before[id(node)] = len(bindings)
    return tuple(bindings), before


def latest_binding(scope: cst.CSTNode, call: cst.Call, variable: str) -> Optional[cst.Call]:
    """The call last bound to `variable` in `scope` (a function body or a module, nested
    functions left out) before `call`; None when the scope binds it nowhere before."""
    bindings, before = memo("optimizer_bindings", scope, _events)
    upto = before.get(id(call))
    if upto is None:
        return None
    for name, value in reversed(bindings[:upto]):
        if name == variable:
            return value
    return None
