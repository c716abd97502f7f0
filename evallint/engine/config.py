"""`[tool.evallint]` settings: which codes run where, which files are skipped, analysis knobs.

The nearest pyproject.toml *that has the table* wins, as with ruff: a sub-package's
pyproject.toml for packaging alone must not hide the repository's settings. Results are
cached per directory because every file of a run asks, and an editor asks on each keystroke.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python < 3.11
    import tomli as tomllib

LOG = logging.getLogger(__name__)

CONFIG_FILE = "pyproject.toml"

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr",
    ".eggs",
    ".evallint_cache",
    ".git",
    ".hg",
    ".ipynb_checkpoints",
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "_build",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
)

_CODE_OR_PREFIX = re.compile(r"^EVL[0-9]{0,3}$")


class ConfigError(Exception):
    """A `[tool.evallint]` table that cannot be used; str() is one line naming file and key."""

    def __init__(self, path: Path, key: str | None, cause: str) -> None:
        self.path = path
        self.key = key
        self.cause = " ".join(cause.split())
        where = f"[tool.evallint] {key}" if key else "[tool.evallint]"
        super().__init__(f"{path}: {where}: {self.cause}")


@dataclass(frozen=True)
class Config:
    """Settings for one directory tree. Hashable, so caches can key on it."""

    select: tuple[str, ...] = ("EVL",)
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(glob relative to `root`, codes or prefixes) pairs, in file order."""
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    eval_names: tuple[str, ...] = ()
    """Extra identifier words that mark evaluation loaders and functions."""
    module_factories: tuple[str, ...] = ()
    """Extra dotted callables that return a fresh nn.Module."""
    mode_switching_hooks: tuple[str, ...] = ()
    """Extra method names a framework calls in the right mode by itself."""
    root: Path | None = None
    """Directory of the pyproject.toml the settings came from; None means defaults (cwd)."""

    def is_enabled(self, code: str, path: str) -> bool:
        """Whether `code` is reported for `path`: the most specific select/ignore prefix wins.

        An ignore ties with a select of the same length and wins, so `select = ["EVL001"]`
        plus `ignore = ["EVL001"]` turns the rule off; per-file ignores then apply on top.
        """
        if _longest_prefix(code, self.ignore) >= _longest_prefix(code, self.select):
            return False
        if not self.per_file_ignores:
            return True
        relative = self._relative(path)
        return not any(
            _longest_prefix(code, codes) >= 0 and _glob_matches(pattern, relative)
            for pattern, codes in self.per_file_ignores
        )

    def is_excluded(self, path: str | Path) -> bool:
        """Whether `path` falls under an `exclude`/`extend-exclude` pattern (gitignore-style)."""
        return (
            _any_glob(self.exclude + self.extend_exclude).search(self._relative(path)) is not None
        )

    def _relative(self, path: str | Path) -> str:
        """`path` as a POSIX path relative to `root` (or cwd), or absolute when outside it."""
        absolute = os.path.abspath(path)
        base = os.path.abspath(self.root) if self.root is not None else os.getcwd()
        if absolute.startswith(base) and absolute[len(base) : len(base) + 1] == os.sep:
            return absolute[len(base) + 1 :].replace(
                os.sep, "/"
            )  # the common case, without relpath
        try:
            relative = os.path.relpath(absolute, base)
        except ValueError:  # another drive on Windows
            return absolute.replace(os.sep, "/")
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return absolute.replace(os.sep, "/")
        return relative.replace(os.sep, "/")


def load_config(start: Path) -> Config:
    """Settings for the file or directory `start`, from the nearest pyproject.toml with the table.

    :raises ConfigError: the table (or its file, once it mentions evallint) is unusable.
    """
    start = Path(os.path.abspath(start))
    return _config_for_directory(start if start.is_dir() else start.parent)


def config_for_file(path: str | os.PathLike[str]) -> Config:
    """`load_config` for a path known not to be a directory (a walk's files): no stat, and
    one cached lookup per directory name."""
    return _config_for_directory_named(os.path.dirname(os.path.abspath(path)))


@functools.cache
def _config_for_directory_named(directory: str) -> Config:
    return _config_for_directory(Path(directory))


def clear_cache() -> None:
    """Forget cached settings, for a long-lived process (LSP) whose pyproject.toml changed."""
    _config_for_directory.cache_clear()
    _config_for_directory_named.cache_clear()


@functools.cache
def _config_for_directory(directory: Path) -> Config:
    candidate = directory / CONFIG_FILE
    if candidate.is_file():
        table = _read_table(candidate)
        if table is not None:
            LOG.debug("using %s", candidate)
            return _parse_table(table, candidate)
    if directory.parent == directory:
        return Config()
    return _config_for_directory(directory.parent)


