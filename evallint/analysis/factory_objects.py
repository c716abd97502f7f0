"""Objects a module's method builds around the module: `pred = model.predictor()` where the
module's class defines `def predictor(self): return SeqPredictor(self)` and `SeqPredictor` is a
plain class whose `__init__` stores what it is given (`self.model = model`). The object holds
the very module it was called on, so `pred(x)` (its `__call__`, or another method) runs that
module in the mode and grad state of the caller, as `SeqPredictor(model)` written out would."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.container_binding import _argument, _stored_arguments
from evallint.analysis.instances import imported_class
from evallint.analysis.property_aliases import only_return
from evallint.analysis.scope import ClassInfo

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterPart
    from evallint.analysis.file_analysis import FileAnalysis

Made = tuple["FileAnalysis", ClassInfo, list[tuple[str, cst.BaseExpression]]]


def factory_product(part: InterpreterPart, value: cst.BaseExpression) -> Optional[Made]:
    """For `receiver.method(args)` with the receiver a module of a project class whose method
    only returns `Cls(...)` of a plain class: the analysis of the class's file, the class, and
    (attribute, caller-side expression) for each argument its `__init__` stores that is the
    method's `self` (the receiver) or one of its parameters (the caller's argument)."""
    if type(value) is not cst.Call or type(value.func) is not cst.Attribute:
        return None
    receiver = value.func.value
    if type(receiver) is not cst.Name:
        return None
    found = _receiver_class(part, receiver.value)
    if found is None:
        return None
    analysis, owner = found
    method = owner.methods.get(value.func.attr.value)
    if method is None or not method.params or method.params[0] != "self":
        return None
    built = _only_returned_call(method.node)
    if built is None:
        return None
    made = _plain_class(analysis, built)
    if made is None:
        return None
    positional = list(method.params[1:])
    pairs: list[tuple[str, cst.BaseExpression]] = []
    for attribute, inner in _stored_arguments(built, made[1], made[0]):
        if type(inner) is not cst.Name:
            continue
        if inner.value == "self":
            pairs.append((attribute, receiver))
            continue
        outer = _argument(positional, method.keyword_only, inner.value, value)
        if outer is not None and inner.value in method.params:
            pairs.append((attribute, outer))
    return (made[0], made[1], pairs) if pairs else None


def _receiver_class(part: InterpreterPart, name: str) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """The module class of `name` (built in this function from a class of this file or of
    another project file)."""
    local = part.module_classes.get(name)
    if local is not None:
        return part.file, local
    imported = part.imported_module_classes.get(name)
    project = part.file.project
    if imported is None or project is None:
        return None
    analysis = project.analysis(part.file.path, imported[0])
    owner = analysis.classes.get(imported[1]) if analysis is not None else None
    if analysis is None or owner is None or not owner.is_module:
        return None
    return analysis, owner


def _only_returned_call(function: cst.FunctionDef) -> Optional[cst.Call]:
    """The call a body that is (after a docstring) a single `return Cls(...)` returns."""
    returned = only_return(function)
    return returned if type(returned) is cst.Call else None


def _plain_class(
    analysis: FileAnalysis, call: cst.Call
) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """The plain (not nn.Module) project class `call` builds, read in the method's file."""
    if type(call.func) is cst.Name:
        local = analysis.classes.get(call.func.value)
        if local is not None:
            return (analysis, local) if not local.is_module else None
    return imported_class(analysis, call)
