"""What a field of an object handed around holds, read from the project's stores of it.

`self.cov = copy.deepcopy(args.cov)` in a client class, with `args.cov = CondNet(d).to(dev)`
in the server's file: `args` is a parameter, so the value itself cannot be followed, but the
field can. When every store of attribute `cov` in the project (`x.cov = ...` of any
receiver, `self.cov = ...` too) builds a module class that is mode-free (plain_modules.py:
mode-independent torch.nn layers only), or copies the same field again
(`copy.deepcopy(args.cov)`, `args.cov.to(dev)`), whatever object the read gets its `cov`
from holds a mode-free module: eval() changes nothing it computes (EVL001, EVL003 do not
apply). This is a field-based reading (one abstract value per attribute name across the
project, as field-sensitive points-to analyses use); it says "free" only on positive
evidence: a field with no store found, or one store of anything else (a call of a factory,
a parameter, a class that builds Dropout/BatchNorm or that cannot be read), decides nothing.
In a project too big to be read whole (MAX_INDEXED_FILES) only the file and the project files
it imports are read."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.plain_modules import mode_free_classes_of, mode_free_module_class
from evallint.analysis.project_files import MAX_INDEXED_FILES
from evallint.analysis.symbols import chain_receiver
from evallint.analysis.vocabulary import SAME_MODULE_OR_MODE_METHODS
from evallint.analysis.walk import ast_dotted
from evallint.source.parse import shared_python_tree
from evallint.torch_facts import (
    CONTAINERS,
    MODE_INDEPENDENT,
    MODE_INDEPENDENT_SUFFIXES,
    STATELESS,
)

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.project import ProjectIndex

_MAX_FIELDS = 3
"""Fields followed through copies of one another (`args.head = copy.deepcopy(args.model.fc)`)."""

_COPIES = frozenset({"copy.deepcopy", "deepcopy", "copy.copy"})
"""Calls that return a copy of their argument: the copy is of the argument's class."""


def read_field(file: FileAnalysis, value: cst.BaseExpression) -> Optional[str]:
    """`copy.deepcopy(args.cov).to(dev)`, `args.cov`, `self.model.head` -> `cov`, `head`: the
    attribute of an object other than `self` that `value` is (a copy of); None for anything
    else."""
    value = _copied(file, chain_receiver(value, SAME_MODULE_OR_MODE_METHODS))
    if type(value) is cst.Attribute and not (
        type(value.value) is cst.Name and value.value.value == "self"
    ):
        return value.attr.value  # `args.cov`, `self.model.head`: not one of this object's
    return None


def _copied(file: FileAnalysis, value: cst.BaseExpression) -> cst.BaseExpression:
    while (
        type(value) is cst.Call
        and len(value.args) == 1
        and (file.imports.qualify(value.func) or "") in _COPIES
    ):
        value = chain_receiver(value.args[0].value, SAME_MODULE_OR_MODE_METHODS)
    return value


def field_holds_mode_free(file: FileAnalysis, field: str) -> bool:
    """Whether every store of attribute `field` in the project of `file` builds a mode-free
    module or copies the field (see the module docstring); False when none is found."""
    project = file.project or file.reader
    if project is None or file.path.startswith("<") or not field.isidentifier():
        return False
    return _field_free(project, file.path, field, frozenset())


def _field_free(project: ProjectIndex, importer: str, field: str, visited: frozenset[str]) -> bool:
    """`field_holds_mode_free`, read once per reader and field in a run."""
    key = (importer, field, visited)
    cached = project.field_verdicts.get(key)
    if cached is None:
        stores: list[Path] = []
        verdict = _read_field_stores(project, importer, field, visited, stores)
        cached = project.field_verdicts[key] = (verdict, tuple(stores))
    for path in cached[1]:
        project.note_dependency(importer, path)
    return cached[0]


