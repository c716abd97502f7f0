"""Loops over the parts of one item of an enclosing loop.

`for data, targets in loader:` rebinding `outputs = []`, then `for chunk in
data.chunk(4): outputs.append(model(chunk))`: the inner loop runs over the parts of one
batch (a batch split into chunks for gradient accumulation, the crops of one image), so the
container the outer loop rebuilds holds one batch's parts, never more. EVL006 asks this of
the loops between a store and the loop that rebuilds its container.
"""

from __future__ import annotations

import libcst as cst

from evallint.analysis.store_scope import first_assignments
from evallint.analysis.walk import iter_nodes

_COUNTING = frozenset({"range", "trange"})
"""An outer loop over these counts epochs or steps: its items are no batches."""


def read_names(expr: cst.CSTNode) -> set[str]:
    """Names an expression reads as values: not a called function's name (`zip`, `split`) nor
    an attribute's name (`.chunk`)."""
    skipped: set[int] = set()
    for node in iter_nodes(expr):
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Name:
                skipped.add(id(func))
        elif type(node) is cst.Attribute:
            skipped.add(id(node.attr))
    return {n.value for n in iter_nodes(expr) if type(n) is cst.Name and id(n) not in skipped}


def iterates_parts_of_item(inner: cst.CSTNode, outer: cst.CSTNode) -> bool:
    """The `for` loop `inner` (inside `outer`) runs over what `outer`'s body computed from
    its own item: every name the inner iterable reads is `outer`'s loop variable or bound in
    its body, and they are computed from that loop variable (`data_chunks =
    split(data)` for `for data in loader`). Not when `outer` counts (`for epoch in
    range(n):` rebinding `loader = make_loader(epoch)` runs a whole loader per item)."""
    if type(inner) is not cst.For or type(outer) is not cst.For:
        return False
    outer_iter = outer.iter
    if type(outer_iter) is cst.Call and type(outer_iter.func) is cst.Name:
        if outer_iter.func.value in _COUNTING:
            return False
        if outer_iter.func.value == "enumerate" and outer_iter.args:
            first = outer_iter.args[0].value
            if (
                type(first) is cst.Call
                and type(first.func) is cst.Name
                and first.func.value in _COUNTING
            ):
                return False
    item = {n.value for n in iter_nodes(outer.target) if type(n) is cst.Name}
    assigned = first_assignments(outer)
    read = read_names(inner.iter)
    if not read or not read <= item | set(assigned):
        return False
    seen: set[str] = set()
    pending = list(read)
    while pending:
        name = pending.pop()
        if name in item:
            return True
        if name in seen or name not in assigned:
            continue
        seen.add(name)
        pending.extend(read_names(assigned[name]))
    return False
