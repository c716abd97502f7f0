"""Parameters that every caller in the file binds to the same module global, and module
globals that every binding makes a wrapper of another (issue 16).

`def val(net, loader): net.eval(); ... crnn(image)`, called only as `val(crnn, loader)`:
`net` and the global `crnn` are one module on every path that reaches the function, so the
switch of `net` is the switch of `crnn` (and the other way round). The function is read with
the parameter as an alias of the global. Decided from the file's call sites, never from
names: a caller that passes anything else (another global, an expression, nothing) keeps the
parameter its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from evallint.analysis import reuse
from evallint.analysis.project_forwards import project_wrapper_class
from evallint.analysis.vocabulary import SAME_MODULE_METHODS, WRAPPERS
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import WRAPPER_SUFFIXES

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import FunctionInfo


def globals_every_caller_passes(
    file: FileAnalysis, info: FunctionInfo, module_globals: set[str]
) -> dict[str, str]:
    """Parameter -> the module global (one of `module_globals`: module-level names holding
    modules that the function also uses itself) that every call of this top-level function
    in the file passes for it, by position or keyword. Empty when the function is a method
    or nested, when nothing in the file calls it, or when `module_globals` is empty (the
    file's calls are then not read)."""
    if not module_globals or info.owner is not None or info.parent is not None:
        return {}
    calls = _calls_by_name(file).get(info.name, [])
    if not calls:
        return {}
    found: dict[str, str] = {}
    for position, param in enumerate(info.params):
        passed = {_passed(call, param, position) for call in calls}
        if len(passed) == 1:
            (name,) = passed
            if name is not None and name in module_globals and name != param:
                found[param] = name
    return found


def _passed(call: cst.Call, param: str, position: int) -> str | None:
    """The bare name a call passes for the parameter, if it passes a bare name."""
    positional = [a for a in call.args if a.keyword is None]
    if any(a.star for a in call.args):
        return None
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == param:
            return arg.value.value if type(arg.value) is cst.Name else None
    if position < len(positional):
        value = positional[position].value
        return value.value if type(value) is cst.Name else None
    return None


def _calls_by_name(file: FileAnalysis) -> dict[str, list[cst.Call]]:
    """`f(...)` calls of the file by the called bare name, read once per file and only when a
    function asks (see `globals_every_caller_passes`)."""
    cached = file.__dict__.get("_calls_by_name")
    if cached is None:
        cached = {}
        for node in iter_nodes(file.module, enter_scopes=True):
            if type(node) is cst.Call and type(node.func) is cst.Name:
                cached.setdefault(node.func.value, []).append(node)
        file.__dict__["_calls_by_name"] = cached
    return cached


def globals_sharing_a_module(file: FileAnalysis, module_globals: set[str]) -> dict[str, str]:
    """Module global -> the module global it wraps, for the pairs of `module_globals` (the
    module globals a function uses) where every binding of the first in the file makes it
    the second module or a wrapper of it: `para_model = nn.DataParallel(model).to(device)`,
    a project `DataParallel` subclass given `model`, or `model.to(device)`, on every branch.
    A function that calls `model.eval()` and runs `para_model(x)` switches the module it runs
    (a wrapper's mode is the wrapped module's, both ways)."""
    if len(module_globals) < 2:
        return {}
    shared = file.__dict__.get("_globals_sharing_a_module")
    if shared is None:
        shared = file.__dict__["_globals_sharing_a_module"] = _wrapping_globals(file)
    return {
        name: wrapped
        for name, wrapped in shared.items()
        if name in module_globals and wrapped in module_globals
    }


def _wrapping_globals(file: FileAnalysis) -> dict[str, str]:
    """Read once per file: module-level names every binding of which wraps one other bare
    name (and that no function rebinds under `global`)."""
    wraps: dict[str, set] = {}
    for node in iter_nodes(file.module):
        node_type = type(node)
        if node_type is cst.Assign:
            for target in node.targets:  # type: ignore[attr-defined]
                if type(target.target) is cst.Name:
                    wrapped = _wrapped_name(file, node.value)  # type: ignore[attr-defined]
                    wraps.setdefault(target.target.value, set()).add(wrapped)
                else:
                    for name in iter_nodes(target.target):
                        if type(name) is cst.Name:
                            wraps.setdefault(name.value, set()).add(None)
        elif node_type in (cst.AnnAssign, cst.AugAssign, cst.For, cst.AsName):
            target = node.target if node_type is not cst.AsName else node.name  # type: ignore[attr-defined]
            for name in iter_nodes(target):
                if type(name) is cst.Name:
                    wraps.setdefault(name.value, set()).add(None)
    if not any(None not in found and len(found) == 1 for found in wraps.values()):
        return {}
    declared: set[str] = set()  # rebound by a function that declares it `global`
    for node in iter_nodes(file.module, enter_scopes=True):
        if type(node) is cst.FunctionDef:
            names = file.scope(node)
            declared |= names.assigned & names.declared_outer
    return {
        name: next(iter(found))
        for name, found in wraps.items()
        if len(found) == 1 and None not in found and name not in declared
    }


def _wrapped_name(file: FileAnalysis, value: cst.BaseExpression) -> str | None:
    """`model`, `model.to(device)`, `nn.DataParallel(model, dim=1).cuda()`,
    `Balanced(chunk, model, dim=1)` with `Balanced` a project DataParallel subclass: the bare
    name of the module the value is; None for anything else."""
    while True:
        if type(value) is cst.Name:
            return value.value
        if type(value) is not cst.Call:
            return None
        func = value.func
        if type(func) is cst.Attribute and func.attr.value in SAME_MODULE_METHODS:
            value = func.value
            continue
        qualified = file.imports.qualify(func) or ""
        last = qualified.rsplit(".", 1)[-1]
        positional = [a.value for a in value.args if a.keyword is None and not a.star]
        keyword = [
            a.value for a in value.args if a.keyword is not None and a.keyword.value == "module"
        ]
        if qualified in WRAPPERS or last in WRAPPER_SUFFIXES:
            given = keyword or positional[:1]
        elif project_wrapper_class(file.project, file.path, last):
            # a project subclass may take arguments of its own first: the one bare name
            given = keyword or [a for a in positional if type(a) is cst.Name]
        else:
            return None
        if len(given) != 1:
            return None
        value = given[0]


def attributes_every_caller_passes(file: FileAnalysis, info: FunctionInfo) -> dict[str, str]:
    """Parameter -> the `self.X` attribute that every call of this method in the file
    passes for it: `def test_(self, loader, model): model.eval(); ... self.model(x)`, called
    only as `self.test_(loader, self.model)`, or as `self.test_(loader, best)` after
    `self.model = best` in the calling method (neither name bound again after that). The
    parameter and the attribute are then one module on every path that reaches the method.
    Empty when a call of the method's name in the file has another receiver than `self`,
    lies outside the class, or passes anything else; decided from the file's calls, never
    from names."""
    owner = info.owner
    if owner is None or info.parent is not None or not info.params or not _plain_method(info):
        return {}
    calls = _method_calls(file).get(info.name)
    if not calls or any(method is None or method.owner is not owner for method, _ in calls):
        return {}
    found: dict[str, str] = {}
    for position, param in enumerate(info.params[1:]):
        passed = {_attribute_passed(method, call, param, position) for method, call in calls}  # type: ignore[arg-type]
        if len(passed) == 1:
            (name,) = passed
            if name is not None:
                found[param] = name
    return found


def _plain_method(info: FunctionInfo) -> bool:
    return not any(d.split(".")[-1] in ("staticmethod", "classmethod") for d in info.decorators)


def _attribute_passed(
    method: FunctionInfo, call: cst.Call, param: str, position: int
) -> str | None:
    """The `self.X` the call passes for the parameter: the attribute itself, or a bare name
    the calling method stored as `self.X = name` before the call."""
    if any(a.star for a in call.args):
        return None
    positional = [a for a in call.args if a.keyword is None]
    value: cst.BaseExpression | None = None
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == param:
            value = arg.value
    if value is None and position < len(positional):
        value = positional[position].value
    if value is None:
        return None
    attribute = _self_attribute(value)
    if attribute is not None:
        return attribute
    if type(value) is cst.Name:
        return _stored_before(method, call, value.value)
    return None


def _self_attribute(value: cst.BaseExpression) -> str | None:
    if (
        type(value) is cst.Attribute
        and type(value.value) is cst.Name
        and value.value.value == "self"
    ):
        return f"self.{value.attr.value}"
    return None


def _stored_before(method: FunctionInfo, call: cst.Call, name: str) -> str | None:
    """`self.X` when the method's last binding of `name` or of `self.X` before `call` (in
    source order) is `self.X = name`, and neither is bound anywhere after it."""
    bindings, calls = reuse.memo("bindings in order", method.node, _bindings_in_order)
    at = calls.get(id(call))
    if at is None:
        return None  # the call is not in the method: never reached
    stored: str | None = None
    for index, node, bound in bindings:
        if index > at:
            if name in bound or (stored is not None and stored in bound):
                return None
            continue
        if type(node) is cst.Assign and len(node.targets) == 1:
            target = _self_attribute(node.targets[0].target)
            value = node.value
            if target is not None and type(value) is cst.Name and value.value == name:
                stored = target
                continue
        if name in bound or (stored is not None and stored in bound):
            stored = None
    return stored


def _bindings_in_order(
    function: cst.CSTNode,
) -> tuple[list[tuple[int, cst.CSTNode, set[str]]], dict[int, int]]:
    """The nodes under `function` that bind something (see `_bindings`), with their places
    in the walk and what they bind, and the place of each call: one walk per method, however
    many of its calls ask."""
    bindings: list[tuple[int, cst.CSTNode, set[str]]] = []
    calls: dict[int, int] = {}
    for index, node in enumerate(iter_nodes(function, enter_scopes=True)):
        if type(node) is cst.Call:
            calls[id(node)] = index
            continue
        bound = _bindings(node)
        if bound:
            bindings.append((index, node, bound))
    return bindings, calls


def _bindings(node: cst.CSTNode) -> set[str]:
    """Names and `self.X` attributes a statement binds (assignment, `for` and `with`
    targets)."""
    node_type = type(node)
    if node_type is cst.Assign:
        targets = [t.target for t in node.targets]  # type: ignore[attr-defined]
    elif node_type in (cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor):
        targets = [node.target]  # type: ignore[attr-defined]
    elif node_type is cst.AsName:
        targets = [node.name]  # type: ignore[attr-defined]
    else:
        return set()
    bound: set[str] = set()
    for target in targets:
        for part in iter_nodes(target):
            if type(part) is cst.Name:
                bound.add(part.value)
            else:
                attribute = _self_attribute(part)  # type: ignore[arg-type]
                if attribute is not None:
                    bound.add(attribute)
    return bound


def _method_calls(
    file: FileAnalysis,
) -> dict[str, list[tuple[FunctionInfo | None, cst.Call]]]:
    """`x.name(...)` calls of the file by method name, each with the method of a class
    (itself or a function nested in it) that makes it as `self.name(...)`, else None. Read
    once per file, only when a method asks."""
    cached = file.__dict__.get("_method_calls")
    if cached is None:
        cached = {}
        inside: set[int] = set()
        for cls in file.classes.values():
            for method in cls.methods.values():
                for node in iter_nodes(method.node, enter_scopes=True):
                    if (
                        type(node) is cst.Call
                        and type(node.func) is cst.Attribute
                        and type(node.func.value) is cst.Name
                        and node.func.value.value == "self"
                    ):
                        inside.add(id(node))
                        cached.setdefault(node.func.attr.value, []).append((method, node))
        for node in iter_nodes(file.module, enter_scopes=True):
            if (
                type(node) is cst.Call
                and type(node.func) is cst.Attribute
                and id(node) not in inside
            ):
                cached.setdefault(node.func.attr.value, []).append((None, node))
        file.__dict__["_method_calls"] = cached
    return cached
