"""Module classes of other project files that compute like functions: deriving from nn.Module
only, they build no layer and no parameter, read no `training` flag and call no functional
form that takes one (a box decoder whose forward is tensor arithmetic, a loss wrapper keeping
the function it is given). Their mode cannot change their output, and their forward keeps no
graph of its own: the graph of their input belongs to the forward that produced it. Read with
CPython's parser from the file's text, never by analysing the file."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Optional

from evallint.analysis.project import _imported_from
from evallint.analysis.vocabulary import FUNCTIONAL_MODE

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex

_MODULE_BASES = frozenset({"nn.Module", "torch.nn.Module", "Module"})
_FUNCTIONAL_NAMES = frozenset(q.split(".")[-1] for q in FUNCTIONAL_MODE)
_REGISTERING = frozenset(
    {"add_module", "register_module", "register_parameter", "setattr", "__setattr__"}
)
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Warning")
_READ: dict[str, tuple[str, dict[str, Optional[bool]]]] = {}
"""Path -> (its text, class name -> verdict), for the texts read last."""


def plain_module_class(
    project: ProjectIndex, importer: str, module: str, name: str, depth: int = 2
) -> Optional[bool]:
    """None: not such a class (or not found). False: one that keeps nothing it is given.
    True: one that keeps some constructor arguments as they are (`self.loss = loss`): a
    module passed in would make it a module with parameters. A package's `__init__.py`
    that imports the class is followed to its submodule."""
    found = project.located_source(importer, module)
    if found is None:
        return None
    path, source = found
    if path.name == "__init__.py" and f"class {name}" not in source:
        for submodule in _imported_from(source, name) if depth > 0 else ():
            origin = str(path) if submodule.startswith(".") else importer
            verdict = plain_module_class(project, origin, submodule, name, depth - 1)
            if verdict is not None:
                return verdict
        return None
    cached = _READ.get(str(path))
    if cached is None or cached[0] != source:
        if len(_READ) > 256:
            _READ.clear()
        cached = _READ[str(path)] = (source, _plain_classes(source))
    return cached[1].get(name)


def _plain_classes(source: str) -> dict[str, Optional[bool]]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    return {
        node.name: _verdict(node)
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and node.bases
        and all(ast.unparse(base) in _MODULE_BASES for base in node.bases)
    }


def _verdict(node: ast.ClassDef) -> Optional[bool]:
    keeps_arguments = False
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kept = _method_verdict(item)
            if kept is None:
                return None
            keeps_arguments = keeps_arguments or kept
        elif not isinstance(item, (ast.Expr, ast.Pass)) and not (
            isinstance(item, ast.Assign) and _constant(item.value)
        ):
            return None  # class attributes other than constants
    return keeps_arguments


def _method_verdict(method: ast.FunctionDef | ast.AsyncFunctionDef) -> Optional[bool]:
    """None: builds or registers something, or reads or passes a `training` flag; else
    whether it keeps one of its arguments on `self`."""
    arguments = method.args
    params = frozenset(
        a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
    )
    owner = next(iter(a.arg for a in (*arguments.posonlyargs, *arguments.args)), None)
    raised = {id(n.exc) for n in ast.walk(method) if isinstance(n, ast.Raise) and n.exc}
    keeps = False
    for node in ast.walk(method):
        if isinstance(node, ast.Attribute) and node.attr == "training":
            return None
        if isinstance(node, ast.Call) and id(node) not in raised:
            func = node.func
            last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if (
                (last[:1].isupper() and not last.endswith(_EXCEPTION_SUFFIXES))
                or last in _REGISTERING
                or last in _FUNCTIONAL_NAMES
                or "dropout" in last.lower()
                or any(k.arg == "training" for k in node.keywords)
            ):
                return None
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
                if any(_on(n, owner) for n in ast.walk(target) if isinstance(n, ast.Attribute)):
                    return None  # `self.a, self.b = ...`
                continue  # `loss, index = ...`
            if isinstance(target, ast.Attribute) and _on(target, owner):
                value = getattr(node, "value", None)
                if isinstance(value, ast.Name) and value.id in params - {owner}:
                    keeps = True
                elif value is not None and not _constant(value):
                    return None
    return keeps


def _on(attribute: ast.Attribute, owner: Optional[str]) -> bool:
    return isinstance(attribute.value, ast.Name) and attribute.value.id == owner


def _constant(value: ast.expr) -> bool:
    """A literal, or a container or arithmetic of literals."""
    if isinstance(value, ast.Constant):
        return True
    if isinstance(value, (ast.Tuple, ast.List, ast.Set)):
        return all(_constant(e) for e in value.elts)
    if isinstance(value, ast.Dict):
        return all(
            k is not None and _constant(k) and _constant(v)
            for k, v in zip(value.keys, value.values)
        )
    if isinstance(value, ast.UnaryOp):
        return _constant(value.operand)
    if isinstance(value, ast.BinOp):
        return _constant(value.left) and _constant(value.right)
    return False
