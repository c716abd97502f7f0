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
from evallint.analysis.mode_overrides import unbound_switch_receiver
from evallint.analysis.mode_tests import training_attribute
from evallint.analysis.symbols import chain_receiver, dotted_name, unwrap_enumerate
from evallint.analysis.vocabulary import SAME_MODULE_METHODS
from evallint.torch_facts import WRAPPERS


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


def mode_guarded_train_switches(node: cst.If) -> list[cst.Call]:
    """`if not net.training: net.train()`: a `train()` run only where a test of the same
    module's `.training` found it off. The code looked at the mode and asked for training
    ("ensure we are in train mode so that the normalisers update"): the forward that follows
    runs in training mode on purpose, as after `net.train(flag)` (Origin.FLAG); a training
    step after it is in training mode on both paths (see mode_tests.py)."""
    test: cst.BaseExpression = node.test
    polarity = True
    while type(test) is cst.UnaryOperation and type(test.operator) is cst.Not:
        polarity = not polarity
        test = test.expression
    tested = training_attribute(test)
    receiver = dotted_name(tested) if tested is not None else None
    if receiver is None:
        return []
    if not polarity:
        body: cst.BaseSuite = node.body
    elif type(node.orelse) is cst.Else:
        body = node.orelse.body  # `if net.training: ... else: net.train()`
    else:
        return []
    found = _switches_of(body).get(receiver)
    return [found[1]] if found is not None and not found[0] else []


