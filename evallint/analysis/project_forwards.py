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
import hashlib
import re
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Hashable, NamedTuple, Optional

from evallint.analysis.walk import ast_statements
from evallint.source.parse import shared_python_tree
from evallint.source.word_pattern import WordPattern
from evallint.torch_facts import NO_GRAD_METHODS, WRAPPER_SUFFIXES

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex

_Entry = tuple[dict[str, list[Path]], dict[str, bool], frozenset[str], frozenset[str]]
"""Per project root: method name -> files defining it; method name -> the answer; the names
of the module classes of the root's files (see _module_class_names); the names of its
classes that subclass a data-parallel wrapper (see _wrapper_class_names)."""
_ANSWERS: weakref.WeakKeyDictionary[ProjectIndex, dict[Hashable, _Entry]] = (
    weakref.WeakKeyDictionary()
)
_LISTED: weakref.WeakKeyDictionary[ProjectIndex, dict[Path, frozenset[Path]]] = (
    weakref.WeakKeyDictionary()
)
_TextFacts = dict[tuple, frozenset[str]]
"""Per project index: (what, a file's text) -> the names it defines with `self` ("defined")
or its forward methods ("forwards"). Roots nest (a directory without a root marker is
searched with its subdirectories), so one file is read under several roots: once is enough."""
_BY_TEXT: weakref.WeakKeyDictionary[ProjectIndex, _TextFacts] = weakref.WeakKeyDictionary()
_CLASS_BASES: weakref.WeakKeyDictionary[
    ProjectIndex, dict[str, tuple[tuple[str, frozenset[str]], ...]]
] = weakref.WeakKeyDictionary()
"""Per project index: a file's text -> its classes and the last parts of their bases' names."""


def class_definitions(tree: ast.AST) -> list[ast.ClassDef]:
    """The classes under `tree` in `ast.walk`'s order (breadth first), walking statements
    only: no expression holds a statement, so the expressions that are most of a file's
    nodes are never entered."""
    return [node for node in ast_statements(tree) if type(node) is ast.ClassDef]


class _ClassRow(NamedTuple):
    """What the project-wide questions read of one class of a file (see `_class_rows`)."""

    name: str
    bases: tuple[str, ...]
    """The last part of each base's name (`nn.Module` -> "Module"), "" when the base is
    spelled otherwise (a subscript, a call)."""
    methods: frozenset[str]
    """Methods the class body defines."""
    delegates: frozenset[str]
    """See `_forward_delegates`; computed for the rows `_module_rows(rows)` takes (no other
    files' classes), empty for the others (never read)."""


_Rows = tuple[tuple[_ClassRow, ...], dict[int, frozenset[str]]]
"""A file's class rows (in `ast.walk`'s order) and, per row index, its forward methods
(`_class_forward_methods` without the no_grad ones), computed for the rows some question
took for module classes so far."""

_ROWS: dict[bytes, Optional[_Rows]] = {}
"""A file's text (its BLAKE2 digest) -> its class rows, None when it does not parse: kept
for the process, so each project file is parsed once whatever root, project index or
language-server lint asks (a new text is a new key)."""
_ROWS_KEPT = 4096


