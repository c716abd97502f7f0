"""A module's own `backward` method (a normalizing flow's inverse, `flow.backward(z)`).

nn.Module has no `backward`: autograd's is `Tensor.backward()`. A project module class that
defines one (or whose project base does) names its own computation by it, which runs its
layers as a forward does. So `x.backward(...)` on a value built from such a class is a method
call of the module, not a backward pass, and it keeps no step's graph. Decided by what the
receiver is bound to (constructor calls of the class), never by the receiver's name; a
`@staticmethod` backward (an autograd.Function's) does not count, and a module without a
backward of its own (a DeepSpeed engine's `model.backward(loss)`) keeps the backward reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.instances import imported_class
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo


def defines_backward(analysis: FileAnalysis, owner: ClassInfo) -> bool:
    """The module class (or a base of it in its file) has a non-static `backward` method of
    its own computation: one whose `.backward(...)` calls, if any, are on its sub-modules
    (`self.flow.backward(z)` with `self.flow = Flow(...)`, `flow.backward(z)` for `flow in
    self.flows`), not on a tensor (`self.loss.backward()` of a style-transfer loss module,
    a real backward pass)."""
    method = owner.methods.get("backward") or analysis._inherited_method(owner, "backward")
    if method is None or any(
        type(d.decorator) is cst.Name and d.decorator.value == "staticmethod"
        for d in method.node.decorators
    ):
        return False
    built = _constructed_attributes(method.owner or owner)
    looped: set[str] = set()
    calls: list[cst.Call] = []
    for node in iter_nodes(method.node, enter_scopes=True):
        if type(node) is cst.For and type(node.target) is cst.Name:
            looped.add(node.target.value)
        elif type(node) is cst.Call:
            calls.append(node)
    for call in calls:
        func = call.func
        if type(func) is not cst.Attribute or func.attr.value not in ("backward", "grad"):
            continue
        receiver = dotted_name(func.value)
        if receiver is None or not (receiver in looped or receiver in built):
            return False
    return True


def _constructed_attributes(owner: ClassInfo) -> frozenset[str]:
    """`self.X` paths every assignment of the class binds to a constructor call (`Flow(...)`,
    `nn.ModuleList(...)`: a capitalised callee)."""
    good: set[str] = set()
    bad: set[str] = set()
    for node in iter_nodes(owner.node, enter_scopes=True):
        if type(node) is not cst.Assign:
            continue
        callee = dotted_name(node.value.func) if type(node.value) is cst.Call else None
        constructs = callee is not None and callee.split(".")[-1][:1].isupper()
        for target in node.targets:
            name = dotted_name(target.target)
            if name is not None and name.startswith("self."):
                (good if constructs else bad).add(name)
    return frozenset(good - bad)


def _builds_own_backward_module(file: FileAnalysis, value: cst.BaseExpression) -> bool:
    if type(value) is not cst.Call:
        return False
    name = dotted_name(value.func)
    if name is None:
        return False
    local = file.classes.get(name)
    if local is not None:
        return local.is_module and defines_backward(file, local)
    found = imported_class(file, value, module_class=True)
    return found is not None and defines_backward(*found)


def own_backward_receivers(file: FileAnalysis) -> frozenset[str]:
    """Names (`model`, `self.flow`) that every assignment of the file binds to a constructor
    call of a module class with its own `backward`; cached on the file."""
    cached: Optional[frozenset[str]] = getattr(file, "_own_backward_receivers", None)
    if cached is not None:
        return cached
    good: set[str] = set()
    bad: set[str] = set()
    for node in iter_nodes(file.module, enter_scopes=True):
        if type(node) is not cst.Assign:
            continue
        for target in node.targets:
            name = dotted_name(target.target)
            if name is None:
                continue
            (good if _builds_own_backward_module(file, node.value) else bad).add(name)
    found = frozenset(good - bad)
    file._own_backward_receivers = found  # type: ignore[attr-defined]
    return found


def calls_own_backward(file: FileAnalysis, call: cst.Call) -> bool:
    """`flow.backward(z)` with `flow` bound to a module with its own `backward` (see above)."""
    func = call.func
    if type(func) is not cst.Attribute or func.attr.value != "backward":
        return False
    receiver = dotted_name(func.value)
    return receiver is not None and receiver in own_backward_receivers(file)
