"""lint_source / lint_paths: prefilter -> parse -> analyse -> rules -> suppress -> sort.

Any failure on one file becomes an EVL999 finding for that file; the other files are
still linted and no traceback reaches the user.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

import libcst as cst

from evallint.analysis.interpreter import FileAnalysis, ProjectIndex
from evallint.analysis.options import AnalysisOptions
from evallint.diagnostics import Diagnostic
from evallint.engine.config import Config, load_config
from evallint.rules import PARSE_ERROR_CODE, RULES
from evallint.source.directives import is_suppressed, suppressions
from evallint.source.files import iter_source_files
from evallint.source.parse import ParseFailure, parse_module
from evallint.source.text import DecodeError, decode_source

LOG = logging.getLogger(__name__)

PREFILTER = re.compile(
    r"torch|\.eval\(|\.train\(|no_grad|inference_mode|grad_enabled|\bnn\.|nn\.Module|from_pretrained|backward\(|timm|lightning"
)
"""Text at least one piece of which every file with a finding contains. A file with none is
not parsed: on a typical repository this skips ~90% of the parse work."""


def may_have_findings(source: str) -> bool:
    return PREFILTER.search(source) is not None


def _error(path: str, line: int, column: int, message: str) -> Diagnostic:
    return Diagnostic(path, line, column, line, column, PARSE_ERROR_CODE, message)


class _Project(ProjectIndex):
    """Project files read from disk once per run."""

    def __init__(self, options: AnalysisOptions = AnalysisOptions()) -> None:
        super().__init__(self._parse_file, options)

    @staticmethod
    def _parse_file(path: Path) -> Optional[tuple[cst.Module, str]]:
        """An imported project file's tree and text; None when unreadable, unparsable or
        without any torch-related text (its functions cannot matter)."""
        try:
            source = decode_source(path.read_bytes())
        except (OSError, DecodeError):
            return None
        if not may_have_findings(source):
            return None
        tree = parse_module(source)
        return None if isinstance(tree, ParseFailure) else (tree, source)


def analysis_options(config: Config) -> AnalysisOptions:
    return AnalysisOptions(
        eval_words=frozenset(w.lower() for w in config.eval_names),
        module_factories=config.module_factories,
        framework_hooks=frozenset(config.mode_switching_hooks),
    )


def analyse_source(
    source: str, path: str, *, project: Optional[ProjectIndex] = None, record_flow: bool = False, options: AnalysisOptions = AnalysisOptions(),
) -> FileAnalysis | ParseFailure:
    """Parse and analyse one file: the facts every rule and `debug --flow` read."""
    tree = parse_module(source)
    if isinstance(tree, ParseFailure):
        return tree
    return FileAnalysis(tree, path, source=source, options=options, project=project, record_flow=record_flow)


def lint_source(
    source: str,
    path: str = "<string>",
    config: Optional[Config] = None,
    *,
    apply_suppressions: bool = True,
    project: Optional[ProjectIndex] = None,
    fixes: bool = False,
) -> list[Diagnostic]:
    """Lint one file's text. `path` names it in findings and locates project imports.
    With `fixes`, findings with a certain fix carry it (`Diagnostic.fix`)."""
    config = config or Config()
    if not may_have_findings(source):
        return []
    options = analysis_options(config)
    if project is None and not path.startswith("<"):
        project = _Project(options)
    try:
        analysis = analyse_source(source, path, project=project, options=options)
        if isinstance(analysis, ParseFailure):
            found = [_error(path, analysis.line, analysis.column, f"cannot parse: {analysis.reason}")]
        else:
            found = []
            analysis.facts.want_fixes = fixes
            for rule in RULES:
                if config.is_enabled(rule.code, path):
                    found.extend(rule().check(analysis.facts))
    except RecursionError:
        found = [_error(path, 1, 1, "cannot analyse: nesting too deep")]
    except Exception as exc:  # a bug in evallint must not stop the other files
        LOG.debug("internal error on %s", path, exc_info=True)
        found = [_error(path, 1, 1, f"internal error: {type(exc).__name__}: {exc}")]
    found = [d for d in found if d.code != PARSE_ERROR_CODE or config.is_enabled(d.code, path)]
    if apply_suppressions and found:
        table = suppressions(source)
        found = [d for d in found if not is_suppressed(d, table)]
    return sorted(set(found), key=Diagnostic.sort_key)


def lint_file(path: Path, config: Optional[Config] = None, *, project: Optional[ProjectIndex] = None) -> list[Diagnostic]:
    name = str(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        return [_error(name, 1, 1, "cannot read: is a directory")]
    except OSError as exc:
        return [_error(name, 1, 1, f"cannot read: {exc.strerror or exc}")]
    try:
        source = decode_source(data)
    except DecodeError as exc:
        return [_error(name, 1, 1, f"cannot decode: {exc}")]
    if "\x00" in source:
        return [_error(name, 1, 1, "cannot parse: binary file (contains NUL bytes)")]
    return lint_source(source, name, config or load_config(path), project=project)


def lint_paths(paths: Iterable[str | os.PathLike[str]], config: Optional[Config] = None) -> list[Diagnostic]:
    """Lint files and directories (walked for *.py, honouring excludes)."""
    project = _Project()
    found: list[Diagnostic] = []
    for path in iter_source_files(paths):
        file_config = config or load_config(path)
        if file_config.is_excluded(path) and path.is_file() and str(path) not in {str(p) for p in paths}:
            continue
        found.extend(lint_file(path, file_config, project=project))
    return sorted(found, key=Diagnostic.sort_key)
