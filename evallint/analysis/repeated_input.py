"""Loops that run the same forward again on one input (Monte Carlo sampling).

`for i in range(n_samples): y = self.forward(x); predictions[i] = y` with `x` bound before
the loop: every iteration feeds the same batch, so the container holds `n_samples` samples of
one input's prediction (returned or averaged by the caller), not one graph per batch of data.
With autograd on they cost what an evaluation with autograd on costs (EVL002's finding), and
nothing piles up across batches. EVL006 asks this of a store in a loop that trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from evallint.analysis.batch_parts import read_names
from evallint.analysis.store_scope import first_assignments
from evallint.analysis.walk import iter_nodes


def repeats_one_input(
    loop: cst.CSTNode, value: cst.BaseExpression, is_forward: Callable[[cst.Call], bool]
) -> bool:
    """The stored `value` comes (through the loop body's assignments) from forwards, and every
    one of them is given only values the loop never binds: the loop variable is not read
    there, and nothing the body computes (a `next(batches)`, a slice by the loop index)
    feeds them. A `for` loop only."""
    if type(loop) is not cst.For:
        return False
    target = {n.value for n in iter_nodes(loop.target) if type(n) is cst.Name}
    assigned = first_assignments(loop)
    bound_here = target | set(assigned)
    expressions: list[cst.CSTNode] = [value]
    seen: set[str] = set()
    pending = list(read_names(value))
    while pending:
        name = pending.pop()
        if name in seen or name not in assigned:
            continue
        seen.add(name)
        expressions.append(assigned[name])
        pending.extend(read_names(assigned[name]))
    forwards = [
        node
        for expression in expressions
        for node in iter_nodes(expression)
        if type(node) is cst.Call and is_forward(node)
    ]
    if not forwards:
        return False
    for call in forwards:
        given: set[str] = set()
        for argument in call.args:
            given |= read_names(argument.value)
        receiver = call.func.value if type(call.func) is cst.Attribute else call.func
        given |= read_names(receiver) if type(receiver) is not cst.Name else {receiver.value}
        if given & bound_here:
            return False
    return True
