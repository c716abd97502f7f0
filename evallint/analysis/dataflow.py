"""Which names carry values into a training step: a cheap, syntactic reaching of uses, so a
block that only reports what a module computed (an evaluation) can be told from one whose
results are backpropagated (training)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Optional

import libcst as cst

from evallint.analysis.walk import iter_nodes

_BINDERS = frozenset(
    (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For, cst.AsName, cst.CompFor)
)
"""Exact types (`_targets` reads only these): `isinstance` on LibCST's node classes goes
through ABCMeta, about 2 us a node on every walk of `assigned_names`."""


def _names_in(node: cst.CSTNode) -> set[str]:
    """The variables a node mentions: its names, less attribute names (`p.data` mentions
    `p`, not a variable `data`) and keyword names (`f(volatile=True)`)."""
    found: set[str] = set()
    skipped: set[int] = set()
    for n in iter_nodes(node):  # parents come before their children
        node_type = type(n)
        if node_type is cst.Name:
            if id(n) not in skipped:
                found.add(n.value)  # type: ignore[attr-defined]
        elif node_type is cst.Attribute:
            skipped.add(id(n.attr))  # type: ignore[attr-defined]
        elif node_type is cst.Arg and n.keyword is not None:  # type: ignore[attr-defined]
            skipped.add(id(n.keyword))  # type: ignore[attr-defined]
    return found


def _bound_by(target: cst.CSTNode) -> set[str]:
    """The variables an assignment target binds or changes: `a`, `a, (b, *c)`, and the
    object of `a.x = ...` / `a[i] = ...` (changed in place), not the attribute `x`."""
    node_type = type(target)
    if node_type is cst.Name:
        return {target.value}  # type: ignore[attr-defined]
    if node_type is cst.Tuple or node_type is cst.List:
        found: set[str] = set()
        for element in target.elements:  # type: ignore[attr-defined]
            found |= _bound_by(element.value)
        return found
    if node_type is cst.StarredElement:
        return _bound_by(target.value)  # type: ignore[attr-defined]
    if node_type is cst.Attribute or node_type is cst.Subscript:
        return _bound_by(target.value)  # type: ignore[attr-defined]
    return _names_in(target)


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
            target = _targets(node) if type(node) in _BINDERS else None
            if target is not None:
                found |= _bound_by(target)
    return found


def _stores_a_constant(node: cst.CSTNode) -> bool:
    """`data['test'].epochs_done = 0`: an assignment that only changes objects in place
    (attribute or item targets) with a value that reads no variable. It carries nothing the
    block computed, so it feeds no later training with the block's results."""
    return (
        type(node) is cst.Assign
        and all(type(t.target) in (cst.Attribute, cst.Subscript) for t in node.targets)
        and not _names_in(node.value)
    )


def carried_names(statements: Iterable[cst.CSTNode]) -> set[str]:
    """Plain names bound or changed in the statements with a value they may carry on (as
    `assigned_names`, less objects whose only change there is a stored constant)."""
    found: set[str] = set()
    constant: set[int] = set()
    for statement in statements:
        for node in iter_nodes(statement):  # an Assign comes before its targets
            if _stores_a_constant(node):
                constant.update(id(t) for t in node.targets)  # type: ignore[attr-defined]
                continue
            target = _targets(node) if type(node) in _BINDERS else None
            if target is not None and id(node) not in constant:
                found |= _bound_by(target)
    return found


def _binds_whole(target: cst.BaseExpression, name: str) -> bool:
    """Whether an assignment target rebinds `name` itself: `name = ...` or an unpacking
    `name, _, _ = ...` / `[a, *name] = ...` (not `name.x = ...` or `name[i] = ...`, which
    change the old value)."""
    if type(target) is cst.Name:
        return target.value == name
    if type(target) in (cst.Tuple, cst.List):
        for element in target.elements:  # type: ignore[attr-defined]
            if _binds_whole(element.value, name):
                return True
    return False


