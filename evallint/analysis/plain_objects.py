"""Objects of the project's plain classes: what a value is built from decides that it holds no
nn.Module, whatever its name or its class's name says (`text_encoder = TextEncoder(...)`, a
BPE codec; `decoder: GreedyDecoder`, a CTC decoder).

A class defined at the top level of a project file with no base, or only `object` or an
abstract base (`ABC`), or only such classes of the same file as bases (`class
GreedyDecoder(Decoder)`), is no nn.Module (a NumPy `class Module(ABC)` of a course's layer
library included). Such a file may hold no torch text at all (a tokenizer's `text_utils.py`), so the
project index never analyses it: its class definitions are read from its text, once per
file version."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

from evallint.analysis.symbols import class_of_import, dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis

_PLAIN_BASES = frozenset({"object", "ABC", "abc.ABC"})
"""Bases that make no class an nn.Module: `object`, and the standard library's abstract base."""
_CLASS = re.compile(r"^class[ \t]+(\w+)[ \t]*(?:\(([\w., \t]*)\))?[ \t]*:", re.M)
_READ: dict[Path, tuple[int, frozenset[str], bool]] = {}
"""Path -> (its modification stamp, the plain classes it defines at top level, whether its
text mentions torch)."""


def plain_class_named(file: FileAnalysis, name: str) -> bool:
    """Whether `name` (as written in `file`: `Cls`, `mod.Cls`) is a plain class of this file
    or of a project file it imports."""
    local = file.classes.get(name)
    if local is not None:
        return _plain_local(file, name, 4)
    project = file.project
    if project is None:
        return False
    found = class_of_import(file.imports, name)
    if found is None:
        return False
    module, class_name = found
    path = project.located(str(file.path), module)
    return path is not None and class_name in _plain_classes(path)


def _plain_local(file: FileAnalysis, name: str, depth: int) -> bool:
    """A class of this file with only plain bases: `object`, `ABC`, plain classes of the file."""
    local = file.classes.get(name)
    if local is None or local.is_module or depth < 0:
        return False
    return all(
        base in _PLAIN_BASES or (base != name and _plain_local(file, base, depth - 1))
        for base in local.bases
    )


def own_backward_object(file: FileAnalysis, value: Optional[cst.CSTNode]) -> bool:
    """`value` builds an object of a plain class of the project whose `backward` is its own
    arithmetic, not autograd (`CrossEntropyModule()` of a NumPy exercise): a class of a project
    file that never mentions torch, or a class of this file whose `backward` method calls no
    `backward()`. `obj.backward(dout)` on it is a method call, not a backward pass."""
    if type(value) is not cst.Call:
        return False
    name = dotted_name(value.func)
    if name is None:
        return False
    local = file.classes.get(name)
    if local is not None:
        method = local.methods.get("backward")
        return (
            plain_class_named(file, name)
            and method is not None
            and not any(
                type(n) is cst.Attribute and n.attr.value == "backward"
                for n in iter_nodes(method.node)
            )
        )
    project = file.project
    found = class_of_import(file.imports, name) if project is not None else None
    if found is None or project is None:
        return False
    path = project.located(str(file.path), found[0])
    if path is None or found[1] not in _plain_classes(path):
        return False
    return not _READ[path][2]


def builds_plain_object(file: FileAnalysis, value: cst.BaseExpression) -> bool:
    """`Cls(...)` with `Cls` a plain class of the project (see plain_class_named)."""
    if type(value) is not cst.Call:
        return False
    name = dotted_name(value.func)
    return name is not None and plain_class_named(file, name)


def imported_factory_builds_plain_object(file: FileAnalysis, value: cst.BaseExpression) -> bool:
    """`tracker = build_tracker(cfg)` with `build_tracker` a function of another project file
    whose every `return` builds an object of a plain class of the project (`return
    DeepSort(...)` on each branch, the class defined there or imported there, through a
    package's re-exports): no nn.Module, whatever the name it is bound to or the calls made
    on it say. The factory's file is read as text (it may hold no torch text at all)."""
    project = file.project
    if type(value) is not cst.Call or project is None:
        return False
    name = dotted_name(value.func)
    found = class_of_import(file.imports, name) if name is not None else None
    return found is not None and project.builds_plain_objects(str(file.path), *found)


def parameter_named(function: cst.FunctionDef, name: str) -> Optional[cst.Param]:
    params = function.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param
    return None


def assigns_plain_parameter(
    file: FileAnalysis, method: cst.FunctionDef, value: cst.BaseExpression
) -> bool:
    """`self.decoder = decoder` in a method whose parameter `decoder` is annotated with a
    plain class of the project (see annotated_plain)."""
    return type(value) is cst.Name and annotated_plain(file, parameter_named(method, value.value))


