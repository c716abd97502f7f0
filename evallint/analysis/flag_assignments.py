"""Assignments to a module's `training` flag (`model.training = False`), noted as the interpreter
passes them (EVL005 queries them): whether the receiver holds a module, whether a loop over
`net.modules()` sets it on each module in turn (what `net.eval()` does), and whether the class
keeps a `training` flag of its own. Moved out of `observations`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.facts import ModeFlagAssignment
from evallint.analysis.symbols import dotted_name

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis

_AUTOGRAD_FUNCTIONS = frozenset(
    {
        "torch.autograd.Function",
        "torch.autograd.function.Function",
        "torch.autograd.function.InplaceFunction",
    }
)
"""Bases of custom autograd functions, whose static methods take the autograd context first."""


class FlagAssignments(InterpreterPart):
    """The interpreter part that notes assignments to a module's `training` flag."""

    def observe_training_attribute(
        self,
        statement: cst.Assign,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        states: tuple,
    ) -> None:
        """An assignment to a module's `training` attribute."""
        if not (type(target) is cst.Attribute and target.attr.value == "training"):
            return
        receiver = target.value
        if (
            not self._is_module_expression(receiver, states)
            or self._each_module_of_a_tree(receiver)
            or self._autograd_context(receiver)
        ):
            return
        owner = self._owner()
        self.file.facts.mode_flag_assignments.append(
            ModeFlagAssignment(
                self._place(statement),
                receiver,
                value,
                self.info.name if self.info is not None else None,
                receiver_class_defines_training=(
                    type(receiver) is cst.Name
                    and receiver.value == "self"
                    and owner is not None
                    and "training" in owner.methods
                )
                or (
                    not (type(receiver) is cst.Name and receiver.value == "self")
                    and self._plain_class_keeps_training_flag()
                ),
                single_target=len(statement.targets) == 1,
            )
        )

    def _each_module_of_a_tree(self, receiver: cst.BaseExpression) -> bool:
        """`for m in net.modules(): m.training = False`: the loop sets the flag on every
        module of `net`, each in turn, which is what `net.eval()` does."""
        from evallint.analysis.walk import iter_nodes

        if type(receiver) is not cst.Name:
            return False
        for region in reversed(self.regions):
            loop = region.node
            if type(loop) is not cst.For:
                continue
            iterable = loop.iter
            if not (
                type(iterable) is cst.Call
                and type(iterable.func) is cst.Attribute
                and iterable.func.attr.value in ("modules", "named_modules")
            ):
                continue
            if any(
                type(n) is cst.Name and n.value == receiver.value for n in iter_nodes(loop.target)
            ):
                return True
        return False

    def _autograd_context(self, receiver: cst.BaseExpression) -> bool:
        """`ctx.training = training` in a method of a `torch.autograd.Function` subclass:
        its first parameter (after `cls` in a classmethod) is the autograd context that
        carries values from `forward` to `backward`, not a module."""
        info, owner = self.info, self._owner()
        if type(receiver) is not cst.Name or info is None or owner is None:
            return False
        params = info.params[1:] if info.params[:1] == ("cls",) else info.params
        if params[:1] != (receiver.value,):
            return False
        seen: set[str] = set()
        bases = list(owner.bases)
        while bases:
            base = bases.pop()
            if base in _AUTOGRAD_FUNCTIONS:
                return True
            local = self.file.classes.get(base)
            if local is not None and base not in seen:
                seen.add(base)
                bases.extend(local.bases)
        return False

    def _plain_class_keeps_training_flag(self) -> bool:
        """The file defines a class that is not an `nn.Module` and keeps its own `training`
        flag (`self.training = True` in a method): hand-written layers whose flag is their
        whole mode, with no `eval()` to call and no children to reach."""
        return plain_class_keeps_training_flag(self.file)


def plain_class_keeps_training_flag(file: FileAnalysis) -> bool:
    """Whether the file defines a class that is not an `nn.Module` and keeps its own
    `training` flag (see `FlagAssignments._plain_class_keeps_training_flag`); once per file."""
    cached: Optional[bool] = file.__dict__.get("_plain_training_flag")
    if cached is None:
        from evallint.analysis.walk import iter_nodes

        cached = any(
            not cls.is_module
            and any(
                type(node) is cst.Assign
                and any(dotted_name(t.target) == "self.training" for t in node.targets)
                for node in iter_nodes(cls.node.body, enter_scopes=True)
            )
            for cls in file.classes.values()
        )
        file.__dict__["_plain_training_flag"] = cached
    return cached
