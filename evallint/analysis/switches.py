"""Mode and grad switches: `eval()`/`train()`/`train(flag)`, opaque switches, `was_training`
snapshots, `set_grad_enabled`/`no_grad`."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.conditions import condition_key
from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.lattice import (
    ENTRY_MODE,
    Grad,
    GradFact,
    Mode,
    ModeFact,
    Origin,
    PathState,
    normalize,
)
from evallint.analysis.mode_tests import training_attribute
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_METHODS


class Switches(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    opaque_switch: Optional[frozenset]

    def _training_snapshot(
        self, value: cst.BaseExpression, state: PathState
    ) -> Optional[frozenset]:
        """`was_training = model.training`: remember the mode to restore later."""
        receiver = training_attribute(value)  # `model.training`, `bool(model.training)`
        if receiver is not None:
            key = self.resolve(receiver, state)
            if key is not None:
                return state.mode_in_tree(key) or ENTRY_MODE
        return None

    def switch_mode(self, call: cst.Call, attr: str, states: States) -> States:
        receiver = call.func.value  # type: ignore[attr-defined]
        receiver = chain_receiver(
            receiver, SAME_MODULE_METHODS
        )  # `net.to(device).eval()` switches `net`
        result: list[PathState] = []
        for state in states:
            key = self.resolve(receiver, state)
            if key is None:
                result.append(self._opaque_switch(call, attr, receiver, state))
                continue
            if attr == "eval":
                self.eval_switches.append(call)
                result.append(
                    state.with_mode_tree(key, {ModeFact(Mode.EVAL, Origin.SWITCHED, call)})
                )
                continue
            arg = call.args[0].value if call.args else None
            constant = self._mode_argument(call)
            if constant is not None:
                if constant is Mode.EVAL:
                    self.eval_switches.append(call)
                result.append(
                    state.with_mode_tree(key, {ModeFact(constant, Origin.SWITCHED, call)})
                )
                continue
            snapshot = state.snapshot(dotted_name(arg) or "") if arg is not None else None
            if snapshot is not None:
                result.append(state.with_mode_tree(key, snapshot))
                continue
            condition = condition_key(arg) if arg is not None else None
            both = {ModeFact(Mode.TRAIN, Origin.FLAG, call), ModeFact(Mode.EVAL, Origin.FLAG, call)}
            if condition is None:
                result.append(state.with_mode_tree(key, both))
                continue
            text, polarity = condition
            known = state.assumed(text)
            if known is not None:
                mode = Mode.TRAIN if known == polarity else Mode.EVAL
                result.append(state.with_mode_tree(key, {ModeFact(mode, Origin.FLAG, call)}))
            else:
                result.append(
                    state.assuming(text, polarity).with_mode_tree(
                        key, {ModeFact(Mode.TRAIN, Origin.FLAG, call)}
                    )
                )
                result.append(
                    state.assuming(text, not polarity).with_mode_tree(
                        key, {ModeFact(Mode.EVAL, Origin.FLAG, call)}
                    )
                )
        return normalize(result)

    def _opaque_switch(
        self, call: cst.Call, attr: str, receiver: cst.BaseExpression, state: PathState
    ) -> PathState:
        """`getattr(self, name).train(mode)`, `for m in self.models: m.eval()`: a switch of
        modules we cannot name, in a method: taken as a switch of every module attribute
        (a loop over `.modules()`/`.children()` is a deliberate partial switch instead)."""
        if self._is_submodule_receiver(receiver) or self._owner() is None:
            return state
        constant = Mode.EVAL if attr == "eval" else self._mode_argument(call)
        facts = (
            frozenset({ModeFact(constant, Origin.SWITCHED, call)})
            if constant
            else frozenset(
                {ModeFact(Mode.TRAIN, Origin.FLAG, call), ModeFact(Mode.EVAL, Origin.FLAG, call)}
            )
        )
        self.opaque_switch = facts if self.opaque_switch is None else self.opaque_switch | facts
        for key in self.scope_keys:
            if key.startswith("self."):
                state = state.with_mode(key, facts)
        return state

    def _is_submodule_receiver(self, receiver: cst.BaseExpression) -> bool:
        name = dotted_name(receiver)
        if name is None:
            return False
        root = name.split(".")[0]
        return (
            root in self.submodule_variables
            or (root == "self" and name.count(".") > 1)
            or (root in self.scope_keys and root not in self.opaque_variables)
        )

    def set_grad(self, call: cst.Call, states: States, *, statement: bool) -> States:
        arg = call.args[0].value if call.args else None
        result: list[PathState] = []
        for state in states:
            if type(arg) is cst.Name and arg.value in ("True", "False"):
                result.append(
                    state.with_grad(
                        frozenset({GradFact(Grad.ON if arg.value == "True" else Grad.OFF, call)})
                    )
                )
                continue
            condition = condition_key(arg) if arg is not None else None
            if condition is None:
                result.append(
                    state.with_grad(
                        frozenset({GradFact(Grad.ON, call, True), GradFact(Grad.OFF, call, True)})
                    )
                )
                continue
            text, polarity = condition
            known = state.assumed(text)
            if known is not None:
                result.append(
                    state.with_grad(
                        frozenset(
                            {GradFact(Grad.ON if known == polarity else Grad.OFF, call, True)}
                        )
                    )
                )
            else:
                result.append(
                    state.assuming(text, polarity).with_grad(
                        frozenset({GradFact(Grad.ON, call, True)})
                    )
                )
                result.append(
                    state.assuming(text, not polarity).with_grad(
                        frozenset({GradFact(Grad.OFF, call, True)})
                    )
                )
        return normalize(result)