def _read_field_stores(
    project: ProjectIndex,
    importer: str,
    field: str,
    visited: frozenset[str],
    stores: list[Path],
) -> bool:
    if len(visited) > _MAX_FIELDS:
        return False
    own, root = project.root_of(importer)
    files = project.files_under(root)
    if len(files) >= MAX_INDEXED_FILES:
        # a project too big to be read whole: the file and the project files its analysis
        # read so far (its imports), the stores nearest to the read
        files = [own, *(Path(p).resolve() for p in sorted(project.dependencies_of(importer)))]
    stored = re.compile(rf"\.{re.escape(field)}\s*(?::[^=\n]*)?=(?!=)")
    found = False
    for candidate in files:
        code = project.code_of(candidate)
        if not code or not stored.search(code):
            continue
        verdict = _stores_mode_free(project, importer, candidate, code, field, visited)
        if verdict is None:
            continue
        if not verdict:
            return False
        found = True
        stores.append(candidate)
    return found


def _stores_mode_free(
    project: ProjectIndex,
    importer: str,
    path: Path,
    code: str,
    field: str,
    visited: frozenset[str],
) -> Optional[bool]:
    """Whether every store of `field` in this file builds a mode-free module or copies the
    field; None when the file has no store that builds its value (only copies of the field,
    or the pattern met something else): at least one such store must be found somewhere."""
    try:
        tree = shared_python_tree(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    aliases: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                aliases[alias.asname or alias.name] = "." * statement.level + (
                    statement.module or ""
                )
    free = mode_free_classes_of(str(path), code)
    seen = False
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, (ast.Tuple, ast.List)) and any(
                isinstance(e, ast.Attribute) and e.attr == field for e in target.elts
            ):
                return False  # `a.cov, b = ...`: not read here
            if not (isinstance(target, ast.Attribute) and target.attr == field):
                continue
            value = getattr(node, "value", None)
            if isinstance(node, ast.AugAssign) or value is None:
                return False
            copied = _ast_copied(value)
            if isinstance(copied, ast.Attribute) and (
                copied.attr == field or copied.attr in visited
            ):
                continue  # a copy of the field being read: no source of its value
            if not _builds_mode_free(project, importer, path, value, field, aliases, free, visited):
                return False
            seen = True
    if not seen:
        # no store that builds the value here: the text matched elsewhere (a string, a
        # comparison) or only copies of the field itself, which say nothing of its class
        return None
    return True


def _builds_mode_free(
    project: ProjectIndex,
    importer: str,
    path: Path,
    value: ast.expr,
    field: str,
    aliases: dict[str, str],
    free: frozenset[str],
    visited: frozenset[str],
) -> bool:
    """`CondNet(d).to(dev)` of a mode-free class, `nn.Linear(d, k)`, `nn.Sequential(...)` of
    such, a copy of the same field, or of another field every store of which is one
    (`args.head = copy.deepcopy(args.model.fc)`)."""
    value = _ast_copied(value)
    if isinstance(value, ast.Attribute):
        if value.attr == field or value.attr in visited:
            return True  # a copy of a field already being read: nothing new
        return _field_free(project, importer, value.attr, visited | {field})
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    if isinstance(func, ast.Name):
        if func.id in free:
            return True
        module = aliases.get(func.id)
        return module is not None and mode_free_module_class(project, str(path), module, func.id)
    name = ast_dotted(func)
    if (
        not name.startswith(("nn.", "torch.nn."))
        or name.count(".") != name.startswith("torch.") + 1
    ):
        return False
    last = name.split(".")[-1]
    if last in CONTAINERS:
        return bool(value.args) and all(
            not isinstance(a, ast.Starred)
            and _builds_mode_free(project, importer, path, a, field, aliases, free, visited)
            for a in value.args
        )
    return last in MODE_INDEPENDENT or last in STATELESS or last.endswith(MODE_INDEPENDENT_SUFFIXES)


def _ast_copied(value: ast.expr) -> ast.expr:
    """`copy.deepcopy(x).to(dev)` -> `x`."""
    while isinstance(value, ast.Call):
        func = value.func
        if isinstance(func, ast.Attribute) and func.attr in SAME_MODULE_OR_MODE_METHODS:
            value = func.value
        elif ast_dotted(func) in _COPIES and len(value.args) == 1:
            value = value.args[0]
        else:
            break
    return value
