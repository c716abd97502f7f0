"""Modules a plain class keeps in eval mode from whichever of its methods binds them.

`self.model_old = deepcopy(self.model); self.model_old.eval()` at the end of each task, or
`self.torch_model = model.eval()` at the end of `fit()`: every binding of `self.X` in the
class leaves it in eval mode (or binds `None`), and no method of the class switches it back
to training, rebinds it otherwise, or hands it to a function that might. Every other method
then finds `self.X` in eval mode: before the binding ran there was no module to run. This
extends `modes_set_at_construction` (instances.py), which reads only the constructor, to the
methods that bind a frozen or finished model later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.keyed_members import ANY_KEY, element_path
from evallint.analysis.lattice import Mode, ModeFact, Origin
from evallint.analysis.project_files import small_text
from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_METHODS
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


_READING_CALLS = frozenset(
    {"hasattr", "getattr", "isinstance", "type", "id", "len", "repr", "str", "print"}
    | {"copy.deepcopy", "deepcopy", "super"}
)
"""Calls that only read the module they are given (a deep copy leaves the original alone)."""


def modes_kept_by_methods(file: FileAnalysis, owner: ClassInfo) -> dict[str, frozenset]:
    """`self.X` -> eval-mode facts for a plain (not nn.Module) class whose methods bind
    `self.X` only to modules they leave in eval mode, or to None (see the module doc)."""
    if owner.is_module:
        return {}
    cache = file.eval_kept_attributes
    found = cache.get(owner.name)
    if found is None:
        cache[owner.name] = {}  # while in progress
        found = cache[owner.name] = _kept(file, owner)
        # never switched back to training by the class: a freeze by design, so a training
        # step through it (a frozen reference model's logits in the loss) is no EVL003
        file.deliberate_switches.update(id(f.site) for facts in found.values() for f in facts)
    return found


def _kept(file: FileAnalysis, owner: ClassInfo) -> dict[str, frozenset]:
    methods, imported = _methods_of_chain(file, owner, 3)
    bound: dict[str, list[Optional[ModeFact]]] = {}
    for method in methods:
        for key, fact in _bindings(method):
            bound.setdefault(key, []).append(fact)
    found = {
        key: frozenset(f for f in facts if f is not None and f.mode is Mode.EVAL)
        for key, facts in bound.items()
        if facts
        and all(f is not None for f in facts)
        and any(f is not None and f.mode is Mode.EVAL for f in facts)
    }
    if not found:
        return {}
    for text in imported:  # a base class of another file that may switch or rebind it
        for key in list(found):
            if f".{key.split('.', 1)[1]}" in text:
                del found[key]
    for method in methods:
        _drop_undone(file, method, found)
    return found


_NONE = ModeFact(Mode.ENTRY, Origin.ENTRY, None)
"""A binding to `None` (no module): neither eval nor a reason to give up."""


def _bindings(method: FunctionInfo) -> list[tuple[str, Optional[ModeFact]]]:
    """(`self.X`, the eval fact it is left with, `_NONE` for `None`, or None: anything
    else) for each binding of a `self.X` in the method."""
    switched: dict[int, ModeFact] = {}  # id of an Assign -> the switch after it
    for block in iter_nodes(method.node):
        if type(block) is not cst.IndentedBlock:
            continue
        # one pass from the block's end: `after` maps a name to the first statement below
        # the current one that switches it to eval mode (that statement's first such call)
        after: dict[str, cst.Call] = {}
        for statement in reversed(block.body):
            smalls = _smalls(statement)
            for small in smalls:
                if type(small) is not cst.Assign or len(small.targets) != 1:
                    continue
                call = after.get(element_path(small.targets[0].target) or "")
                if call is not None:
                    switched[id(small)] = ModeFact(Mode.EVAL, Origin.SWITCHED, call)
            for small in reversed(smalls):
                call = _switch_call(small)
                if call is not None:
                    name = element_path(call.func.value)  # type: ignore[attr-defined]
                    if name is not None:
                        after[name] = call
    found: list[tuple[str, Optional[ModeFact]]] = []
    for node in iter_nodes(method.node):
        if type(node) is not cst.Assign:
            continue
        for target in node.targets:
            for element in _elements(target.target):
                key = element_path(element) or ""
                if not key.startswith("self.") or key.count(".") != 1:
                    continue
                if not key.endswith(ANY_KEY):
                    # rebinding a dict of modules held per key empties it (`self.X = {}`): no
                    # module; anything else may hold modules in any mode
                    empty = type(node.value) is cst.Dict and not node.value.elements
                    found.append((key + ANY_KEY, _NONE if empty else None))
                if type(node.value) is cst.Name and node.value.value == "None":
                    found.append((key, _NONE))
                    continue
                call = _chained_eval(node.value)
                if call is not None and len(node.targets) == 1 and element is target.target:
                    found.append((key, ModeFact(Mode.EVAL, Origin.SWITCHED, call)))
                else:
                    found.append((key, switched.get(id(node))))
    return found


def _elements(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    if type(target) in (cst.Tuple, cst.List):
        return [e.value for e in target.elements]  # type: ignore[attr-defined]
    return [target]


def _smalls(statement: cst.CSTNode) -> list[cst.CSTNode]:
    return list(statement.body) if type(statement) is cst.SimpleStatementLine else []


def _chained_eval(value: cst.BaseExpression) -> Optional[cst.Call]:
    """The `.eval()` a chain ends with (`model.eval()`, `deepcopy(m).eval().to(device)`)."""
    while type(value) is cst.Call and type(value.func) is cst.Attribute:
        attr = value.func.attr.value
        if attr == "eval" and not value.args:
            return value
        if attr not in SAME_MODULE_METHODS and attr != "requires_grad_":
            return None
        value = value.func.value
    return None


def _switch_call(small: cst.CSTNode) -> Optional[cst.Call]:
    """The `.eval()` of `self.X.eval()` (or chained on: `self.X.eval().requires_grad_(False)`)
    as a small statement."""
    if type(small) is cst.Expr and type(small.value) is cst.Call:
        return _chained_eval(small.value)
    return None


def _methods_of_chain(
    file: FileAnalysis, owner: ClassInfo, depth: int
) -> tuple[list[FunctionInfo], list[str]]:
    """The methods of the class and of its base classes in this file; the texts of its
    bases in other project files."""
    methods = list(owner.methods.values())
    texts: list[str] = []
    for base in owner.bases if depth > 0 else ():
        cls = file.classes.get(base)
        if cls is not None:
            more, more_texts = _methods_of_chain(file, cls, depth - 1)
            methods += more
            texts += more_texts
            continue
        local = base.split(".")[-1]
        module = file.imports.modules_from.get(local)
        located = (
            file.project.located(file.path, module)
            if module is not None and file.project is not None
            else None
        )
        if located is not None:
            texts.append(small_text(located))
    return methods, texts


def _drop_undone(file: FileAnalysis, method: FunctionInfo, found: dict[str, frozenset]) -> None:
    """Remove what the method switches to training, sets below, or hands to a call that may
    switch it (a project function whose summary leaves the argument's mode alone does not)."""
    for node in iter_nodes(method.node):
        touched: list[str] = []
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and func.attr.value == "train":
                touched.append(element_path(func.value) or "")
            elif type(func) is cst.Attribute and f"{dotted_name(func.value)}{ANY_KEY}" in found:
                # `self.X.values()`, `self.X.get(k)`: its modules reached past the keyed reads
                touched.append(f"{dotted_name(func.value)}{ANY_KEY}")
            qualified = file.imports.qualify(func) or ""
            if qualified not in _READING_CALLS and not qualified.startswith("torch."):
                for index, arg in enumerate(node.args):
                    path = element_path(arg.value) or ""
                    if any(
                        path in (k, "self") or k == path + ANY_KEY for k in found
                    ) and not _leaves_alone(file, method, node, index):
                        touched.append(path)
        elif type(node) is cst.Assign:
            for target in node.targets:
                for element in _elements(target.target):
                    path = dotted_name(element) or ""
                    if any(path.startswith(k + ".") for k in found):
                        touched.append(path)
            # `m = self.X` (then `m.train()`): an alias the switches above cannot follow
            source = element_path(chain_receiver(node.value, SAME_MODULE_METHODS)) or ""
            if any(element_path(t.target) != source for t in node.targets):
                touched.append(source)
        elif type(node) in (cst.List, cst.Tuple, cst.Set):
            # `for m in [self.model, self.X]: m.train()`: held in a collection
            touched.extend(element_path(e.value) or "" for e in node.elements)  # type: ignore[attr-defined]
        for path in touched:
            for key in list(found):
                if path in ("self", key) or path + ANY_KEY == key or path.startswith(key + "."):
                    del found[key]


def _leaves_alone(file: FileAnalysis, method: FunctionInfo, call: cst.Call, index: int) -> bool:
    """Whether a function of the project (not a method of `self`) leaves the mode of the
    module given as argument `index` as it found it (`freeze_model(m)`, `losses.nll(m, x)`)."""
    func = call.func
    if type(func) is cst.Attribute and dotted_name(func.value) == "self":
        return False
    resolved = file.resolve_function(call, method, count=False, passes_module=True)
    summary = resolved[0] if resolved else None
    if summary is None or summary.opaque_switch is not None:
        return False
    arg = call.args[index]
    if arg.star:
        return False
    if arg.keyword is not None:
        param = arg.keyword.value
    else:
        params = summary.params[1:] if summary.is_method else summary.params
        if index >= len(params):
            return False
        param = params[index]
    facts = summary.exit_modes.get(param)
    return facts is not None and all(f.mode is Mode.ENTRY for f in facts)
