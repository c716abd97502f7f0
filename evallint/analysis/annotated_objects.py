"""Parameters annotated with a plain class of another project file (issue 16).

`def eval_ood(net: nn.Module, loader, scorer: BaseScorer): net.eval(); ...;
scorer.inference(net, loader)`: the scorer is built elsewhere (a factory, a registry, the
caller's caller), so no assignment tells its class, but the annotation does. Its methods are
followed as for `scorer = BaseScorer(...)` (see instances.py): a helper method whose every
project caller switches the network first is judged by those callers, not alone. The class is
read through a package's `__init__.py` that re-exports it (`from ood.scorers import
BaseScorer`). Module classes are left out: an annotated module is a module, its forward is
what the analysis follows anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.project_files import reexported_from, small_text
from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.analysis.symbols import class_of_import, dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.project import ProjectIndex

_OPTIONAL = ("Optional", "typing.Optional")

Held = list[tuple["FileAnalysis", ClassInfo]]


def annotated_objects(file: FileAnalysis, info: Optional[FunctionInfo]) -> dict[str, Held]:
    """Parameters of `info` whose annotation names a plain class of another project file:
    name -> [(that file's analysis, the class)]."""
    if info is None or file.project is None:
        return {}
    params = info.node.params
    annotated = [
        p
        for p in (*params.posonly_params, *params.params, *params.kwonly_params)
        if p.annotation is not None
    ]
    if not annotated:
        return {}
    receivers = _method_receivers(info)
    found: dict[str, Held] = {}
    for param in annotated:
        if param.name.value not in receivers or param.annotation is None:
            continue  # no method of it is called here: nothing to follow (nor to parse)
        annotation = param.annotation.annotation
        if type(annotation) is cst.Subscript and dotted_name(annotation.value) in _OPTIONAL:
            inner = annotation.slice[0].slice if len(annotation.slice) == 1 else None
            annotation = inner.value if type(inner) is cst.Index else annotation
        name = dotted_name(annotation)
        imported = class_of_import(file.imports, name) if name is not None else None
        if imported is None:
            continue
        held = _plain_class(file.project, file.path, imported[0], imported[1], 2)
        if held is not None:
            found[param.name.value] = [held]
    return found


def _method_receivers(info: FunctionInfo) -> frozenset[str]:
    """Names this function calls a method on (`scorer` in `scorer.inference(x)`)."""
    return frozenset(
        node.func.value.value
        for node in iter_nodes(info.node.body)
        if type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and type(node.func.value) is cst.Name
    )


def _plain_class(
    project: ProjectIndex, importer: str, module: str, name: str, depth: int
) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    located = project.located(importer, module)
    if located is None:
        return None
    analysis = project.analysis(importer, module)
    owner = analysis.classes.get(name) if analysis is not None else None
    if owner is not None:
        return None if owner.is_module else (analysis, owner)  # type: ignore[return-value]
    if located.name != "__init__.py" or depth <= 0:
        return None
    for submodule in reexported_from(small_text(located), name):
        held = _plain_class(project, str(located), "." + submodule, name, depth - 1)
        if held is not None:
            return held
    return None
