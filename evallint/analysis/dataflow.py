"""Which names carry values into a training step: a cheap, syntactic reaching of uses, so a
block that only reports what a module computed (an evaluation) can be told from one whose
results are backpropagated (training)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import libcst as cst

from evallint.analysis.walk import iter_nodes

_BINDERS = (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For, cst.AsName, cst.CompFor)


def _names_in(node: cst.CSTNode) -> set[str]:
    return {n.value for n in iter_nodes(node) if type(n) is cst.Name}


def _targets(node: cst.CSTNode) -> cst.CSTNode | None:
    node_type = type(node)
    if node_type is cst.AssignTarget or node_type is cst.AugAssign or node_type is cst.AnnAssign:
        return node.target  # type: ignore[attr-defined]
    if node_type is cst.For or node_type is cst.CompFor:
        return node.target  # type: ignore[attr-defined]
    if node_type is cst.AsName:
        return node.name  # type: ignore[attr-defined]
    return None


def assigned_names(statements: Iterable[cst.CSTNode]) -> set[str]:
    """Plain names bound anywhere in the statements (nested functions excluded)."""
    found: set[str] = set()
    for statement in statements:
        for node in iter_nodes(statement):
            target = _targets(node) if isinstance(node, _BINDERS) else None
            if target is not None:
                found |= {n.value for n in iter_nodes(target) if type(n) is cst.Name}
    return found


def _first_use_rebinds(name: str, statements: Sequence[cst.CSTNode]) -> bool:
    """Whether the first of `statements` that mentions `name` binds it afresh (a plain
    `name = ...` not reading it, or a `for name in ...` header): the value it had before
    is dead from there on."""
    for statement in statements:
        if name not in _names_in(statement):
            continue
        if type(statement) is cst.SimpleStatementLine:
            small = statement.body[0] if len(statement.body) == 1 else None
            return (
                type(small) is cst.Assign
                and any(
                    type(t.target) is cst.Name and t.target.value == name for t in small.targets
                )
                and name not in _names_in(small.value)
            )
        return type(statement) is cst.For and name in _names_in(statement.target)
    return True  # never used again


def training_inputs(
    statements: Sequence[cst.CSTNode], trains: Callable[[cst.CSTNode], bool]
) -> set[str]:
    """Names whose values reach a training statement (`trains`: a backward or optimizer
    step, or a call that trains), directly or through assignments, anywhere in the
    statements."""
    reached: set[str] = set()
    flows: list[tuple[set[str], set[str]]] = []
    for statement in statements:
        if trains(statement):
            # what a compound statement binds itself is internal to it (a training loop's
            # own `output = model(x)`); what it reads from outside is its input
            reached |= _names_in(statement) - (
                set() if type(statement) is cst.SimpleStatementLine else assigned_names([statement])
            )
        for node in iter_nodes(statement):
            if type(node) is cst.Assign:
                targets: set[str] = set()
                for target in node.targets:
                    targets |= _names_in(target.target)
                flows.append((targets, _names_in(node.value)))
            elif type(node) in (cst.AugAssign, cst.AnnAssign) and node.value is not None:  # type: ignore[attr-defined]
                flows.append((_names_in(node.target), _names_in(node.value)))  # type: ignore[attr-defined]
            elif (
                type(node) is cst.Expr
                and type(node.value) is cst.Call
                and type(node.value.func) is cst.Attribute
            ):
                # `buffer.push(state, action)`: the receiver takes in what it is given
                receiver = _names_in(node.value.func.value)
                flows.append(
                    (receiver, set().union(*(_names_in(a.value) for a in node.value.args)))
                )
    changed = True
    while changed:
        changed = False
        for targets, reads in flows:
            if targets & reached and not reads <= reached:
                reached |= reads
                changed = True
    return reached


def feeds_training(
    block: Sequence[cst.CSTNode],
    after: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
) -> bool:
    """Whether a value bound or changed in `block` may reach a training statement among
    `after` (the statements that run after it, in order: the rest of the body and, in a
    loop, the start of the next pass). A name whose first use after the block binds it
    afresh (`loss = criterion(...)`) carries nothing from the block."""
    bound = assigned_names(block)
    if not bound:
        return False
    live = bound & training_inputs(after, trains)
    return any(not _first_use_rebinds(name, after) for name in live)


def unfed_prefix(
    block: Sequence[cst.CSTNode],
    after: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
) -> int:
    """How many statements of `block`, from its start, bind nothing that may reach a
    training statement among `after` (a notebook's cells between two trainings: showing
    the first model's predictions, then setting up the next training)."""
    inputs = training_inputs(after, trains)
    for index, statement in enumerate(block):
        live = assigned_names([statement]) & inputs
        if any(not _first_use_rebinds(name, after) for name in live):
            return index
    return len(block)
