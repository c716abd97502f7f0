"""A module class's own `eval()` or `train()` that switches no mode: calling it is calling
that method, not `nn.Module.eval`/`nn.Module.train`.

Course code often names a validation loop `eval` on the model class itself (`def eval(self):
for x, y in self.val_loader: ...`), or a training loop `train`. Such an override hides the
`nn.Module` method: `model.eval()` / `self.eval()` runs the loop and leaves every mode as it
was, so the forwards in the loop run in the mode the module was already in (train mode, for
a fresh or just-trained model), and the training after it is not in eval mode. The usual
override calls the base (`super().eval()`, `nn.Module.train(self, mode)`,
`self.train(False)`) or sets modes itself (`m.eval()` on its parts, `self.training = ...`):
that one stays a mode switch. Read from what the method's body does, not from its name or
the names it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.class_chains import Chain
from evallint.analysis.own_methods import annotated_class
from evallint.analysis.symbols import ImportTable, dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterPart, States
    from evallint.analysis.scope import ClassInfo, FunctionInfo
    from evallint.analysis.summaries import Summary

MODE_METHODS = ("eval", "train")


def switches_no_mode(method: FunctionInfo) -> bool:
    """The method's body calls no `.eval()`/`.train(...)` of anything (the base's through
    `super()`, its own, its parts') and assigns no `.training`: it cannot switch a mode
    (a switch through a helper it calls is still seen: its summary is applied)."""
    for node in iter_nodes(method.node.body):
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and func.attr.value in MODE_METHODS:
                return False
        elif type(node) in (cst.Assign, cst.AugAssign, cst.AnnAssign):
            targets = (
                [t.target for t in node.targets] if type(node) is cst.Assign else [node.target]  # type: ignore[attr-defined]
            )
            for target in targets:
                for part in iter_nodes(target):
                    if type(part) is cst.Attribute and part.attr.value == "training":
                        return False
    return True


def unbound_switch_receiver(call: cst.Call, imports: ImportTable) -> Optional[cst.BaseExpression]:
    """`model` of `nn.Module.eval(model)` / `torch.nn.Module.train(model, False)`: the base's
    switch called unbound, which switches `model` whatever its class overrides (the way
    round an override that switches nothing); None for any other call."""
    func = call.func
    if (
        type(func) is not cst.Attribute
        or func.attr.value not in MODE_METHODS
        or not call.args
        or call.args[0].keyword is not None
        or call.args[0].star
        or imports.qualify(func.value) != "torch.nn.Module"
    ):
        return None
    return call.args[0].value


def mode_method_override(
    part: InterpreterPart, call: cst.Call, states: States
) -> Optional[tuple[Optional[Summary], str]]:
    """For `x.eval()` / `x.train(...)` on a module of a class of this file whose own (or
    inherited project) `eval`/`train` switches no mode: (the method's summary, the receiver
    its `self` maps onto). The summary is None while it is being built (a recursive call):
    the call still switches nothing. None when the call is `nn.Module`'s."""
    func = call.func
    if type(func) is not cst.Attribute or func.attr.value not in MODE_METHODS or not states:
        return None
    receiver = dotted_name(func.value)
    if receiver is None:
        return None
    owner: Optional[ClassInfo]
    if receiver == "self":
        owner = part._owner()
    else:
        key = part.resolve(func.value, states[0])
        owner = (
            part.module_classes.get(key or "")
            or part.built_classes.get(key or "")
            or annotated_class(part, receiver)
        )
    if owner is None or not _is_module_class(part, owner):
        return None
    name = func.attr.value
    method = owner.methods.get(name) or part.file._inherited_method(owner, name)
    if method is None or not switches_no_mode(method):
        return None
    return part.file._summary_counted(method), receiver


def own_method_of_plain_self(part: InterpreterPart, call: cst.Call) -> Optional[FunctionInfo]:
    """`self.eval(test_loader)` in a method of a class that is no `nn.Module` (an evaluator
    or trainer object holding its model): there is no `nn.Module.eval` to call on such a
    `self`, so the call runs the class's own method (found in the project), which switches
    whatever its body switches. None for any other call."""
    func = call.func
    if (
        type(func) is not cst.Attribute
        or func.attr.value not in MODE_METHODS
        or type(func.value) is not cst.Name
        or func.value.value != "self"
    ):
        return None
    if _fits_module_signature(call, func.attr.value):
        # `self.train(False)`, `self.train(args)`: a call nn.Module's own method could take.
        # A base evallint cannot resolve may make the class a module after all, so the
        # module reading stays; only a call no nn.Module method accepts (`self.eval(loader)`)
        # is certainly the class's own
        return None
    owner = part._owner()
    if owner is None or _is_module_class(part, owner):
        return None
    return owner.methods.get(func.attr.value) or part.file._inherited_method(owner, func.attr.value)


def _fits_module_signature(call: cst.Call, name: str) -> bool:
    """`eval()` with no arguments, `train()` / `train(x)` / `train(mode=x)`: the shapes
    `nn.Module.eval` and `nn.Module.train(mode=True)` accept."""
    if name == "eval":
        return not call.args
    if len(call.args) > 1:
        return False
    return all(a.keyword is None or a.keyword.value == "mode" for a in call.args)


def hidden_mode_methods(part: InterpreterPart, key: str, receiver: str) -> frozenset[str]:
    """The mode methods (`eval`, `train`) that the class of the module `receiver` (the
    state's `key`) overrides with a method that switches no mode: for that module, advice
    to call `receiver.eval()` would run the override; `nn.Module.eval(receiver)` switches."""
    owner: Optional[ClassInfo]
    if receiver == "self":
        owner = part._owner()
    else:
        owner = (
            part.module_classes.get(key)
            or part.built_classes.get(key)
            or annotated_class(part, receiver)
        )
    if owner is None:
        return frozenset()
    found = []
    for name in MODE_METHODS:
        method = owner.methods.get(name) or part.file._inherited_method(owner, name)
        if method is not None and switches_no_mode(method):
            found.append(name)
    if not found or not _is_module_class(part, owner):
        return frozenset()
    return frozenset(found)


def _is_module_class(part: InterpreterPart, owner: ClassInfo) -> bool:
    """An nn.Module class of the file, also by a base imported from another project file
    (`class Tester(Trainer)` with `Trainer(nn.Module)` in trainer.py)."""
    if owner.is_module:
        return True
    project = part.file.project
    return project is not None and project.local_class_chain(part.file, owner) is Chain.MODULE