def _read_table(path: Path) -> dict[str, Any] | None:
    """The `[tool.evallint]` table of `path`, or None when the file has none.

    A file that never mentions evallint is skipped unparsed: a broken pyproject.toml that
    belongs to another tool is not ours to report.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from exc
    if "evallint" not in text:
        return None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from exc
    tool = document.get("tool")
    if not isinstance(tool, dict) or "evallint" not in tool:
        return None
    table = tool["evallint"]
    if not isinstance(table, dict):
        raise ConfigError(path, None, f"must be a table, got {_type_name(table)}")
    return table


def _parse_table(table: dict[str, Any], path: Path) -> Config:
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(path, unknown[0], f"unknown key (expected one of: {', '.join(_KEYS)})")
    values: dict[str, Any] = {"root": path.parent}
    for key, convert in _KEYS.items():
        if key in table:
            values[key.replace("-", "_")] = convert(table[key], path, key)
    return Config(**values)


def _string_list(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(path, key, f"must be a list of strings, got {_describe(value)}")
    return tuple(value)


def _codes(value: Any, path: Path, key: str) -> tuple[str, ...]:
    codes = tuple(code.strip().upper() for code in _string_list(value, path, key))
    for code in codes:
        if not _CODE_OR_PREFIX.match(code):
            raise ConfigError(
                path, key, f"{code!r} is not an evallint code or prefix (EVL, EVL0, EVL001)"
            )
    return codes


def _identifiers(value: Any, path: Path, key: str) -> tuple[str, ...]:
    names = _string_list(value, path, key)
    for name in names:
        if not name.isidentifier():
            raise ConfigError(path, key, f"{name!r} is not a Python identifier")
    return names


def _dotted_names(value: Any, path: Path, key: str) -> tuple[str, ...]:
    names = _string_list(value, path, key)
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(
                path, key, f"{name!r} is not a dotted name such as 'timm.create_model'"
            )
    return names


def _per_file_ignores(value: Any, path: Path, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(path, key, f"must be a table of glob = [codes], got {_describe(value)}")
    return tuple((glob, _codes(codes, path, f"{key}.{glob}")) for glob, codes in value.items())


_KEYS: dict[str, Callable[[Any, Path, str], Any]] = {
    "select": _codes,
    "ignore": _codes,
    "per-file-ignores": _per_file_ignores,
    "exclude": _string_list,
    "extend-exclude": _string_list,
    "eval-names": _identifiers,
    "module-factories": _dotted_names,
    "mode-switching-hooks": _identifiers,
}


def _type_name(value: Any) -> str:
    return {dict: "table", list: "array", str: "string"}.get(type(value), type(value).__name__)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        bad = next((item for item in value if not isinstance(item, str)), None)
        return f"an array holding {_type_name(bad)} {bad!r}"
    return f"{_type_name(value)} {value!r}"


def _longest_prefix(code: str, prefixes: tuple[str, ...]) -> int:
    """Length of the longest entry of `prefixes` that `code` starts with; -1 if none."""
    return max((len(p) for p in prefixes if code.startswith(p)), default=-1)


def _glob_matches(pattern: str, relative: str) -> bool:
    """gitignore-style match of `pattern` against a POSIX path relative to the config root.

    A pattern without an inner slash matches any path component (`build`, `*_test.py`), and
    everything beneath a matching directory; one with a slash is anchored at the root.
    """
    return _compile_glob(pattern).search(relative) is not None


@functools.lru_cache(maxsize=32)
def _any_glob(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """All of `patterns` as one expression: a walk asks it of every file. Plain directory
    names (`build`, `.venv`) share one anchor, ten times faster than one branch each."""
    names = [
        p.strip().rstrip("/") for p in patterns if not _GLOB_OR_SLASH.search(p.strip().rstrip("/"))
    ]
    branches = [
        _compile_glob(p).pattern for p in patterns if _GLOB_OR_SLASH.search(p.strip().rstrip("/"))
    ]
    if names:
        branches.insert(0, "(?:^|/)(?:" + "|".join(re.escape(n) for n in names) + ")(?:/|$)")
    return re.compile("|".join(f"(?:{b})" for b in branches) or "(?!)")


_GLOB_OR_SLASH = re.compile(r"[*?\[/]|^$")


@functools.lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> re.Pattern[str]:
    body = pattern.strip().rstrip("/")
    anchored = "/" in body
    body = body.lstrip("/")
    regex = []
    index = 0
    while index < len(body):
        char = body[index]
        if body.startswith("**/", index):
            regex.append("(?:.*/)?")
            index += 3
            continue
        if body.startswith("**", index):
            regex.append(".*")
            index += 2
            continue
        if char == "*":
            regex.append("[^/]*")
        elif char == "?":
            regex.append("[^/]")
        elif char == "[":
            end = body.find("]", index + 1)
            if end == -1:
                regex.append(re.escape(char))
            else:
                negate = body[index + 1] == "!"
                inner = body[index + (2 if negate else 1) : end].replace("\\", "\\\\")
                regex.append(f"[{'^' if negate else ''}{inner}]")
                index = end
        else:
            regex.append(re.escape(char))
        index += 1
    start = "^" if anchored else "(?:^|/)"
    return re.compile(start + "".join(regex) + "(?:/|$)")
