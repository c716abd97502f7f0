"""`[tool.evallint]` settings: which codes run where, which files are skipped, analysis knobs.

The nearest pyproject.toml *that has the table* wins, as with ruff: a sub-package's
pyproject.toml for packaging alone must not hide the repository's settings. Results are
cached per directory because every file of a run asks, and an editor asks on each keystroke.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evallint.diagnostics import KNOWN_CODES, PARSE_ERROR_CODE, UNUSED_SUPPRESSION_CODE
from evallint.engine import log_debug
from evallint.source.ignore import check_patterns, compile_patterns

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python < 3.11
    import tomli as tomllib


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
    "*.egg-info",
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
    force_exclude: bool = False
    """Apply the excludes to files named on the command line too (pre-commit passes every
    staged file by name)."""
    respect_gitignore: bool = True
    """Skip what `.gitignore`, `.ignore` and `.git/info/exclude` ignore."""
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
        EVL999 (a file that cannot be read or parsed) is reported whatever the selection, as
        ruff reports syntax errors: hiding it would pass a file nobody checked. EVL100 (an
        unused suppression) is opt-in, like ruff's RUF100: only a selection naming it (or
        `EVL1`) turns it on.
        """
        if code == PARSE_ERROR_CODE:
            return True
        selected = _longest_prefix(code, self.select)
        if code == UNUSED_SUPPRESSION_CODE and selected <= len("EVL"):
            return False
        if _longest_prefix(code, self.ignore) >= selected:
            return False
        if not self.per_file_ignores:
            return True
        relative = self._relative(path)
        return not any(
            _longest_prefix(code, codes) >= 0 and compile_patterns((pattern,)).matches(relative)
            for pattern, codes in self.per_file_ignores
        )

    def is_excluded(
        self, path: str | Path, *, is_dir: bool = False, below: str | Path | None = None
    ) -> bool:
        """Whether `path` falls under an `exclude`/`extend-exclude` pattern (gitignore-style,
        relative to `root`). With `below` (the directory the user named), only the parts of
        the path below it count: a checkout under `/build/ci/` is not excluded by `build`."""
        patterns = compile_patterns(self.exclude + self.extend_exclude)
        relative = self._relative(path)
        if below is not None:
            named = self._relative(below)
            if named.startswith("/") or patterns.matches(named, is_dir=True):
                relative = _relative_to(path, below)
        return patterns.matches(relative, is_dir=is_dir)

    def _relative(self, path: str | Path) -> str:
        """`path` as a POSIX path relative to `root` (or cwd), or absolute when outside it."""
        base = os.path.abspath(self.root) if self.root is not None else os.getcwd()
        return _relative_to(path, base)


def _relative_to(path: str | Path, base: str | Path) -> str:
    absolute = os.path.abspath(path)
    base = os.path.abspath(base)
    if absolute.startswith(base) and absolute[len(base) : len(base) + 1] == os.sep:
        return absolute[len(base) + 1 :].replace(os.sep, "/")  # the common case, without relpath
    if absolute == base:
        return "."
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
            log_debug(__name__, "using %s", candidate)
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
    for extension, base in _EXTENDS.items():
        if extension.replace("-", "_") in values:
            default = getattr(Config(), base)
            values[base] = values.get(base, default) + values.pop(extension.replace("-", "_"))
    return Config(**values)


