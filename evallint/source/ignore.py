"""Gitignore-style path patterns, one implementation for every place that matches paths:
`exclude`, `extend-exclude`, `per-file-ignores`, `.gitignore`, `.ignore` and the git info
exclude file.

Patterns are compiled by pathspec (git's wildmatch rules: `build` matches a file or
directory of that name at any depth, `/build` or `a/build` only at the base, `build/` only a
directory, `**` any number of directories, `!pattern` re-includes). The regular
expressions pathspec builds are joined into one, so a walk tests each path with one match.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from pathspec import GitIgnoreSpec


class PatternError(ValueError):
    """A pattern that cannot be compiled; str() names the pattern and the cause."""


@dataclass(frozen=True)
class PathPatterns:
    """Compiled patterns; `matches(relative)` answers with git's last-match-wins rule."""

    combined: Optional[re.Pattern[str]]
    """All patterns as one expression, when none re-includes (the usual case)."""
    ordered: tuple[tuple[re.Pattern[str], bool], ...]
    """(regex, include) per pattern in order, used when some pattern starts with `!`."""

    def matches(self, relative: str, *, is_dir: bool = False) -> bool:
        """Whether a POSIX path relative to the patterns' base is matched (and not re-included).
        A path matches when it or one of its parent directories does."""
        return self.decide(relative, is_dir=is_dir) is True

    def decide(self, relative: str, *, is_dir: bool = False) -> Optional[bool]:
        """True: matched; False: re-included by a `!pattern`; None: no pattern applies (an
        ignore file further up decides)."""
        if is_dir and not relative.endswith("/"):
            relative += "/"
        if self.combined is not None:
            return True if self.combined.match(relative) is not None else None
        for regex, include in reversed(self.ordered):
            if regex.match(relative) is not None:
                return include
        return None

    @property
    def empty(self) -> bool:
        return self.combined is None and not self.ordered


@functools.lru_cache(maxsize=512)
def compile_patterns(patterns: tuple[str, ...]) -> PathPatterns:
    """Compile gitignore-style `patterns`.

    :raises PatternError: a pattern is not a valid glob (e.g. the range `[z-a]`).
    """
    ordered: list[tuple[re.Pattern[str], bool]] = []
    for pattern in patterns:
        try:
            spec = GitIgnoreSpec.from_lines([pattern])
        except (ValueError, re.error) as exc:
            raise PatternError(f"invalid glob {pattern!r}: {exc}") from None
        for compiled in spec.patterns:
            regex = getattr(compiled, "regex", None)
            if regex is None or compiled.include is None:
                continue  # a comment or blank line
            source = re.sub(r"\(\?P<\w+>", "(?:", regex.pattern)
            ordered.append((re.compile(source), bool(compiled.include)))
    if all(include for _, include in ordered):
        combined = (
            re.compile("|".join(f"(?:{regex.pattern})" for regex, _ in ordered))
            if ordered
            else None
        )
        return PathPatterns(combined, ())
    return PathPatterns(None, tuple(ordered))


def check_patterns(patterns: Sequence[str]) -> Optional[str]:
    """The first compile error among `patterns`, as one line; None when all compile."""
    for pattern in patterns:
        try:
            compile_patterns((pattern,))
        except PatternError as exc:
            return str(exc)
    return None


IGNORE_FILES = (".gitignore", ".ignore")
"""Read in every walked directory. `.gitignore` counts only inside a git repository (as git,
ripgrep and ruff do); `.ignore` everywhere."""


class IgnoreFiles:
    """The ignore files that apply to a walk, read once per directory."""

    def __init__(self) -> None:
        self._directory: dict[str, tuple[tuple[str, PathPatterns], ...]] = {}
        self._repository: dict[str, Optional[str]] = {}

    def ignored(self, path: str, is_dir: bool) -> bool:
        """Whether an ignore file in `path`'s directory or above (up to the repository root)
        ignores the absolute `path`. The deepest file with a matching pattern decides."""
        rules = self._rules(os.path.dirname(path))
        for base, patterns in reversed(rules):
            relative = path[len(base) :].lstrip(os.sep).replace(os.sep, "/")
            decision = patterns.decide(relative, is_dir=is_dir)
            if decision is not None:
                return decision
        return False

    def _rules(self, directory: str) -> tuple[tuple[str, PathPatterns], ...]:
        """(base directory, patterns) from the outermost to `directory` itself."""
        found = self._directory.get(directory)
        if found is not None:
            return found
        repository = self._repository_of(directory)
        parent = os.path.dirname(directory)
        if parent == directory or (repository is not None and directory == repository):
            inherited: tuple[tuple[str, PathPatterns], ...] = ()
            if repository is not None:
                inherited = _read(directory, os.path.join(directory, ".git", "info", "exclude"))
        else:
            inherited = self._rules(parent)
        own: tuple[tuple[str, PathPatterns], ...] = ()
        for name in IGNORE_FILES:
            if name == ".gitignore" and repository is None:
                continue
            own += _read(directory, os.path.join(directory, name))
        found = self._directory[directory] = inherited + own
        return found

    def _repository_of(self, directory: str) -> Optional[str]:
        if directory in self._repository:
            return self._repository[directory]
        if os.path.exists(os.path.join(directory, ".git")):
            found: Optional[str] = directory
        else:
            parent = os.path.dirname(directory)
            found = None if parent == directory else self._repository_of(parent)
        self._repository[directory] = found
        return found


def _read(base: str, path: str) -> tuple[tuple[str, PathPatterns], ...]:
    """The patterns of one ignore file; a missing, unreadable or broken file adds none
    (git skips an invalid line, it does not stop)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            lines = [line.rstrip("\n\r") for line in stream]
    except OSError:
        return ()
    valid = []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        try:
            compile_patterns((line,))
        except PatternError:
            continue
        valid.append(line)
    return ((base, compile_patterns(tuple(valid))),) if valid else ()
