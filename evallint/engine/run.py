"""lint_source / lint_paths: prefilter -> parse -> analyse -> rules -> suppress -> sort.

Any failure on one file becomes an EVL999 finding for that file; the other files are
still linted and no traceback reaches the user.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from evallint.diagnostics import PARSE_ERROR_CODE, UNUSED_SUPPRESSION_CODE, Diagnostic
from evallint.engine import log_debug
from evallint.engine.config import Config, Overrides, load_config, resolve
from evallint.engine.files import iter_source_files
from evallint.source.directives import is_suppressed, suppressions, unused_directives
from evallint.source.text import DecodeError, decode_source

if TYPE_CHECKING:  # the analysis (and LibCST) is imported only when a file is analysed,
    # so a run answered entirely from the cache never pays for importing it
    import ast

    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.options import AnalysisOptions
    from evallint.analysis.project import ProjectIndex
    from evallint.source.incremental import IncrementalParser
    from evallint.source.parse import ParseFailure


RECURSION_LIMIT = 5_000
"""The analysis recurses once per nested block or `elif`; generated code nests deeper than
Python's default limit of 1,000 frames allows."""
PARALLEL_THRESHOLD = 8
"""Fewer files than this are linted in one process: starting workers costs more."""

PREFILTER_WORDS = (
    "torch",
    ".eval(",
    ".train(",
    "no_grad",
    "inference_mode",
    "grad_enabled",
    "nn.Module",
    "from_pretrained",
    "backward(",
    "timm",
    "lightning",
    ".forward(",
)
PREFILTER_PATTERNS = (
    ("nn.", re.compile(r"\bnn\.")),
    ("state_dict", re.compile(r"(?<!\w)(?:load_)?state_dict")),
    ("model(", re.compile(r"(?<!\w)model\(")),
    ("net(", re.compile(r"(?<!\w)net\(")),
    ("Net(", re.compile(r"(?<!\w)Net\(")),
)
"""Text at least one piece of which every file with a finding contains. A file with none is
not parsed: on a typical repository this skips ~90% of the parse work. The last three catch
an evaluation script that mentions no torch at all because its model comes from a project
module (`model = Net(); model.load_state_dict(...); model(x)`), as does `.forward(` (`dist =
metric.forward(a, b)` of a project module built in eval mode). Plain substring tests first
(C speed); a pattern runs only where its literal occurs: one regex alternation over every
file cost more than parsing the few files it let through."""


_TORCH_USE = re.compile(r"^[ \t]*(?:import|from)[ \t]+torch\b|\btorch\.", re.MULTILINE)
_other_framework_import: Optional[re.Pattern[str]] = None


def other_framework_code(source: str) -> bool:
    """A file that imports another deep-learning framework (Keras, JAX; see
    `torch_facts.OTHER_FRAMEWORKS`) and neither imports nor uses torch (a comment may name
    it): its `model(x)` loops and `training=` switches are that framework's, not PyTorch's."""
    global _other_framework_import
    if "torch" in source and _TORCH_USE.search(source) is not None:
        return False
    if _other_framework_import is None:
        from evallint.torch_facts import OTHER_FRAMEWORKS

        names = "|".join(OTHER_FRAMEWORKS)
        _other_framework_import = re.compile(
            rf"^[ \t]*(?:import|from)[ \t]+(?:{names})\b", re.MULTILINE
        )
    return _other_framework_import.search(source) is not None


def may_have_findings(source: str) -> bool:
    return (
        any(word in source for word in PREFILTER_WORDS)
        or any(
            literal in source and pattern.search(source) is not None
            for literal, pattern in PREFILTER_PATTERNS
        )
    ) and not other_framework_code(source)


def _error(path: str, line: int, column: int, message: str) -> Diagnostic:
    return Diagnostic(path, line, column, line, column, PARSE_ERROR_CODE, message)


def new_project(options: Optional[AnalysisOptions] = None) -> ProjectIndex:
    """A project index reading imported files from disk, once per run."""
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.options import AnalysisOptions
    from evallint.analysis.project import ProjectIndex

    return ProjectIndex(_read_project_file, options or AnalysisOptions(), analyse=FileAnalysis)


_PROCESS_PROJECTS: dict[AnalysisOptions, ProjectIndex] = {}


