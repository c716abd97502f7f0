"""Statistics of the batch a training step just trained on (issue 16, item 4).

`opt.step()` then `output = model(normalize(X)); train_acc += (output.argmax(1) == y).sum()`,
where `X` is the very batch the step was computed from: the forward after the step reports,
but it measures training, in the mode training runs in (an extra forward of the training
data, as a training-accuracy or input-gradient statistic is). An evaluation after the step
runs the model on other data: a test batch, a fixed validation tensor, the training set
drawn again (`next_batch()`), which this module does not recognise as the trained batch.

Read syntactically, on one loop body: which module calls trained (`robust_output =
model(x_adv)` feeding the backward), which names the trained batch is held in (bound in the
body before the block, or by the loop, and read by the backward), and whether every call of
those modules in the block takes only values computed from those names.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Optional, Sequence

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

_CONSTANTS = frozenset({"True", "False", "None"})


def _reads(expr: cst.CSTNode, found: set[str]) -> None:
    """Names whose values `expr` computes from: not the functions it calls (`normalize(X)`
    reads `X`) nor attribute names (`X.shape` reads `X`), but a method's receiver
    (`source.next_batch(n)` reads `source`)."""
    pending: list[cst.CSTNode] = [expr]
    while pending:
        node = pending.pop()
        if type(node) is cst.Name:
            if node.value not in _CONSTANTS:
                found.add(node.value)
        elif type(node) is cst.Attribute:
            pending.append(node.value)
        elif type(node) is cst.Call:
            if type(node.func) is cst.Attribute:
                pending.append(node.func.value)
            elif type(node.func) is not cst.Name:
                pending.append(node.func)
            pending.extend(arg.value for arg in node.args)
        elif type(node) in (cst.Lambda, cst.FunctionDef, cst.ClassDef):
            found.add("<scope>")  # a nested scope's names are not this body's
        else:
            pending.extend(node.children)


def names_read(expr: cst.CSTNode, found: set[str]) -> None:
    """The names whose values `expr` computes from, added to `found` (see `_reads`)."""
    _reads(expr, found)


def bound_names(node: cst.CSTNode) -> Iterable[str]:
    """Names a binding statement binds."""
    targets: list[cst.BaseExpression] = []
    if type(node) is cst.Assign:
        targets = [t.target for t in node.targets]
    elif type(node) in (cst.AugAssign, cst.AnnAssign, cst.For):
        targets = [node.target]  # type: ignore[attr-defined]
    elif type(node) is cst.WithItem and node.asname is not None:
        targets = [node.asname.name]
    for target in targets:
        for inner in iter_nodes(target):
            if type(inner) is cst.Name:
                yield inner.value


def _bindings(statements: Sequence[cst.CSTNode]) -> dict[str, list[cst.BaseExpression]]:
    """Name -> the values assigned to it in these statements (every branch)."""
    values: dict[str, list[cst.BaseExpression]] = {}
    for statement in statements:
        for node in iter_nodes(statement):
            if type(node) is cst.Assign:
                for name in bound_names(node):
                    values.setdefault(name, []).append(node.value)
            elif type(node) in (cst.AugAssign, cst.AnnAssign) and node.value is not None:  # type: ignore[attr-defined]
                for name in bound_names(node):
                    values.setdefault(name, []).append(node.value)  # type: ignore[attr-defined]
    return values


def _callee(value: cst.BaseExpression) -> Optional[str]:
    """`model` for `model(x)`, `model(x)[0]`, `model.forward(x)`."""
    while type(value) is cst.Subscript:
        value = value.value
    if type(value) is not cst.Call:
        return None
    func = value.func
    if type(func) is cst.Attribute and func.attr.value == "forward":
        func = func.value
    return dotted_name(func)


def _backpropagated(statements: Sequence[cst.CSTNode]) -> set[str]:
    """Names a `backward()` in these statements is computed from, through their
    assignments (`loss.backward()`, `scaler.scale(loss).backward()`)."""
    reads: dict[str, set[str]] = {}
    found: set[str] = set()
    for statement in statements:
        for node in iter_nodes(statement):
            if type(node) is cst.Assign:
                sources: set[str] = set()
                _reads(node.value, sources)
                for name in bound_names(node):
                    reads.setdefault(name, set()).update(sources)
            elif (
                type(node) is cst.Call
                and type(node.func) is cst.Attribute
                and node.func.attr.value == "backward"
            ):
                _reads(node, found)
    return through_assignments(found, reads)


def through_assignments(found: set[str], reads: Mapping[str, Iterable[str]]) -> set[str]:
    """`found` grown by every name its names were assigned from, transitively (`reads`
    maps an assigned name to the names its values read); `found` is updated and returned."""
    pending = list(found)
    while pending:
        for source in reads.get(pending.pop(), ()):
            if source not in found:
                found.add(source)
                pending.append(source)
    return found


def _part_of_trained(callee: Optional[str], trained: set[str]) -> bool:
    """`model.encoder(x)` when `model` trained: a part of the trained module. Counted only
    when its result is detached on the spot (`model.encoder(x).detach()`: features of the
    trained batch kept without their graph); a method of the module (`model.sample(x)`)
    reads the same way and may well evaluate."""
    if callee is None:
        return False
    return any(callee.startswith(name + ".") for name in trained)


def trained_batch_statistics(
    block: Sequence[cst.CSTNode],
    before: Sequence[cst.CSTNode],
    owner: cst.CSTNode,
    imported: Callable[[str], bool],
    module: Callable[[str], bool],
) -> bool:
    """Whether `block` (statements after or among a loop body's training statements
    `before`) runs the trained modules only on the batch `before` trained on: every call of
    a module (`module` says which names hold one) whose output fed the backward takes values
    computed, through the block's own assignments, only from names bound in `before` (or by
    the loop `owner`) that a backward in `before` reads. False when the block runs no such
    call."""
    if type(owner) not in (cst.For, cst.While):
        return False  # the batch of one pass of a loop; a script's data is not one
    backpropagated = _backpropagated(before)
    trained_calls: set[str] = set()
    bound: set[str] = set()
    for statement in before:
        for node in iter_nodes(statement):
            if type(node) is cst.Assign and set(bound_names(node)) & backpropagated:
                for inner in iter_nodes(node.value):  # `loss = loss_fn(model(x), y)`
                    callee = _callee(inner) if type(inner) is cst.Call else None
                    if callee is not None and module(callee):
                        trained_calls.add(callee)
            bound.update(bound_names(node))
    if type(owner) is cst.For:
        bound.update(bound_names(owner))
    stepping = _stepping_loops(before)
    if stepping is not None and all(
        type(loop) is cst.For and set(bound_names(loop)) & backpropagated for loop in stepping
    ):
        # the steps run in an inner loop whose every pass draws its own batch (its target
        # feeds the backward: `for ki in ...: xb = X_train[ki:ki + n]`): what the outer body
        # bound before it (`X_train = X_train[perm]`) is the data drawn from, not a batch
        bound = {name for loop in stepping for name in _bound_within(loop)}
    batch = bound & backpropagated
    if not trained_calls or not batch:
        return False
    assigned = _bindings(block)
    detached = {
        id(node.func.value)
        for statement in block
        for node in iter_nodes(statement)
        if type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and node.func.attr.value == "detach"
    }
    forwards = [
        node
        for statement in block
        for node in iter_nodes(statement)
        if type(node) is cst.Call
        and (
            _callee(node) in trained_calls
            or (id(node) in detached and _part_of_trained(_callee(node), trained_calls))
        )
    ]
    if not forwards:
        return False
    for call in forwards:
        roots: set[str] = set()
        pending: set[str] = set()
        for arg in call.args:
            _reads(arg.value, pending)
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in assigned:
                reads: set[str] = set()
                for value in assigned[name]:
                    _reads(value, reads)
                if name in reads:
                    roots.add(name)  # `X = X.cuda()`: the value from before the block
                pending |= reads - {name}
            elif not imported(name):
                roots.add(name)
        if not roots or not roots <= batch:
            return False
    return True


def _is_backward(node: cst.CSTNode) -> bool:
    return (
        type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and node.func.attr.value == "backward"
    )


def _stepping_loops(before: Sequence[cst.CSTNode]) -> Optional[list[cst.CSTNode]]:
    """The loops nested in `before` that hold its backward calls, when every backward call
    of `before` sits in one (an epoch body whose inner loop trains batch by batch); None
    when a backward runs directly in the body, or there is none."""
    loops: list[cst.CSTNode] = []
    inside: set[int] = set()
    direct = False
    for statement in before:
        for node in iter_nodes(statement):
            if type(node) in (cst.For, cst.While) and id(node) not in inside:
                held = [inner for inner in iter_nodes(node) if _is_backward(inner)]
                if held:
                    loops.append(node)
                    inside.update(id(inner) for inner in iter_nodes(node))
            elif _is_backward(node) and id(node) not in inside:
                direct = True
    return loops if loops and not direct else None


def _bound_within(loop: cst.CSTNode) -> Iterable[str]:
    """Names a loop binds: its target and every binding in its body."""
    for node in iter_nodes(loop):
        yield from bound_names(node)
