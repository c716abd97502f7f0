"""Measurements of a training step's effect: the same computation before and after it.

    with torch.no_grad():
        loss_before = self._compute_loss(obs, actions, advantages)
    self._train(obs, actions, advantages)          # the step
    with torch.no_grad():
        loss_after = self._compute_loss(obs, actions, advantages)
    log("dLoss", (loss_before - loss_after).item())

The block after the step reports, but it is no evaluation: it repeats, call for call, what
the body computed before the step, on the very data the step trained on, so the two
results differ only by what the step changed (a policy-gradient algorithm's loss before and
after its update, the KL between its old and new policy). Both run in the mode the step ran
in, and must: in eval mode only the "after" value would change mode and the difference would
no longer measure the step. An evaluation after a step runs the model on other data (a test
loader, a fixed validation batch), or computes something the body did not compute before it.

Read syntactically on one body: every call in the block that may run a module (the module
itself, one of its methods other than nn.Module's own API, a method of the enclosing
object) must have the same text as a call made before the first training statement, and
read only names bound there, some of which the training statements read too."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.trained_batch import bound_names, names_read
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import MODULE_API

_CODE = cst.Module([])


def measures_the_step(
    block: Sequence[cst.CSTNode],
    before: Sequence[cst.CSTNode],
    training: Sequence[cst.CSTNode],
    runs_module: Callable[[str], bool],
) -> bool:
    """Whether `block`, which follows the training statements `training` of a body whose
    statements before the first of them are `before`, only repeats computations `before`
    made on the trained data (see the module). `runs_module(callee)` says whether a call of
    the dotted name `callee` may run a module. False when the block repeats nothing."""
    earlier = {
        _CODE.code_for_node(node)
        for statement in before
        for node in iter_nodes(statement)
        if type(node) is cst.Call
    }
    bound: set[str] = set()
    for statement in before:
        for node in iter_nodes(statement):
            bound.update(bound_names(node))
    trained: set[str] = set()
    for statement in training:
        names_read(statement, trained)
    trained.discard("self")
    repeated: set[str] = set()
    for statement in block:
        for node in iter_nodes(statement):
            if type(node) is not cst.Call or not _may_run_a_module(node, runs_module):
                continue
            if _CODE.code_for_node(node) not in earlier:
                return False
            names: set[str] = set()
            for arg in node.args:
                names_read(arg.value, names)
            if not names or not names <= bound:
                return False  # a test loader, a fixed batch, a parameter: other data
            repeated |= names
    return bool(repeated & trained)  # some of it the very data the step trained on


def _may_run_a_module(call: cst.Call, runs_module: Callable[[str], bool]) -> bool:
    """`net(x)`, `net.compute_loss(x)`, `self._objective(x)`; not `net.state_dict()`."""
    callee = dotted_name(call.func)
    if callee is None:
        return False
    if runs_module(callee):
        return True
    receiver, _, method = callee.rpartition(".")
    return bool(receiver) and method not in MODULE_API and runs_module(receiver)