def process_project(config: Config) -> ProjectIndex:
    """One project index per process and analysis settings, for front ends that lint file
    by file (flake8, the language server) as the CLI lints a run: imported files are read
    once, and again only when their modification time or size changes."""
    options = analysis_options(config)
    project = _PROCESS_PROJECTS.get(options)
    if project is None:
        project = _PROCESS_PROJECTS[options] = new_project(options)
    return project


def _read_project_file(path: Path) -> Optional[str]:
    """An imported project file's text; None when unreadable, undecodable or without any
    torch-related text (its functions cannot matter)."""
    try:
        source = decode_source(path.read_bytes())
    except Exception:  # an imported file must never fail the file that imports it
        return None
    return source if may_have_findings(source) else None


def analysis_options(config: Config) -> AnalysisOptions:
    from evallint.analysis.options import AnalysisOptions

    return AnalysisOptions(
        eval_words=frozenset(w.lower() for w in config.eval_names),
        module_factories=config.module_factories,
        framework_hooks=frozenset(config.mode_switching_hooks),
    )


def analyse_source(
    source: str,
    path: str,
    *,
    project: Optional[ProjectIndex] = None,
    record_flow: bool = False,
    options: Optional[AnalysisOptions] = None,
    parser: Optional[IncrementalParser] = None,
    python_tree: Optional[ast.Module] = None,
) -> FileAnalysis | ParseFailure:
    """Parse and analyse one file: the facts every rule and `debug --flow` read. An editor
    passes the document's `parser`, which re-parses only the statements that changed;
    flake8 passes the CPython tree it already built (`parse_module`'s nesting check)."""
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.options import AnalysisOptions
    from evallint.source.parse import ParseFailure, parse_module

    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
    if parser is not None:
        parsed = parser.parse(source)
        if isinstance(parsed, ParseFailure):
            return parsed
        if project is not None:
            project.remember(path, source)
        return FileAnalysis(
            parsed.module,
            path,
            source=source,
            options=options or AnalysisOptions(),
            project=project,
            positions=parsed.positions,
            eager_tables=True,  # an editor's next lint compares them (file_tables.py)
        )
    tree = project.parsed(path, source) if project is not None else None
    if tree is None:
        fresh = parse_module(source, python_tree)
        if isinstance(fresh, ParseFailure):
            return fresh
        tree = fresh
        if project is not None:
            project.remember(path, source)
    return FileAnalysis(
        tree,
        path,
        source=source,
        options=options or AnalysisOptions(),
        project=project,
        record_flow=record_flow,
    )


BUDGET_MESSAGE = (
    "analysis budget exceeded: the file holds more call-path facts than evallint analyses "
    "per file; functions past the budget were treated as opaque calls, so findings are partial"
)


def lint_source(
    source: str,
    path: str = "<string>",
    config: Optional[Config] = None,
    *,
    apply_suppressions: bool = True,
    project: Optional[ProjectIndex] = None,
    fixes: bool = False,
    parser: Optional[IncrementalParser] = None,
    python_tree: Optional[ast.Module] = None,
) -> list[Diagnostic]:
    """Lint one file's text. `path` names it in findings and locates project imports.
    With `fixes`, findings with a certain fix carry it (`Diagnostic.fix`); `parser` is an
    editor's per-document incremental parser (not with `fixes`: fixes need a full parse);
    `python_tree` is CPython's tree of `source`, when the caller has one (flake8)."""
    config = config or Config()
    if not may_have_findings(source):
        found = _syntax_errors(source, path)
        if apply_suppressions and config.is_enabled(UNUSED_SUPPRESSION_CODE, path):
            found += unused_suppressions(source, path, found, config)
        return found
    from evallint.analysis.reuse import lint_memos
    from evallint.source.parse import collector_paused

    options = analysis_options(config)
    if project is None and not path.startswith("<"):
        project = new_project(options)
    with collector_paused(), lint_memos():
        found = _analyse_and_check(
            source, path, config, options, project, fixes, parser, python_tree
        )
    found = [d for d in found if d.code != PARSE_ERROR_CODE or config.is_enabled(d.code, path)]
    if apply_suppressions and config.is_enabled(UNUSED_SUPPRESSION_CODE, path):
        found += unused_suppressions(source, path, found, config)
    if apply_suppressions and found:
        table = suppressions(source)
        found = [
            d for d in found if d.code == UNUSED_SUPPRESSION_CODE or not is_suppressed(d, table)
        ]
    return _merge_duplicates(sorted(set(found), key=Diagnostic.sort_key))


