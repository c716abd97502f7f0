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
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from evallint.analysis.project_files import project_root
from evallint.torch_facts import NO_GRAD_METHODS

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex

_Entry = tuple[dict[str, list[Path]], dict[str, bool]]
"""Per project root: method name -> files defining it; method name -> the answer."""
_ANSWERS: weakref.WeakKeyDictionary[ProjectIndex, dict[Path, _Entry]] = weakref.WeakKeyDictionary()


def _module_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """The classes of a file that subclass `nn.Module` (any base spelled `...Module`, as
    `nn.Module`, `torch.nn.Module`, `pl.LightningModule`) or another such class of it."""
    classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
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
                if name.endswith("Module") or name in found:
                    found[node.name] = node
                    changed = True
                    break
    return found


def _defines_forward_method(source: str, method: str) -> bool:
    from evallint.analysis.forward_methods import _class_forward_methods

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in _module_classes(tree).values():
        grad_free: set[str] = set()
        if method in _class_forward_methods(node, grad_free) and method not in grad_free:
            return True
    return False


_METHOD = re.compile(r"\bdef\s+(\w+)\s*\(\s*self\b")


def project_runs_forward(project: Optional[ProjectIndex], path: str, method: str) -> bool:
    """Whether some module class of the project that holds `path` defines `method` as a
    method that runs its forward (without a no_grad decorator)."""
    if project is None or path.startswith("<") or method in NO_GRAD_METHODS:
        return False
    root = project_root(Path(path).resolve())
    known = _ANSWERS.setdefault(project, {})
    entry = known.get(root)
    if entry is None:
        # one scan per project root: which files define which methods
        files: dict[str, list[Path]] = {}
        for candidate in project.files_under(root):
            code = project._code_of(candidate)
            if code and "Module" in code:
                for name in set(_METHOD.findall(code)):
                    files.setdefault(name, []).append(candidate)
        entry = known[root] = (files, {})
    files, answers = entry
    found = answers.get(method)
    if found is None:
        found = answers[method] = any(
            _defines_forward_method(project._code_of(candidate) or "", method)
            for candidate in files.get(method, ())
        )
    return found
