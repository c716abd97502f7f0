"""The language server: pygls plumbing, lints on their own thread, fixes on another.

The server lints with the same configuration and suppressions as the CLI. A Python file
is one program; a notebook (notebookDocument sync, code cells in Python) is one program of
its code cells in order, with findings published per cell. An edit that only touched
comments or blank space moves the previous findings instead of linting again; while the
text does not parse, the last findings are moved along with the edits (never left at
lines that now hold other code) and the syntax error is shown with them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from evallint import __version__
from evallint.diagnostics import PARSE_ERROR_CODE, Diagnostic
from evallint.engine.config import Config, ConfigError, clear_cache, load_config
from evallint.engine.run import (
    analysis_options,
    cells_of_other_notebooks,
    lint_source,
    new_project,
)
from evallint.lsp import DEBOUNCE_SECONDS, fixes
from evallint.lsp.actions import FIX_ALL_KIND, CodeActions
from evallint.lsp.convert import to_lsp
from evallint.lsp.program import Part, Program
from evallint.lsp.text import (
    CodeLines,
    client_units,
    code_lines,
    code_points,
    line_map,
    same_code_map,
)
from evallint.source.directives import is_suppressed, suppressions
from evallint.source.text import DecodeError, decode_source, split_lines

LOG = logging.getLogger(__name__)

WATCHED = ("**/*.py", "**/pyproject.toml", "**/.evallint.toml")

_DIRECTIVE = re.compile(r"#\s*(?:noqa|evallint:\s*ignore)\b[^#]*", re.IGNORECASE)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)
_LINE_REFERENCE = re.compile(r"\bline [0-9]+\b")
"""A message that cites a line (EVL003's "reached through the call at line 40") is not
moved with the edits: the line it cites may be in another file, so it is linted again."""

VERIFIED_CODES = frozenset({"EVL001", "EVL002", "EVL003", "EVL004", "EVL005", "EVL006"})
"""The codes the verifier can measure (`evallint.verifier.verdict.VERIFIED_CODES`; a test
keeps the two equal without the server importing the verifier)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Linted:
    """The last program text that parsed, its findings before suppressions, and its code
    lines (to recognise an edit that changed no code)."""

    text: str
    found: list[Diagnostic]
    known_code: Optional[CodeLines] = None

    @functools.cached_property
    def code(self) -> CodeLines:
        """`code_lines(text)`, found when the next edit asks (an edit of code followed by
        another edit of code never needs it: a scan of the whole text saved)."""
        return self.known_code if self.known_code is not None else code_lines(self.text)


class EvallintServer(CodeActions, LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "evallint",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            notebook_document_sync=types.NotebookDocumentSyncOptions(
                notebook_selector=[
                    types.NotebookDocumentFilterWithCells(
                        cells=[types.NotebookCellLanguage(language="python")]
                    )
                ],
                save=True,
            ),
        )
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.parsers: dict[str, Any] = {}
        self.reuse: dict[str, Any] = {}
        """Per document: what the next lint may take from the last (`evallint.analysis.reuse`)."""
        self.linted: dict[str, Linted] = {}
        self.published_parts: dict[str, set[str]] = {}
        self.reported_config_errors: set[str] = set()
        self.linter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evallint-lint")
        self.fixer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evallint-fix")
        self.idle = threading.Event()
        """Set while no diagnostics lint runs; fix jobs wait for it between steps."""
        self.idle.set()
        self.projects: dict[Any, Any] = {}
        """Project indexes of the diagnostics lints, one per analysis settings."""
        self.fix_projects: dict[Any, Any] = {}
        """The fix worker's own indexes (it runs beside the lint thread)."""
        self.plans: dict[str, fixes.FixPlan] = {}
        self.jobs: dict[str, set[fixes.Job]] = {}
        self.resolve_fix_all = False
        self.watch_files = False
        self.debounce = DEBOUNCE_SECONDS
        self.event_loop: Optional[asyncio.AbstractEventLoop] = None
        self.verify = False
        """`initializationOptions: {"verify": true}`: run the verifier on saved files."""
        self.verdicts: dict[str, tuple[str, dict[tuple[str, int, int], tuple[str, str]]]] = {}
        """uri -> (the text they were measured on, (code, line, column) -> (verdict, summary))."""
        self.verifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evallint-verify")

    # documents -------------------------------------------------------------------------------
    def program_of(self, uri: str) -> Program:
        """The program a document belongs to: its notebook's cells, or its own text."""
        notebook = self.workspace.get_notebook_document(
            notebook_uri=uri
        ) or self.workspace.get_notebook_document(cell_uri=uri)
        if notebook is not None:
            parts = []
            for cell in notebook.cells:
                document = self.workspace.get_text_document(cell.document)
                python = cell.kind == types.NotebookCellKind.Code and (
                    document.language_id in (None, "python")
                )
                parts.append(Part(cell.document, document.source, python))
            path = _uri_path(notebook.uri)
            return Program.of_cells(notebook.uri, path, notebook.version, parts)
        document = self.workspace.get_text_document(uri)
        return Program.of_text(uri, _uri_path(uri), document.version, document.source)

    def project(self, config: Config, table: dict[Any, Any]) -> Any:
        options = analysis_options(config)
        if options not in table:
            table[options] = new_project(options)
        return table[options]

    # linting -----------------------------------------------------------------------------
    def schedule(self, uri: str, delay: float) -> None:
        """Effect: cancel the program's pending lint and fix jobs (their text is stale) and
        start a new lint."""
        self.event_loop = asyncio.get_running_loop()
        self.cancel_jobs(uri)
        stale = self.pending.pop(uri, None)
        if stale is not None:
            stale.cancel()
        task = asyncio.get_running_loop().create_task(self.publish_after(uri, delay))
        self.pending[uri] = task
        task.add_done_callback(functools.partial(self.finished, uri))

    def finished(self, uri: str, task: asyncio.Task[None]) -> None:
        if self.pending.get(uri) is task:
            del self.pending[uri]

    def cancel_jobs(self, uri: str) -> None:
        for job in self.jobs.pop(uri, set()):
            job.cancel()
        self.plans.pop(uri, None)

    async def publish_after(self, uri: str, delay: float) -> None:
        """Effect: lint the program's current text and publish, unless cancelled first;
        with verification on, a saved file's findings are then measured and republished."""
        if delay:
            await asyncio.sleep(delay)
        try:
            program = self.program_of(uri)
            found = await self.in_worker(self.lint, program)
        except Exception:  # a bug in evallint must not take the editor's server down
            LOG.exception("linting %s failed", uri)
            return
        self.publish(program, found)
        if (
            self.verify
            and not program.notebook
            and any(d.code in VERIFIED_CODES for d in found)
            and _saved(program.path, program.text)
        ):
            measured = self.verdicts.get(uri)
            if measured is None or measured[0] != program.text:
                await self.verify_and_republish(program, found)

    def lint(self, program: Program) -> list[Diagnostic]:
        """The findings to show for `program` (on the lint thread): moved ones when only
        comments or blank space changed, moved ones and the syntax error while it does not
        parse, else a fresh lint."""
        from evallint.analysis.reuse import Reuse
        from evallint.source.incremental import IncrementalParser

        uri, text = program.uri, program.text
        last = self.linted.get(uri)
        if last is not None and last.text == text:
            return _suppressed(last.found, text)
        if last is not None:
            same = same_code_map(last.text, last.code, text)
            if same is not None and not any(_LINE_REFERENCE.search(d.message) for d in last.found):
                found = [m for m in map(same[0].move, last.found) if m is not None]
                self.linted[uri] = Linted(text, found, same[1])
                return _suppressed(found, text)
            failure = syntax_error(text, program.path)
            if failure is not None:  # CPython's parser says so in a tenth of LibCST's time
                moved_lines = line_map(last.text, text)
                kept = [m for m in map(moved_lines.move, last.found) if m is not None]
                return _suppressed(kept, text) + [failure]
        config = self.config_for(program.path)
        parser = self.parsers.setdefault(uri, IncrementalParser())
        project = None if program.path.startswith("<") else self.project(config, self.projects)
        reuse = self.reuse.setdefault(uri, Reuse())
        self.idle.clear()
        try:
            with reuse.active():
                found = lint_source(
                    text,
                    program.path,
                    config,
                    parser=parser,
                    project=project,
                    apply_suppressions=False,
                )
            found = cells_of_other_notebooks(found)
        finally:
            self.idle.set()
        failures = [d for d in found if d.code == PARSE_ERROR_CODE]
        if failures and last is not None:
            moved_lines = line_map(last.text, text)
            kept = [m for m in map(moved_lines.move, last.found) if m is not None]
            return _suppressed(kept, text) + failures[:1]
        if not failures:
            self.linted[uri] = Linted(text, found)
        return _suppressed(found, text)

    def publish(self, program: Program, found: list[Diagnostic]) -> None:
        """Effect: publish the findings per part (a notebook's cells each get their list,
        an empty one when their findings are gone)."""
        measured = self.verdicts.get(program.uri)
        verdicts = measured[1] if measured is not None and measured[0] == program.text else {}
        per_part: dict[int, list[types.Diagnostic]] = {}
        part_lines = [split_lines(part.text) for part in program.parts]
        for finding in found:
            index, placed = program.place(finding)
            verdict = verdicts.get((finding.code, finding.line, finding.column))
            per_part.setdefault(index, []).append(
                to_lsp(placed, program, index, self.encoding, self.other_file, verdict, part_lines)
            )
        before = self.published_parts.get(program.uri, set())
        now = set()
        for index, part in enumerate(program.parts):
            if index in per_part or part.uri in before or part.code:
                now.add(part.uri)
                version = (
                    program.version
                    if not program.notebook
                    else self.workspace.get_text_document(part.uri).version
                )
                self.text_document_publish_diagnostics(
                    types.PublishDiagnosticsParams(
                        uri=part.uri, diagnostics=per_part.get(index, []), version=version
                    )
                )
        self.published_parts[program.uri] = {
            uri for uri in now if uri in {p.uri for p in program.parts}
        }

    async def verify_and_republish(self, program: Program, found: list[Diagnostic]) -> None:
        """Effect: measure the findings with real layers (torch, on its own thread) and, if
        the text is still the measured one, publish them again with their verdicts."""
        try:
            verdicts = await asyncio.get_running_loop().run_in_executor(
                self.verifier, measure, found
            )
        except ImportError as exc:
            self.verify = False
            self.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Warning,
                    message="evallint: verification needs the verify extra "
                    f"(pip install 'torch-evallint[verify]'): {exc}",
                )
            )
            return
        except Exception:  # a verifier bug must not take the server down
            LOG.exception("verifying %s failed", program.uri)
            return
        self.verdicts[program.uri] = (program.text, verdicts)
        if self.program_of(program.uri).text == program.text:
            self.publish(program, found)

    async def in_worker(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self.linter, functools.partial(function, *args, **kwargs)
        )

    def config_for(self, path: str) -> Config:
        """The CLI's settings for `path`; a broken table is shown once and defaults are used."""
        if path.startswith("<"):
            return Config()
        try:
            return load_config(Path(path))
        except ConfigError as exc:
            if str(exc) not in self.reported_config_errors:
                self.reported_config_errors.add(str(exc))
                message = types.ShowMessageParams(
                    type=types.MessageType.Error, message=f"evallint: {exc}"
                )  # sent from the event loop: the lint and fix threads never write to stdout
                if self.event_loop is not None:
                    self.event_loop.call_soon_threadsafe(self.window_show_message, message)
            return Config()

    def forget(self, uri: str) -> None:
        self.cancel_jobs(uri)
        stale = self.pending.pop(uri, None)
        if stale is not None:
            stale.cancel()
        for cache in (self.linted, self.parsers, self.reuse, self.verdicts):
            cache.pop(uri, None)

    def files_changed(self, changes: list[types.FileEvent]) -> None:
        """Effect: a created or deleted module may resolve an import that missed (or break
        one that hit), and a changed config changes settings: drop the project indexes and
        cached settings, and lint every open program again."""
        if not changes:
            return
        clear_cache()
        self.projects.clear()
        self.fix_projects.clear()
        self.linted.clear()
        uris = {self.program_of(uri).uri for uri in self.workspace.text_documents}
        for uri in uris:
            self.schedule(uri, 0)

    @property
    def encoding(self) -> str:
        """The negotiated encoding; compare it with ==, never str(): it is a str-valued enum."""
        return self.workspace.position_encoding or types.PositionEncodingKind.Utf16

    def other_file(self, path: str, cell: Optional[int]) -> tuple[str, list[str]]:
        """The URI and lines of a related place in another file. A cell of another notebook
        (`cell`, 1-based among all cells as on disk) is that cell's document when the editor
        has the notebook open with the cell; otherwise the notebook's URI and no lines."""
        uri = from_fs_path(os.path.abspath(path)) or path
        if cell is None:
            return uri, self.lines_of(path)
        notebook = self.workspace.get_notebook_document(notebook_uri=uri)
        if notebook is not None and 1 <= cell <= len(notebook.cells):
            document = notebook.cells[cell - 1].document
            return document, split_lines(self.workspace.get_text_document(document).source)
        return uri, []

    def lines_of(self, path: str) -> list[str]:
        """Another file's lines, for related locations: the editor's copy if open, else disk."""
        uri = from_fs_path(os.path.abspath(path))
        if uri is not None and uri in self.workspace.text_documents:
            return split_lines(self.workspace.text_documents[uri].source)
        try:
            return split_lines(decode_source(Path(path).read_bytes()))
        except (OSError, DecodeError):
            return []

    # hover -----------------------------------------------------------------------------------
    def hover(self, params: types.HoverParams) -> Optional[types.Hover]:
        """The rule's page when the cursor is on a code inside a `# noqa:` (or evallint) comment."""
        lines = split_lines(self.workspace.get_text_document(params.text_document.uri).source)
        if params.position.line >= len(lines):
            return None
        text = lines[params.position.line].rstrip("\r\n")
        column = code_points(text, params.position.character, self.encoding)
        from evallint.rules import RULES_BY_CODE

        for directive in _DIRECTIVE.finditer(text):
            for found in _CODE.finditer(text, directive.start(), directive.end()):
                rule = RULES_BY_CODE.get(found.group().upper())
                if rule is not None and found.start() <= column <= found.end():
                    page = (
                        f"**{rule.code}** `{rule.name}`: {rule.summary}.\n\n{rule.documentation()}"
                    )
                    word = types.Range(
                        start=types.Position(
                            line=params.position.line,
                            character=client_units(text[: found.start()], self.encoding),
                        ),
                        end=types.Position(
                            line=params.position.line,
                            character=client_units(text[: found.end()], self.encoding),
                        ),
                    )
                    return types.Hover(
                        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=page),
                        range=word,
                    )
        return None


