"""Which files a run lints: explicit files always, directories walked for `*.py` and
`*.ipynb`."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "build",
    "dist",
    "__pycache__",
    ".evallint_cache",
    "*.egg-info",
    "node_modules",
    ".ipynb_checkpoints",
)
LINTED_SUFFIXES = (".py", ".ipynb")


def _matches(relative: str, name: str, patterns: tuple[str, ...]) -> bool:
    """gitignore-style: a pattern without a slash matches any path component's name;
    one with a slash matches the path relative to the walked root."""
    names, paths = _compiled(patterns)
    return bool(
        (names is not None and names.match(os.path.normcase(name)))
        or (paths is not None and paths.match(os.path.normcase(relative)))
    )


@functools.lru_cache(maxsize=32)
def _compiled(
    patterns: tuple[str, ...],
) -> tuple[Optional[re.Pattern[str]], Optional[re.Pattern[str]]]:
    """The patterns as one regular expression for names and one for relative paths: a walk
    tests every file name, and one fnmatch call per pattern per name was most of a warm run."""
    names: list[str] = []
    paths: list[str] = []
    for pattern in patterns:
        stripped = pattern.rstrip("/")
        if "/" in stripped:
            anchored = stripped.lstrip("/")
            paths += [
                fnmatch.translate(os.path.normcase(anchored)),
                fnmatch.translate(os.path.normcase(anchored + "/*")),
            ]
        else:
            names.append(fnmatch.translate(os.path.normcase(stripped)))
    return (
        re.compile("|".join(f"(?:{p})" for p in names)) if names else None,
        re.compile("|".join(f"(?:{p})" for p in paths)) if paths else None,
    )


def iter_source_files(
    paths: Iterable[str | os.PathLike[str]], exclude: Iterable[str] = DEFAULT_EXCLUDES
) -> Iterator[Path]:
    """Yield lintable files in a stable order. A file named on the command line is linted
    even if an exclude matches it (as ruff and flake8 do for explicit paths)."""
    patterns = tuple(exclude)
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            root_path = Path(root)
            rel_root = root_path.relative_to(path).as_posix()
            dirs[:] = sorted(
                d
                for d in dirs
                if not _matches(
                    f"{rel_root}/{d}".lstrip("./") if rel_root != "." else d, d, patterns
                )
            )
            for name in sorted(files):
                if not name.endswith(LINTED_SUFFIXES):
                    continue
                rel = name if rel_root == "." else f"{rel_root}/{name}"
                if not _matches(rel, name, patterns):
                    yield root_path / name
