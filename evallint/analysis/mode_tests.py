"""Branches on a module's mode: `if model.training:` and `if was_training:` after
`was_training = model.training`.

The save-and-restore idiom switches only when needed and restores only what it changed:

    was_training = model.training          # or bool(model.training)
    if was_training:
        model.eval()                       # not training: the model is already in eval mode
    out = model(x)                         # eval mode on both paths
    if was_training:
        model.train()                      # back to the mode it had on entry

A branch taken when the module is not training starts with the module in eval mode (if
nothing switched it since the test read it), and a branch that ends with the module in the
very mode the test says it had leaves it as it was: equal to the snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import libcst as cst

from evallint.analysis.lattice import ENTRY_MODE, Mode, ModeFact, Origin, PathState, normalize

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterContext

ModeTest = tuple[cst.BaseExpression, Optional[str], bool]
"""(the module tested, the snapshot variable or None for `x.training` itself, polarity)."""


def training_attribute(value: cst.BaseExpression) -> Optional[cst.BaseExpression]:
    """The module whose `.training` the expression reads: `m.training`, `bool(m.training)`."""
    if (
        type(value) is cst.Call
        and type(value.func) is cst.Name
        and value.func.value == "bool"
        and len(value.args) == 1
    ):
        value = value.args[0].value
    if type(value) is cst.Attribute and value.attr.value == "training":
        return value.value
    return None


def mode_test(interp: InterpreterContext, test: cst.BaseExpression) -> Optional[ModeTest]:
    polarity = True
    while type(test) is cst.UnaryOperation and type(test.operator) is cst.Not:
        polarity = not polarity
        test = test.expression
    receiver = training_attribute(test)
    if receiver is not None:
        return receiver, None, polarity
    if type(test) is cst.Name and test.value in interp.snapshot_receivers:
        return interp.snapshot_receivers[test.value], test.value, polarity
    return None


def _facts(interp: InterpreterContext, tested: ModeTest, state: PathState):
    """(key, current facts, what the test read) on this path, or None."""
    receiver, variable, _ = tested
    key = interp.resolve(receiver, state)
    if key is None:
        return None
    current = state.mode_in_tree(key) or ENTRY_MODE
    read = state.snapshot(variable) if variable is not None else current
    return key, current, read


def enter_branch(
    interp: InterpreterContext,
    tested: ModeTest,
    states: list[PathState],
    training: bool,
    site: cst.CSTNode,
    chosen: Optional[cst.Call] = None,
) -> tuple[list[PathState], bool]:
    """States entering the branch where the test says `training`; and whether a path's mode
    was narrowed to eval (then the branch's end is not compared with the snapshot).
    `chosen`: the `train()` the other branch runs (`if not m.training: m.train()`)."""
    if training:
        return [
            _refined_to_training(interp, tested, state, site, chosen) for state in states
        ], False
    result, narrowed = [], False
    for state in states:
        found = _facts(interp, tested, state)
        if found is not None and found[2] is not None and found[1] == found[2]:
            state = state.with_mode_tree(found[0], {ModeFact(Mode.EVAL, Origin.FLAG, site)})
            narrowed = True
        result.append(state)
    return result, narrowed


def _refined_to_training(
    interp: InterpreterContext,
    tested: ModeTest,
    state: PathState,
    site: cst.CSTNode,
    chosen: Optional[cst.Call] = None,
) -> PathState:
    """On the path where the test found the module training, the evaluation modes the path
    may have carried are ruled out (`if not model.training: model.train()` leaves the module
    training on both paths; so does `assert model.training`). Training facts stay as they
    came, and so does the caller's mode (a caller that passes a training module still
    evaluates it); a path on which the module can only be in eval mode never gets here, and
    it is refined to training by the test itself. Where the other branch switches the
    module to training (`chosen`), the code chose training mode on both paths: the mode
    it already had is the one it asked for (Origin.FLAG, as `m.train(flag)`)."""
    found = _facts(interp, tested, state)
    if found is None or found[2] is None or found[1] != found[2]:
        return state
    key, current = found[0], found[1]
    if chosen is not None:
        return state.with_mode(key, {ModeFact(Mode.TRAIN, Origin.FLAG, chosen)})
    if not any(f.mode is Mode.EVAL for f in current):
        return state
    kept = {f for f in current if f.mode is not Mode.EVAL} or {
        ModeFact(Mode.TRAIN, Origin.FLAG, site)
    }
    return state.with_mode(key, kept)


def leave_branch(
    interp: InterpreterContext, tested: ModeTest, states: list[PathState], training: bool
) -> list[PathState]:
    """A branch that ends with the module in the mode its snapshot had on this path leaves
    the module as the snapshot was (`if was_training: model.train()`)."""
    if tested[1] is None:
        return states
    wanted = Mode.TRAIN if training else Mode.EVAL
    result = []
    for state in states:
        found = _facts(interp, tested, state)
        if (
            found is not None
            and found[2] is not None
            and found[1]
            and all(f.mode is wanted for f in found[1])
        ):
            state = state.with_mode_tree(found[0], found[2])
        result.append(state)
    return result


def run_branch(
    interp: InterpreterContext,
    tested: Optional[ModeTest],
    states: list[PathState],
    training: bool,
    site: cst.CSTNode,
    run: Callable[[tuple[PathState, ...]], Any],
    chosen: Optional[cst.Call] = None,
) -> Any:
    """Run one branch of an `if` (`run` gives its Flow), narrowing the tested module's mode on
    entry and settling it against its snapshot on exit."""
    if tested is None:
        return run(normalize(states))
    states, narrowed = enter_branch(interp, tested, states, training, site, chosen)
    flow = run(normalize(states))
    if not narrowed:
        flow.normal = normalize(leave_branch(interp, tested, list(flow.normal), training))
    return flow
