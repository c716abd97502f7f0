"""EVL005: a mode or grad switch that does nothing (or raises)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModeFlagAssignment, ModuleFacts, Place
from evallint.analysis.symbols import dotted_name
from evallint.analysis.vocabulary import GRAD_DISABLERS, GRAD_ENABLERS, words
from evallint.analysis.walk import iter_nodes
from evallint.diagnostics import Diagnostic, Edit, Fix
from evallint.rules.base import Example, Rule

_CONSEQUENCE = {
    "uncalled-mode-method": "without the call nothing changes: the module stays in its current mode",
    "bare-grad-call": "as a bare statement it creates a context manager and throws it away: autograd stays on",
    "bare-grad-enable": "as a bare statement it creates a context manager and throws it away: autograd stays as it was (off under a caller's `no_grad`)",
    "uncalled-grad-manager": "`with` needs an instance: this raises TypeError ('type' object does not support the context manager protocol)",
    "training-attribute": "setting `.training` changes only the top module: its Dropout and BatchNorm children stay as they were",
}
_ADVICE = {
    "uncalled-mode-method": "call it",
    "bare-grad-call": "use it in a `with` statement (or `torch.set_grad_enabled(False)`)",
    "bare-grad-enable": "use it in a `with` statement (or `torch.set_grad_enabled(True)`)",
    "uncalled-grad-manager": "call it: `with torch.no_grad():`",
    "training-attribute": "call `.eval()` / `.train()` instead",
}

_MODE_MACHINERY = frozenset({"train", "eval", "training", "__init__", "__setstate__", "_apply"})
"""Methods where setting `.training` directly is the module machinery itself
(`nn.Module.train` sets the flag, then recurses)."""
_READING_BUILTINS = frozenset(
    {"print", "len", "isinstance", "type", "id", "repr", "str", "getattr", "hasattr", "vars"}
)
"""Builtins that only read an object: handing it to them switches nothing."""
_LEAF_LAYER_WORDS = frozenset({"bn", "batchnorm", "norm", "dropout", "drop"})
"""Names of a BatchNorm or Dropout leaf, whose own flag is all the mode it has."""


@dataclass(frozen=True)
class _Found:
    place: Place
    kind: str
    subject: str
    replacement: Optional[str] = None
    """Source text that does what was meant, when that is certain."""


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _constant(node: cst.BaseExpression) -> Optional[bool]:
    if type(node) is cst.Name and node.value in ("True", "False"):
        return node.value == "True"
    return None


def _flag_assignment(found: ModeFlagAssignment) -> Optional[_Found]:
    """`model.training = False` when it means `model.eval()`, with that replacement."""
    if found.receiver_class_defines_training:
        return None  # a `training` property whose setter propagates the mode
    if found.function in _MODE_MACHINERY:
        return None
    value = found.value
    if type(value) is cst.Attribute and value.attr.value == "training":
        return None  # copying another module's flag onto a module built to mirror it
    receiver = found.receiver
    if words((dotted_name(receiver) or "").split(".")[-1]) & _LEAF_LAYER_WORDS:
        return None
    text = _code(receiver)
    constant = _constant(value)
    replacement = (
        f"{text}.eval()"
        if constant is False
        else f"{text}.train()"
        if constant
        else f"{text}.train({_code(value)})"
    )
    return _Found(
        found.place, "training-attribute", text, replacement if found.single_target else None
    )


def inert_switches(facts: ModuleFacts) -> Iterator[_Found]:
    """Switches that do nothing: uncalled `eval`/`train` on a module, a grad manager built
    and thrown away or named in a `with` without a call, and `.training` assignments."""
    for discarded in facts.discarded_values:
        expression = discarded.expression
        if type(expression) is cst.Attribute:
            if expression.attr.value in ("eval", "train") and discarded.receiver_holds_module:
                text = _code(expression)
                yield _Found(
                    discarded.place,
                    "uncalled-mode-method",
                    _code(expression.value),
                    f"{text}()",
                )
        elif discarded.callee in GRAD_ENABLERS:
            yield _Found(discarded.place, "bare-grad-enable", _code(expression))
        elif discarded.callee in GRAD_DISABLERS:
            yield _Found(discarded.place, "bare-grad-call", _code(expression))
    for uncalled in facts.uncalled_grad_managers:
        text = _code(uncalled.place.node)
        yield _Found(uncalled.place, "uncalled-grad-manager", text, f"{text}()")
    for assignment in facts.mode_flag_assignments:
        found = _flag_assignment(assignment)
        if (
            found is not None
            and not _overridden_before_use(facts, assignment)
            and not _alternative_to_a_switch(facts, assignment)
        ):
            yield found


def _overridden_before_use(facts: ModuleFacts, found: ModeFlagAssignment) -> bool:
    """`net.training = False` followed in the same block by `net.eval()` (or `net.train()`)
    before anything runs `net` or is given it: the call sets every submodule, so the
    assignment changes nothing that is ever used. A use first, or a switch only under a
    condition or in a loop, leaves the assignment in force."""
    if facts.tree is None:
        return False
    target = found.place.node
    receiver = _code(found.receiver)
    rest: list[cst.CSTNode] = []
    before: list[cst.CSTNode] = []
    for node in iter_nodes(facts.tree, enter_scopes=True):
        if type(node) in (cst.Module, cst.IndentedBlock):
            body = list(node.body)  # type: ignore[attr-defined]
            for index, line in enumerate(body):
                if line is target or (
                    type(line) is cst.SimpleStatementLine and any(s is target for s in line.body)
                ):
                    rest, before = body[index + 1 :], body[:index]
                    break
            if rest or before:
                break
    if _already_switched(before, receiver, _constant(found.value)):
        return True
    for switch in _receiver_calls(rest, receiver):
        return switch is not None  # a switch first overrides; a use first leaves it in force
    return False


def _alternative_to_a_switch(facts: ModuleFacts, found: ModeFlagAssignment) -> bool:
    """`if special(m): convert(m); m.training = mode` `else: m.train(mode)`: the other branch
    of an enclosing `if` switches the receiver (or the module holding it, whose `train()`
    reaches it) with the call, and this branch first hands that object to a function that
    does the switching for objects the call does not suit (an exported graph module:
    `torch.ao.quantization.move_exported_model_to_eval`); the flag then only records the
    mode. A branch that only sets the flag, or hands the object to nothing, stays reported."""
    if facts.tree is None:
        return False
    target = found.place.node
    receiver = _code(found.receiver)
    for node in iter_nodes(facts.tree, enter_scopes=True):
        if type(node) is not cst.If or node.orelse is None:
            continue
        branch = _branch_holding(node, target)
        if branch is None:
            continue
        other = node.orelse if branch is node.body else node.body
        for switched in _switched_objects(other):
            if receiver != switched and not receiver.startswith(switched + "."):
                continue
            if _handed_before(branch, target, switched):
                return True
    return False


def _branch_holding(node: cst.If, target: cst.CSTNode) -> Optional[cst.CSTNode]:
    """The branch (`body` or `orelse`) of `node` whose statements hold `target`."""
    for branch in (node.body, node.orelse):
        if branch is not None and any(n is target for n in iter_nodes(branch, enter_scopes=False)):
            return branch
    return None


def _switched_objects(branch: cst.CSTNode) -> Iterator[str]:
    """The objects whose `train(...)`/`eval()` the branch calls."""
    for node in iter_nodes(branch, enter_scopes=False):
        if (
            type(node) is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value in ("train", "eval")
        ):
            yield _code(node.func.value)


def _handed_before(branch: cst.CSTNode, target: cst.CSTNode, switched: str) -> bool:
    """A call before `target` in `branch` is given `switched` (in any argument expression);
    not a builtin that only reads the object (`print(m)`, `isinstance(m, ...)`)."""
    for node in iter_nodes(branch, enter_scopes=False):
        if node is target:
            return False
        if (
            type(node) is cst.Call
            and not (type(node.func) is cst.Name and node.func.value in _READING_BUILTINS)
        ) and any(_mentions(n, switched) for a in node.args for n in iter_nodes(a.value)):
            return True
    return False


def _already_switched(before: list[cst.CSTNode], receiver: str, mode: Optional[bool]) -> bool:
    """`net.eval()` then `net.training = False` (or `net.train()` then `= True`) in one
    block, with no other statement about `net` in between: the call already set the flag on
    `net` and every submodule, so the assignment repeats it and changes nothing."""
    if mode is None:
        return False
    for switch in _receiver_calls(list(reversed(before)), receiver):
        if switch is None:
            return False
        if switch.func.attr.value == "eval":  # type: ignore[attr-defined]
            return not mode and not switch.args
        argument = _constant(switch.args[0].value) if switch.args else True
        return argument is mode
    return False


def _receiver_calls(statements: list[cst.CSTNode], receiver: str) -> Iterator[Optional[cst.Call]]:
    """In statement order: each `receiver.train(...)`/`receiver.eval()` call, and None for
    anything else about the receiver (a call of it, a call given it, a compound statement
    that mentions it). Callers stop at the first item."""
    for statement in statements:
        if type(statement) is not cst.SimpleStatementLine:
            if any(_mentions(n, receiver) for n in iter_nodes(statement, enter_scopes=True)):
                yield None
            continue
        for node in iter_nodes(statement):
            if type(node) is not cst.Call:
                continue
            func = node.func
            if (
                type(func) is cst.Attribute
                and func.attr.value in ("train", "eval")
                and _code(func.value) == receiver
            ):
                yield node
            elif _code(func) == receiver or any(_code(a.value) == receiver for a in node.args):
                yield None  # run or handed on


def _mentions(node: cst.CSTNode, receiver: str) -> bool:
    return type(node) in (cst.Name, cst.Attribute) and _code(node) == receiver


class InertSwitch(Rule):
    """
    ## What it does
    Finds mode and grad switches that have no effect: `model.eval` or `model.train` without
    the call, a bare `torch.no_grad()` / `torch.inference_mode()` statement, `with
    torch.no_grad:` without the call, and `model.training = False`.

    ## Why is this bad?
    Each looks like it switches something and does not. `model.eval` is an attribute access;
    a bare `torch.no_grad()` builds a context manager that is never entered; `with
    torch.no_grad:` raises `TypeError` at run time; assigning `model.training` flips the flag of
    the top module only, while `eval()`/`train()` set it on every submodule, which is what
    Dropout and BatchNorm read. The evaluation then silently runs in training mode or with
    autograd on.

    ## Example
    ```python
    model.eval
    torch.no_grad()
    for x in val_loader:
        out = model(x)
    ```

    ## Use instead
    ```python
    model.eval()
    with torch.no_grad():
        for x in val_loader:
            out = model(x)
    ```

    ## Known problems
    `model.eval` is reported only where `model` is known to be a module. A bare decorator
    `@torch.no_grad` (no parentheses) works on PyTorch 2.x and is not reported.

    ## Fix safety
    Adding the missing call, or replacing `model.training = False` by `model.eval()`, is safe.
    A bare `torch.no_grad()` statement has no certain fix (which statements should it cover?).
    """

    code = "EVL005"
    name = "inert-switch"
    summary = "A mode or grad switch that does nothing (uncalled, bare, or `.training = ...`)"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(2, 2)
            torch.set_grad_enabled(False)
            was_training = model.training
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(2, 2)
            model.eval
            torch.no_grad()
            model.training = False
        """,
            (3, 4, 5),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        for found in inert_switches(facts):
            message = f"`{found.subject}`: {_CONSEQUENCE[found.kind]}; {_ADVICE[found.kind]}"
            fix = None
            if facts.want_fixes and found.replacement is not None:
                line, column, end_line, end_column = found.place.position()
                if found.kind == "uncalled-grad-manager":
                    fix = Fix(
                        "Call the context manager",
                        (Edit(end_line, end_column, end_line, end_column, "()"),),
                    )
                else:
                    fix = Fix(
                        f"Replace with `{found.replacement}`",
                        (Edit(line, column, end_line, end_column, found.replacement),),
                    )
            yield self.diagnostic(facts, found.place, (), message, [], found.subject, fix=fix)