def _class_rows(source: str, forwards_of: Optional[frozenset[str]] = None) -> Optional[_Rows]:
    """The classes of one file, with what `_module_rows` and the readers below need of each;
    given `forwards_of` (the module classes of other files), also the forward methods of the
    file's module classes. One CPython parse per text and process (a second only when a
    later question needs the forward methods of a class no earlier one did)."""
    key = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=20).digest()
    known = _ROWS.get(key, ())
    if known is None:
        return None
    if known and (
        forwards_of is None
        or all(i in known[1] for i in _module_rows(known[0], forwards_of).values())
    ):
        return known
    from evallint.analysis.forward_methods import _class_forward_methods

    try:
        tree = shared_python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        found: Optional[_Rows] = None
    else:
        nodes = class_definitions(tree)
        rows = tuple(
            _ClassRow(
                node.name,
                tuple(
                    base.attr
                    if isinstance(base, ast.Attribute)
                    else base.id
                    if isinstance(base, ast.Name)
                    else ""
                    for base in node.bases
                ),
                frozenset(
                    item.name
                    for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                ),
                frozenset(),
            )
            for node in nodes
        )
        # the delegates are read of the file's own module classes only
        # (`_delegating_forwards_of`): computed for those rows, not for every class
        delegating = set(_module_rows(rows).values())
        rows = tuple(
            row._replace(delegates=_forward_delegates(nodes[index])) if index in delegating else row
            for index, row in enumerate(rows)
        )
        forwards = dict(known[1]) if known else {}
        if forwards_of is not None:
            for index in _module_rows(rows, forwards_of).values():
                if index not in forwards:
                    grad_free: set[str] = set()
                    decorated: set[str] = set()
                    bound: dict[str, bool] = {}
                    training: set[str] = set()
                    runs = _class_forward_methods(
                        nodes[index],
                        grad_free,
                        decorated=decorated,
                        bound=bound,
                        training=training,
                        module_class=True,
                    )
                    # `!name`: a method of the class that runs no forward (`update()`
                    # rebuilding tables), for project_forward_disputed; `~name`: one that
                    # runs it only with autograd off, for project_forward_grad_free;
                    # `forward(p=c)`/`~forward(p=c)`: `forward` with a parameter bound to a
                    # constant, for project_bound_forward_grad_free; `+name`: a whole
                    # training step of the module, for project_method_trains
                    forwards[index] = (
                        frozenset(f"+{name}" for name in training)
                        | frozenset(
                            f"{'~' if off else ''}forward({key})" for key, off in bound.items()
                        )
                        | (runs - grad_free)
                        | frozenset(f"~{name}" for name in (runs & grad_free) - decorated)
                        | frozenset(
                            f"!{name}"
                            for name in rows[index].methods
                            if name not in runs and name not in grad_free
                        )
                    )
        found = (rows, forwards)
    if len(_ROWS) >= _ROWS_KEPT:
        _ROWS.clear()
    _ROWS[key] = found
    return found


def _module_rows(
    rows: tuple[_ClassRow, ...], elsewhere: frozenset[str] = frozenset()
) -> dict[str, int]:
    """`_module_classes` on class rows: the module classes of a file (by name, each the
    first of its name that subclasses a module class: the same classes chosen the same
    way), the index of each one's row."""
    found: dict[str, int] = {}
    changed = True
    while changed:
        changed = False
        for index, row in enumerate(rows):
            if row.name in found:
                continue
            for name in row.bases:
                if name.endswith("Module") or name in found or name in elsewhere:
                    found[row.name] = index
                    changed = True
                    break
    return found


def _forward_methods_of(source: str, elsewhere: frozenset[str] = frozenset()) -> frozenset[str]:
    """The methods that run the forward (without a no_grad decorator) of some module class
    of one file: one CPython parse and one walk per file, whatever method is asked."""
    table = _class_rows(source, elsewhere)
    if table is None:
        return frozenset()
    found: set[str] = set()
    for index in _module_rows(table[0], elsewhere).values():
        found.update(table[1][index])
    return frozenset(found)


_METHOD = WordPattern(r"def\s+(\w+)\s*\(\s*self\b")  # \bdef...: see word_pattern.py


def _module_methods_of(source: str, elsewhere: frozenset[str] = frozenset()) -> frozenset[str]:
    """The methods the module classes of one file define (one parse per file)."""
    table = _class_rows(source)
    if table is None:
        return frozenset()
    rows = table[0]
    return frozenset(
        name for index in _module_rows(rows, elsewhere).values() for name in rows[index].methods
    )


