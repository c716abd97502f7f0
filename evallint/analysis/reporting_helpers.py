"""Plain functions of a project file that a forward's result may be handed to.

`save_img(out, path)` from the project's `utils.py`: such helpers often live in files with
no torch text at all (image and plotting utilities), which the project index does not read
(their functions cannot run a forward). Whether a helper only reports what it is given is
decided in reported.py; this finds its definition: a top-level `def` of the imported file,
read only when the file's text defines that name, and parsed once per file and change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.source.parse import ParseFailure, parse_module

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex

MAX_HELPER_FILE_CHARS = 200_000
"""A larger file is not read for its helpers (a generated or vendored module)."""

_TREES: dict[Path, tuple[Optional[tuple[int, int]], Optional[cst.Module]]] = {}
_MAX_TREES = 64


def _stamp(path: Path) -> Optional[tuple[int, int]]:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def imported_helper(
    project: ProjectIndex, importer: str, module: str, name: str
) -> Optional[cst.FunctionDef]:
    """The top-level function `name` of the project file `module` imported by `importer`."""
    path = project._locate(importer, module)
    if path is None or path.suffix != ".py":
        return None
    stamp = _stamp(path)
    cached = _TREES.get(path)
    if cached is None or cached[0] != stamp:
        tree: Optional[cst.Module] = None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        if len(text) <= MAX_HELPER_FILE_CHARS and re.search(rf"\bdef\s+{re.escape(name)}\b", text):
            parsed = parse_module(text)
            tree = None if isinstance(parsed, ParseFailure) else parsed
        if len(_TREES) >= _MAX_TREES:
            _TREES.clear()
        if tree is None:
            return None  # not kept: another name may be asked of the same file
        _TREES[path] = cached = (stamp, tree)
    module_tree = cached[1]
    for statement in module_tree.body if module_tree is not None else ():
        if type(statement) is cst.FunctionDef and statement.name.value == name:
            return statement
    return None