def _merge_duplicates(found: list[Diagnostic]) -> list[Diagnostic]:
    """One finding per place, code and message: the same evaluation reached through several
    callers (each model class a script may build, `model.train(loader)`) is one mistake at
    one place, printed once, with every caller's path among its related locations."""
    merged: dict[tuple, Diagnostic] = {}
    for diagnostic in found:
        key = (
            diagnostic.line,
            diagnostic.column,
            diagnostic.end_line,
            diagnostic.end_column,
            diagnostic.code,
            diagnostic.message,
            diagnostic.cell,
        )
        first = merged.get(key)
        if first is None:
            merged[key] = diagnostic
        elif diagnostic.related:
            related = tuple(dict.fromkeys(first.related + diagnostic.related))
            merged[key] = replace(first, related=related)
    return list(merged.values())


def unused_suppressions(
    source: str, path: str, findings: list[Diagnostic], config: Config
) -> list[Diagnostic]:
    """EVL100 for each suppression comment that silences none of `findings` (the file's
    findings before suppression), like ruff's RUF100."""
    found = []
    for directive, codes in unused_directives(
        source, findings, lambda code: config.is_enabled(code, path)
    ):
        what = ", ".join(codes) if codes else "any finding"
        comment = directive.text.strip()
        found.append(
            Diagnostic(
                path,
                directive.line,
                directive.column,
                directive.line,
                directive.column + len(comment),
                UNUSED_SUPPRESSION_CODE,
                f"unused suppression `{comment}`: nothing here is reported as {what}, so it "
                "would hide a future finding nobody reviewed; remove it"
                + (" (or the unused codes)" if codes else ""),
            )
        )
    return found


def _syntax_errors(source: str, path: str) -> list[Diagnostic]:
    """The EVL999 of a file the prefilter skips: nothing in it can have a finding, but a
    file that does not parse must not pass silently. CPython's parser answers in a tenth of
    LibCST's time; only when it rejects the file does LibCST decide (it reads syntax newer
    than the running Python's), in the same words as for any other file."""
    try:
        compile(source, path, "exec", _ONLY_AST, dont_inherit=True)
        return []
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    from evallint.source.parse import ParseFailure, parse_module

    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
    try:
        failure = parse_module(source)
    except RecursionError:
        return [_error(path, 1, 1, "cannot analyse: nesting too deep")]
    if isinstance(failure, ParseFailure):
        return [_error(path, failure.line, failure.column, f"cannot parse: {failure.reason}")]
    return []


_ONLY_AST = 0x400
"""ast.PyCF_ONLY_AST: build the tree, compile nothing (the `ast` module is not imported)."""


def _analyse_and_check(
    source: str,
    path: str,
    config: Config,
    options: AnalysisOptions,
    project: Optional[ProjectIndex],
    fixes: bool,
    parser: Optional[IncrementalParser],
    python_tree: Optional[ast.Module],
) -> list[Diagnostic]:
    """The rules' findings on one parsed file, or the one EVL999 saying why there are none."""
    from evallint.rules import RULES
    from evallint.source.parse import ParseFailure

    try:
        analysis = analyse_source(
            source,
            path,
            project=project,
            options=options,
            parser=None if fixes else parser,
            python_tree=python_tree,
        )
        if isinstance(analysis, ParseFailure):
            found = [
                _error(path, analysis.line, analysis.column, f"cannot parse: {analysis.reason}")
            ]
        else:
            found = []
            analysis.facts.want_fixes = fixes
            for rule in RULES:
                if config.is_enabled(rule.code, path):
                    found.extend(rule().check(analysis.facts))
            if analysis.budget_exceeded:
                found.append(_error(path, 1, 1, BUDGET_MESSAGE))
            analysis.close()
    except RecursionError:
        found = [_error(path, 1, 1, "cannot analyse: nesting too deep")]
    except Exception as exc:  # a bug in evallint must not stop the other files
        log_debug(__name__, "internal error on %s", path, exc_info=True)
        found = [_error(path, 1, 1, f"internal error: {type(exc).__name__}: {exc}")]
    return found