def project_defines_method(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project that holds `path` defines `method`: then
    the project's own definitions say what `model.sample(n)` does (project_runs_forward),
    not the method's name."""
    if project is None or path.startswith("<"):
        return False
    files, _, elsewhere, _ = _entry(project, path)
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


_WRAPPER_BASES = frozenset(WRAPPER_SUFFIXES)
_CLASS = re.compile(r"^[ \t]*class\s+(\w+)\s*\(([^)]*)\)", re.M)


def _wrapper_class_names(bases: dict[str, set[str]]) -> frozenset[str]:
    """The names of the project's classes that subclass `DataParallel` or
    `DistributedDataParallel`, directly or through other project classes (by name): their
    instances run the module they are given, in its mode."""
    return _with_subclasses(
        bases, {name for name, of in bases.items() if any(b in _WRAPPER_BASES for b in of)}
    )


def _module_class_names(bases: dict[str, set[str]]) -> frozenset[str]:
    """The names of the project's classes that subclass a module class, through classes of
    any project file (by name): `...Module` bases first, then their subclasses."""
    return _with_subclasses(
        bases, {name for name, of in bases.items() if any(b.endswith("Module") for b in of)}
    )


def _with_subclasses(bases: dict[str, set[str]], found: set[str]) -> frozenset[str]:
    """`found` and every class whose bases (by name) reach one of them."""
    changed = True
    while changed:
        changed = False
        for name, of in bases.items():
            if name not in found and of & found:
                found.add(name)
                changed = True
    return frozenset(found)


def _entry(project: ProjectIndex, path: str) -> _Entry:
    own, root = project.root_of(path)
    known = _ANSWERS.setdefault(project, {})
    by_text = _BY_TEXT.setdefault(project, {})
    class_bases = _CLASS_BASES.setdefault(project, {})
    listed = project.files_under(root)
    members = _LISTED.setdefault(project, {})
    if root not in members:
        members[root] = frozenset(listed)
    # a root listed only in part (MAX_INDEXED_FILES) may leave out the file asking: its own
    # classes and methods are part of its project's view all the same (else the file's
    # findings would depend on how many files sort before it)
    key: Hashable = root if own in members[root] else (root, own)
    entry = known.get(key)
    if entry is None:
        # one scan per project root: which files define which methods, and which classes
        # are module classes by their bases across files
        files: dict[str, list[Path]] = {}
        bases: dict[str, set[str]] = {}
        for candidate in listed if key == root else [*listed, own]:
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
        entry = known[key] = (
            files,
            {},
            _module_class_names(bases),
            _wrapper_class_names(bases),
        )
    return entry


def project_runs_forward(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project that holds `path` defines `method` as a
    method that runs its forward (without a no_grad decorator)."""
    if project is None or path.startswith("<") or method in NO_GRAD_METHODS:
        return False
    files, answers, elsewhere, _ = _entry(project, path)
    found = answers.get(method)
    if found is None:
        found = answers[method] = _some_file_reads(
            project, files, method, "forwards", _forward_methods_of, elsewhere
        ) or _some_file_reads(
            project, files, f"~{method}", "forwards", _forward_methods_of, elsewhere, method
        )
    return found


def project_forward_grad_free(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether every module class of the project whose `method` runs its forward runs it
    only with autograd off, in a `with torch.no_grad():` block of its own or through such a
    method (`def evaluate(...)` calling `self.predict(...)`, whose forward is in one)."""
    if project is None or path.startswith("<"):
        return False
    files, answers, elsewhere, _ = _entry(project, path)
    key = f"grad free {method}"
    found = answers.get(key)
    if found is None:
        by_text = _BY_TEXT.setdefault(project, {})
        free = with_grad = False
        for candidate in files.get(method, ()):
            code = project._code_of(candidate) or ""
            methods = by_text.get(("forwards", code, elsewhere))
            if methods is None:
                methods = by_text["forwards", code, elsewhere] = _forward_methods_of(
                    code, elsewhere
                )
            free = free or f"~{method}" in methods
            with_grad = with_grad or method in methods
        found = answers[key] = free and not with_grad
    return found


def project_bound_forward_grad_free(
    project: Optional[ProjectIndex], path: str, bindings: list[tuple[str, ...]]
) -> bool:
    """Whether a module call whose arguments bind `forward` parameters to constants (each
    binding by its keys, see bound_branches.binding_keys) keeps no graph: for one of
    the bindings, some module class of the project runs `forward` under it only with
    autograd off (`model(data, mode="inference")` reaching `elif mode == "inference": with
    torch.no_grad(): ...`) and none runs it with autograd on."""
    if project is None or path.startswith("<") or not bindings:
        return False
    files, answers, elsewhere, _ = _entry(project, path)
    rows: list[frozenset[str]] = []
    for keys in bindings:
        answer = f"bound {keys}"
        found = answers.get(answer)
        if found is None:
            if not rows:  # read once, when some binding was not asked before
                by_text = _BY_TEXT.setdefault(project, {})
                for candidate in files.get("forward", ()):
                    code = project._code_of(candidate) or ""
                    methods = by_text.get(("forwards", code, elsewhere))
                    if methods is None:
                        methods = by_text["forwards", code, elsewhere] = _forward_methods_of(
                            code, elsewhere
                        )
                    rows.append(methods)
            free = any(f"~forward({k})" in m for m in rows for k in keys)
            with_grad = any(f"forward({k})" in m for m in rows for k in keys)
            found = answers[answer] = free and not with_grad
        if found:
            return True
    return False


def project_forward_disputed(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project defines `method` as a method that runs no
    forward (the same read as project_runs_forward): when another class's `method` runs
    one, the name alone does not say which the call reaches."""
    if project is None or path.startswith("<"):
        return False
    files, _, elsewhere, _ = _entry(project, path)
    return _some_file_reads(
        project, files, f"!{method}", "forwards", _forward_methods_of, elsewhere, method
    )


def project_method_trains(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project defines `method` as a whole training step
    of the module (it calls `backward()` and an optimizer's `step()` itself: an
    `Autoencoder.training_step(batch, loss_func)` that owns its optimizer). When another
    class's `method` runs a forward only (a Lightning-style `training_step` returning the
    loss), the name does not say which a call reaches, and the call may be training: it is
    not taken for an evaluation's forward."""
    if project is None or path.startswith("<"):
        return False
    files, _, elsewhere, _ = _entry(project, path)
    return _some_file_reads(
        project, files, f"+{method}", "forwards", _forward_methods_of, elsewhere, method
    )


def _self_calls(function: ast.AST) -> set[str]:
    """The attributes `a` of the calls `self.a(...)` under `function`."""
    return {
        call.func.attr
        for call in ast.walk(function)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "self"
    }


def _forward_delegates(node: ast.ClassDef) -> frozenset[str]:
    """Per method `m` of the class and attribute `a` it calls on `self`: "m:a" when the
    method's only call on `self` is `self.a(...)` (a wrapper that runs one held network:
    `return self.net(x)`), "m:a+" when it calls other things of its own too. A call of the
    class's own method is read through that method's body (`forward` calls `self.score(a,
    b)`, which runs `self.net` twice: it runs `net` only)."""
    methods = {
        item.name: item
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    found: set[str] = set()
    calls: dict[str, set[str]] = {}  # one walk per method, however many methods reach it
    for name in methods:
        if name.startswith("__"):
            continue
        called: set[str] = set()
        pending, read = [name], {name}
        while pending:
            current = pending.pop()
            own = calls.get(current)
            if own is None:
                own = calls[current] = _self_calls(methods[current])
            for attribute in own:
                if attribute not in methods:
                    called.add(attribute)
                elif attribute not in read:
                    read.add(attribute)
                    pending.append(attribute)
        if len(called) == 1:
            found.add(f"{name}:{called.pop()}")
        else:
            found.update(f"{name}:{a}+" for a in called)
    return frozenset(found)


def _delegating_forwards_of(source: str) -> frozenset[str]:
    """`_forward_delegates` over the module classes of one file."""
    table = _class_rows(source)
    if table is None:
        return frozenset()
    rows = table[0]
    return frozenset(
        name for index in _module_rows(rows).values() for name in rows[index].delegates
    )


def project_forward_delegates(
    project: Optional[ProjectIndex], path: str, attribute: str, method: str = "forward"
) -> bool:
    """Whether the module classes of the project whose `method` (their `forward`, or a
    method like `encode_context`) calls `self.<attribute>` all run it and nothing else of
    their own: `model.net.eval()` then `model(x)` evaluates `net` in the mode it was
    switched to. One class whose method runs more (a head of its own) leaves it open."""
    if project is None or path.startswith("<"):
        return False
    files = _entry(project, path)[0]
    by_text = _BY_TEXT.setdefault(project, {})

    def read(candidate: Path) -> frozenset[str]:
        code = project._code_of(candidate) or ""
        found = by_text.get(("delegates", code))
        if found is None:
            found = by_text["delegates", code] = _delegating_forwards_of(code)
        return found

    # what the root's files say is kept per root and method; the asking file's own classes
    # (a file past the index's limit is not among them) are read per file: an answer kept
    # with them would answer for every later file of the root with the first asker's classes
    root = project.root_of(path)
    key = ("delegates of root", method, root[1])
    shared = by_text.get(key)
    if shared is None:
        shared = by_text[key] = frozenset().union(*map(read, files.get(method, ())))
    own = read(root[0])
    wanted, more = f"{method}:{attribute}", f"{method}:{attribute}+"
    return (wanted in shared or wanted in own) and more not in shared and more not in own


def project_module_class(project: Optional[ProjectIndex], path: str, name: str) -> bool:
    """Whether a class of this name in the project that holds `path` subclasses a module
    class, through the classes of any of its files (by name; see _module_class_names)."""
    if project is None or path.startswith("<"):
        return False
    return name in _entry(project, path)[2]


def project_wrapper_class(project: Optional[ProjectIndex], path: str, name: str) -> bool:
    """Whether a class of this name in the project that holds `path` subclasses
    `DataParallel`/`DistributedDataParallel` (through the classes of any of its files)."""
    if project is None or path.startswith("<"):
        return False
    return name in _entry(project, path)[3]