class Switches(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    opaque_switch: Optional[frozenset]
    flag_chosen: set[int]

    def _training_snapshot(
        self, value: cst.BaseExpression, state: PathState
    ) -> Optional[frozenset]:
        """`was_training = model.training`: remember the mode to restore later."""
        receiver = training_attribute(value)  # `model.training`, `bool(model.training)`
        if receiver is None:
            receiver = tree_snapshot_receiver(value)  # `[m.training for m in model.modules()]`
        if receiver is not None:
            key = self.resolve(receiver, state)
            if key is not None:
                return state.mode_in_tree(key) or ENTRY_MODE
        return None

    def set_tree_flags(
        self, target: cst.BaseExpression, value: cst.BaseExpression, states: States
    ) -> States:
        """`for m in model.modules(): m.training = v` sets the flag of every module of the
        tree, which is `model.train(v)`: a constant picks the mode, an element of a snapshot
        (`modes[i]` after `modes = [m.training for m in model.modules()]`, or a
        `was_training` variable) restores it, anything else is chosen by a flag."""
        tree = self._flag_loop_tree(target)
        if tree is None:
            return states
        restored = value.value if type(value) is cst.Subscript else value
        result: list[PathState] = []
        for state in states:
            key = self.resolve(tree, state)
            if key is None:
                result.append(state)
                continue
            constant = dotted_name(value)
            if constant in ("True", "False"):
                mode = Mode.TRAIN if constant == "True" else Mode.EVAL
                result.append(state.with_mode_tree(key, {ModeFact(mode, Origin.SWITCHED, target)}))
                continue
            snapshot = state.snapshot(dotted_name(restored) or "")
            if snapshot is not None:
                result.append(state.with_mode_tree(key, snapshot))
                continue
            both = {
                ModeFact(Mode.TRAIN, Origin.FLAG, target),
                ModeFact(Mode.EVAL, Origin.FLAG, target),
            }
            result.append(state.with_mode_tree(key, both))
        return tuple(result)

    def _flag_loop_tree(self, target: cst.BaseExpression) -> Optional[cst.BaseExpression]:
        """The module whose tree an innermost `for m in X.modules():` loop walks, when the
        target is `m.training`."""
        if not (type(target) is cst.Attribute and target.attr.value == "training"):
            return None
        variable = target.value
        if type(variable) is not cst.Name:
            return None
        for region in reversed(self.regions):
            loop = region.node
            if type(loop) is not cst.For:
                continue
            if variable.value not in {n.value for n in _names_bound(loop.target)}:
                return None
            if not _set_by_the_body(loop, target):
                return None  # `if isinstance(m, nn.BatchNorm2d): m.training = False`: some
            return _modules_walked(loop.iter)
        return None

    def _wrapped(self, receiver: cst.BaseExpression) -> cst.BaseExpression:
        """The module a wrapper built on the spot holds (`nn.DataParallel(net)`,
        `torch.compile(net)`): switching the wrapper's mode switches that module's."""
        while (
            type(receiver) is cst.Call
            and receiver.args
            and receiver.args[0].keyword is None
            and not receiver.args[0].star
            and (self.imports.qualify(receiver.func) or "") in WRAPPERS
        ):
            receiver = chain_receiver(receiver.args[0].value, SAME_MODULE_METHODS)
        return receiver

    def switch_mode(
        self,
        call: cst.Call,
        attr: str,
        states: States,
        receiver: Optional[cst.BaseExpression] = None,
    ) -> States:
        """`model.eval()`/`model.train(flag)`, `nn.Module.eval(model)`; `receiver` for a call
        of a bound method taken earlier (`set_mode = model.train`, then `set_mode()`)."""
        if receiver is None:
            receiver = unbound_switch_receiver(call, self.imports) or call.func.value  # type: ignore[attr-defined]
        receiver = chain_receiver(
            receiver, SAME_MODULE_METHODS
        )  # `net.to(device).eval()` switches `net`
        receiver = self._wrapped(receiver)  # `nn.DataParallel(net).eval()` switches `net`
        result: list[PathState] = []
        for state in states:
            key = (
                self.resolve(receiver, state)
                or self._held_by_local(receiver)
                or self._part_of_outer_module(receiver, state)
            )
            if key is None:
                result.append(self._opaque_switch(call, attr, receiver, state))
                continue
            origin = Origin.FLAG if id(call) in self.flag_chosen else Origin.SWITCHED
            if attr == "eval":
                self.eval_switches.append(call)
                result.append(state.with_mode_tree(key, {ModeFact(Mode.EVAL, origin, call)}))
                continue
            mode_args = self._mode_arguments(call)
            arg = mode_args[0].value if mode_args else None
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

    def _part_of_outer_module(
        self, receiver: cst.BaseExpression, state: PathState
    ) -> Optional[str]:
        """`model.D.train()` in a nested function whose `model` is the enclosing scope's (or a
        module global): `model` is a module this flow tracks under its own name, so the switch
        of its part is recorded under the path, as for a local `model` (`_held_by_local`)."""
        name = dotted_name(receiver) if type(receiver) is cst.Attribute else None
        if name is None or name.startswith("self."):
            return None
        root = name.partition(".")[0]
        if self.imports.is_imported(root) or self.resolve(cst.Name(root), state) != root:
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

    def set_grad(
        self,
        call: cst.Call,
        states: States,
        *,
        statement: bool,
        chosen_by: Optional[cst.BaseExpression] = None,
    ) -> States:
        """`torch.set_grad_enabled(arg)`; with `chosen_by`, the `with ctx():` of a manager
        chosen by that test (`ctx = torch.enable_grad if test else torch.no_grad`)."""
        arg = chosen_by if chosen_by is not None else call.args[0].value if call.args else None
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


def _modules_walked(iterable: cst.BaseExpression) -> Optional[cst.BaseExpression]:
    """`X.modules()`, `X.named_modules()`, `enumerate(X.modules())` -> X."""
    iterable = unwrap_enumerate(iterable)
    if (
        type(iterable) is cst.Call
        and type(iterable.func) is cst.Attribute
        and iterable.func.attr.value in ("modules", "named_modules")
    ):
        return iterable.func.value
    return None


def _names_bound(target: cst.BaseExpression) -> list[cst.Name]:
    if type(target) is cst.Name:
        return [target]
    if type(target) in (cst.Tuple, cst.List):
        names: list[cst.Name] = []
        for element in target.elements:  # type: ignore[attr-defined]
            names += _names_bound(element.value)
        return names
    return []


def tree_snapshot_receiver(value: cst.BaseExpression) -> Optional[cst.BaseExpression]:
    """`[m.training for m in model.modules()]`, `{n: m.training for n, m in
    model.named_modules()}`: a snapshot of every flag of `model`'s tree -> `model`."""
    if type(value) is cst.ListComp or type(value) is cst.GeneratorExp:
        element = value.elt
    elif type(value) is cst.DictComp:
        element = value.value
    else:
        return None
    loop = value.for_in
    if loop.inner_for_in is not None or loop.ifs:
        return None
    walked = _modules_walked(loop.iter)
    receiver = training_attribute(element)
    if (
        walked is None
        or type(receiver) is not cst.Name
        or receiver.value not in {n.value for n in _names_bound(loop.target)}
    ):
        return None
    return walked


def _set_by_the_body(loop: cst.For, target: cst.BaseExpression) -> bool:
    """The assignment to `target` is a statement of the loop's own body, not of a branch."""
    for line in getattr(loop.body, "body", ()):
        if type(line) is not cst.SimpleStatementLine:
            continue
        for small in line.body:
            if type(small) is cst.Assign and any(t.target is target for t in small.targets):
                return True
    return False
