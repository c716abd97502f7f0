"""`evallint lsp`: findings while typing, in any editor that speaks the Language Server Protocol.

Built on pygls (extra `lsp`), so the CLI imports this module only inside its `lsp` command.
The server lints with the same configuration and suppressions as the CLI, converts
positions in one place (`client_units`), and offers the engine's verified fixes as code
actions. Lints run on one worker thread so the event loop keeps answering the client.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import io
import logging
import os
import re
import sys
import tokenize
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path
from pygls.workspace import TextDocument

from evallint import __version__
from evallint.diagnostics import Diagnostic, Edit
from evallint.docs import anchor
from evallint.engine.config import Config, ConfigError, clear_cache, load_config
from evallint.engine.fixes import fix_source, native_edits, verified_fixes
from evallint.engine.run import lint_source, process_project
from evallint.rules import PARSE_ERROR_CODE, RULES_BY_CODE
from evallint.source.incremental import IncrementalParser
from evallint.source.text import DecodeError, decode_source, split_lines

LOG = logging.getLogger(__name__)

DOCS_URL = "https://github.com/evallint/evallint/blob/main/docs/rules.md"
FIX_ALL_KIND = "source.fixAll.evallint"
DEBOUNCE_SECONDS = 0.3
"""Wait this long after the last keystroke: typing must not queue a lint per character."""

_NOQA_CODES = re.compile(r"# noqa:\s?[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*", re.IGNORECASE)
_DIRECTIVE = re.compile(r"#\s*(?:noqa|evallint:\s*ignore)\b[^#]*", re.IGNORECASE)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)

T = TypeVar("T")


def client_units(text: str, encoding: str) -> int:
    """Length of `text` in the position units the client negotiated (UTF-16 by default).

    evallint counts code points; LSP counts UTF-16 code units unless the client offered
    UTF-8 or UTF-32. Every column sent to the client goes through here.
    """
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def code_points(text: str, units: int, encoding: str) -> int:
    """The inverse of `client_units`: how many characters of `text` span `units` client units."""
    for index in range(len(text) + 1):
        if client_units(text[:index], encoding) >= units:
            return index
    return len(text)


def position(lines: list[str], line: int, column: int, encoding: str) -> types.Position:
    """1-based evallint (line, column in code points) to a 0-based LSP position."""
    text = lines[line - 1].rstrip("\r\n") if 1 <= line <= len(lines) else ""
    return types.Position(
        line=max(line - 1, 0), character=client_units(text[: max(column - 1, 0)], encoding)
    )


def suppression_edit(source: str, line: int, code: str) -> Edit:
    """Add `code` to the noqa comment that covers `line`, or append `  # noqa: CODE`.

    The comment goes at the end of the line's token group, so a statement that opens a
    multi-line string gets it after the closing quotes (where flake8 reads it), not inside.
    """
    lines = split_lines(source)
    end_line, comment_column = _comment_place(source, line)
    text = lines[end_line - 1].rstrip("\r\n") if end_line <= len(lines) else ""
    if comment_column is not None:
        listed = _NOQA_CODES.search(text, comment_column)
        if listed is not None:
            return Edit(end_line, listed.end() + 1, end_line, listed.end() + 1, f", {code}")
    column = len(text.rstrip()) + 1
    return Edit(end_line, column, end_line, len(text) + 1, f"  # noqa: {code}")


def _comment_place(source: str, line: int) -> tuple[int, Optional[int]]:
    """(last line of the token group holding `line`, 0-based column of its comment or None)."""
    first, comment = 0, None
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.ENDMARKER, tokenize.DEDENT, tokenize.INDENT):
                continue
            first = first or token.start[0]
            if token.type == tokenize.COMMENT:
                comment = token.start[1]
            elif token.type in (tokenize.NL, tokenize.NEWLINE):
                if first <= line <= token.start[0]:
                    return token.start[0], comment
                first, comment = 0, None
    except (tokenize.TokenError, SyntaxError):
        pass
    lines = split_lines(source)
    hash_at = lines[line - 1].find("#") if line <= len(lines) else -1
    return line, hash_at if hash_at >= 0 else None


def line_edits(old: str, new: str, encoding: str) -> list[types.TextEdit]:
    """Replace only the changed line runs, so the editor keeps the cursor and folds."""
    old_lines, new_lines = split_lines(old), split_lines(new)
    edits = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            edits.append(
                types.TextEdit(
                    range=types.Range(
                        start=_line_start(old_lines, i1, encoding),
                        end=_line_start(old_lines, i2, encoding),
                    ),
                    new_text="".join(new_lines[j1:j2]),
                )
            )
    return edits


def _line_start(lines: list[str], index: int, encoding: str) -> types.Position:
    """Start of 0-based line `index`; past a last line without a line break, its end."""
    if index == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        return types.Position(line=index - 1, character=client_units(lines[-1], encoding))
    return types.Position(line=index, character=0)


def _kind_wanted(kind: str, only: Optional[list[str]]) -> bool:
    """LSP kinds are hierarchical: asking for `source.fixAll` includes `source.fixAll.evallint`."""
    return only is None or any(kind == wanted or kind.startswith(wanted + ".") for wanted in only)


class EvallintServer(LanguageServer):
    """Per-URI state: the pending debounced lint, the document's incremental parser (a
    keystroke re-parses one statement, not the file), the last diagnostics of a parsable
    text (kept while a syntax error is being typed), and fix results cached per text."""

    def __init__(self) -> None:
        super().__init__(
            "evallint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full
        )
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.parsers: dict[str, IncrementalParser] = {}
        self.last_good: dict[str, list[types.Diagnostic]] = {}
        self.fixes_cache: dict[str, tuple[str, list[Diagnostic]]] = {}
        self.fix_all_cache: dict[str, tuple[str, str]] = {}
        self.reported_config_errors: set[str] = set()
        self.linter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evallint-lint")
        self.verify = False
        """`initializationOptions: {"verify": true}`: run the verifier on saved files."""
        self.verdicts: dict[str, tuple[str, dict[tuple[str, int, int], tuple[str, str]]]] = {}
        """uri -> (the text they were measured on, (code, line, column) -> (verdict, summary))."""
        self.verifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evallint-verify")

    # linting -----------------------------------------------------------------------------
    def schedule(self, uri: str, delay: float) -> None:
        """Effect: cancel the URI's pending lint (its text is stale) and start a new one."""
        stale = self.pending.pop(uri, None)
        if stale is not None:
            stale.cancel()
        task = asyncio.get_running_loop().create_task(self.publish_after(uri, delay))
        self.pending[uri] = task
        task.add_done_callback(functools.partial(self.finished, uri))

    def finished(self, uri: str, task: asyncio.Task[None]) -> None:
        if self.pending.get(uri) is task:
            del self.pending[uri]

    async def publish_after(self, uri: str, delay: float) -> None:
        """Effect: lint the document's current text and publish, unless cancelled first;
        with verification on, a saved file's findings are then measured and republished."""
        if delay:
            await asyncio.sleep(delay)
        document = self.workspace.get_text_document(uri)
        source, path = document.source, document_path(document)
        try:
            parser = self.parsers.setdefault(uri, IncrementalParser())
            config = self.config_for(path)
            project = None if path.startswith("<") else process_project(config)
            found = await self.in_worker(
                lint_source, source, path, config, parser=parser, project=project
            )
        except Exception:  # a bug in evallint must not take the editor's server down
            LOG.exception("linting %s failed", uri)
            return
        self.publish(document, source, found)
        if self.verify and any(d.code in VERIFIED_CODES for d in found) and _saved(path, source):
            measured = self.verdicts.get(uri)
            if measured is None or measured[0] != source:
                await self.verify_and_republish(document, source, found)

    def publish(self, document: TextDocument, source: str, found: list[Diagnostic]) -> None:
        uri = document.uri
        lines = split_lines(source)
        failures = [d for d in found if d.code == PARSE_ERROR_CODE]
        if failures:
            diagnostics = self.last_good.get(uri, []) + [self.to_lsp(failures[0], lines, document)]
        else:
            measured = self.verdicts.get(uri)
            verdicts = measured[1] if measured is not None and measured[0] == source else {}
            diagnostics = self.last_good[uri] = [
                self.to_lsp(d, lines, document, verdicts.get((d.code, d.line, d.column)))
                for d in found
            ]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri, diagnostics=diagnostics, version=document.version
            ),
        )

    async def verify_and_republish(
        self, document: TextDocument, source: str, found: list[Diagnostic]
    ) -> None:
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
                    message=f"evallint: verification needs the verify extra (pip install 'torch-evallint[verify]'): {exc}",
                )
            )
            return
        except Exception:  # a verifier bug must not take the server down
            LOG.exception("verifying %s failed", document.uri)
            return
        self.verdicts[document.uri] = (source, verdicts)
        if document.source == source:
            self.publish(document, source, found)

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
                self.window_show_message(
                    types.ShowMessageParams(
                        type=types.MessageType.Error, message=f"evallint: {exc}"
                    )
                )
            return Config()

    def forget(self, uri: str) -> None:
        stale = self.pending.pop(uri, None)
        if stale is not None:
            stale.cancel()
        for cache in (
            self.last_good,
            self.parsers,
            self.verdicts,
            self.fixes_cache,
            self.fix_all_cache,
        ):
            cache.pop(uri, None)

    # conversion ----------------------------------------------------------------------------
    @property
    def encoding(self) -> str:
        """The negotiated encoding; compare it with ==, never str(): it is a str-valued enum."""
        return self.workspace.position_encoding or types.PositionEncodingKind.Utf16

    def to_lsp(
        self,
        diagnostic: Diagnostic,
        lines: list[str],
        document: TextDocument,
        verdict: Optional[tuple[str, str]] = None,
    ) -> types.Diagnostic:
        """The LSP form; a verifier's verdict is appended to the message, and a finding the
        verifier measured as not affected is shown as information, not a warning."""
        rule = RULES_BY_CODE.get(diagnostic.code)
        own_path = document_path(document)
        related = []
        for place in diagnostic.related:
            same_file = place.path == own_path
            place_lines = lines if same_file else self.lines_of(place.path)
            point = position(place_lines, place.line, place.column, self.encoding)
            related.append(
                types.DiagnosticRelatedInformation(
                    location=types.Location(
                        uri=document.uri
                        if same_file
                        else from_fs_path(os.path.abspath(place.path)) or place.path,
                        range=types.Range(start=point, end=point),
                    ),
                    message=place.message,
                )
            )
        return types.Diagnostic(
            range=types.Range(
                start=position(lines, diagnostic.line, diagnostic.column, self.encoding),
                end=position(lines, diagnostic.end_line, diagnostic.end_column, self.encoding),
            ),
            severity=types.DiagnosticSeverity.Information
            if verdict and verdict[0] == "not-affected"
            else types.DiagnosticSeverity.Warning,
            code=diagnostic.code,
            code_description=types.CodeDescription(href=f"{DOCS_URL}#{anchor(rule.code)}")
            if rule
            else None,
            source="evallint",
            message=f"{diagnostic.message} [verified {verdict[0]}: {verdict[1]}]"
            if verdict
            else diagnostic.message,
            related_information=related or None,
            data={"verdict": verdict[0]} if verdict else None,
        )

    def lines_of(self, path: str) -> list[str]:
        """Another file's lines, for related locations: the editor's copy if open, else disk."""
        uri = from_fs_path(os.path.abspath(path))
        if uri is not None and uri in self.workspace.text_documents:
            return split_lines(self.workspace.text_documents[uri].source)
        try:
            return split_lines(decode_source(Path(path).read_bytes()))
        except (OSError, DecodeError):
            return []

    # code actions ------------------------------------------------------------------------------
    async def findings_with_fixes(self, uri: str, source: str, path: str) -> list[Diagnostic]:
        cached = self.fixes_cache.get(uri)
        if cached is None or cached[0] != source:
            found = await self.in_worker(verified_fixes, source, path, self.config_for(path))
            cached = self.fixes_cache[uri] = (source, found)
        return cached[1]

    async def fixed_text(self, uri: str, source: str, path: str) -> str:
        cached = self.fix_all_cache.get(uri)
        if cached is None or cached[0] != source:
            result = await self.in_worker(fix_source, source, path, self.config_for(path))
            cached = self.fix_all_cache[uri] = (source, result.new_source)
        return cached[1]

    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        document = self.workspace.get_text_document(params.text_document.uri)
        source, path, only = document.source, document_path(document), params.context.only
        lines = split_lines(source)
        actions: list[types.CodeAction] = []
        if _kind_wanted(types.CodeActionKind.QuickFix, only):
            suppressed: set[tuple[str, int]] = set()
            for finding in await self.findings_with_fixes(document.uri, source, path):
                if (
                    finding.code == PARSE_ERROR_CODE
                    or not params.range.start.line + 1 <= finding.line <= params.range.end.line + 1
                ):
                    continue
                diagnostic = self.to_lsp(finding, lines, document)
                if finding.fix is not None:
                    edits = [
                        self.text_edit(lines, e) for e in native_edits(source, finding.fix.edits)
                    ]
                    actions.append(
                        self.action(
                            finding.fix.description,
                            types.CodeActionKind.QuickFix,
                            document,
                            edits,
                            diagnostic,
                            preferred=True,
                        )
                    )
                if (finding.code, finding.line) not in suppressed:
                    suppressed.add((finding.code, finding.line))
                    edit = self.text_edit(
                        lines, suppression_edit(source, finding.line, finding.code)
                    )
                    actions.append(
                        self.action(
                            f"Suppress {finding.code} on this line",
                            types.CodeActionKind.QuickFix,
                            document,
                            [edit],
                            diagnostic,
                        )
                    )
        if _kind_wanted(FIX_ALL_KIND, only):
            fixed = await self.fixed_text(document.uri, source, path)
            if fixed != source:
                actions.append(
                    self.action(
                        "Fix all evallint findings",
                        FIX_ALL_KIND,
                        document,
                        line_edits(source, fixed, self.encoding),
                    )
                )
        return actions

    def text_edit(self, lines: list[str], edit: Edit) -> types.TextEdit:
        start = position(lines, edit.line, edit.column, self.encoding)
        end = position(lines, edit.end_line, edit.end_column, self.encoding)
        return types.TextEdit(range=types.Range(start=start, end=end), new_text=edit.text)

    @staticmethod
    def action(
        title: str,
        kind: str,
        document: TextDocument,
        edits: list[types.TextEdit],
        diagnostic: Optional[types.Diagnostic] = None,
        *,
        preferred: bool = False,
    ) -> types.CodeAction:
        return types.CodeAction(
            title=title,
            kind=kind,
            diagnostics=[diagnostic] if diagnostic else None,
            is_preferred=preferred or None,
            edit=types.WorkspaceEdit(changes={document.uri: edits}),
        )

    # hover -----------------------------------------------------------------------------------
    def hover(self, params: types.HoverParams) -> Optional[types.Hover]:
        """The rule's page when the cursor is on a code inside a `# noqa:` (or evallint) comment."""
        lines = split_lines(self.workspace.get_text_document(params.text_document.uri).source)
        if params.position.line >= len(lines):
            return None
        text = lines[params.position.line].rstrip("\r\n")
        column = code_points(text, params.position.character, self.encoding)
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


