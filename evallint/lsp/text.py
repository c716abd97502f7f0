"""Text helpers of the language server that need no LSP library: position units, the
suppression comment edit, and how lines move between two versions of a document.

Kept free of lsprotocol and LibCST so that `evallint.lsp` imports in milliseconds."""

from __future__ import annotations

import difflib
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Any, Optional

from evallint.diagnostics import Diagnostic, Edit
from evallint.source.reparse import common_prefix
from evallint.source.text import split_lines

UTF8 = "utf-8"
UTF32 = "utf-32"
"""lsprotocol's PositionEncodingKind values (a str enum, so equal to these strings)."""

_NOQA_CODES = re.compile(r"# noqa:\s?[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*", re.IGNORECASE)
MAX_DIFF_LINES = 4_000
"""Past this many changed lines, lines in the changed middle are not matched one by one."""


def client_units(text: str, encoding: str) -> int:
    """Length of `text` in the position units the client negotiated (UTF-16 by default).

    evallint counts code points; LSP counts UTF-16 code units unless the client offered
    UTF-8 or UTF-32. Every column sent to the client goes through here.
    """
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8"))
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def code_points(text: str, units: int, encoding: str) -> int:
    """The inverse of `client_units`: how many characters of `text` span `units` client units."""
    for index in range(len(text) + 1):
        if client_units(text[:index], encoding) >= units:
            return index
    return len(text)


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


def kind_wanted(kind: str, only: Optional[list[str]]) -> bool:
    """LSP kinds are hierarchical: asking for `source.fixAll` includes `source.fixAll.evallint`."""
    return only is None or any(kind == wanted or kind.startswith(wanted + ".") for wanted in only)


# how lines move between versions ------------------------------------------------------------


@dataclass(frozen=True)
class LineMap:
    """Where each 1-based line of an old text is in a new one; lines that were deleted, or
    rewritten into a different number of lines, have no place. `widths` are the new lines'
    lengths, so a column on a rewritten line can be kept inside it."""

    moved: dict[int, int]
    widths: list[int]

    def move(self, d: Diagnostic) -> Optional[Diagnostic]:
        """The finding at its place in the new text, or None when its lines are gone."""
        line, end_line = self.moved.get(d.line), self.moved.get(d.end_line)
        if line is None or end_line is None:
            return None
        related = []
        for r in d.related:
            if r.path != d.path:
                related.append(r)
            elif r.line in self.moved:
                to = self.moved[r.line]
                related.append(_replace(r, line=to, column=self._clamp(to, r.column)))
        return _replace(
            d,
            line=line,
            column=self._clamp(line, d.column),
            end_line=end_line,
            end_column=self._clamp(end_line, d.end_column),
            related=tuple(related),
            fix=None,
        )

    def _clamp(self, line: int, column: int) -> int:
        width = self.widths[line - 1] if line <= len(self.widths) else 0
        return min(column, width + 1)


def _replace(value: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(value, **changes)


def line_map(old: str, new: str) -> LineMap:
    """Match the lines of two versions (equal lines, and lines edited in place one for one),
    the way an editor moves its markers: unchanged head and tail first, then difflib on the
    changed middle."""
    old_lines = [line.rstrip("\r\n") for line in split_lines(old)]
    new_lines = [line.rstrip("\r\n") for line in split_lines(new)]
    head = 0
    limit = min(len(old_lines), len(new_lines))
    while head < limit and old_lines[head] == new_lines[head]:
        head += 1
    tail = 0
    while tail < limit - head and old_lines[len(old_lines) - 1 - tail] == new_lines[-1 - tail]:
        tail += 1
    moved = {index + 1: index + 1 for index in range(head)}
    shift = len(new_lines) - len(old_lines)
    for index in range(len(old_lines) - tail, len(old_lines)):
        moved[index + 1] = index + 1 + shift
    old_middle = old_lines[head : len(old_lines) - tail]
    new_middle = new_lines[head : len(new_lines) - tail]
    if len(old_middle) + len(new_middle) <= MAX_DIFF_LINES:
        matcher = difflib.SequenceMatcher(a=old_middle, b=new_middle, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
                for offset in range(i2 - i1):
                    moved[head + i1 + offset + 1] = head + j1 + offset + 1
    elif len(old_middle) == len(new_middle):
        moved.update({head + k + 1: head + k + 1 for k in range(len(old_middle))})
    return LineMap(moved, [len(line) for line in new_lines])


# edits that change no code -------------------------------------------------------------------

_SCAN = re.compile(
    r"""(?P<string>(?:\"\"\"(?:[^\"\\]|\\.|\"(?!\"\"))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*'''|\"(?:[^\"\\\r\n]|\\.)*\"|'(?:[^'\\\r\n]|\\.)*'))|(?P<comment>\#[^\r\n]*)""",
    re.DOTALL,
)
_BREAK = re.compile(r"\r\n|\r|\n")

CodeLines = tuple[list[str], list[int]]


def code_lines(source: str) -> CodeLines:
    """The text's code lines and their 1-based line numbers: comments removed, trailing
    blanks stripped, blank lines left out; the lines a string literal spans are kept
    verbatim (blank ones too). Two texts with equal code differ only in comments and blank
    space at line ends or between lines: the same tokens in the same order, so the same
    findings, moved."""
    pieces: list[str] = []
    verbatim: set[int] = set()
    start = counted = line = 0
    for match in _SCAN.finditer(source):
        if match.lastgroup == "comment":
            pieces.append(source[start : match.start()])
            start = match.end()
        elif "\n" in match.group() or "\r" in match.group():
            line += _breaks(source, counted, match.start())  # 0-based line of its start
            counted = match.start()
            verbatim.update(range(line, line + _breaks(match.group(), 0, len(match.group())) + 1))
    pieces.append(source[start:])
    code = _BREAK.split("".join(pieces))
    kept: list[str] = []
    origin: list[int] = []
    for index, text_line in enumerate(code):
        text = text_line if index in verbatim else text_line.rstrip()
        if text or index in verbatim:
            kept.append(text)
            origin.append(index + 1)
    return kept, origin


def _breaks(text: str, start: int, end: int) -> int:
    """Line breaks in text[start:end] (CRLF, CR and LF, as the parsers count them)."""
    return (
        text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)
    )


def same_code_map(
    old_source: str, old: CodeLines, new_source: str
) -> Optional[tuple[LineMap, CodeLines]]:
    """When `new_source` has the same code as `old_source` (whose `code_lines` are `old`):
    an edit that touched only comments or blank space, where each old line now is, and
    the new text's code lines; else None. A changed stretch with a quote or backslash in
    it is never called code-free: where a string starts is then the tokenizer's
    business, not a scan's."""
    if not _quiet_change(old_source, new_source):
        return None
    new = code_lines(new_source)
    if new[0] != old[0]:
        return None
    widths = [len(line.rstrip("\r\n")) for line in split_lines(new_source)]
    return LineMap(dict(zip(old[1], new[1])), widths), new


def _quiet_change(old: str, new: str) -> bool:
    """Whether the stretch an edit changed (in either version) is free of quotes and
    backslashes."""
    head = common_prefix(old, new)
    tail = common_prefix(old[head:][::-1], new[head:][::-1])
    changed = old[head : len(old) - tail] + new[head : len(new) - tail]
    return not any(char in changed for char in "'\"\\")
