"""The mode a module class's own constructor leaves its instances in (issue 16).

`metric = Metric()` where `Metric.__init__` ends with `self.eval()` (or with `if eval_mode:
self.eval()` and the call leaves `eval_mode` at its default `True`): the new module is in eval
mode, not in the training mode of a fresh module. Read from the constructor's summary,
specialised for the constant flags the call fixes; a switch under a condition the call does
not fix leaves both modes possible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.lattice import Mode, ModeFact, Origin
from evallint.analysis.scope import looks_like_module_name
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo, FunctionInfo


def _switches_self_to_eval(init: FunctionInfo) -> bool:
    """Whether the constructor's body calls `self.eval()` or `self.train(False)` (read before
    any summary is asked for: most constructors do not)."""
    for node in iter_nodes(init.node.body):
        if (
            type(node) is not cst.Call
            or type(node.func) is not cst.Attribute
            or type(node.func.value) is not cst.Name
            or node.func.value.value != "self"
        ):
            continue
        name = node.func.attr.value
        if name == "eval" and not node.args:
            return True
        if (
            name == "train"
            and len(node.args) == 1
            and type(node.args[0].value) is cst.Name
            and node.args[0].value.value == "False"
        ):
            return True
    return False


_PLAIN_BUILDERS = frozenset(
    {"int", "float", "str", "bool", "tuple", "list", "dict", "set", "len", "max", "min", "round"}
)


def _keeps_held_modules_in_eval(owner: ClassInfo, init: FunctionInfo) -> bool:
    """Whether the constructor switches to eval mode every module it stores on the object
    and no method of the class ever switches anything back: `self.model = model;
    self.model.eval()` in a predictor wrapper whose `forward` only runs `self.model`. Each
    `self.X = ...` the constructor assigns from a call (`Encoder(...)`, `build_head(cfg)`;
    not `int(...)` and the like) or from a name that looks like a module's must be switched
    by `self.X.eval()` there; plain values (numbers, strings, `model.window_len // 2`) do
    not count. Such an object computes in eval mode whatever mode its own flag says."""
    switched: set[str] = set()
    for node in iter_nodes(init.node.body):
        if (
            type(node) is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value == "eval"
            and not node.args
        ):
            receiver = dotted_name(node.func.value)
            if receiver is not None and receiver.startswith("self.") and receiver.count(".") == 1:
                switched.add(receiver)
    if not switched:
        return False
    for node in iter_nodes(init.node.body):
        if type(node) is not cst.Assign:
            continue
        for target in node.targets:
            name = dotted_name(target.target)
            if name is None or not name.startswith("self.") or name in switched:
                continue
            value = node.value
            called = dotted_name(value.func) if type(value) is cst.Call else None
            built = type(value) is cst.Call and called not in _PLAIN_BUILDERS
            handed = type(value) in (cst.Name, cst.Attribute) and (
                looks_like_module_name(name)
                or (type(value) is cst.Name and looks_like_module_name(value.value))
            )
            if built or handed:
                return False  # a module stored and left in its own mode
    for method in owner.methods.values():
        for node in iter_nodes(method.node.body):
            if (
                type(node) is cst.Call
                and type(node.func) is cst.Attribute
                and node.func.attr.value == "train"
                and (dotted_name(node.func.value) or "").split(".")[0] == "self"
            ):
                return False  # `self.model.train()` somewhere: the object is trained too
    return True


def constructed_modes(
    analysis: FileAnalysis, owner: ClassInfo, call: cst.Call
) -> Optional[frozenset]:
    """Mode facts of the module `call` builds, `owner` being its nn.Module class (defined in
    `analysis`), when the class's `__init__` may switch the instance to eval mode (or keeps
    every module it holds in eval mode, see `_keeps_held_modules_in_eval`); None when it
    never does (a fresh module: training mode)."""
    init = owner.methods.get("__init__")
    if init is None:
        return None
    if not _switches_self_to_eval(init):
        if _keeps_held_modules_in_eval(owner, init):
            return frozenset({ModeFact(Mode.EVAL, Origin.SWITCHED, call)})
        return None
    summary = analysis.specialised(init, call) or analysis.summary_for(init)
    if summary is None:
        return None
    facts = summary.exit_modes.get("self")
    if not facts or all(f.mode is not Mode.EVAL for f in facts):
        return None
    return frozenset(
        ModeFact(Mode.EVAL, Origin.SWITCHED, call)
        if f.mode is Mode.EVAL
        else ModeFact(Mode.TRAIN, Origin.CONSTRUCTED, call)
        for f in facts
    )


def built_class(
    file: FileAnalysis, qualified: str, imported: Optional[tuple[str, str]]
) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """The analysis and nn.Module class a constructor call builds: a class of this file, or
    (`imported`: module and class name) one of another project file, through a package's
    re-exports."""
    local = file.classes.get(qualified)
    if local is not None:
        return (file, local) if local.is_module else None
    if imported is None or file.project is None:
        return None
    analysis, owner = file.project.class_in(file.path, *imported)
    if analysis is None or owner is None or not owner.is_module:
        return None
    return analysis, owner