VERIFIED_CODES = frozenset({"EVL001", "EVL002", "EVL003", "EVL004", "EVL005", "EVL006"})
"""The codes the verifier can measure (`evallint.verifier.verdict.VERIFIED_CODES`; a test
keeps the two equal without the server importing the verifier)."""


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


def document_path(document: TextDocument) -> str:
    """A file's path, or `<uri>` for unsaved buffers (no config lookup, no project imports)."""
    return document.path if document.uri.startswith("file:") else f"<{document.uri}>"


def create_server() -> EvallintServer:
    server = EvallintServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: EvallintServer, params: types.InitializeParams) -> None:
        """`initializationOptions: {"verify": true}` turns the verifier on (off by default: it
        imports torch and runs the flagged layers)."""
        options = params.initialization_options
        ls.verify = isinstance(options, dict) and options.get("verify") is True

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: EvallintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: EvallintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, DEBOUNCE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: EvallintServer, params: types.DidSaveTextDocumentParams) -> None:
        clear_cache()  # the save may have been pyproject.toml's, or the file moved under one
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: EvallintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND]),
    )
    async def code_action(
        ls: EvallintServer, params: types.CodeActionParams
    ) -> list[types.CodeAction]:
        return await ls.code_actions(params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: EvallintServer, params: types.HoverParams) -> Optional[types.Hover]:
        return ls.hover(params)

    return server


def main() -> None:
    """Serve on stdin/stdout until the client says exit."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="evallint-lsp: %(levelname)s %(message)s"
    )
    create_server().start_io()


if __name__ == "__main__":
    main()
