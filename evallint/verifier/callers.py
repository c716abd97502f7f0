"""Where a parameter's argument comes from: the call sites of a function or a class.

The extractor follows a parameter to the expression every caller passes. A constructor's
parameter (`def __init__(self, net)`, then `self.net = net`) is passed where the class is
called (`Model(net)`) or by a subclass's `super().__init__(net)`; a function's where it is
called by name. Callers are searched in the file itself and then in the other files of the
project that name the function or class and import it from this file (read as text first;
only the files that match are parsed). Methods called on an object from another file are not
followed: the object's class is not known without running the code.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import libcst as cst

from evallint.verifier.source_index import SourceFile, dotted_or_none, module_files

MAX_SCANNED_FILES = 2000
"""Files of a project whose text is searched for a name (the rest are not read)."""
MAX_CALLER_FILES = 12
"""Other files parsed for the callers of one function or class."""

_ROOT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt")
_SKIPPED = frozenset(
    {".git", "__pycache__", "site-packages", "node_modules", ".venv", "venv", "build", "dist"}
)
LISTING_SECONDS = 30.0
_LISTINGS: dict[Path, tuple[float, list[tuple[Path, Path]]]] = {}
"""Python files (and their resolved paths) per project root, listed once per process."""
_TEXTS: dict[Path, tuple[tuple[int, int], frozenset[str]]] = {}
"""Per project file: the names it calls (`name(`), read again when the file changes."""
_CALLED = re.compile(r"\b(\w+)\s*\(")


@dataclass
class CallSite:
    file: SourceFile
    call: cst.Call
    caller: Optional[cst.FunctionDef]
    offset: int
    """How many leading positional parameters the call does not pass (`self`)."""
    local: bool
    """In the file that defines the callee."""
    inherited: bool = False
    """`self.f(...)` in a base class of the class defining method `f`."""


def project_root(path: Path) -> Path:
    """The nearest directory at most four levels up with repository or packaging files."""
    for directory in list(path.resolve().parents)[:5]:
        if any((directory / marker).exists() for marker in _ROOT_MARKERS):
            return directory
    return path.resolve().parent


def project_files(root: Path) -> list[tuple[Path, Path]]:
    """The project's Python files (each with its resolved path), listed again after
    LISTING_SECONDS (new files appear)."""
    listed = _LISTINGS.get(root)
    if listed is None or time.monotonic() - listed[0] > LISTING_SECONDS:
        found: list[Path] = []
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = sorted(
                d for d in subdirectories if d not in _SKIPPED and not d.startswith(".")
            )
            found.extend(Path(directory) / n for n in sorted(files) if n.endswith(".py"))
            if len(found) >= MAX_SCANNED_FILES:
                break
        _LISTINGS[root] = (time.monotonic(), [(p, p.resolve()) for p in found[:MAX_SCANNED_FILES]])
    return _LISTINGS[root][1]


def called_names(path: Path) -> frozenset[str]:
    """The names a project file calls (`name(` in its text, comments and strings too), read
    again only when its size or modification time changed. One pass per file replaces a
    search of the text per callee (`\\bname\\s*\\(` matches exactly when `name` is here)."""
    try:
        status = path.stat()
    except OSError:
        return frozenset()
    stamp = (status.st_mtime_ns, status.st_size)
    cached = _TEXTS.get(path)
    if cached is None or cached[0] != stamp:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        cached = (stamp, frozenset(_CALLED.findall(text)))
        _TEXTS[path] = cached
    return cached[1]


def _imports_from(other: SourceFile, local: str, defining: Path) -> bool:
    """Does `local` in `other` name something imported from the file `defining`?"""
    if local not in other.imports:
        return False
    module, level = other.imports[local]
    for owner in (module.rsplit(".", 1)[0] if "." in module else "", module):
        for candidate in module_files(other.path, owner, level):
            if candidate.resolve() == defining:
                return True
            if candidate.name == "__init__.py" and candidate.parent == defining.parent:
                return True  # re-exported by the package that holds the file
    return False


def _subclass_names(file: SourceFile, cls_name: str) -> set[str]:
    return {
        name
        for name, cls in file.classes.items()
        if any((dotted_or_none(b.value) or "").split(".")[-1] == cls_name for b in cls.bases)
    }


def _matches_local(
    call: cst.Call, caller: Optional[cst.FunctionDef], file: SourceFile, target: str, init: bool
) -> Optional[int]:
    """The offset of a call in the defining file that reaches `target`, else None."""
    callee = call.func
    if isinstance(callee, cst.Name) and callee.value == target:
        return 1 if init else 0  # a constructor call does not pass `self`
    if not isinstance(callee, cst.Attribute):
        return None
    if init and callee.attr.value == "__init__":
        # `super().__init__(x)` / `Base.__init__(self, x)` in a subclass of the class
        owner = file.class_of(caller)
        if owner is None or owner.name.value not in _subclass_names(file, target):
            return None
        return 1 if isinstance(callee.value, cst.Call) else 0
    if callee.attr.value == target:
        return 1 if init else None
    return None


def call_sites(
    file: SourceFile,
    func: cst.FunctionDef,
    cls: Optional[cst.ClassDef],
    parse: Callable[[Path], Optional[SourceFile]],
) -> Iterator[CallSite]:
    """Every call that passes arguments to `func`: in its file, then in the project."""
    init = func.name.value == "__init__" and cls is not None
    params = [p.name.value for p in (*func.params.posonly_params, *func.params.params)]
    method = bool(params) and params[0] in ("self", "cls")
    target = cls.name.value if init and cls is not None else func.name.value
    for call, caller in file.calls:
        if init:
            offset = _matches_local(call, caller, file, target, True)
        else:
            callee = call.func
            if isinstance(callee, cst.Name) and callee.value == target:
                offset = 0
            elif isinstance(callee, cst.Attribute) and callee.attr.value == target:
                offset = 1 if method else 0
            else:
                offset = None
        if offset is not None:
            yield CallSite(file, call, caller, offset, True)
    if method and not init:
        return  # a method called on an object elsewhere: its class is unknown
    if not init and file.class_of(func) is not None:
        return
    defining = file.path.resolve()
    parsed = 0
    for path, resolved in project_files(project_root(defining)):
        if resolved == defining or parsed >= MAX_CALLER_FILES:
            continue
        if target not in called_names(path):
            continue
        other = parse(path)
        parsed += 1
        if other is None:
            continue
        for call, caller in other.calls:
            dotted = dotted_or_none(call.func)
            if dotted is None or dotted.split(".")[-1] != target:
                continue
            head = dotted.split(".")[0]
            if dotted == target and _imports_from(other, target, defining):
                yield CallSite(other, call, caller, 1 if init else 0, False)
            elif dotted != target and head in other.imports and head != "self":
                module, level = other.imports[head]
                inner = ".".join([module, *dotted.split(".")[1:-1]])
                if any(
                    c.resolve() == defining
                    or (c.name == "__init__.py" and c.parent == defining.parent)
                    for c in module_files(other.path, inner, level)
                ):
                    yield CallSite(other, call, caller, 1 if init else 0, False)


def inherited_call_sites(
    chain: list[tuple[SourceFile, cst.ClassDef]], func: cst.FunctionDef
) -> Iterator[CallSite]:
    """`self.f(...)` in the project base classes of the class defining method `f` (a template
    method: the base class's `fit` calls `self.inference_forward(x, self.net)`, which each
    subclass defines). `chain` is the class and its project bases, the class first. The sites
    are marked not `local`: the caller's `self` is an instance of the subclass."""
    params = [p.name.value for p in (*func.params.posonly_params, *func.params.params)]
    if not params or params[0] != "self":
        return
    name = func.name.value
    for base_file, base in chain[1:]:
        for call, caller in base_file.calls:
            callee = call.func
            if (
                caller is not None
                and base_file.class_of(caller) is base
                and isinstance(callee, cst.Attribute)
                and callee.attr.value == name
                and dotted_or_none(callee.value) == "self"
            ):
                yield CallSite(base_file, call, caller, 1, False, inherited=True)


class CallSiteCache:
    """The call sites of each function, searched once per extractor (one `verify` call).

    The extractor asks for them once per parameter it follows, and again each time it meets
    the function on another path (a constructor with twenty parameters, whose class is built
    in the tests, was searched twenty times over the project). The sites depend on the
    project's files alone, which do not change during a call. `searches` counts the searches
    done (the rest are answered from the cache)."""

    def __init__(self, parse: Callable[[Path], Optional[SourceFile]]) -> None:
        self.parse = parse
        self.searches = 0
        self._sites: dict[
            tuple[int, int], tuple[cst.FunctionDef, Optional[cst.ClassDef], list[CallSite]]
        ] = {}

    def of(
        self, file: SourceFile, func: cst.FunctionDef, cls: Optional[cst.ClassDef]
    ) -> list[CallSite]:
        """`call_sites(file, func, cls, parse)` as a list, searched on the first request (the
        nodes are kept with the answer, so their ids are not reused while it is cached)."""
        key = (id(func), id(cls))
        cached = self._sites.get(key)
        if cached is None:
            self.searches += 1
            cached = (func, cls, list(call_sites(file, func, cls, self.parse)))
            self._sites[key] = cached
        return cached[2]
