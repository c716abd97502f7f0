"""Gitignore-style path patterns, one implementation for every place that matches paths:
`exclude`, `extend-exclude`, `per-file-ignores`, `.gitignore`, `.ignore` and the git info
exclude file.

Patterns are compiled by pathspec (git's wildmatch rules: `build` matches a file or
directory of that name at any depth, `/build` or `a/build` only at the base, `build/` only a
directory, `**` any number of directories, `!pattern` re-includes). The regular
expressions pathspec builds are joined into one, so a walk tests each path with one match.

Most patterns are a bare name (`build`, `.git`, `node_modules/`) or a bare name after one `*`
(`*.egg-info`, `*.pyc`): in git's rules such a pattern matches any path component, at any
depth. Those are answered by set lookups on the path's components without pathspec or a regular
expression, so a run whose patterns are all of that kind (the default excludes) never imports
pathspec: on a warm cache, compiling the defaults was the largest cost of the walk.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional


class PatternError(ValueError):
    """A pattern that cannot be compiled; str() names the pattern and the cause."""


@dataclass(frozen=True)
class PathPatterns:
    """Compiled patterns; `matches(relative)` answers with git's last-match-wins rule."""

    combined: Optional[re.Pattern[str]]
    """All patterns as one expression, when none re-includes (the usual case), except the
    bare names below."""
    ordered: tuple[tuple[re.Pattern[str], bool], ...]
    """(regex, include) per pattern in order, used when some pattern starts with `!`."""
    names: frozenset[str] = frozenset()
    """Bare-name patterns (`build`): any component of the path with this name matches."""
    dir_names: frozenset[str] = frozenset()
    """Bare-name patterns with a trailing slash (`build/`): only directory components."""
    suffixes: tuple[str, ...] = ()
    """`*suffix` patterns (`*.egg-info`): any component ending so (and longer than the suffix
    or equal to it: `*` matches the empty string too)."""
    dir_suffixes: tuple[str, ...] = ()
    """`*suffix/` patterns: only directory components."""

    def matches(self, relative: str, *, is_dir: bool = False) -> bool:
        """Whether a POSIX path relative to the patterns' base is matched (and not re-included).
        A path matches when it or one of its parent directories does."""
        return self.decide(relative, is_dir=is_dir) is True

    def decide(self, relative: str, *, is_dir: bool = False) -> Optional[bool]:
        """True: matched; False: re-included by a `!pattern`; None: no pattern applies (an
        ignore file further up decides)."""
        if is_dir and not relative.endswith("/"):
            relative += "/"
        bare = self.names or self.dir_names or self.suffixes or self.dir_suffixes
        if bare and self._component_matches(relative):
            return True
        if self.combined is not None:
            return True if self.combined.match(relative) is not None else None
        for regex, include in reversed(self.ordered):
            if regex.match(relative) is not None:
                return include
        return None

    def _component_matches(self, relative: str) -> bool:
        """Whether a bare-name or `*suffix` pattern matches a component of `relative` (a
        trailing `/` marks the last component as a directory)."""
        parts = relative.split("/")
        last = len(parts) - 1
        if parts[last] == "":  # "a/b/": every real component is a directory
            parts.pop()
            last = len(parts)
        for index, part in enumerate(parts):
            is_dir = index < last
            if part in self.names or (is_dir and part in self.dir_names):
                return True
            if any(part.endswith(suffix) for suffix in self.suffixes):
                return True
            if is_dir and any(part.endswith(suffix) for suffix in self.dir_suffixes):
                return True
        return False

    @property
    def empty(self) -> bool:
        return (
            self.combined is None
            and not self.ordered
            and not self.names
            and not self.dir_names
            and not self.suffixes
            and not self.dir_suffixes
        )


_BARE = re.compile(r"[A-Za-z0-9_.+=@,~%-]+/?")
"""A pattern with no glob, escape, slash inside, leading `!`/`#` or trailing space: it means
"a component of this name" in git's rules. (`.` and `..` alone are left to pathspec.)"""


def _bare(pattern: str) -> Optional[tuple[str, bool, bool]]:
    """(text, is_suffix, dir_only) for a bare name or `*` + bare name; None otherwise."""
    star = pattern.startswith("*")
    body = pattern[1:] if star else pattern
    if not _BARE.fullmatch(body) or body.strip("/") in ("", ".", ".."):
        return None
    if star and body.startswith("*"):
        return None
    dir_only = body.endswith("/")
    return body.rstrip("/"), star, dir_only


@functools.lru_cache(maxsize=512)
def compile_patterns(patterns: tuple[str, ...]) -> PathPatterns:
    """Compile gitignore-style `patterns`.

    :raises PatternError: a pattern is not a valid glob (e.g. the range `[z-a]`).
    """
    if not any(pattern.startswith("!") for pattern in patterns):
        names: set[str] = set()
        dir_names: set[str] = set()
        suffixes: list[str] = []
        dir_suffixes: list[str] = []
        rest = []
        for pattern in patterns:
            bare = _bare(pattern)
            if bare is None:
                rest.append(pattern)
                continue
            text, is_suffix, dir_only = bare
            if is_suffix:
                (dir_suffixes if dir_only else suffixes).append(text)
            else:
                (dir_names if dir_only else names).add(text)
        if len(rest) < len(patterns):
            general = compile_patterns(tuple(rest)) if rest else PathPatterns(None, ())
            return PathPatterns(
                general.combined,
                (),
                frozenset(names),
                frozenset(dir_names),
                tuple(suffixes),
                tuple(dir_suffixes),
            )
    from pathspec import GitIgnoreSpec  # only for patterns the fast path cannot answer

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
