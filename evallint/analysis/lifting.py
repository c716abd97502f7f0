"""Whether a finding inside another project file is also reported at this file's call.

An evaluation forward in another file of the project, reached through a call in this file,
is reported in its own file (judged there alone or by its callers, this file among them).
Repeating it at this file's call is right only when what makes it wrong is this caller's
doing: the helper relies on its caller for the mode or for `no_grad` (`evaluate(model,
loader)` called right after training). It is a duplicate when the helper's own file owns it:

- the called function trains the module itself and then evaluates it inside (a periodic
  sample in its training loop, a validation after its epochs): whatever mode or grad state
  the caller hands over, the evaluation follows the helper's own training, so the fix
  belongs there (`model.train(loader)` of a GAN class whose loop samples in train mode);
- the forward's own file already reports it for its own calls (`evaluate()` run by its
  file's `__main__` with autograd on): the same finding at every importing caller adds
  nothing.

A region decided by a caller's flag (`fit(model, phase="valid")`) and a region of this file
are never owned elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from evallint.analysis.facts import UnitRef
from evallint.analysis.regions import Region
from evallint.analysis.summaries import ForwardRequirement

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def owned_elsewhere(
    file: FileAnalysis,
    req: ForwardRequirement,
    callee_trains: bool,
    region: Optional[Region],
    region_unit: Optional[UnitRef],
) -> tuple[bool, bool]:
    """(mode, grad): whether the forward's own file reports it for EVL001 / EVL002 whatever
    this call does (see the module's docstring). `callee_trains`: the function this file
    calls trains (itself or through its callees)."""
    if (
        region is None
        or region_unit is None
        or region_unit is file.unit
        or req.place.unit is file.unit
        or region.by_flags
    ):
        return False, False
    if callee_trains:
        return True, True
    project = file.project
    other = project.analysed(req.place.unit.path) if project is not None else None
    if other is None:
        return False, False
    mode = grad = False
    for forward in other.facts.eval_forwards:
        if forward.call.node is req.place.node and all(
            step.unit is forward.call.unit for step in forward.via
        ):  # reached by its own file's code, not by a caller it was judged with
            mode = mode or (bool(forward.train_facts) and forward.mode_matters)
            grad = grad or (bool(forward.grad_facts) and forward.affects_grad)
    return mode, grad
