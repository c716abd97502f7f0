"""Calls on an attribute bound to an annotated constructor parameter (issue 16).

`def __init__(self, model, loss: PairLoss): self.loss = loss` and later
`self.loss.forward(batch, self.model)` or `self.scorer.score(batch, self.model)`: the object is
built elsewhere (a config, a registry, the caller's caller), so no assignment tells its class,
but the annotation does. What the call runs is the annotated class's method; when that method
is abstract (an `abc.abstractmethod`, a body that only raises `NotImplementedError`), any
override of the project's subclasses may run, as for an abstract `self.X(...)` (overrides.py).
Their summaries are applied at the call with `self.loss` as the receiver, so a module handed
to the method (`self.model`) is forwarded in the caller's mode and grad state.

Plain classes only for a method that is concrete: an annotated module's own methods are what
the module analysis follows already (`self.encoder(x)`, `self.encoder.predict(x)`); a module
class enters only when the method called is abstract (a loss object whose `forward` each
subclass defines), where that analysis sees nothing to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.annotated_members import annotated_attribute_type
from evallint.analysis.overrides import abstract_body
from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.analysis.summaries import Summary
from evallint.analysis.symbols import class_of_import

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def annotated_member_summaries(
    file: FileAnalysis, owner: Optional[ClassInfo], call: cst.Call
) -> Optional[tuple[list[Summary], str]]:
    """For `self.X.m(...)` (or `self.X(...)`: its `forward` or `__call__`) in a method of `owner`, with `self.X` bound in `__init__` to a
    parameter annotated with a project class: the summaries of what `m` may run (that class's
    method, or the project's overrides of an abstract one) and the receiver `self.X`; None
    when the call is of no such attribute or nothing is known to run."""
    func = call.func
    if owner is None or file.project is None or type(func) is not cst.Attribute:
        return None
    target: cst.BaseExpression = func.value
    name: Optional[str] = func.attr.value
    if _self_attribute(func):  # `self.loss(x, self.model)`: the object's own call
        target, name = func, None
    elif not _self_attribute(target):
        return None
    assert type(target) is cst.Attribute
    annotation = annotated_attribute_type(owner.node, target.attr.value)
    held = _annotated_class(file, annotation) if annotation is not None else None
    if held is None:
        return None
    analysis, cls = held
    if name is None:
        name = "forward" if cls.is_module else "__call__"
    declared: Optional[FunctionInfo] = cls.methods.get(name) or analysis._inherited_method(
        cls, name
    )
    if declared is None:
        return None
    if not abstract_body(declared.node):
        if cls.is_module:
            return None  # the module analysis follows a module's own methods
        summary = analysis.summary_for(declared)
        return ([summary], f"self.{target.attr.value}") if summary is not None else None
    found = [
        summary
        for defining, info in file.project.overrides(analysis, cls.name, name)
        for summary in (defining.summary_for(info),)
        if summary is not None
    ]
    return (found, f"self.{target.attr.value}") if found else None


def _self_attribute(node: cst.BaseExpression) -> bool:
    """`self.loss`."""
    return (
        type(node) is cst.Attribute and type(node.value) is cst.Name and node.value.value == "self"
    )


def _annotated_class(
    file: FileAnalysis, annotation: str
) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """The class of this file or of another project file the annotation names."""
    local = file.classes.get(annotation)
    if local is not None:
        return file, local
    project = file.project
    imported = class_of_import(file.imports, annotation)
    if project is None or imported is None:
        return None
    return project.defining_class(file.path, imported[0], imported[1])
