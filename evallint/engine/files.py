"""Which files a run lints: directories walked for `*.py`, `*.pyi` and `*.ipynb`, minus what
the configuration excludes and what `.gitignore`/`.ignore` files ignore; files named on the
command line always, unless `force-exclude` is on (as ruff and flake8 do).

Exclude patterns are matched only against the part of a path below the directory the user
named, so a checkout that happens to live under `/build/` or `.../site-packages/` is still
linted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable, Optional

from evallint.engine.config import Config, config_for_file
from evallint.source.ignore import IgnoreFiles

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
            absolute_root = os.path.abspath(root)
            kept = []
            for name in sorted(dirs):
                absolute = os.path.join(absolute_root, name)
                if not _skipped(absolute, config, named, ignore_files, is_dir=True):
                    kept.append(name)
            dirs[:] = kept
            for name in sorted(files):
                if not name.endswith(LINTED_SUFFIXES):
                    continue
                absolute = os.path.join(absolute_root, name)
                if not _skipped(absolute, config, named, ignore_files, is_dir=False):
                    yield Path(root) / name


def _skipped(
    absolute: str, config: Config, named: str, ignore_files: IgnoreFiles, *, is_dir: bool
) -> bool:
    if config.is_excluded(absolute, is_dir=is_dir, below=named):
        return True
    return config.respect_gitignore and ignore_files.ignored(absolute, is_dir=is_dir)


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
    return config.respect_gitignore and ignore_files.ignored(absolute, is_dir=is_dir)
