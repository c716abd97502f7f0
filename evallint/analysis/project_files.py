"""A project's files and their import lines, found without parsing: the project root, the
files under it, a file's stamp, and the re-exports of a package's `__init__.py` read by regular
expression (the project index parses only what these point to)."""

from __future__ import annotations

import os
import re
import sysconfig
from pathlib import Path
from typing import Optional

MAX_INDEXED_FILES = 400
"""Files of a project root scanned (once per run) for calls of helpers defined elsewhere."""

SKIPPED_DIRECTORIES = frozenset(
    {".git", "__pycache__", "site-packages", "node_modules", ".venv", "venv", "build", "dist"}
)


_RELATIVE_FROM = re.compile(r"^[ \t]*from[ \t]+\.(\w+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M)


def reexported_from(init_source: str, name: Optional[str]) -> list[str]:
    """Submodules a package's `__init__.py` re-exports `name` from (`from .utils import *`
    or `from .utils import name`); with `name` None, every submodule it imports from."""
    found = []
    for match in _RELATIVE_FROM.finditer(init_source):
        names = match.group(2)
        if name is None or "*" in names or re.search(rf"\b{re.escape(name)}\b", names):
            found.append(match.group(1))
    return found


def imported_names(names: str) -> list[tuple[str, str]]:
    """(name, the name it is bound to) of each `a` / `a as b` in a from-import's list."""
    found = []
    for part in names.strip().strip("()").split(","):
        words = part.split()
        if len(words) == 1 and words[0].isidentifier():
            found.append((words[0], words[0]))
        elif len(words) == 3 and words[1] == "as" and words[2].isidentifier():
            found.append((words[0], words[2]))
    return found


def submodule_name(module: str, name: str) -> str:
    """The module `from module import name` names if `name` is a submodule: `pkg.name`,
    `.name` for `from . import name`."""
    return module + name if module.endswith(".") else f"{module}.{name}"


_ANY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M)


def imported_from(init_source: str, name: str) -> list[str]:
    """Modules (relative `.sub` or absolute `pkg.sub`) a package's `__init__.py` imports
    `name` from, or imports everything from."""
    return [
        match.group(1)
        for match in _ANY_FROM.finditer(init_source)
        if "*" in match.group(2) or re.search(rf"\b{re.escape(name)}\b", match.group(2))
    ]


def small_text(path: Path) -> str:
    """A small file's text for a re-export check; empty when unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def display_path(path: Path) -> str:
    """A caller's path as findings show it: relative to the working directory when inside."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


ROOT_MARKERS = (
    ".git",
    ".gitignore",
    "LICENSE",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "README.md",
    "README.rst",
)


_README_MARKERS = ("README.md", "README.rst")


def project_root(path: Path) -> Path:
    """The nearest directory at most three levels up that looks like a project root (a
    repository, packaging or README file): its scripts and notebooks may call the file's
    helpers. A README alone marks a root only when no directory of those levels has a
    repository or packaging file: `src/pkg/eval/README.md` documents a subfolder of the
    repository whose root holds `pyproject.toml`. Without any, only the file's own
    directory is searched."""
    directories = list(path.parents)[:4]
    for markers in (
        tuple(m for m in ROOT_MARKERS if m not in _README_MARKERS),
        _README_MARKERS,
    ):
        for directory in directories:
            if any((directory / marker).exists() for marker in markers):
                return directory
    return path.parent


def project_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in SKIPPED_DIRECTORIES and not d.startswith(".")
        )
        for name in sorted(files):
            if name.endswith((".py", ".ipynb")):
                # `root` is resolved and os.walk does not enter linked directories: only a
                # linked file needs resolving (resolving every path cost more than its read)
                found_path = Path(directory, name)
                found.append(found_path.resolve() if os.path.islink(found_path) else found_path)
                if len(found) >= MAX_INDEXED_FILES:
                    return found
    return found


def file_stamp(path: Path) -> Optional[tuple[int, int]]:
    """(modification time, size): a cached file whose stamp changed is read again."""
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)


def installed(path: Path) -> bool:
    """Site-packages and the standard library are libraries, not the user's project."""
    text = str(path)
    return "site-packages" in text or "dist-packages" in text or text.startswith(_STDLIB)


_STDLIB = sysconfig.get_paths()["stdlib"]