def config_from_file(path: Path) -> Config:
    """The settings of an explicitly named file (`--config`): a pyproject.toml's
    `[tool.evallint]` table, or any other TOML file's top level (an `evallint.toml`).

    :raises ConfigError: the file cannot be read or its settings are unusable.
    """
    path = Path(os.path.abspath(path))
    if path.name == CONFIG_FILE:
        table = _read_table(path)
        return Config(root=path.parent) if table is None else _parse_table(table, path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from exc
    return _parse_table(document, path)


@dataclass(frozen=True)
class Overrides:
    """Command-line settings, applied on top of each file's own configuration (as ruff
    applies its flags to every pyproject.toml it discovers)."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    force_exclude: bool | None = None
    respect_gitignore: bool | None = None

    def apply(self, config: Config) -> Config:
        return _apply(self, config)


@functools.lru_cache(maxsize=256)
def _apply(overrides: Overrides, config: Config) -> Config:
    return dataclasses.replace(
        config,
        select=(overrides.select if overrides.select is not None else config.select)
        + overrides.extend_select,
        ignore=config.ignore + overrides.ignore,
        per_file_ignores=config.per_file_ignores + overrides.per_file_ignores,
        exclude=overrides.exclude if overrides.exclude is not None else config.exclude,
        extend_exclude=config.extend_exclude + overrides.extend_exclude,
        force_exclude=config.force_exclude
        if overrides.force_exclude is None
        else overrides.force_exclude,
        respect_gitignore=config.respect_gitignore
        if overrides.respect_gitignore is None
        else overrides.respect_gitignore,
    )


def resolve(
    path: str | os.PathLike[str], config: Config | None, overrides: Overrides | None
) -> Config:
    """The settings for one file: `config` when given (`--config`), else the file's own,
    with the command line's `overrides` on top."""
    found = config if config is not None else config_for_file(path)
    return found if overrides is None else overrides.apply(found)


def check_codes(codes: tuple[str, ...]) -> str | None:
    """The first entry that is no evallint code or prefix of one, e.g. `EVL042`; else None."""
    for code in codes:
        if not _CODE_OR_PREFIX.match(code) or not any(k.startswith(code) for k in KNOWN_CODES):
            return code
    return None


def _string_list(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(path, key, f"must be a list of strings, got {_describe(value)}")
    return tuple(value)


def _globs(value: Any, path: Path, key: str) -> tuple[str, ...]:
    patterns = _string_list(value, path, key)
    error = check_patterns(patterns)
    if error is not None:
        raise ConfigError(path, key, error)
    return patterns


def _boolean(value: Any, path: Path, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, key, f"must be true or false, got {_type_name(value)} {value!r}")
    return value


def _codes(value: Any, path: Path, key: str) -> tuple[str, ...]:
    codes = tuple(code.strip().upper() for code in _string_list(value, path, key))
    bad = check_codes(codes)
    if bad is not None:
        raise ConfigError(
            path,
            key,
            f"{bad!r} is not an evallint code or prefix (EVL, EVL0, EVL001); "
            "`evallint rules` lists them",
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
    for glob in value:
        error = check_patterns((glob,))
        if error is not None:
            raise ConfigError(path, key, error)
    return tuple((glob, _codes(codes, path, f"{key}.{glob}")) for glob, codes in value.items())


_KEYS: dict[str, Callable[[Any, Path, str], Any]] = {
    "select": _codes,
    "extend-select": _codes,
    "ignore": _codes,
    "extend-ignore": _codes,
    "per-file-ignores": _per_file_ignores,
    "extend-per-file-ignores": _per_file_ignores,
    "exclude": _globs,
    "extend-exclude": _globs,
    "force-exclude": _boolean,
    "respect-gitignore": _boolean,
    "eval-names": _identifiers,
    "module-factories": _dotted_names,
    "mode-switching-hooks": _identifiers,
}
_EXTENDS = {
    "extend-select": "select",
    "extend-ignore": "ignore",
    "extend-per-file-ignores": "per_file_ignores",
}
"""Keys whose values are appended to another key's (ruff's `extend-*` keys)."""


def _type_name(value: Any) -> str:
    names: dict[type, str] = {dict: "table", list: "array", str: "string"}
    return names.get(type(value), type(value).__name__)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        bad = next((item for item in value if not isinstance(item, str)), None)
        return f"an array holding {_type_name(bad)} {bad!r}"
    return f"{_type_name(value)} {value!r}"


def _longest_prefix(code: str, prefixes: tuple[str, ...]) -> int:
    """Length of the longest entry of `prefixes` that `code` starts with; -1 if none."""
    return max((len(p) for p in prefixes if code.startswith(p)), default=-1)
