"""Forward methods of the project's module classes, asked by method name.

`model.loss(sample)` on a module whose class the file cannot see (a parameter, a model
built by a registry or loaded with `torch.load`) runs the forward when some `nn.Module`
class of the project defines `loss` so that it runs its forward (see forward_methods.py:
`self(x)`, `self.forward(x)`, `self.encoder(x)`, `self.encoder.forward(x)`). The receiver
must already be known to hold a module; this only says what the method does. Asked lazily,
per (project root, method name), over the project files that define that method.
"""

from __future__ import annotations

import ast
import re
import weakref
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from evallint.torch_facts import NO_GRAD_METHODS

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex

_Entry = tuple[dict[str, list[Path]], dict[str, bool], frozenset[str]]
"""Per project root: method name -> files defining it; method name -> the answer; the names
of the module classes of the root's files (see _module_class_names)."""
_ANSWERS: weakref.WeakKeyDictionary[ProjectIndex, dict[Path, _Entry]] = weakref.WeakKeyDictionary()
_TextFacts = dict[tuple, frozenset[str]]
"""Per project index: (what, a file's text) -> the names it defines with `self` ("defined")
or its forward methods ("forwards"). Roots nest (a directory without a root marker is
searched with its subdirectories), so one file is read under several roots: once is enough."""
_BY_TEXT: weakref.WeakKeyDictionary[ProjectIndex, _TextFacts] = weakref.WeakKeyDictionary()
_CLASS_BASES: weakref.WeakKeyDictionary[
    ProjectIndex, dict[str, tuple[tuple[str, frozenset[str]], ...]]
] = weakref.WeakKeyDictionary()
"""Per project index: a file's text -> its classes and the last parts of their bases' names."""


_HOLDS_STATEMENTS: tuple[type[ast.AST], ...] = (
    ast.stmt,
    ast.excepthandler,
    *((ast.match_case,) if hasattr(ast, "match_case") else ()),  # Python 3.10+
)


def class_definitions(tree: ast.AST) -> list[ast.ClassDef]:
    """The classes under `tree` in `ast.walk`'s order (breadth first), walking statements
    only: no expression holds a statement, so the expressions that are most of a file's
    nodes are never entered."""
    found: list[ast.ClassDef] = []
    queue = deque([tree])
    while queue:
        node = queue.popleft()
        if type(node) is ast.ClassDef:
            found.append(node)
        for field in node._fields:
            value = getattr(node, field, None)
            if type(value) is list:
                queue.extend(item for item in value if isinstance(item, _HOLDS_STATEMENTS))
    return found


def _module_classes(
    tree: ast.Module, elsewhere: frozenset[str] = frozenset()
) -> dict[str, ast.ClassDef]:
    """The classes of a file that subclass `nn.Module` (any base spelled `...Module`, as
    `nn.Module`, `torch.nn.Module`, `pl.LightningModule`), another such class of it, or a
    module class of another project file (`elsewhere`, by name: `class TransE(Model)` with
    `Model(BaseModule)` in the next file)."""
    classes = class_definitions(tree)
    found: dict[str, ast.ClassDef] = {}
    changed = True
    while changed:
        changed = False
        for node in classes:
            if node.name in found:
                continue
            for base in node.bases:
                name = (
                    base.attr
                    if isinstance(base, ast.Attribute)
                    else base.id
                    if isinstance(base, ast.Name)
                    else ""
                )
                if name.endswith("Module") or name in found or name in elsewhere:
                    found[node.name] = node
                    changed = True
                    break
    return found


def _forward_methods_of(source: str, elsewhere: frozenset[str] = frozenset()) -> frozenset[str]:
    """The methods that run the forward (without a no_grad decorator) of some module class
    of one file: one CPython parse and one walk per file, whatever method is asked."""
    from evallint.analysis.forward_methods import _class_forward_methods

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    found: set[str] = set()
    for node in _module_classes(tree, elsewhere).values():
        grad_free: set[str] = set()
        forwards = _class_forward_methods(node, grad_free)
        found.update(forwards - grad_free)
        # `!name`: a method of the class that runs no forward (`update()` rebuilding tables)
        found.update(
            f"!{item.name}"
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            and item.name not in forwards
            and item.name not in grad_free
        )
    return frozenset(found)


_METHOD = re.compile(r"\bdef\s+(\w+)\s*\(\s*self\b")


def _module_methods_of(source: str, elsewhere: frozenset[str] = frozenset()) -> frozenset[str]:
    """The methods the module classes of one file define (one parse per file)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    return frozenset(
        item.name
        for node in _module_classes(tree, elsewhere).values()
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    )


def project_defines_method(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project that holds `path` defines `method`: then
    the project's own definitions say what `model.sample(n)` does (project_runs_forward),
    not the method's name."""
    if project is None or path.startswith("<"):
        return False
    files, _, elsewhere = _entry(project, path)
    return _some_file_reads(project, files, method, "module methods", _module_methods_of, elsewhere)


