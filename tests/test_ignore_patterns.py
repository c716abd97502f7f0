"""Gitignore-style patterns: the bare-name fast path answers exactly as pathspec does.

Bare names (`build`, `venv/`) and `*suffix` patterns are matched by set lookups on path
components without pathspec; every other pattern goes through pathspec's regular expressions.
The two must agree on every path, with the "a path matches when it or one of its parent
directories does" rule of `PathPatterns.matches`.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from pathspec import GitIgnoreSpec

from evallint.engine.config import DEFAULT_EXCLUDE
from evallint.source.ignore import PatternError, compile_patterns

PATTERNS = (
    "build",
    "build/",
    "*.egg-info",
    "*.pyc",
    "node_modules",
    ".git",
    "venv/",
    "*.d/",
    "a.b",
    "x*",
    "a/b",
    "*",
    "**/build",
    "build/**",
    "[ab]",
    "/build",
    "!build",
)
COMPONENTS = ("build", "a", "b", "b.egg-info", ".git", "x.pyc", "venv", "y.d", "a.b", ".d", "xx")


def reference(patterns: tuple[str, ...], relative: str, is_dir: bool) -> bool:
    """pathspec's answer for `relative` or any of its parent directories (last match wins)."""
    spec = GitIgnoreSpec.from_lines(list(patterns))
    parts = relative.split("/")
    matched = False
    for index in range(1, len(parts) + 1):
        prefix = "/".join(parts[:index])
        directory = index < len(parts) or is_dir
        if spec.match_file(prefix + ("/" if directory else "")):
            matched = True
    return matched


def test_fast_path_agrees_with_pathspec_on_random_paths() -> None:
    draw = random.Random(20261205)
    disagreements = []
    for _ in range(3000):
        patterns = tuple(draw.sample(PATTERNS, draw.randint(1, 4)))
        if any(p.startswith("!") for p in patterns):
            continue  # re-includes take the ordered path; parent-dir semantics differ by design
        relative = "/".join(draw.choice(COMPONENTS) for _ in range(draw.randint(1, 4)))
        is_dir = draw.random() < 0.5
        got = compile_patterns(patterns).matches(relative, is_dir=is_dir)
        if got != reference(patterns, relative, is_dir):
            disagreements.append((patterns, relative, is_dir, got))
    assert disagreements == []


@pytest.mark.parametrize(
    ("relative", "is_dir", "expected"),
    [
        ("build", True, True),
        ("src/build/x.py", False, True),
        ("pkg.egg-info", True, True),
        ("src/model.py", False, False),
        ("venvs/x.py", False, False),
        ("site-packages", False, True),
    ],
)
def test_default_excludes(relative: str, is_dir: bool, expected: bool) -> None:
    assert compile_patterns(DEFAULT_EXCLUDE).matches(relative, is_dir=is_dir) is expected


def test_dir_only_bare_name_does_not_match_a_file() -> None:
    patterns = compile_patterns(("venv/",))
    assert patterns.matches("venv", is_dir=True)
    assert not patterns.matches("venv", is_dir=False)
    assert patterns.matches("venv/lib.py")


def test_bad_glob_still_raises() -> None:
    with pytest.raises(PatternError, match=r"\[z-a\]"):
        compile_patterns(("build", "[z-a]"))


def test_default_excludes_do_not_import_pathspec() -> None:
    code = (
        "import sys\n"
        "from evallint.engine.config import DEFAULT_EXCLUDE\n"
        "from evallint.source.ignore import compile_patterns\n"
        "assert compile_patterns(DEFAULT_EXCLUDE).matches('a/build/x.py')\n"
        "print('pathspec' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