def _first_use_rebinds(name: str, statements: Sequence[cst.CSTNode]) -> bool:
    """Whether the value `name` holds before `statements` is never read by them: on every
    path, the first statement that mentions `name` binds it afresh (a plain `name = ...` or
    an unpacking `name, _ = ...` not reading it, or a `for name in ...` header). A compound
    statement that does not read it in its header is followed into its blocks; when one of
    its paths may skip the binding (an `if` without `else`, a loop that may not run), the
    statements after it must not read the old value either."""
    for statement in statements:
        if name not in _names_in(statement):
            continue
        if type(statement) is cst.SimpleStatementLine:
            small = statement.body[0] if len(statement.body) == 1 else None
            return (
                type(small) is cst.Assign
                and any(_binds_whole(t.target, name) for t in small.targets)
                and name not in _names_in(small.value)
            )
        if type(statement) is cst.For and name in _names_in(statement.target):
            return name not in _names_in(statement.iter)
        blocks = _compound_blocks(statement, name)
        if blocks is None:
            return False  # read in a header, or a statement not followed
        for block in blocks:
            if name in _names_in(block) and not _first_use_rebinds(name, _body_of(block)):
                return False
        if _binds_on_every_path(statement, blocks, name):
            return True
    return True  # never used again


def _body_of(block: cst.CSTNode) -> Sequence[cst.CSTNode]:
    if type(block) is cst.IndentedBlock:
        return block.body
    if type(block) is cst.SimpleStatementSuite:
        return [cst.SimpleStatementLine(body=block.body)]
    return [block]  # an `elif` (an If)


def _compound_blocks(statement: cst.CSTNode, name: str) -> list[cst.CSTNode] | None:
    """The blocks of an if/while/for/with/try statement whose header does not read `name`;
    None for any other statement or a header that reads it."""
    kind = type(statement)
    if kind is cst.If or kind is cst.While:
        header: list[cst.CSTNode] = [statement.test]  # type: ignore[attr-defined]
    elif kind is cst.For:
        header = [statement.iter]  # type: ignore[attr-defined]
    elif kind is cst.With:
        header = [item for item in statement.items]  # type: ignore[attr-defined]
    elif kind is cst.Try:
        header = []
    else:
        return None
    if any(name in _names_in(part) for part in header):
        return None
    blocks: list[cst.CSTNode] = [statement.body]  # type: ignore[attr-defined]
    orelse = getattr(statement, "orelse", None)
    if type(orelse) is cst.If:
        blocks.append(orelse)
    elif type(orelse) is cst.Else:
        blocks.append(orelse.body)
    for handler in getattr(statement, "handlers", ()) or ():
        if handler.type is not None and name in _names_in(handler.type):
            return None
        blocks.append(handler.body)
    final = getattr(statement, "finalbody", None)
    if final is not None:
        blocks.append(final.body)
    return blocks


def _binds_on_every_path(statement: cst.CSTNode, blocks: list[cst.CSTNode], name: str) -> bool:
    """Whether running `statement` always binds `name` afresh (its blocks that mention the
    name were checked to bind before reading): a `with` body, or an `if` whose branches,
    `else` included, all do."""
    if type(statement) is cst.With:
        return name in _names_in(blocks[0])
    if type(statement) is cst.If:
        orelse = statement.orelse
        if orelse is None or name not in _names_in(statement.body):
            return False
        if type(orelse) is cst.If:
            return name in _names_in(orelse) and _binds_on_every_path(
                orelse, _compound_blocks(orelse, name) or [], name
            )
        return name in _names_in(orelse)
    return False


