"""Which files a run lints: directories walked for `*.py`, `*.pyi` and `*.ipynb`, minus what
the configuration excludes and what `.gitignore`/`.ignore` files ignore; files named on the
command line always, unless `force-exclude` is on (as ruff and flake8 do).

Exclude patterns are matched only against the part of a path below the directory the user
named, so a checkout that happens to live under `/build/` or `.../site-packages/` is still
linted.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable, Optional

from evallint.engine.config import Config, config_for_file
from evallint.source.ignore import IgnoreFiles, PathPatterns, compile_patterns

LINTED_SUFFIXES = (".py", ".pyi", ".ipynb")

Settings = Callable[[str], Config]
"""The settings for a file path (its directory's configuration with command-line overrides)."""


def iter_source_files(
    paths: Iterable[str | os.PathLike[str]], settings: Optional[Settings] = None
) -> Iterator[Path]:
    """Yield lintable files in a stable order.

    :raises ConfigError: a configuration found on the way is unusable.
    """
    settings = settings or config_for_file
    ignore_files = IgnoreFiles()
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            if not _force_excluded(str(path), settings, ignore_files, is_dir=False):
                yield path
            continue
        if _force_excluded(str(path), settings, ignore_files, is_dir=True):
            continue
        named = os.path.abspath(path)
        for root, dirs, files in os.walk(path):
            config = settings(os.path.join(root, "__init__.py"))
            patterns, base = _exclusion(config, named)
            absolute_root = os.path.abspath(root)
            prefix = absolute_root[len(base) + 1 :] + "/" if absolute_root != base else ""
            prefix = prefix.replace(os.sep, "/")
            gitignore = config.respect_gitignore
            kept = []
            for name in sorted(dirs):
                relative = prefix + name
                if patterns.matches(relative, is_dir=True):
                    continue
                if gitignore and ignore_files.ignored(os.path.join(absolute_root, name), True):
                    continue
                kept.append(name)
            dirs[:] = kept
            for name in sorted(files):
                if not name.endswith(LINTED_SUFFIXES) or patterns.matches(prefix + name):
                    continue
                if gitignore and ignore_files.ignored(os.path.join(absolute_root, name), False):
                    continue
                yield Path(root) / name


@functools.lru_cache(maxsize=64)
def _exclusion(config: Config, named: str) -> tuple[PathPatterns, str]:
    """The compiled excludes and the directory walked paths are matched relative to: the
    configuration's root, unless the named directory lies outside it or is itself excluded
    (then the named directory: only what lies below it counts)."""
    patterns = compile_patterns(config.exclude + config.extend_exclude)
    base = os.path.abspath(config.root) if config.root is not None else os.getcwd()
    if named == base:
        return patterns, base
    if named.startswith(base + os.sep):
        relative = named[len(base) + 1 :].replace(os.sep, "/")
        if not patterns.matches(relative, is_dir=True):
            return patterns, base
    return patterns, named


def _force_excluded(
    name: str, settings: Settings, ignore_files: IgnoreFiles, *, is_dir: bool
) -> bool:
    """Whether a path named on the command line is skipped: only with `force-exclude`."""
    if name == "-":
        return False
    config = settings(name if not is_dir else os.path.join(name, "__init__.py"))
    if not config.force_exclude:
        return False
    absolute = os.path.abspath(name)
    if config.is_excluded(absolute, is_dir=is_dir):
        return True
    return config.respect_gitignore and ignore_files.ignored(absolute, is_dir)