def syntax_error(text: str, path: str) -> Optional[Diagnostic]:
    """EVL999 for a text CPython cannot parse, or None (also when it is unsure: nesting
    too deep for it, NUL bytes, where the full lint decides as the CLI does)."""
    from evallint.source.parse import python_tree

    try:
        python_tree(text)  # kept: the lint that follows reads the same tree
    except SyntaxError as exc:
        line = max(exc.lineno or 1, 1)
        column = max(exc.offset or 1, 1)
        return Diagnostic(
            path, line, column, line, column, PARSE_ERROR_CODE, f"cannot parse: {exc.msg}"
        )
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


def _suppressed(found: list[Diagnostic], text: str) -> list[Diagnostic]:
    """The findings a `# noqa` or `# evallint: ignore` in `text` does not silence, in order."""
    table = suppressions(text) if found else {}
    kept = [d for d in found if not is_suppressed(d, table)]
    return sorted(set(kept), key=Diagnostic.sort_key)


def measure(found: list[Diagnostic]) -> dict[tuple[str, int, int], tuple[str, str]]:
    """The verifier's verdict and one-line summary per finding; imports torch (ImportError
    when the verify extra is missing)."""
    from evallint.verifier import verify  # the verify extra, only when the client asks for it

    return {
        (v.diagnostic.code, v.diagnostic.line, v.diagnostic.column): (v.verdict, v.summary)
        for v in verify(found)
    }