def training_inputs(
    statements: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
    imported: Optional[Callable[[str], bool]] = None,
) -> set[str]:
    """Names whose values reach a training statement (`trains`: a backward or optimizer
    step, or a call that trains), directly or through assignments, anywhere in the
    statements. With `imported`, names of imports (`plt`, `np`) take in nothing that
    reaches training: `plt.scatter(x)` before a training loop that calls `plt.figure()`
    feeds no `x` into it."""
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
    if imported is not None:
        reached = {name for name in reached if not imported(name)}
    changed = True
    while changed:
        changed = False
        for targets, reads in flows:
            if imported is not None:
                reads = {r for r in reads if not imported(r)}
            if targets & reached and not reads <= reached:
                reached |= reads
                changed = True
    return reached


def feeds_training(
    block: Sequence[cst.CSTNode],
    after: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
    imported: Optional[Callable[[str], bool]] = None,
) -> bool:
    """Whether a value bound or changed in `block` may reach a training statement among
    `after` (the statements that run after it, in order: the rest of the body and, in a
    loop, the start of the next pass). A name whose first use after the block binds it
    afresh (`loss = criterion(...)`) carries nothing from the block."""
    bound = carried_names(block)
    if not bound:
        return False
    live = bound & training_inputs(after, trains, imported)
    return any(not _first_use_rebinds(name, after) for name in live)


def next_pass(owner: cst.CSTNode, head: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
    """What runs of a body's next pass before the statement at the end of `head`, when the
    body is a loop's (nothing otherwise): a `for` loop first binds its target afresh, so a
    periodic block that reuses the batch's name (`x = vae.decode(z)` after training on
    `for i, (x, y) in enumerate(loader)`) feeds nothing into the next pass's `x`."""
    if type(owner) is cst.While:
        return list(head)
    if type(owner) is not cst.For:
        return []
    target = owner.target
    rebinding = cst.Assign(targets=[cst.AssignTarget(target=target)], value=cst.Name("None"))
    return [cst.SimpleStatementLine(body=[rebinding]), *head]


def unfed_prefix(
    block: Sequence[cst.CSTNode],
    after: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
    imported: Optional[Callable[[str], bool]] = None,
) -> int:
    """How many statements of `block`, from its start, bind nothing that may reach a
    training statement among `after` (a notebook's cells between two trainings: showing
    the first model's predictions, then setting up the next training), directly or through
    the block's later statements (a GAN's `out = D(fake.detach())`, printed, then
    `loss_fake = criterion(out, zeros)` before `loss_fake.backward()`)."""
    inputs = training_inputs(after, trains, imported)
    needed = {name for name in inputs if not _first_use_rebinds(name, after)}
    # backwards through the block: which names' values at each point reach training
    needed_after: list[set[str]] = [set()] * len(block)
    for index in range(len(block) - 1, -1, -1):
        needed_after[index] = needed
        needed = _needed_before(block[index], needed)
    for index, statement in enumerate(block):
        if carried_names([statement]) & needed_after[index]:
            return index
    return len(block)


def _needed_before(statement: cst.CSTNode, needed: set[str]) -> set[str]:
    """The names whose values before `statement` reach training, given those after it:
    an assignment to a needed name needs what it reads instead (and no longer the name's
    old value unless it reads it); anything else that binds a needed name needs all it
    mentions."""
    bound = assigned_names([statement])
    if not bound & needed:
        return needed
    if type(statement) is cst.SimpleStatementLine and len(statement.body) == 1:
        small = statement.body[0]
        if type(small) is cst.Assign:
            whole = {n for n in bound if any(_binds_whole(t.target, n) for t in small.targets)}
            return (needed - whole) | _names_in(small.value)
    return needed | _names_in(statement)


def unfed_suffix(
    block: Sequence[cst.CSTNode],
    after: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
) -> int:
    """Index in `block` from which no statement binds a value that may reach a training
    statement among `after` (see `feeds_training`): an epoch's tail that updates the
    learning rate the next pass steps with, then runs the test loop, evaluates from the test
    loop on. One pass over the block."""
    live = {name for name in training_inputs(after, trains) if not _first_use_rebinds(name, after)}
    start = 0
    for index, statement in enumerate(block):
        if carried_names([statement]) & live:
            start = index + 1
    return start
