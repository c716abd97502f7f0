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
  nothing;
- the called function is a whole evaluation of a module of its own (it builds or loads the
  module itself, switches it to eval mode and hands its results out of autograd: a runner's
  `sample()` that loads the generator and writes images) and its file judges it by the
  project files that call it, this one among them (`file_analysis._judge_by_callers`):
  this caller hands over no module, so only the grad state is its part, and the fix
  (`@torch.no_grad()` on the function) belongs where the forward is, which that file
  reports. Decided from the function's summary and the project's callers, not from that
  file's findings, which may not exist yet (files are analysed in turn). A helper given
  the caller's module (`evaluate(model, loader)`, `sampler.show()`) is still reported at
  the call too.

A region decided by a caller's flag (`fit(model, phase="valid")`) and a region of this file
are never owned elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from evallint.analysis.facts import UnitRef
from evallint.analysis.regions import Region
from evallint.analysis.summaries import ForwardRequirement, Summary

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def owned_elsewhere(
    file: FileAnalysis,
    req: ForwardRequirement,
    callee_trains: bool,
    region: Optional[Region],
    region_unit: Optional[UnitRef],
    callee: Optional[Summary] = None,
    key: Optional[str] = None,
) -> tuple[bool, bool]:
    """(mode, grad): whether the forward's own file reports it for EVL001 / EVL002 whatever
    this call does (see the module's docstring). `callee_trains`: the function this file
    calls trains (itself or through its callees); `callee`: that function, when known, and
    `key`: what the forward's module is in this file (None: no module of this caller)."""
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
    if (
        callee is not None
        and key is None
        and _judged_by_its_callers(file, other, req, region, region_unit, callee)
    ):
        return True, True
    mode = grad = False
    for forward in other.facts.eval_forwards:
        if forward.call.node is req.place.node and all(
            step.unit is forward.call.unit for step in forward.via
        ):  # reached by its own file's code, not by a caller it was judged with
            mode = mode or (bool(forward.train_facts) and forward.mode_matters)
            grad = grad or (bool(forward.grad_facts) and forward.affects_grad)
    return mode, grad


def _judged_by_its_callers(
    file: FileAnalysis,
    other: FileAnalysis,
    req: ForwardRequirement,
    region: Region,
    region_unit: UnitRef,
    callee: Summary,
) -> bool:
    """The function this file calls is a whole evaluation in the forward's file, which judges
    it by its callers, this file among them, and the evaluation is that function's own
    region: the forward, of a module the caller does not hand over, is reported there (see
    the module's docstring). The function is the one `file_analysis.
    _called_in_project` accepts: a top-level function or a method of a top-level class (not
    a module's `forward` nor a dunder), that this file imports and calls."""
    unit = req.place.unit
    if not callee.whole_evaluation or req.mode_from_entry:
        return False  # the caller hands over the mode or the grad state: its doing
    if region_unit.path != unit.path or any(step.unit.path != unit.path for step in req.via):
        return False  # a region or a helper of a third file: that file decides
    project = file.project
    if project is None:
        return False
    info = next((f for f in other.all_functions() if f.qualname == callee.qualname), None)
    if info is None or info.parent is not None:
        return False
    owner = info.owner
    if owner is not None and (
        "." in owner.name or (owner.is_module and (info.name == "forward" or "__" in info.name))
    ):
        return False
    here = Path(file.path).resolve()
    callers = project.callers_of(unit.path, info.name, owner.name if owner is not None else None)
    return any(caller.resolve() == here for caller in callers)
