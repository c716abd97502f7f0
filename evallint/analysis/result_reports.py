"""Whether what a function reports comes from its forwards: `acc = (net(x).argmax(1) == y)
.float().mean(); print(acc)` reports a forward's result, while `print("building model")` beside
a call taken for a forward reports nothing the forward computed.

A function whose forwards' results only leave autograd is an evaluation of its own
(interpreter._evaluation_by_results). The evidence must be the forwards' own results: a
print of a file name or a constant in a model-building or training helper is no evidence
that the function evaluates anything. The values derived from a forward are followed through
plain local data flow (assignments, augmented assignments, `for` and `with` targets, and
`xs.append(value)`-style growth of a container), which is what a report of a forward's result
goes through in real evaluation code; a report of any of them counts.

A decoding function (its forwards' inputs derive from their own results, `feeds_back`) that
returns what it computed hands it to its caller, even when it turned it into indices first
(`idx_next = torch.argmax(logits, -1)` appended to the sequence it returns): its results do
not only leave autograd, they reach the caller, whose use decides (`hands_results_back`).
Only a report that shows a value (a print, a plot, a file written) is evidence of an
evaluation of its own then."""

from __future__ import annotations

from typing import Callable, Iterable, cast

import libcst as cst

from evallint.analysis.regions import reports_call
from evallint.analysis.vocabulary import REPORTING_METHODS
from evallint.analysis.walk import iter_nodes, reads_any

_GROWING = frozenset({"append", "extend", "add", "update", "insert", "appendleft", "put"})
"""Methods that put their argument into their receiver: the receiver holds derived values."""

_SHOWN = (cst.Name, cst.Attribute, cst.Subscript, cst.Tuple)


def _bound_names(target: cst.CSTNode) -> Iterable[str]:
    """Names a target binds or grows: `a, (b, c)` -> a, b, c; `out[i]` -> `out`. An
    attribute (`self.out`, `stats.loss`) binds none: its root names far more than the value."""
    if type(target) is cst.Name:
        yield target.value
        return
    if type(target) in (cst.Tuple, cst.List):
        for element in cast("cst.Tuple | cst.List", target).elements:
            yield from _bound_names(element.value)
        return
    if type(target) is cst.StarredElement:
        yield from _bound_names(target.value)
        return
    while type(target) is cst.Subscript:
        target = target.value
    if type(target) is cst.Name:
        yield target.value


def _flows(node: cst.CSTNode) -> list[tuple[list[cst.CSTNode], cst.CSTNode]]:
    """(targets, value) pairs through which a value flows into names at this node."""
    node_type = type(node)
    if node_type is cst.Assign:
        assign = cast(cst.Assign, node)
        return [([t.target for t in assign.targets], assign.value)]
    if node_type in (cst.AugAssign, cst.AnnAssign):
        aug = cast("cst.AugAssign | cst.AnnAssign", node)
        return [([aug.target], aug.value)] if aug.value is not None else []
    if node_type is cst.For:
        loop = cast(cst.For, node)
        return [([loop.target], loop.iter)]
    if node_type is cst.CompFor:
        comp = cast(cst.CompFor, node)
        return [([comp.target], comp.iter)]
    if node_type is cst.With:
        return [
            ([item.asname.name], item.item)
            for item in cast(cst.With, node).items
            if item.asname is not None
        ]
    if node_type is cst.NamedExpr:
        named = cast(cst.NamedExpr, node)
        return [([named.target], named.value)]
    if node_type is cst.Call:
        call = cast(cst.Call, node)
        func = call.func
        if type(func) is cst.Attribute and func.attr.value in _GROWING and call.args:
            return [([func.value], cst.Tuple([cst.Element(a.value) for a in call.args]))]
    return []


def derived_names(function: cst.CSTNode, forwards: list[cst.CSTNode]) -> tuple[set[int], set[str]]:
    """The forward calls' ids and the local names their results flow into (to a fixpoint)."""
    ids = {id(call) for call in forwards}
    names: set[str] = set()
    flows = [flow for node in iter_nodes(function) for flow in _flows(node)]
    changed = True
    while changed:
        changed = False
        for targets, value in flows:
            if not reads_any(value, ids, names):
                continue
            for target in targets:
                for name in _bound_names(target):
                    if name not in names:
                        names.add(name)
                        changed = True
    return ids, names


def reports_results(
    function: cst.FunctionDef,
    forwards: list[cst.CSTNode],
    call_reports: Callable[[cst.Call], bool] = lambda call: False,
) -> bool:
    """Whether a report in `function` (see regions.reports_call; a plain project helper that
    reports, `call_reports`; a bare value a notebook cell displays) reads a value derived from
    one of `forwards`."""
    if not forwards:
        return False
    ids, names = derived_names(function, forwards)
    for node in iter_nodes(function.body):
        if type(node) is cst.Call:
            if (reports_call(node) or call_reports(node)) and reads_any(node, ids, names):
                return True
        elif type(node) is cst.Expr and isinstance(node.value, _SHOWN):
            if reads_any(node, ids, names):
                return True
    return False


_CONVERSIONS = frozenset({"item", "tolist", "numpy", "argmax", "topk", "max"}) & REPORTING_METHODS
"""Reporting methods that only turn a tensor into numbers or labels, handing them back as a
value: what is done with that value decides whether anything is shown."""


def hands_results_back(
    function: cst.FunctionDef,
    forwards: list[cst.CSTNode],
    call_reports: Callable[[cst.Call], bool] = lambda call: False,
) -> bool:
    """Whether `function` returns a value derived from one of `forwards` and shows none of
    them itself (no print, plot or file of a derived value; converting one to numbers or
    labels is no showing): its results go to its caller (see the module doc)."""
    if not forwards:
        return False
    ids, names = derived_names(function, forwards)
    returned = False
    for node in iter_nodes(function.body):
        node_type = type(node)
        if node_type is cst.Return:
            value = cast(cst.Return, node).value
            returned = returned or (value is not None and reads_any(value, ids, names))
        elif node_type is cst.Call:
            call = cast(cst.Call, node)
            func = call.func
            converts = type(func) is cst.Attribute and func.attr.value in _CONVERSIONS
            if (call_reports(call) or (reports_call(call) and not converts)) and reads_any(
                call, ids, names
            ):
                return False
        elif node_type is cst.Expr and isinstance(cast(cst.Expr, node).value, _SHOWN):
            if reads_any(node, ids, names):
                return False
    return returned


def feeds_back(function: cst.FunctionDef, forwards: list[cst.CSTNode]) -> bool:
    """Whether a forward's input is derived from a forward's result (`idx = torch.cat((idx,
    idx_next), 1)` then `model(idx[:, -n:])`): an autoregressive decoding, which computes
    one result step by step, not an evaluation of separate inputs."""
    ids, names = derived_names(function, forwards)
    return any(
        type(call) is cst.Call and any(reads_any(arg.value, ids, names) for arg in call.args)
        for call in forwards
    )
