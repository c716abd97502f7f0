"""Objects of plain classes defined in other project files.

`gan = GAN(args)` with `from GAN import GAN`, then `gan.train()` and
`gan.visualize_results(epoch)`: the object holds modules (`self.G`, `self.D`) and its methods
switch, train and evaluate them. Its methods are followed with the summaries of the file that
defines the class, their `self.X` mapped onto `gan.X`, as for a class of the same file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def imported_class(file: FileAnalysis, call: cst.Call) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """The analysis of the project file and the class a constructor call builds, for a plain
    (not nn.Module) class imported from a project file: `Cls(...)` after `from mod import
    Cls`, or `mod.Cls(...)` after `import mod`."""
    project = file.project
    name = dotted_name(call.func)
    if project is None or name is None:
        return None
    head, _, attr = name.partition(".")
    if attr and "." not in attr and file.imports.is_imported(head):
        module, class_name = file.imports.module_path(head), attr
    elif not attr and head in file.imports.modules_from:
        module, class_name = file.imports.modules_from[head], file.imports.qualify_name(head)
        class_name = class_name.split(".")[-1]
    else:
        return None
    if not project.is_class(file.path, module, class_name):
        return None  # a factory function, or nothing the project defines
    analysis = project.analysis(file.path, module)
    if analysis is None:
        return None
    owner = analysis.classes.get(class_name)
    if owner is None or owner.is_module:
        return None
    return analysis, owner


def objects_in_scope(
    file: FileAnalysis, scope: Optional[FunctionInfo]
) -> dict[str, list[tuple[FileAnalysis, ClassInfo]]]:
    """Variables of a scope (a function, or the module's top level) assigned an object of a
    plain class of another project file anywhere in it: evidence gathering (does
    `agent.learn(memory)` train?) reads them before the assignments are interpreted."""
    found: dict[str, list[tuple[FileAnalysis, ClassInfo]]] = {}
    body = scope.node.body if scope is not None else file.module
    for node in iter_nodes(body):
        if type(node) is not cst.Assign or type(node.value) is not cst.Call:
            continue
        for target in node.targets:
            if type(target.target) is cst.Name:
                held = imported_class(file, node.value)
                if held is not None:
                    classes = found.setdefault(target.target.value, [])
                    if all(held[1] is not other for _, other in classes):
                        classes.append(held)
    return found
