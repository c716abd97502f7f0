"""Training through a loss the caller hands in: `def backward_propagate(self, loss, step):
loss.backward(); self.optimizer.step()`.

Such a helper cannot tell which module it trains: the loss's graph comes from its parameter,
and its optimizer was built elsewhere. It records a training requirement on the parameter
(`param:loss`); each call maps it to the modules whose forward feeds the argument
(`self.backward_propagate(model.loss(model(x)), step)`) and judges the training there, in the
caller's mode, at the call: that call is where the module's loss is trained. A caller that
passes on its own parameter passes the requirement on to its callers.

Read ahead, such a call is a backward of the block it stands in (`loss_trained_names`): a
helper's forward whose output reaches `optimizer.backward_and_step(loss)` later in the loop
is a training forward, as one reaching `loss.backward()` is.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.effects import PendingTraining
from evallint.analysis.facts import Place
from evallint.analysis.instances import objects_in_scope
from evallint.analysis.lattice import Grad, PathState
from evallint.analysis.provenance import PARAMETER, _argument_for
from evallint.analysis.regions import Region, RegionKind
from evallint.analysis.statement_shapes import assignment_reads
from evallint.analysis.trained_batch import through_assignments
from evallint.analysis.walk import iter_nodes


class LossTraining(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    def train_loss_parameter(self, call: cst.Call, states: States) -> None:
        """`loss.backward()` on a loss whose graph comes only from this function's
        parameters: the callers' arguments say which modules train."""
        if self.info is None or not states:
            return
        func = call.func
        if type(func) is not cst.Attribute:
            return
        if type(func.value) is cst.Name and func.value.value in ("accelerator", "fabric"):
            loss = call.args[0].value if call.args else None
        else:
            loss = func.value
        if loss is None:
            return
        state = states[0]
        sources = self.graph_of(loss, state, True)
        if not sources or not all(item.startswith(PARAMETER) for item in sources):
            return
        self._pend_loss_training(call, sources, states)

    def _pend_loss_training(self, call: cst.Call, sources: frozenset, states: States) -> None:
        if not any(not s.grad or any(g.grad is not Grad.OFF for g in s.grad) for s in states):
            return  # a backward with autograd off on every path trains nothing
        region = self._training_region()
        region_id = id(region.node) if region else 0
        for item in sorted(sources):
            key = item  # `param:loss`: no module key can clash with it
            if (region_id, key) not in self.training:
                self.training[(region_id, key)] = PendingTraining(
                    Place(call, self.file.unit),
                    item[len(PARAMETER) :],
                    region,
                    frozenset(),
                    True,
                    self.file.next_order(),
                )

    def _training_region(self) -> Optional[Region]:
        return next((r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL), None)

    def apply_loss_training(self, summary, key: str, call: cst.Call, state: PathState) -> None:
        """A called helper trains the loss passed as its parameter `key` (`param:loss`): the
        modules feeding the argument train here, at this call, in their mode on this path."""
        argument = _argument_for(summary, key[len(PARAMETER) :], call)
        if argument is None:
            return
        sources = self.taint_of(argument, state)
        if sources:
            region = self._training_region()
            for trained in self._trained_keys(state, frozenset(sources)):
                self._record_training(call, trained, trained, region, (state,))
            return
        if self.info is None:
            return
        passed = self.graph_of(argument, state, True)
        if passed and all(item.startswith(PARAMETER) for item in passed):
            self._pend_loss_training(call, passed, (state,))

    def loss_trained_names(self, block: cst.CSTNode) -> frozenset[str]:
        """Names this block hands, as the loss, to a project helper that backpropagates it
        (`optimizer.backward_and_step(loss)`, `apply_loss(loss, opt)`), transitively through
        the block's assignments: read ahead, like `backpropagated_names` for `.backward()`."""
        cache: dict = self.__dict__.setdefault("_loss_trained", {})
        hit = cache.get(id(block))
        if hit is not None and hit[0] is block:
            return hit[1]
        found: set[str] = set()
        for node in iter_nodes(block):
            if type(node) is not cst.Call or not node.args:
                continue
            for summary in self._helpers_called(node):
                for training in summary.trainings:
                    if not training.key.startswith(PARAMETER):
                        continue
                    argument = _argument_for(summary, training.key[len(PARAMETER) :], node)
                    if argument is not None:
                        found.update(n.value for n in iter_nodes(argument) if type(n) is cst.Name)
        result = frozenset(through_assignments(found, assignment_reads(block)) if found else ())
        cache[id(block)] = (block, result)
        return result

    def _helpers_called(self, call: cst.Call) -> list:
        """Summaries a call may run, found without interpreting it: a project function (of
        another file too), or a method of the classes its receiver is built from in this scope
        (`opt = Wrapper(...)`, a class of this file or of another project file, imported
        anywhere in the file)."""
        func = call.func
        if type(func) is cst.Name:
            # a call handing on a variable may hand on the loss (`apply_gradients(loss, opt)`
            # of `from ops import *`): followed into the project file that defines it
            hands_variable = any(type(arg.value) is cst.Name for arg in call.args)
            resolved = self.file.resolve_function(
                call, self.info, count=False, passes_module=hands_variable
            )
            summary = resolved[0] if resolved else None
            return [summary] if summary is not None else []
        if type(func) is not cst.Attribute or type(func.value) is not cst.Name:
            return []
        objects = self.__dict__.get("_scope_objects")
        if objects is None:
            objects = self.__dict__["_scope_objects"] = objects_in_scope(
                self.file, self.info, every_class=True
            )
        found = []
        for analysis, owner in objects.get(func.value.value, ()):
            method = owner.methods.get(func.attr.value) or analysis._inherited_method(
                owner, func.attr.value
            )
            summary = analysis.summary_for(method) if method is not None else None
            if summary is not None:
                found.append(summary)
        return found
