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


def _switches_of(body: cst.BaseSuite) -> dict[str, tuple[bool, cst.Call]]:
    """Receiver text -> (switched to eval, the call) for the `x.train()` / `x.eval()` /
    `x.train(False)` statements a branch runs at its own level."""
    found: dict[str, tuple[bool, cst.Call]] = {}
    for statement in getattr(body, "body", ()):
        if type(statement) is not cst.SimpleStatementLine:
            continue
        for small in statement.body:
            call = small.value if type(small) is cst.Expr else None
            if type(call) is not cst.Call or type(call.func) is not cst.Attribute:
                continue
            attr = call.func.attr.value
            receiver = dotted_name(call.func.value)
            if receiver is None or attr not in ("train", "eval") or len(call.args) > 1:
                continue
            if attr == "eval" and not call.args:
                found[receiver] = (True, call)
            elif attr == "train":
                flag = call.args[0].value if call.args else cst.Name("True")
                if type(flag) is cst.Name and flag.value in ("True", "False"):
                    found[receiver] = (flag.value == "False", call)
    return found


def flag_chosen_switches(node: cst.If) -> list[cst.Call]:
    """`if train_flag: net.train() else: net.eval()`: the two branches of one test switch
    the same module to the two modes. The mode is chosen by the test, deliberately either
    way, as `net.train(train_flag)` chooses it (Origin.FLAG): the forward that follows runs
    in the mode its caller asked for."""
    orelse = node.orelse
    if type(orelse) is not cst.Else:
        return []
    then, other = _switches_of(node.body), _switches_of(orelse.body)
    chosen: list[cst.Call] = []
    for receiver, (to_eval, call) in then.items():
        paired = other.get(receiver)
        if paired is not None and paired[0] is not to_eval:
            chosen += [call, paired[1]]
    return chosen


class Switches(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    opaque_switch: Optional[frozenset]
    flag_chosen: set[int]

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
            key = self.resolve(receiver, state) or self._held_by_local(receiver)
            if key is None:
                result.append(self._opaque_switch(call, attr, receiver, state))
                continue
            origin = Origin.FLAG if id(call) in self.flag_chosen else Origin.SWITCHED
            if attr == "eval":
                self.eval_switches.append(call)
                result.append(state.with_mode_tree(key, {ModeFact(Mode.EVAL, origin, call)}))
                continue
            arg = call.args[0].value if call.args else None
            constant = self._mode_argument(call)
            if constant is not None:
                if constant is Mode.EVAL:
                    self.eval_switches.append(call)
                result.append(state.with_mode_tree(key, {ModeFact(constant, origin, call)}))
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

    def _held_by_local(self, receiver: cst.BaseExpression) -> Optional[str]:
        """`tester.model.eval()` with `tester` a local object of a plain class (a tracker, a
        runner) that holds the module: the switch is recorded under the path, which is the
        key a later `tester.get_rect(x)` maps the method's `self.model` onto."""
        name = dotted_name(receiver) if type(receiver) is cst.Attribute else None
        if name is None or name.startswith("self."):
            return None
        root = name.partition(".")[0]
        if root not in self.scope_locals or self.imports.is_imported(root):
            return None
        return name

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
