"""Objects of plain classes defined in other project files.

`gan = GAN(args)` with `from GAN import GAN`, then `gan.train()` and
`gan.visualize_results(epoch)`: the object holds modules (`self.G`, `self.D`) and its methods
switch, train and evaluate them. Its methods are followed with the summaries of the file that
defines the class, their `self.X` mapped onto `gan.X`, as for a class of the same file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast

import libcst as cst

from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.analysis.symbols import chain_receiver, class_of_import, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_METHODS
from evallint.analysis.walk import iter_nodes
from evallint.source.literals import literal_value
from evallint.torch_facts import CONTAINERS

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def imported_class(
    file: FileAnalysis, call: cst.Call, *, module_class: bool = False
) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """The analysis of the project file and the class a constructor call builds, for a plain
    (not nn.Module) class imported from a project file: `Cls(...)` after `from mod import
    Cls`, or `mod.Cls(...)` after `import mod`. With `module_class`, for an nn.Module class
    instead."""
    project = file.project
    name = dotted_name(call.func)
    if project is None or name is None:
        return None
    found = class_of_import(file.imports, name)
    factory = None
    if found is not None and not project.is_class(file.path, *found) and "." in name:
        # `Agent.init_from_env(env)`: a classmethod of the class that builds one
        head, factory = name.rsplit(".", 1)
        found = class_of_import(file.imports, head)
    if found is None:
        return None
    module, class_name = found
    defined = project.defining_class(file.path, module, class_name)
    if defined is None:
        return None  # a factory function, or nothing the project defines
    analysis, owner = defined
    if owner.is_module is not module_class:
        return None
    if factory is not None and not builds_own_instance(owner, factory):
        return None
    return analysis, owner


def builds_own_instance(owner: ClassInfo, name: str) -> bool:
    """Whether `owner.name` is a `@classmethod` whose every `return` gives `cls(...)` or a
    name it bound to `cls(...)` (`instance = cls(**config); ...; return instance`)."""
    method = owner.methods.get(name)
    if method is None or not any(
        dotted_name(d.decorator) == "classmethod" for d in method.node.decorators
    ):
        return False
    params = method.node.params.params
    if not params:
        return False
    cls = params[0].name.value
    built: set[str] = set()
    returns: list[cst.Return] = []
    for node in iter_nodes(method.node.body):
        if type(node) is cst.Assign and _calls_name(node.value, cls):
            built.update(t.target.value for t in node.targets if type(t.target) is cst.Name)
        elif type(node) is cst.Return:
            returns.append(node)
    return bool(returns) and all(
        r.value is not None
        and (_calls_name(r.value, cls) or (type(r.value) is cst.Name and r.value.value in built))
        for r in returns
    )


def _calls_name(value: cst.BaseExpression, name: str) -> bool:
    return type(value) is cst.Call and type(value.func) is cst.Name and value.func.value == name


def objects_in_scope(
    file: FileAnalysis, scope: Optional[FunctionInfo], *, every_class: bool = False
) -> dict[str, list[tuple[FileAnalysis, ClassInfo]]]:
    """Variables of a scope (a function, or the module's top level) assigned an object of a
    plain class of another project file anywhere in it: evidence gathering (does
    `agent.learn(memory)` train?) reads them before the assignments are interpreted. With
    `every_class`, objects of nn.Module classes and of this file's classes too (a module
    class may wrap an optimizer: `optimizer = StepWrapper(model, optimizer)`)."""
    found: dict[str, list[tuple[FileAnalysis, ClassInfo]]] = {}
    body = scope.node.body if scope is not None else file.module
    for node in iter_nodes(body):
        if type(node) is not cst.Assign or type(node.value) is not cst.Call:
            continue
        for target in node.targets:
            if type(target.target) is not cst.Name:
                continue
            built = [imported_class(file, node.value)]
            if every_class:
                local = file.classes.get(dotted_name(node.value.func) or "")
                built += [
                    imported_class(file, node.value, module_class=True),
                    (file, local) if local is not None else None,
                ]
            for held in built:
                if held is not None:
                    classes = found.setdefault(target.target.value, [])
                    if all(held[1] is not other for _, other in classes):
                        classes.append(held)
    return found


def modes_set_at_construction(
    file: FileAnalysis, owner: ClassInfo, depth: int = 3
) -> dict[str, frozenset]:
    """`self.X` -> eval-mode facts, for a plain (not nn.Module) class whose `__init__` leaves
    `self.X` in eval mode while no other method switches it back to training, rebinds it, or
    hands it to a function (that might): a `Predictor` that calls `self.model.eval()` once
    when built. Its other methods find `self.X` in eval mode."""
    from evallint.analysis.lattice import Mode

    init = owner.methods.get("__init__")
    if owner.is_module:
        return {}
    inherited = (
        _base_construction_modes(file, owner, depth)
        if depth > 0 and owner.bases and (init is None or _calls_super_init(init))
        else {}
    )
    summary = file.summary_for(init) if init is not None else None
    if init is None or summary is None:
        return _not_undone(file, owner, inherited)
    exits = dict(inherited)
    for key, facts in summary.exit_modes.items():
        if key not in inherited or any(f.mode is Mode.TRAIN for f in facts):
            exits[key] = facts  # a switch to training of the subclass's own wins
    sources: dict[str, set[str]] = {}
    for key, value in file.scope(init.node).attribute_assignments:
        # `self.model = model.cuda()`: the parameter itself
        value = chain_receiver(value, SAME_MODULE_METHODS)
        sources.setdefault(key, set()).add(
            value.value if type(value) is cst.Name and value.value in init.params else ""
        )
    for key, names in sources.items():
        (name,) = names if len(names) == 1 else ("",)
        if name and name in exits:
            exits[key] = exits[name]  # the summary keeps the mode under the parameter's name
    for key in _taken_from_a_sibling(owner, init):
        if key in exits:
            # `self.model = shared["model"]`, filled by `share()` with `self.model`: another
            # instance's module, in the modes this class's construction leaves it in
            exits[key] = frozenset(f for f in exits[key] if f.mode is not Mode.ENTRY)
    found = {
        key: facts
        for key, facts in exits.items()
        if key.startswith("self.") and facts and all(f.mode is Mode.EVAL for f in facts)
    }
    return _not_undone(file, owner, found)


def _taken_from_a_sibling(owner: ClassInfo, init: FunctionInfo) -> set[str]:
    """The `self.X` that the constructor binds, besides other bindings that are no parameter,
    to `param[K]`, where a method of the class fills a container's key K with `self.X`
    (`shared["model"] = self.model` in `share()`, or `{"model": self.model}`): a copy of the
    class hands its own module to the new one."""
    taken: dict[str, set[str]] = {}
    plain: set[str] = set()
    for node in iter_nodes(init.node):
        if type(node) is not cst.Assign:
            continue
        for target in node.targets:
            key = dotted_name(target.target)
            if key is None or not key.startswith("self.") or key.count(".") != 1:
                continue
            value = node.value
            slot = _constant_slot(value)
            held = cast(cst.Subscript, value).value if slot is not None else None
            if type(held) is cst.Name and held.value in init.params:
                taken.setdefault(key, set()).add(slot)  # type: ignore[arg-type]
            elif type(chain_receiver(value, SAME_MODULE_METHODS)) is cst.Name:
                plain.add(key)  # a parameter or a local: not known to be a sibling's
    if not taken:
        return set()
    filled: set[tuple[str, str]] = set()
    for name, method in owner.methods.items():
        if name == "__init__":
            continue
        for node in iter_nodes(method.node):
            if type(node) is cst.Assign:
                source = dotted_name(node.value)
                for target in node.targets:
                    slot = _constant_slot(target.target)
                    if slot is not None and source is not None:
                        filled.add((slot, source))
            elif type(node) is cst.Dict:
                for element in node.elements:
                    if type(element) is cst.DictElement and type(element.key) is cst.SimpleString:
                        source = dotted_name(element.value)
                        if source is not None:
                            filled.add((literal_value(element.key), source))  # type: ignore[arg-type]
    return {
        key
        for key, slots in taken.items()
        if key not in plain and all((slot, key) in filled for slot in slots)
    }


def _constant_slot(value: cst.BaseExpression) -> Optional[str]:
    """K of `x[K]`, for a string constant K."""
    if type(value) is not cst.Subscript or len(value.slice) != 1:
        return None
    index = value.slice[0].slice
    if type(index) is not cst.Index or type(index.value) is not cst.SimpleString:
        return None
    found = literal_value(index.value)
    return found if isinstance(found, str) else None


def _not_undone(
    file: FileAnalysis, owner: ClassInfo, found: dict[str, frozenset]
) -> dict[str, frozenset]:
    """`found` without what a method other than `__init__` and the methods it calls (the
    construction: `self.generate()` building and switching `self.net`) switches back to
    training, rebinds or hands to a function (that might; torch's own functions, such as
    `torch.onnx.export`, do not keep a mode they set)."""
    if not found:
        return {}
    constructing = _called_by_init(owner)
    for name, method in owner.methods.items():
        if name in constructing:
            continue
        for node in iter_nodes(method.node):
            touched: list[str] = []
            if type(node) is cst.Call:
                if type(node.func) is cst.Attribute and node.func.attr.value == "train":
                    touched.append(dotted_name(node.func.value) or "")
                if (
                    dotted_name(node.func) not in _READ_ONLY_BUILTINS
                    and not (file.imports.qualify(node.func) or "").startswith("torch.")
                    and not _keeps_modes(file, method, node)
                ):
                    touched.extend(dotted_name(arg.value) or "" for arg in node.args)
            elif type(node) is cst.Assign:
                touched.extend(
                    path
                    for path in (dotted_name(t.target) or "" for t in node.targets)
                    if not (
                        _below_a_key(path, found) and _builds_no_layer(file, method, node.value)
                    )
                )
            for path in touched:
                for key in list(found):
                    if path == "self" or path == key or path.startswith(key + "."):
                        del found[key]
    return found


def _keeps_modes(file: FileAnalysis, method: FunctionInfo, call: cst.Call) -> bool:
    """A call of a function of this file or project (not a method) whose summary switches
    nothing and trains nothing: it leaves the modules it is given in their modes."""
    from evallint.analysis.lattice import Mode

    if type(call.func) is not cst.Name:
        return False
    resolved = file.resolve_function(call, method, count=False, passes_module=True)
    summary = resolved[0] if resolved else None
    if summary is None or summary.trains or summary.opaque_switch:
        return False
    return all(f.mode is Mode.ENTRY for facts in summary.exit_modes.values() for f in facts)


def _below_a_key(path: str, found: dict[str, frozenset]) -> bool:
    """`self.model.encoder.layer = ...` under a held `self.model`: an attribute below the
    module, not the module rebound."""
    return any(path.startswith(key + ".") for key in found)


def _builds_no_layer(file: FileAnalysis, method: FunctionInfo, value: cst.BaseExpression) -> bool:
    """A value set below a module in eval mode that cannot put a layer in training mode
    there: a literal, a parameter of the method whose default is a literal (a setting), or an
    empty torch container (`nn.ModuleList([])`: no layer, so no mode)."""
    if type(value) in _LITERALS or (type(value) is cst.Name and value.value in _CONSTANTS):
        return True
    if type(value) is cst.Name:
        return any(
            param.name.value == value.value
            and param.default is not None
            and (
                type(param.default) in _LITERALS
                or (type(param.default) is cst.Name and param.default.value in _CONSTANTS)
            )
            for param in method.node.params.params
        )
    if type(value) is not cst.Call:
        return False
    qualified = file.imports.qualify(value.func) or ""
    if not qualified.startswith("torch.nn.") or qualified.split(".")[-1] not in CONTAINERS:
        return False
    return all(
        type(arg.value) in (cst.List, cst.Tuple, cst.Dict)
        and not cast("cst.List | cst.Tuple | cst.Dict", arg.value).elements
        for arg in value.args
    )


_LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.FormattedString, cst.UnaryOperation)
_CONSTANTS = frozenset({"None", "True", "False"})


def _called_by_init(owner: ClassInfo) -> set[str]:
    """`__init__` and the methods of the class it calls on `self`, transitively."""
    found = {"__init__"}
    pending = ["__init__"]
    while pending:
        method = owner.methods.get(pending.pop())
        if method is None:
            continue
        for node in iter_nodes(method.node.body):
            if (
                type(node) is cst.Call
                and type(node.func) is cst.Attribute
                and type(node.func.value) is cst.Name
                and node.func.value.value == "self"
                and node.func.attr.value in owner.methods
                and node.func.attr.value not in found
            ):
                found.add(node.func.attr.value)
                pending.append(node.func.attr.value)
    return found


_READ_ONLY_BUILTINS = frozenset(
    {"hasattr", "getattr", "isinstance", "type", "id", "len", "repr", "str", "print", "super"}
)
"""Builtins that only read what they are given (`hasattr(self, "batch_size")`)."""


def _calls_super_init(init: FunctionInfo) -> bool:
    """`super().__init__(...)` (or `Base.__init__(self, ...)`) in a constructor."""
    return any(
        type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and node.func.attr.value == "__init__"
        for node in iter_nodes(init.node.body)
    )


def _base_construction_modes(file: FileAnalysis, owner: ClassInfo, depth: int) -> dict:
    """What the constructor of a plain base class (of this file, or imported from another
    project file: `class ScoreMap(BaseMap)` whose base calls `self.model.eval()`) leaves
    `self.X` in; sites of another file's facts are dropped (its tree is not this one)."""
    from dataclasses import replace

    found: dict[str, frozenset] = {}
    for base in owner.bases:
        cls = file.classes.get(base)
        if cls is not None:
            found.update(modes_set_at_construction(file, cls, depth - 1))
            continue
        local = base.split(".")[-1]
        module = file.imports.modules_from.get(local)
        if module is None or file.project is None:
            continue
        analysis = file.project.analysis(file.path, module)
        cls = analysis.classes.get(local) if analysis is not None else None
        if analysis is None or cls is None:
            continue
        for key, facts in modes_set_at_construction(analysis, cls, depth - 1).items():
            found[key] = frozenset(replace(f, site=None) for f in facts)
    return found