def _some_file_reads(
    project: ProjectIndex,
    files: dict[str, list[Path]],
    method: str,
    kind: str,
    read: Callable[[str, frozenset[str]], frozenset[str]],
    elsewhere: frozenset[str],
    defined: Optional[str] = None,
) -> bool:
    """Whether `read` (one parse per file text, kept under `kind`, given the module classes
    of other files) finds `method` in some project file whose text defines a method of that
    name (of the name `defined`, when `method` is an entry the reader derives from it)."""
    by_text = _BY_TEXT.setdefault(project, {})
    for candidate in files.get(defined or method, ()):
        code = project._code_of(candidate) or ""
        methods = by_text.get((kind, code, elsewhere))
        if methods is None:
            methods = by_text[kind, code, elsewhere] = read(code, elsewhere)
        if method in methods:
            return True
    return False


_CLASS = re.compile(r"^[ \t]*class\s+(\w+)\s*\(([^)]*)\)", re.M)


def _module_class_names(bases: dict[str, set[str]]) -> frozenset[str]:
    """The names of the project's classes that subclass a module class, through classes of
    any project file (by name): `...Module` bases first, then their subclasses."""
    found = {name for name, of in bases.items() if any(b.endswith("Module") for b in of)}
    changed = True
    while changed:
        changed = False
        for name, of in bases.items():
            if name not in found and of & found:
                found.add(name)
                changed = True
    return frozenset(found)


def _entry(project: ProjectIndex, path: str) -> _Entry:
    root = project.root_of(path)[1]
    known = _ANSWERS.setdefault(project, {})
    by_text = _BY_TEXT.setdefault(project, {})
    class_bases = _CLASS_BASES.setdefault(project, {})
    entry = known.get(root)
    if entry is None:
        # one scan per project root: which files define which methods, and which classes
        # are module classes by their bases across files
        files: dict[str, list[Path]] = {}
        bases: dict[str, set[str]] = {}
        for candidate in project.files_under(root):
            code = project._code_of(candidate)
            if not code or "class" not in code:
                continue
            classes = class_bases.get(code)
            if classes is None:  # a file under several roots is read once
                classes = class_bases[code] = tuple(
                    (
                        name,
                        frozenset(part.strip().rsplit(".", 1)[-1] for part in spelled.split(",")),
                    )
                    for name, spelled in _CLASS.findall(code)
                )
            for name, named in classes:
                bases.setdefault(name, set()).update(named)
            defined = by_text.get(("defined", code))
            if defined is None:
                defined = by_text["defined", code] = frozenset(_METHOD.findall(code))
            for name in defined:
                files.setdefault(name, []).append(candidate)
        entry = known[root] = (files, {}, _module_class_names(bases))
    return entry


def project_runs_forward(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project that holds `path` defines `method` as a
    method that runs its forward (without a no_grad decorator)."""
    if project is None or path.startswith("<") or method in NO_GRAD_METHODS:
        return False
    files, answers, elsewhere = _entry(project, path)
    found = answers.get(method)
    if found is None:
        found = answers[method] = _some_file_reads(
            project, files, method, "forwards", _forward_methods_of, elsewhere
        )
    return found


def project_forward_disputed(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project defines `method` as a method that runs no
    forward (the same read as project_runs_forward): when another class's `method` runs
    one, the name alone does not say which the call reaches."""
    if project is None or path.startswith("<"):
        return False
    files, _, elsewhere = _entry(project, path)
    return _some_file_reads(
        project, files, f"!{method}", "forwards", _forward_methods_of, elsewhere, method
    )


def _delegating_forwards_of(source: str) -> frozenset[str]:
    """Per attribute `a` that the `forward` of a module class of one file calls on `self`:
    "a" when that forward's only call on `self` is `self.a(...)` (a wrapper that runs one
    held network: `return self.net(x)`), "a+" when it calls other things of its own too."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    found: set[str] = set()
    for node in _module_classes(tree).values():
        for item in node.body:
            if not isinstance(item, ast.FunctionDef) or item.name != "forward":
                continue
            called = {
                call.func.attr
                for call in ast.walk(item)
                if isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name)
                and call.func.value.id == "self"
            }
            found.update(called if len(called) == 1 else (f"{a}+" for a in called))
    return frozenset(found)


def project_forward_delegates(project: Optional[ProjectIndex], path: str, attribute: str) -> bool:
    """Whether the module classes of the project whose `forward` calls `self.<attribute>`
    all run it and nothing else of their own: `model.net.eval()` then `model(x)` evaluates
    `net` in the mode it was switched to. One class whose forward runs more (a head of its
    own) leaves it open."""
    if project is None or path.startswith("<"):
        return False
    files, answers, _ = _entry(project, path)
    key = f"delegates {attribute}"
    found = answers.get(key)
    if found is None:
        own = project.root_of(path)[0]
        by_text = _BY_TEXT.setdefault(project, {})
        seen: set[str] = set()
        for candidate in dict.fromkeys([own, *files.get("forward", ())]):
            code = project._code_of(candidate) or ""
            read = by_text.get(("delegates", code))
            if read is None:
                read = by_text["delegates", code] = _delegating_forwards_of(code)
            seen |= read
        found = answers[key] = attribute in seen and attribute + "+" not in seen
    return found


def project_module_class(project: Optional[ProjectIndex], path: str, name: str) -> bool:
    """Whether a class of this name in the project that holds `path` subclasses a module
    class, through the classes of any of its files (by name; see _module_class_names)."""
    if project is None or path.startswith("<"):
        return False
    return name in _entry(project, path)[2]
