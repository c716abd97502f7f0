"""Loops whose stores keep nothing new per iteration of data.

- Monte Carlo sampling: `for i in range(n_samples): y = self.forward(x); predictions[i] = y`
  with `x` bound before the loop: every iteration feeds the same batch, so the container
  holds `n_samples` samples of one input's prediction (returned or averaged by the caller),
  not one graph per batch of data. With autograd on they cost what an evaluation with
  autograd on costs (EVL002's finding), and nothing piles up across batches.
- Arithmetic on a graph built before the loop: `for q in Q: scores.append(q @ K.T)` runs no
  forward; every entry is computed from the rows of values already in memory, so the loop
  keeps no batch's activations.

EVL006 asks these of a store in a loop that trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional, cast

import libcst as cst

from evallint.analysis import reuse
from evallint.analysis.batch_parts import read_names
from evallint.analysis.trained_batch import bound_names
from evallint.analysis.walk import iter_nodes


def _derivation(loop: cst.For, value: cst.BaseExpression) -> Optional[list[cst.CSTNode]]:
    """The stored value and every assignment in the loop body of a name it is computed
    from, transitively; None when such a name is bound in the loop by anything but a plain
    assignment (`h += f(x)`, an inner loop's variable, `with ... as h`): not followed."""
    assigned, other = reuse.memo("loop body bindings", loop, _body_bindings)
    expressions: list[cst.CSTNode] = [value]
    seen: set[str] = set()
    pending = list(read_names(value))
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in other:
            return None
        for bound in assigned.get(name, ()):
            expressions.append(bound)
            pending.extend(read_names(bound))
    return expressions


def _body_bindings(loop: cst.For) -> tuple[dict[str, list[cst.BaseExpression]], set[str]]:
    """What `_derivation` reads of a loop body, once per loop: per name, the values plain
    assignments (and `receiver.method(v)` calls) put in it, in order; the names bound by
    anything else."""
    assigned: dict[str, list[cst.BaseExpression]] = {}
    other: set[str] = set()
    for node in iter_nodes(loop.body, enter_scopes=False):
        kind = type(node)
        if kind is cst.Assign:
            for target in node.targets:  # type: ignore[attr-defined]
                for part in iter_nodes(target.target):
                    if type(part) is cst.Name:
                        # `boxes[i] = v` puts `v` in `boxes` as `boxes = v` would
                        assigned.setdefault(part.value, []).append(node.value)  # type: ignore[attr-defined]
        elif kind is cst.Call and type(node.func) is cst.Attribute:  # type: ignore[attr-defined]
            receiver = node.func.value  # type: ignore[attr-defined]
            if type(receiver) is cst.Name:
                # `boxes.append(v)`: what the receiver holds now comes from `v` too
                for argument in node.args:  # type: ignore[attr-defined]
                    assigned.setdefault(receiver.value, []).append(argument.value)
        elif kind in (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor):
            other |= {n.value for n in iter_nodes(node.target) if type(n) is cst.Name}  # type: ignore[attr-defined]
        elif kind is cst.WithItem and node.asname is not None:  # type: ignore[attr-defined]
            other |= {n.value for n in iter_nodes(node.asname.name) if type(n) is cst.Name}  # type: ignore[attr-defined]
        elif kind is cst.NamedExpr:
            other |= {n.value for n in iter_nodes(node.target) if type(n) is cst.Name}  # type: ignore[attr-defined]
    return assigned, other


def _calls(expressions: list[cst.CSTNode]) -> list[cst.Call]:
    return [n for e in expressions for n in iter_nodes(e) if type(n) is cst.Call]


def _loop_binds(loop: cst.CSTNode) -> set[str]:
    target = getattr(loop, "target", None)  # a `while` loop has none
    found = {n.value for n in iter_nodes(target) if type(n) is cst.Name} if target else set()
    for node in iter_nodes(cast("cst.For | cst.While", loop).body, enter_scopes=False):
        if type(node) in (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr):
            targets = (
                [t.target for t in node.targets] if type(node) is cst.Assign else [node.target]  # type: ignore[attr-defined]
            )
            for target in targets:
                found |= {n.value for n in iter_nodes(target) if type(n) is cst.Name}
    return found


def repeats_one_input(
    loops: list[cst.CSTNode], value: cst.BaseExpression, is_forward: Callable[[cst.Call], bool]
) -> bool:
    """The stored `value` comes (through the innermost loop body's assignments) from
    forwards, and every one of them is given only values no enclosing loop binds (`loops`,
    innermost first): the loop variable is not read there, and nothing a body computes (a
    `next(batches)`, a slice by the loop index, an outer loop's batch) feeds them. The
    innermost loop is a `for` loop."""
    loop = loops[0]
    if type(loop) is not cst.For:
        return False
    expressions = _derivation(loop, value)
    if expressions is None:
        return False
    forwards = [call for call in _calls(expressions) if is_forward(call)]
    if not forwards:
        return False
    bound_here = set().union(*(_loop_binds(enclosing) for enclosing in loops))
    for call in forwards:
        given: set[str] = set()
        for argument in call.args:
            given |= read_names(argument.value)
        receiver = call.func.value if type(call.func) is cst.Attribute else call.func
        given |= read_names(receiver) if type(receiver) is not cst.Name else {receiver.value}
        if given & bound_here:
            return False
    return True


def repeats_outer_item(
    inner: cst.CSTNode, outer: cst.CSTNode, is_forward: Callable[[cst.Call], bool]
) -> bool:
    """`for _ in range(k):` inside `for batch in loader:`, whose forwards are given only
    values the inner loop does not bind (not its counter, not a `next(batches)` or a sample
    drawn in its body): it repeats work on the outer loop's item (k discriminator updates on
    one batch), so a container the outer loop rebuilds holds k values of that item, not one
    per batch of data. The outer loop runs over data, not a count (`for epoch in range(n)`)."""
    if type(inner) is not cst.For or type(outer) is not cst.For:
        return False
    counted = inner.iter
    if not (
        type(counted) is cst.Call
        and type(counted.func) is cst.Name
        and counted.func.value == "range"
    ):
        return False
    items = outer.iter
    if type(items) is cst.Call and type(items.func) is cst.Name and items.func.value == "range":
        return False
    forwards = [n for n in iter_nodes(inner.body) if type(n) is cst.Call and is_forward(n)]
    if not forwards:
        return False
    bound_here = _loop_binds(inner)
    for call in forwards:
        given: set[str] = set()
        for argument in call.args:
            given |= read_names(argument.value)
        if given & bound_here:
            return False
    return True


def computes_on_earlier_graphs(
    loops: list[cst.CSTNode], value: cst.BaseExpression, adds_graph: Callable[[cst.Call], bool]
) -> bool:
    """No call the stored `value` is computed from in the innermost loop body brings a graph
    of its own (a forward, a helper that runs one), and what it reads from outside that body
    (the loop's iterable included) no enclosing loop binds: the value is arithmetic on graphs
    built before every loop (`q @ K.T` for the rows `q` of `Q`). The innermost loop is a
    `for` loop."""
    loop = loops[0]
    if type(loop) is not cst.For:
        return False
    expressions = _derivation(loop, value)
    if expressions is None or any(adds_graph(call) for call in _calls(expressions)):
        return False
    inner = _loop_binds(loop)
    read = set(read_names(loop.iter))
    for expression in expressions:
        read |= read_names(expression)
    outer = set().union(*(_loop_binds(enclosing) for enclosing in loops[1:]))
    return not ((read - inner) & outer)


def stores_item_of_held_values(loop: Optional[cst.CSTNode], value: cst.BaseExpression) -> bool:
    """`for aux_loss in aux_list: total += aux_loss` (or `kept.append(aux_loss)`): the
    stored value is the loop's own item, unchanged, taken from a container that exists
    before the loop (a name or an attribute, not a call that makes new items): that
    container already holds every value and its graph, so the store keeps nothing more
    alive."""
    if type(loop) is not cst.For or type(value) is not cst.Name:
        return False
    if type(loop.iter) not in (cst.Name, cst.Attribute):
        return False
    if not any(type(n) is cst.Name and n.value == value.value for n in iter_nodes(loop.target)):
        return False
    for node in iter_nodes(loop.body, enter_scopes=False):
        if value.value in bound_names(node):
            return False  # rebound in the loop: a new value
    return True
