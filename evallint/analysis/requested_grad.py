"""Autograd turned on at the caller's request.

`context = torch.enable_grad() if use_grad else torch.no_grad()` then `with context:` (or the
conditional expression in the `with` itself), the flag a parameter: the function builds
graphs only when its caller asks for gradients, and what it keeps and returns (per-sample
log-probabilities for the caller's loss) is what that caller backpropagates. EVL006 asks this
of a store whose container the function returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import libcst as cst

from evallint.analysis.batch_parts import read_names
from evallint.analysis.reuse import memo
from evallint.analysis.vocabulary import GRAD_DISABLERS, GRAD_ENABLERS
from evallint.analysis.walk import iter_nodes


def grad_requested_by_caller(
    function: cst.FunctionDef,
    params: set[str],
    store: cst.CSTNode,
    qualify: Callable[[cst.BaseExpression], Optional[str]],
) -> bool:
    """`store` sits in a `with` whose manager is `enable_grad() if flag else no_grad()` (or
    the reverse), directly or through a name the function binds to it, with `flag` read from
    one of `params`."""
    for with_node, managers in memo(
        "requested_grad.conditional_withs", function, _conditional_withs
    ):
        if not any(_by_flag(m, params, qualify) for m in managers):
            continue
        if any(node is store for node in iter_nodes(with_node.body)):
            return True
    return False


def _conditional_withs(
    function: cst.FunctionDef,
) -> list[tuple[cst.With, list[cst.BaseExpression]]]:
    """The function's `with` statements and their managers (a name replaced by the value
    the function binds to it), for those with a conditional expression among them."""
    bound: dict[str, cst.BaseExpression] = {}
    withs: list[cst.With] = []
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign and len(node.targets) == 1:
            target = node.targets[0].target
            if type(target) is cst.Name:
                bound[target.value] = node.value
        elif type(node) is cst.With:
            withs.append(node)
    found = []
    for with_node in withs:
        managers = [item.item for item in with_node.items]
        managers = [bound.get(m.value, m) if type(m) is cst.Name else m for m in managers]
        if any(type(m) is cst.IfExp for m in managers):
            found.append((with_node, managers))
    return found


def _by_flag(
    manager: cst.BaseExpression,
    params: set[str],
    qualify: Callable[[cst.BaseExpression], Optional[str]],
) -> bool:
    if type(manager) is not cst.IfExp or not read_names(manager.test) & params:
        return False
    kinds = set()
    for side in (manager.body, manager.orelse):
        if type(side) is not cst.Call:
            return False
        qualified = qualify(side.func) or ""
        kinds.add(
            "on" if qualified in GRAD_ENABLERS else "off" if qualified in GRAD_DISABLERS else ""
        )
    return kinds == {"on", "off"}
