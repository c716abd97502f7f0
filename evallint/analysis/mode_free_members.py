"""Members of a module of another project file that hold only mode-free modules.

`wrapper = LossWrapper(model, opt)` with `LossWrapper` an nn.Module class of another project
file whose methods assign `self.crit` only objects of mode-free module classes (a loss of
torch.nn, `nn.KLDivLoss(...)`; a class built of mode-independent layers, or of none:
`losses.LanguageModelCriterion()`; see plain_modules.py): `wrapper.crit` computes the same
in train and eval mode, so no evaluation of it needs `eval()` (EVL001, EVL003). The wrapper's
other members (the model it keeps) are not concerned."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from evallint.analysis.instances import imported_class
from evallint.analysis.plain_modules import mode_free_classes_of, mode_free_module_class
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_OR_MODE_METHODS
from evallint.torch_facts import MODE_INDEPENDENT_SUFFIXES

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.project import ProjectIndex


def mode_free_members(file: FileAnalysis, value: cst.BaseExpression) -> tuple[str, ...]:
    """The attributes (`crit`) that every method of the class `value` builds (through
    `.to(device)`/`.cuda()` chains) assigns only a new mode-free module; () for anything else."""
    call = chain_receiver(value, SAME_MODULE_OR_MODE_METHODS)
    if type(call) is not cst.Call or file.project is None:
        return ()
    found = imported_class(file, call, module_class=True)
    if found is None:
        return ()
    analysis, owner = found
    verdicts: dict[str, bool] = {}
    for method in owner.methods.values():
        for name, assigned in analysis.scope(method.node).attribute_assignments:
            if not name.startswith("self.") or name.count(".") != 1:
                continue
            verdicts[name[5:]] = verdicts.get(name[5:], True) and _builds_mode_free(
                file.project, analysis, assigned
            )
    return tuple(name for name, free in verdicts.items() if free)


def _builds_mode_free(
    project: ProjectIndex, analysis: FileAnalysis, value: cst.BaseExpression
) -> bool:
    """`nn.CrossEntropyLoss()`, `losses.LabelSmoothing(0.1)`, `Criterion()` of a mode-free
    class of that file or of a project file it imports."""
    if type(value) is not cst.Call:
        return False
    func = value.func
    qualified = analysis.imports.qualify(func) or dotted_name(func) or ""
    if qualified.startswith("torch.nn.") and qualified.endswith(MODE_INDEPENDENT_SUFFIXES):
        return True
    if type(func) is cst.Name and func.value in analysis.classes:
        return func.value in mode_free_classes_of(analysis.path, analysis._source or "")
    if type(func) is cst.Name and func.value in analysis.imports.modules_from:
        module = analysis.imports.modules_from[func.value]
        return mode_free_module_class(project, analysis.path, module, qualified.split(".")[-1])
    if (
        type(func) is cst.Attribute
        and type(func.value) is cst.Name
        and analysis.imports.is_imported(func.value.value)
        and not qualified.startswith("torch")
    ):
        module = analysis.imports.module_path(func.value.value)
        return mode_free_module_class(project, analysis.path, module, func.attr.value)
    return False