def annotated_plain(file: FileAnalysis, param: Optional[cst.Param]) -> bool:
    """A parameter annotated with a plain class of the project (`decoder: GreedyDecoder`,
    `Optional[GreedyDecoder]`): the object it holds is no module."""
    if param is None or param.annotation is None:
        return False
    annotation = param.annotation.annotation
    if type(annotation) is cst.Subscript and dotted_name(annotation.value) in (
        "Optional",
        "typing.Optional",
    ):
        inner = annotation.slice[0].slice if len(annotation.slice) == 1 else None
        annotation = inner.value if type(inner) is cst.Index else annotation
    name = dotted_name(annotation)
    return name is not None and plain_class_named(file, name)


def _plain_classes(path: Path) -> frozenset[str]:
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return frozenset()
    cached = _READ.get(path)
    if cached is None or cached[0] != stamp:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        if len(_READ) > 256:
            _READ.clear()
        cached = _READ[path] = (stamp, _plain_of_text(text), "torch" in text)
    return cached[1]


def _plain_of_text(text: str) -> frozenset[str]:
    bases = {
        name: {b.strip() for b in (listed or "").split(",")} - {""} - _PLAIN_BASES
        for name, listed in _CLASS.findall(text)
    }
    plain: set[str] = set()
    grown = True
    while grown:  # bases first: a class is plain once all its bases are
        before = len(plain)
        plain |= {name for name, own in bases.items() if own <= plain}
        grown = len(plain) > before
    return frozenset(plain)


def held_from_constructor(file: FileAnalysis, owner_name: str, key: str) -> bool:
    """`self.model` of a class that is no module, set in `__init__` from a parameter with no
    annotation (`self.model = model`), and no method of the class uses it as a module
    (`self.model.eval()`, `.parameters()`): what it holds is the constructing code's choice.
    Its forward is taken for a module's only where that code is out of view, in a file that
    imports something; the class's constructions in its file (`Wrapper(pipeline("ner"))`),
    or a file with no import at all, leave it open (a transformers pipeline, a word-vectors
    model)."""
    owner = file.classes.get(owner_name)
    if owner is None or owner.is_module or not key.startswith("self.") or key.count(".") != 1:
        return False
    init = owner.methods.get("__init__")
    if init is None:
        return False
    held = None
    for node in iter_nodes(init.node.body):
        if type(node) is cst.Assign and any(dotted_name(t.target) == key for t in node.targets):
            held = node.value
    if type(held) is not cst.Name:
        return False
    param = parameter_named(init.node, held.value)
    if param is None or param.annotation is not None:
        return False
    if any(key in file.scope(method.node).evidence for method in owner.methods.values()):
        return False
    if file.imports.imports_nothing():
        return True
    called: Optional[frozenset[str]] = file.__dict__.get("_called_plain_names")
    if called is None:
        called = file.__dict__["_called_plain_names"] = frozenset(
            node.func.value
            for node in iter_nodes(file.module, enter_scopes=True)
            if type(node) is cst.Call and type(node.func) is cst.Name
        )
    return owner_name in called


def stores_by_attribute(
    module: cst.Module,
) -> dict[str, list[tuple[cst.BaseExpression, list[cst.BaseExpression]]]]:
    """Attribute name -> each value the file stores in `X.name = value` (any `X`), with the
    values its scope binds to that value's name when it is one (`tok = Tok(...)`, then
    `model.tokenizer = tok`); a name bound nowhere in the scope (a parameter) has none."""
    found: dict[str, list[tuple[cst.BaseExpression, list[cst.BaseExpression]]]] = {}
    scopes: list[cst.CSTNode] = [module]
    scopes += [n for n in iter_nodes(module, enter_scopes=True) if type(n) is cst.FunctionDef]
    for scope in scopes:
        body = scope.body if type(scope) is cst.FunctionDef else scope
        bound: dict[str, list[cst.BaseExpression]] = {}
        stores: list[tuple[str, cst.BaseExpression]] = []
        for node in iter_nodes(body):
            if type(node) is not cst.Assign:
                continue
            for target in node.targets:
                if type(target.target) is cst.Name:
                    bound.setdefault(target.target.value, []).append(node.value)
                elif type(target.target) is cst.Attribute:
                    stores.append((target.target.attr.value, node.value))
        for name, value in stores:
            held = bound.get(value.value, []) if type(value) is cst.Name else []
            found.setdefault(name, []).append((value, held))
    return found


def attribute_holds_no_module(
    file: FileAnalysis, name: str, plain: Callable[[cst.BaseExpression], bool]
) -> bool:
    """Every value the file stores in an attribute `name` is, or is bound from, a value that
    `plain` says holds no module (an object of a plain class, a tokenizer's `from_pretrained`):
    `model.tokenizer = tok` makes `model.tokenizer` no submodule of `model`. False when the
    file stores nothing there, or anything else."""
    index = file.__dict__.get("_attribute_stores")
    if index is None:
        index = file.__dict__["_attribute_stores"] = stores_by_attribute(file.module)
    stores = index.get(name)
    if not stores:
        return False
    return all(
        plain(value) if type(value) is not cst.Name else bool(held) and all(map(plain, held))
        for value, held in stores
    )