def _saved(path: str, source: str) -> bool:
    """The verifier reads the file from disk: only a buffer equal to it can be measured."""
    if path.startswith("<"):
        return False
    try:
        return decode_source(Path(path).read_bytes()) == source
    except (OSError, DecodeError):
        return False


def _uri_path(uri: str) -> str:
    """A file's path, or `<uri>` for unsaved buffers (no config lookup, no project imports)."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return path if path else f"<{uri}>"


def create_server() -> EvallintServer:
    server = EvallintServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: EvallintServer, params: types.InitializeParams) -> None:
        """`initializationOptions`: `{"verify": true}` turns the verifier on (off by default:
        it imports torch and runs the flagged layers); `{"debounce": seconds}` sets the wait
        after a keystroke (0.3 s by default)."""
        options = params.initialization_options
        ls.verify = isinstance(options, dict) and options.get("verify") is True
        debounce = options.get("debounce") if isinstance(options, dict) else None
        if isinstance(debounce, (int, float)) and 0 <= debounce <= 10:
            ls.debounce = float(debounce)
        text = params.capabilities.text_document
        resolve = text.code_action.resolve_support if text and text.code_action else None
        ls.resolve_fix_all = resolve is not None and "edit" in resolve.properties
        workspace = params.capabilities.workspace
        watched = workspace.did_change_watched_files if workspace else None
        ls.watch_files = bool(watched and watched.dynamic_registration)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: EvallintServer, params: types.InitializedParams) -> None:
        """Effect: ask the client to report created, changed and deleted Python and config
        files (an import that did not resolve may resolve once its module exists)."""
        if ls.watch_files:
            watchers = [types.FileSystemWatcher(glob_pattern=glob) for glob in WATCHED]
            registration = types.Registration(
                id="evallint-watched-files",
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
            )
            try:
                await ls.client_register_capability_async(
                    types.RegistrationParams(registrations=[registration])
                )
            except Exception:  # a client that refuses still gets diagnostics
                LOG.warning("the client did not accept file watchers", exc_info=True)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: EvallintServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        ls.files_changed(list(params.changes))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: EvallintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: EvallintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, ls.debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: EvallintServer, params: types.DidSaveTextDocumentParams) -> None:
        clear_cache()  # the save may have been pyproject.toml's, or the file moved under one
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: EvallintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_did_open(ls: EvallintServer, params: types.DidOpenNotebookDocumentParams) -> None:
        ls.schedule(params.notebook_document.uri, 0)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_did_change(
        ls: EvallintServer, params: types.DidChangeNotebookDocumentParams
    ) -> None:
        ls.schedule(params.notebook_document.uri, ls.debounce)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_did_save(ls: EvallintServer, params: types.DidSaveNotebookDocumentParams) -> None:
        clear_cache()
        ls.schedule(params.notebook_document.uri, 0)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_did_close(
        ls: EvallintServer, params: types.DidCloseNotebookDocumentParams
    ) -> None:
        uri = params.notebook_document.uri
        ls.forget(uri)
        for cell in set(ls.published_parts.pop(uri, set())) | {
            c.uri for c in params.cell_text_documents
        }:
            ls.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=cell, diagnostics=[])
            )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND],
            resolve_provider=True,
        ),
    )
    async def code_action(
        ls: EvallintServer, params: types.CodeActionParams
    ) -> list[types.CodeAction]:
        return await ls.code_actions(params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: EvallintServer, params: types.CodeAction) -> types.CodeAction:
        return await ls.resolve(params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: EvallintServer, params: types.HoverParams) -> Optional[types.Hover]:
        return ls.hover(params)

    @server.feature(types.EXIT)
    def exit_now(ls: EvallintServer, *args: object) -> None:
        """Effect: end the process at once, whatever a worker thread is doing (Python would
        otherwise wait for it before exiting)."""
        _exit(0 if ls.protocol._shutdown else 1)

    return server


def _exit(code: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve() -> None:
    """Serve on stdin/stdout until the client says exit (or closes stdin)."""
    server = create_server()
    try:
        server.start_io()
    finally:
        _exit(0 if server.protocol._shutdown else 1)
