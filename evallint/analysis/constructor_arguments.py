"""Constructor parameters that every construction of the class gives a module (issue 16).

`class Trainer: def __init__(self, generator, ...): self.G = generator`, built as
`Trainer(Generator(...), ...)` or `g = Generator(...); Trainer(g, ...)` in a script that
imports it, with `Generator` an nn.Module class: `self.G` holds that module in every object
of the class, so its methods' `self.G(z)` are forwards of a module whatever the attribute is
called. Decided from the constructions the project holds (this file's and those of the files
that import the class and call it), read with CPython's parser: a parameter that one of them
gives anything else (a variable holding something unknown, a parameter, a literal) or that
no construction gives is not decided here.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left
from typing import TYPE_CHECKING, Optional

from evallint.analysis.project_forwards import project_module_class
from evallint.analysis.vocabulary import SAME_MODULE_OR_MODE_METHODS, STATELESS_LAYERS
from evallint.source.parse import shared_python_tree
from evallint.torch_facts import MODE_INDEPENDENT_SUFFIXES

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def parameters_given_modules(file: FileAnalysis, class_name: str) -> frozenset[str]:
    """The parameters of `class_name.__init__` (of `file`) that every construction of the
    class in the file or in a project file importing it passes a module: a construction of
    an nn.Module class (through `.to(device)`-style chains), or a name every binding of which
    in the calling scope is one. Cached per file and class."""
    cache: dict[str, frozenset[str]] = file.__dict__.setdefault("_parameters_given_modules", {})
    found = cache.get(class_name)
    if found is None:
        found = cache[class_name] = _given_modules(file, class_name)
    return found


def _given_modules(file: FileAnalysis, class_name: str) -> frozenset[str]:
    owner = file.classes.get(class_name)
    init = owner.methods.get("__init__") if owner is not None else None
    if init is None or "." in class_name:
        return frozenset()
    params = init.params[1:] if init.params[:1] == ("self",) else init.params
    keyword_only = init.keyword_only
    texts: list[tuple[str, str]] = []
    if file._source:
        texts.append((file.path, file._source))
    project = file.project
    if project is not None:
        for caller in project.callers_of(file.path, class_name):
            code = project.code_of(caller)
            if code:
                texts.append((str(caller), code))
    verdicts: dict[str, bool] = {}
    called = re.compile(rf"(?<!class )(?<!def )\b{re.escape(class_name)}\s*\(")
    for path, text in texts:
        lines = _lines_of(text, called)
        if not lines:
            continue  # no call of the class in this text (its definition aside): no walk
        try:
            tree = shared_python_tree(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue

        def builds_module(value: ast.expr, path: str = path) -> bool:
            return _builds_module(file, path, value)

        for scope, call in _constructions(tree, class_name, lines):
            given: dict[str, ast.expr] = {}
            positional = [a for a in call.args if not isinstance(a, ast.Starred)]
            if len(positional) != len(call.args) or any(k.arg is None for k in call.keywords):
                return frozenset()  # `Trainer(*args, **kwargs)`: what goes where is unknown
            for name, value in zip(params, positional):
                given[name] = value
            for keyword in call.keywords:
                if keyword.arg is not None and (
                    keyword.arg in params or keyword.arg in keyword_only
                ):
                    given[keyword.arg] = keyword.value
            for name in (*params, *keyword_only):
                argument = given.get(name)
                holds = argument is not None and _holds_module(scope, call, argument, builds_module)
                verdicts[name] = verdicts.get(name, True) and holds
    return frozenset(name for name, holds in verdicts.items() if holds)


def _lines_of(text: str, pattern: re.Pattern[str]) -> list[int]:
    """The (1-based, sorted, distinct) lines where `pattern` matches `text`: newlines counted
    from one match to the next, not from the start of the text for each (a text calling the
    class a few hundred times was counted over again per call)."""
    lines: list[int] = []
    line, position = 1, 0
    for match in pattern.finditer(text):
        start = match.start()
        line += text.count("\n", position, start)
        position = start
        if not lines or lines[-1] != line:
            lines.append(line)
    return lines


def _constructions(
    tree: ast.Module, class_name: str, lines: list[int]
) -> list[tuple[ast.AST, ast.Call]]:
    """Each `class_name(...)` / `mod.class_name(...)` call, with the function (or module)
    whose body holds it. `lines` (sorted) are the lines where the text calls the name: only
    statements spanning one of them are walked."""
    found: list[tuple[ast.AST, ast.Call]] = []
    stack: list[tuple[ast.AST, ast.AST]] = [(tree, tree)]
    while stack:
        scope, node = stack.pop()
        for child in ast.iter_child_nodes(node):
            start = getattr(child, "lineno", None)
            if start is not None:
                end = getattr(child, "end_lineno", None) or start
                at = bisect_left(lines, start)
                if at == len(lines) or lines[at] > end:
                    continue  # no call of the name in this node's lines
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                stack.append((child, child))
                continue
            if isinstance(child, ast.Call) and _called_name(child.func) == class_name:
                found.append((scope, child))
            stack.append((scope, child))
    return found


def _called_name(func: ast.expr) -> Optional[str]:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _unchained(value: ast.expr) -> ast.expr:
    """`Net().to(device).cuda()` -> `Net()`: methods that return the module they are called on."""
    while (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in SAME_MODULE_OR_MODE_METHODS
    ):
        value = value.func.value
    return value


def _builds_module(file: FileAnalysis, path: str, value: ast.expr) -> bool:
    """A call building an nn.Module: a class of the calling file, or of the project, that
    subclasses one, or a torch.nn class (`nn.Linear(...)`, `torch.nn.Sequential(...)`);
    not a loss nor a stateless layer (as `FileAnalysis._constructs_module` reads them)."""
    value = _unchained(value)
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return False
    parts.append(func.id)
    dotted = ".".join(reversed(parts))
    last = parts[0]
    if not last[:1].isupper() or last.endswith(MODE_INDEPENDENT_SUFFIXES):
        return False  # a loss (`nn.CrossEntropyLoss()`): no module a trainer evaluates
    if last in STATELESS_LAYERS:
        return False
    if (
        dotted.startswith(("nn.", "torch.nn."))
        and dotted.count(".") == dotted.startswith("torch.") + 1
    ):
        return True
    owner = file.classes.get(dotted)
    if owner is not None and owner.is_module:
        return True
    return project_module_class(file.project, path, last)


def _holds_module(scope: ast.AST, call: ast.Call, value: ast.expr, builds_module) -> bool:
    """The argument builds a module, or is a local name every binding of which in `scope`
    before the call builds one (a parameter or a name bound otherwise: undecided)."""
    if builds_module(value):
        return True
    value = _unchained(value)
    if not isinstance(value, ast.Name):
        return False
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = scope.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        if any(a.arg == value.id for a in every):
            return False
    bindings: list[ast.expr] = []
    body = scope.body if isinstance(scope, (ast.Module, ast.FunctionDef)) else []
    for node in _walk_scope(body):
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == value.id for t in node.targets):
                bindings.append(node.value)
            elif any(value.id in _bound_names(t) for t in node.targets):
                return False  # unpacked from something: unknown
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.With, ast.NamedExpr)):
            targets = (
                [item.optional_vars for item in node.items if item.optional_vars is not None]
                if isinstance(node, ast.With)
                else [node.target]
            )
            if any(value.id in _bound_names(t) for t in targets):
                if isinstance(node, ast.AnnAssign) and node.value is not None:
                    bindings.append(node.value)
                    continue
                return False
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name).split(".")[0] == value.id for a in node.names):
                return False
    return bool(bindings) and all(builds_module(b) for b in bindings)


def _walk_scope(body: list[ast.stmt]):
    """The nodes of a scope's body, nested functions and classes left out."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        for child in reversed(list(ast.iter_child_nodes(node))):
            if not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
            ):
                stack.append(child)


def _bound_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
