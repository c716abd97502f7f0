"""What a method's declared return type says about its results' graph (EVL006).

`def evaluate(self, ...) -> (Result, float):` on the class a module attribute is annotated
with (`self.model: flair.nn.Model`, possibly abstract, in another project file): its author
declares a plain number and a record built from plain values, so `result, loss =
self.model.evaluate(...)` keeps no graph in either element, whatever the overrides compute.
Only builtin numbers and text count as plain, and project classes (no nn.Module, no base
but `object`) whose constructor declares every parameter with such types or plain builtin
containers (a record of scores). `Tensor`, an unannotated element or any other class may
carry a graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, cast

import libcst as cst

from evallint.analysis.annotated_members import annotated_attribute_type
from evallint.analysis.symbols import dotted_name

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.project import ProjectIndex
    from evallint.analysis.scope import ClassInfo

_PLAIN_BUILTINS = frozenset({"float", "int", "str", "bool", "bytes", "complex", "None"})
_PLAIN_CONTAINERS = frozenset(
    {"dict", "list", "tuple", "set", "Dict", "List", "Tuple", "Set", "Optional", "Union"}
)
_TUPLES = frozenset({"tuple", "Tuple", "typing.Tuple"})


def declared_elements(function: cst.FunctionDef) -> Optional[list[cst.BaseExpression]]:
    """The declared types of what `function` returns, one per tuple position (`-> (A, B)`,
    `-> Tuple[A, B]`), or one for a single value; None without an annotation."""
    if function.returns is None:
        return None
    annotation = function.returns.annotation
    if type(annotation) is cst.Tuple:
        return [e.value for e in annotation.elements]
    if type(annotation) is cst.Subscript and dotted_name(annotation.value) in _TUPLES:
        items = [e.slice for e in annotation.slice]
        if all(type(i) is cst.Index for i in items):
            values = [cast(cst.Index, i).value for i in items]
            if not any(type(v) is cst.Ellipsis for v in values):
                return values
    return [annotation]


def _builtin_plain(expr: cst.BaseExpression, containers: bool) -> bool:
    """`float`, `str`, `Optional[float]`; with `containers`, also `dict`, `List[str]`."""
    if type(expr) is cst.Name:
        return expr.value in _PLAIN_BUILTINS or (containers and expr.value in _PLAIN_CONTAINERS)
    if type(expr) is cst.Subscript and (dotted_name(expr.value) or "").split(".")[-1] in (
        _PLAIN_CONTAINERS
    ):
        outer = (dotted_name(expr.value) or "").split(".")[-1]
        if not containers and outer not in ("Optional", "Union"):
            return False
        return all(
            type(e.slice) is cst.Index and _builtin_plain(e.slice.value, containers)
            for e in expr.slice
        )
    return False


def plain_record(node: cst.ClassDef) -> bool:
    """A class with no base but `object` whose `__init__` declares every parameter (after
    `self`) with a plain builtin type or container: its objects hold no tensor."""
    if any(dotted_name(b.value) not in ("object",) for b in node.bases):
        return False
    body = node.body.body if type(node.body) is cst.IndentedBlock else ()
    init = next(
        (s for s in body if type(s) is cst.FunctionDef and s.name.value == "__init__"), None
    )
    if init is None:
        return False
    params = list(init.params.params)[1:] + list(init.params.kwonly_params)
    return all(
        p.annotation is not None and _builtin_plain(p.annotation.annotation, True) for p in params
    )


def _class_of(
    file: FileAnalysis, name: str, project: Optional[ProjectIndex]
) -> tuple[Optional[FileAnalysis], Optional[ClassInfo]]:
    """The analysis and class that dotted class name `name` of `file` refers to: a class of
    the file, or one a project file defines (through the file's imports; `project` is the
    linted file's: the analyses it hands out keep none)."""
    if name in file.classes:
        return file, file.classes[name]
    qualified = file.imports.qualify_name(name)
    module, _, local = qualified.rpartition(".")
    if project is None or not module:
        return None, None
    analysis = project.analysis(file.path, module)
    if analysis is None:
        return None, None
    return analysis, analysis.classes.get(local)


def _plain_element(
    file: FileAnalysis, expr: cst.BaseExpression, project: Optional[ProjectIndex]
) -> bool:
    if _builtin_plain(expr, False):
        return True
    name = dotted_name(expr)
    if name is None:
        return False
    _, found = _class_of(file, name, project)
    return found is not None and not found.is_module and plain_record(found.node)


def plain_returned_elements(
    file: FileAnalysis,
    owner: Optional[ClassInfo],
    call: cst.Call,
    receiver_class: Callable[[str], Optional[tuple[str, str]]],
) -> Optional[list[bool]]:
    """Per declared element of the method `call` runs, whether it is plain: for
    `self.<attr>.<method>(...)` with `<attr>` annotated in `owner`, or `<name>.<method>(...)`
    with `receiver_class(name)` giving the (module, class) the name was built from. None
    when the method or its declaration cannot be read."""
    func = call.func
    if type(func) is not cst.Attribute:
        return None
    receiver = func.value
    analysis: Optional[FileAnalysis] = None
    found: Optional[ClassInfo] = None
    if (
        type(receiver) is cst.Attribute
        and type(receiver.value) is cst.Name
        and receiver.value.value == "self"
        and owner is not None
    ):
        annotation = annotated_attribute_type(owner.node, receiver.attr.value)
        if annotation is not None:
            analysis, found = _class_of(file, annotation, file.project)
    elif type(receiver) is cst.Name and receiver_class(receiver.value) is not None:
        module, local = receiver_class(receiver.value)  # type: ignore[misc]
        if file.project is not None:
            analysis = file.project.analysis(file.path, module)
            found = analysis.classes.get(local) if analysis is not None else None
    if analysis is None or found is None:
        return None
    method = found.methods.get(func.attr.value) or analysis._inherited_method(
        found, func.attr.value
    )
    elements = declared_elements(method.node) if method is not None else None
    if elements is None:
        return None
    return [_plain_element(analysis, e, file.project) for e in elements]