def lint_file(
    path: Path,
    config: Optional[Config] = None,
    *,
    project: ProjectIndex | Callable[[], ProjectIndex] | None = None,
    cache: Optional[ResultCache] = None,
    apply_suppressions: bool = True,
) -> list[Diagnostic]:
    """Lint one file from disk (a `.py` file or a notebook); unreadable input is EVL999.
    `project` may be a factory: a cache hit then never builds one (nor imports LibCST)."""
    name = str(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        return [_error(name, 1, 1, "cannot read: is a directory")]
    except OSError as exc:
        return [_error(name, 1, 1, f"cannot read: {exc.strerror or exc}")]
    config = config or load_config(path)
    key = cache.key(name, data) if cache is not None else ""
    if cache is not None:
        cached = cache.get(key, name)
        if cached is not None:
            return cached
    if callable(project):
        project = project()
    elif project is None:
        project = new_project(analysis_options(config))
    if path.suffix == ".ipynb":
        found = _lint_notebook(data, name, config, project, apply_suppressions)
    else:
        found = _lint_bytes(data, name, config, project, apply_suppressions)
    found = cells_of_other_notebooks(found)
    if cache is not None:
        cache.put(key, found, project.dependencies_of(name), project.missing_of(name), name)
    return found


def cells_of_other_notebooks(found: list[Diagnostic]) -> list[Diagnostic]:
    """Related locations in another notebook (a caller in its cells) given by (cell, line)."""
    if not any(
        r.cell is None and r.path != d.path and r.path.endswith(".ipynb")
        for d in found
        for r in d.related
    ):
        return found
    from evallint.source.notebook import map_other_notebooks  # nbformat only for notebooks

    return [map_other_notebooks(d) for d in found]


def lint_bytes(
    data: bytes, name: str, config: Optional[Config] = None, *, apply_suppressions: bool = True
) -> list[Diagnostic]:
    """Lint a file's bytes that did not come from disk (standard input); `name` decides
    whether they are a notebook (`.ipynb`) and names them in findings."""
    config = config or Config()
    project = new_project(analysis_options(config))
    if name.endswith(".ipynb"):
        return _lint_notebook(data, name, config, project, apply_suppressions)
    return _lint_bytes(data, name, config, project, apply_suppressions)


def _lint_bytes(
    data: bytes, name: str, config: Config, project: ProjectIndex, apply_suppressions: bool
) -> list[Diagnostic]:
    try:
        source = decode_source(data)
    except DecodeError as exc:
        return [_error(name, 1, 1, f"cannot decode: {exc}")]
    if "\x00" in source:
        return [_error(name, 1, 1, "cannot parse: binary file (contains NUL bytes)")]
    return lint_source(source, name, config, project=project, apply_suppressions=apply_suppressions)


def _lint_notebook(
    data: bytes, name: str, config: Config, project: ProjectIndex, apply_suppressions: bool
) -> list[Diagnostic]:
    """Code cells analysed as one program; findings reported by (cell, line)."""
    from evallint.source.notebook import (  # nbformat only for notebooks
        NotebookError,
        map_diagnostic,
        read_notebook,
    )

    try:
        virtual = read_notebook(data)
    except NotebookError as exc:
        return [_error(name, 1, 1, f"cannot read notebook: {exc}")]
    diagnostics = lint_source(
        virtual.text, name, config, project=project, apply_suppressions=apply_suppressions
    )
    # a cell that is not Python stops only itself, as in Jupyter: reported, the rest analysed
    diagnostics += [
        _error(name, line, column, f"cannot parse: {reason}")
        for line, column, reason in virtual.unparsable
    ]
    return sorted((map_diagnostic(d, virtual) for d in diagnostics), key=Diagnostic.sort_key)


def lint_paths(
    paths: Iterable[str | os.PathLike[str]],
    config: Optional[Config] = None,
    *,
    jobs: int = 1,
    use_cache: bool = False,
    apply_suppressions: bool = True,
    overrides: Optional[Overrides] = None,
) -> list[Diagnostic]:
    """Lint files and directories (walked for *.py and *.ipynb, honouring excludes and
    ignore files). `config` replaces every file's own settings (`--config`); `overrides`
    (command-line flags) apply on top of them. `jobs` > 1 lints in that many processes;
    `use_cache` reuses results of unchanged files; without `apply_suppressions`, findings
    silenced by `# noqa` are kept."""
    paths = list(paths)
    configs: dict[str, Config] = {}

    def settings(name: str) -> Config:
        return resolve(name, config, overrides)

    for path in iter_source_files(paths, settings):  # files only: a named directory is walked
        configs[str(path)] = settings(str(path))
    files = list(configs)
    use_cache = use_cache and apply_suppressions
    found: list[Diagnostic] = []
    caches: dict[Optional[Path], ResultCache] = {}
    if use_cache:  # answered here, so a warm run starts no worker processes
        files = [
            name for name in files if not _found_in_cache(Path(name), configs[name], caches, found)
        ]
    if jobs > 1 and len(files) >= PARALLEL_THRESHOLD:
        found += _lint_in_processes(files, configs, jobs, use_cache, apply_suppressions)
    else:
        found += _lint_files(files, configs, use_cache, apply_suppressions)
    for root, cache in caches.items():
        cache.save_index(name for name in files if configs[name].root == root)
    return sorted(found, key=Diagnostic.sort_key)


def _found_in_cache(path: Path, config: Config, caches: dict, found: list[Diagnostic]) -> bool:
    """Effect: a cached result for the file's current content is added to `found`."""
    cached = _cache_for(config, caches).lookup(path)
    if cached is not None:
        found.extend(cached)
    return cached is not None


def _lint_files(
    files: Sequence[str],
    configs: dict[str, Config],
    use_cache: bool,
    apply_suppressions: bool = True,
) -> list[Diagnostic]:
    shared: list[ProjectIndex] = []

    def project() -> ProjectIndex:
        """One project index for the whole run, built at the first cache miss."""
        if not shared:
            shared.append(new_project(analysis_options(configs[files[0]])))
        return shared[0]

    from evallint.engine.collection import between_files

    found: list[Diagnostic] = []
    caches: dict[Optional[Path], ResultCache] = {}
    with between_files() as file_done:
        for name in files:
            path = Path(name)
            file_config = configs[name]
            cache = _cache_for(file_config, caches) if use_cache else None
            found.extend(
                lint_file(
                    path,
                    file_config,
                    project=project,
                    cache=cache,
                    apply_suppressions=apply_suppressions,
                )
            )
            file_done()
    return found


def _cache_for(config: Config, caches: dict) -> ResultCache:
    from evallint.engine.cache import ResultCache, settings_of

    if config.root not in caches:
        caches[config.root] = ResultCache(config.root or Path.cwd(), settings_of(config))
    return caches[config.root]


def _lint_in_processes(
    files: list[str],
    configs: dict[str, Config],
    jobs: int,
    use_cache: bool,
    apply_suppressions: bool,
) -> list[Diagnostic]:
    """One file per task, largest first, so a huge generated file starts at once instead of
    finishing last behind the files queued with it; each worker keeps one project index."""
    from concurrent.futures import ProcessPoolExecutor
    from itertools import repeat

    largest_first = sorted(files, key=_size_or_zero, reverse=True)
    found: list[Diagnostic] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for part in pool.map(
            _lint_in_worker,
            largest_first,
            [configs[name] for name in largest_first],
            repeat(use_cache),
            repeat(apply_suppressions),
        ):
            found.extend(part)
    return found


def _lint_in_worker(
    name: str, file_config: Config, use_cache: bool, apply_suppressions: bool
) -> list[Diagnostic]:
    from evallint.engine.collection import worker_file_done

    path = Path(name)
    cache = _cache_for(file_config, _WORKER_CACHES) if use_cache else None
    found = lint_file(
        path,
        file_config,
        project=lambda: process_project(file_config),
        cache=cache,
        apply_suppressions=apply_suppressions,
    )
    worker_file_done()
    return found


_WORKER_CACHES: dict[Optional[Path], ResultCache] = {}


def _size_or_zero(name: str) -> int:
    try:
        return os.path.getsize(name)
    except OSError:
        return 0


if TYPE_CHECKING:
    from evallint.engine.cache import ResultCache
