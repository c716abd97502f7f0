"""flake8 front end: a thin adapter over `lint_source`, like flake8's own pyflakes wrapper.

The plugin reports what the CLI reports for the same file: `[tool.evallint]` `select`,
`ignore` and `per-file-ignores` apply, and so do `# evallint: ignore[...]` comments; flake8's
own selection (`--select`, `--extend-ignore`, `--per-file-ignores`) and `# noqa` apply on top.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Tuple, Type

from evallint import __version__
from evallint.engine.config import Config, ConfigError, load_config
from evallint.engine.run import lint_source, process_project

Result = Tuple[int, int, str, Type["Checker"]]


class Checker:
    """The `EVL` flake8 extension. It asks for `tree` so flake8 runs it once per file, and
    hands it to the parser's nesting check, which would otherwise build it again."""

    name = "evallint"
    version = __version__

    def __init__(self, tree: ast.AST, lines: list[str], filename: str) -> None:
        self._tree = tree if isinstance(tree, ast.Module) else None
        self._lines = lines
        self._filename = filename

    def run(self) -> Iterator[Result]:
        """Yield `(line, 0-based column, "EVLnnn message", type)`; flake8 adds 1 to the column."""
        try:
            config = _analysis_config(self._filename)
        except ConfigError as exc:
            yield 1, 0, f"EVL999 {exc}", type(self)
            return
        source = "".join(self._lines)
        project = process_project(config)  # files imported by many linted files are parsed once
        found = lint_source(
            source,
            self._filename,
            config=config,
            apply_suppressions=True,
            project=project,
            python_tree=self._tree,
        )
        for d in found:
            yield d.line, d.column - 1, f"{d.code} {d.message}", type(self)


def _analysis_config(filename: str) -> Config:
    """The project's `[tool.evallint]` settings for the file, as the CLI uses them."""
    return load_config(Path(filename))
