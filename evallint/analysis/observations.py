"""Facts about single statements that the interpreter notes as it passes: functional
dropout inside modules, switches that do nothing, graphs kept alive by accumulation, and
backward passes without a graph. They use the interpreter's state (grad on each path, which
names hold modules, which values carry a graph); none needs a walk of its own."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.facts import (
    BackwardWithoutGraph,
    FunctionalModeCall,
    GraphAccumulation,
    InertSwitch,
    Place,
)
from evallint.analysis.lattice import Grad, PathState
from evallint.analysis.regions import RegionKind
from evallint.analysis.symbols import dotted_name
from evallint.analysis.vocabulary import FUNCTIONAL_MODE, GRAD_DISABLERS, GRAD_ENABLERS


def _constant(node: cst.BaseExpression) -> Optional[bool]:
    if type(node) is cst.Name and node.value in ("True", "False"):
        return node.value == "True"
    return None


def _about_a_loss(accumulator: str, value: cst.BaseExpression) -> bool:
    """EVL006 is about losses: the running total or the value must name one (a sample
    count unpacked from the same call is a plain number)."""
    from evallint.analysis.vocabulary import words
    from evallint.analysis.walk import iter_nodes

    if "loss" in words(accumulator.split(".")[-1]) or "losses" in words(accumulator.split(".")[-1]):
        return True
    return any(
        type(n) is cst.Name and words(n.value) & {"loss", "losses"} for n in iter_nodes(value)
    )


_LEAF_LAYER_WORDS = frozenset({"bn", "batchnorm", "norm", "dropout", "drop"})


class Observations(InterpreterPart):
    """Mixed into the interpreter; `self` is an `_Interpreter`."""

    def _init_observations(self) -> None:
        self.accumulations: list[tuple[cst.CSTNode, str, str]] = []
        self.backward_roots: set[str] = set()
        self.graphless: dict[str, cst.CSTNode] = {}
        self.reads: dict[str, set[str]] = {}
        """Assigned name -> names its value was computed from (for gradient accumulation)."""
        self.loop_depth = 0

    def _place(self, node: cst.CSTNode) -> Place:
        return Place(node, self.file.unit)

    # -- mode-taking functional calls in module methods (EVL004 queries them) -----------------
    def observe_functional(self, call: cst.Call) -> None:
        owner = self._owner()
        if owner is None or not owner.is_module or self.info is None:
            return
        qualified = self.imports.qualify(call.func) or ""
        spec = FUNCTIONAL_MODE.get(qualified)
        if spec is None:
            return
        keyword, index, default = spec
        argument = next(
            (a for a in call.args if a.keyword is not None and a.keyword.value == keyword), None
        )
        if argument is None:
            positional = [a for a in call.args if a.keyword is None and not a.star]
            argument = positional[index] if index < len(positional) else None
        value = _constant(argument.value) if argument is not None else default
        self.file.facts.functional_mode_calls.append(
            FunctionalModeCall(self._place(call), qualified.split(".")[-1], value, argument)
        )

    # -- EVL005 ------------------------------------------------------------------------------
    def observe_expression_statement(self, value: cst.BaseExpression, states: tuple) -> None:
        if type(value) is cst.Attribute and value.attr.value in ("eval", "train"):
            if self._is_module_expression(value.value, states):
                text = self._code(value)
                self.file.facts.inert_switches.append(
                    InertSwitch(
                        self._place(value),
                        "uncalled-mode-method",
                        self._code(value.value),
                        f"{text}()",
                    )
                )
        elif (
            type(value) is cst.Call
            and (self.imports.qualify(value.func) or "") in GRAD_DISABLERS | GRAD_ENABLERS
        ):
            self.file.facts.inert_switches.append(
                InertSwitch(self._place(value), "bare-grad-call", self._code(value))
            )

    def observe_uncalled_manager(self, expr: cst.BaseExpression) -> None:
        self.file.facts.inert_switches.append(
            InertSwitch(
                self._place(expr),
                "uncalled-grad-manager",
                self._code(expr),
                f"{self._code(expr)}()",
            )
        )

    def observe_training_attribute(
        self,
        statement: cst.Assign,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        states: tuple,
    ) -> None:
        if not (type(target) is cst.Attribute and target.attr.value == "training"):
            return
        receiver = target.value
        if not self._is_module_expression(receiver, states):
            return
        owner = self._owner()
        if (
            type(receiver) is cst.Name
            and receiver.value == "self"
            and owner is not None
            and "training" in owner.methods
        ):
            return  # a `training` property whose setter propagates the mode
        if self.info is not None and self.info.name in (
            "train",
            "eval",
            "training",
            "__init__",
            "__setstate__",
            "_apply",
        ):
            return  # the module machinery itself (nn.Module.train sets the flag, then recurses)
        if type(value) is cst.Attribute and value.attr.value == "training":
            return  # copying another module's flag onto a module built to mirror it
        from evallint.analysis.vocabulary import words

        if words((dotted_name(receiver) or "").split(".")[-1]) & _LEAF_LAYER_WORDS:
            return  # a BatchNorm or Dropout leaf: its own flag is all the mode it has
        text = self._code(receiver)
        constant = _constant(value)
        replacement = (
            f"{text}.eval()"
            if constant is False
            else f"{text}.train()"
            if constant
            else f"{text}.train({self._code(value)})"
        )
        certain = len(statement.targets) == 1
        self.file.facts.inert_switches.append(
            InertSwitch(
                self._place(statement), "training-attribute", text, replacement if certain else None
            )
        )

    def _is_module_expression(self, node: cst.BaseExpression, states: tuple) -> bool:
        if states and self.resolve(node, states[0]) is not None:
            return True
        owner = self._owner()
        return (
            type(node) is cst.Name
            and node.value == "self"
            and owner is not None
            and owner.is_module
        )

    # -- EVL006 ------------------------------------------------------------------------------
    def observe_accumulation(
        self, node: cst.CSTNode, accumulator: str, value: cst.BaseExpression, states: tuple
    ) -> None:
        if self.loop_depth == 0 or not states or not self._training_context():
            return
        if not _about_a_loss(accumulator, value):
            return
        if not any(g.grad is not Grad.OFF for s in states for g in s.grad):
            return
        if self.taint_of(value, states[0]):
            self.accumulations.append((node, accumulator, self._code(value)))

    def _training_context(self) -> bool:
        return any(r.kind in (RegionKind.TRAIN, RegionKind.MIXED) for r in self.regions)

    def note_reads(self, name: str, value: cst.BaseExpression) -> None:
        from evallint.analysis.walk import iter_nodes

        self.reads.setdefault(name, set()).update(
            n.value for n in iter_nodes(value) if type(n) is cst.Name
        )

    def _backpropagated(self) -> set[str]:
        """Names a backward() result was computed from, transitively."""
        found = set(self.backward_roots)
        pending = list(found)
        while pending:
            for source in self.reads.get(pending.pop(), ()):
                if source not in found:
                    found.add(source)
                    pending.append(source)
        return found

    def finish_accumulations(self) -> None:
        """Drop sums and lists that are themselves backpropagated (gradient accumulation,
        scores collected for one loss)."""
        backpropagated = self._backpropagated() if self.accumulations else set()
        for node, accumulator, value in self.accumulations:
            if accumulator.split(".")[0] in backpropagated or accumulator in backpropagated:
                continue
            self.file.facts.graph_accumulations.append(
                GraphAccumulation(self._place(node), accumulator, value)
            )

    # -- EVL009 ------------------------------------------------------------------------------
    def observe_assignment_grad(self, name: str, value: cst.BaseExpression, states: tuple) -> None:
        if states and all(g.grad is Grad.OFF for s in states for g in s.grad):
            self.graphless[name] = value
        else:
            self.graphless.pop(name, None)

    def observe_backward(self, call: cst.Call, states: tuple) -> None:
        func = call.func
        receiver = (
            func.value
            if type(func) is cst.Attribute
            else (call.args[0].value if call.args else None)
        )
        root = dotted_name(receiver) if receiver is not None else None
        if root is None:
            return
        self.backward_roots.add(root)
        assigned = self.graphless.get(root)
        if assigned is not None:
            self.file.facts.backward_without_graph.append(
                BackwardWithoutGraph(self._place(call), root, self._place(assigned))
            )

    def _code(self, node: cst.CSTNode) -> str:
        return cst.Module([]).code_for_node(node)

    @staticmethod
    def grad_off_everywhere(states: tuple[PathState, ...]) -> bool:
        return bool(states) and all(g.grad is Grad.OFF for s in states for g in s.grad)
