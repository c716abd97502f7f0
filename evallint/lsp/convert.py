"""evallint's findings and edits in LSP terms (lsprotocol types, the client's units)."""

from __future__ import annotations

import difflib
from typing import Callable, Optional

from lsprotocol import types

from evallint.diagnostics import Diagnostic, Edit
from evallint.lsp.program import Program
from evallint.lsp.text import client_units
from evallint.source.text import split_lines

DOCS_URL = "https://github.com/evallint/evallint/blob/main/docs/rules.md"


def position(lines: list[str], line: int, column: int, encoding: str) -> types.Position:
    """1-based evallint (line, column in code points) to a 0-based LSP position."""
    text = lines[line - 1].rstrip("\r\n") if 1 <= line <= len(lines) else ""
    return types.Position(
        line=max(line - 1, 0), character=client_units(text[: max(column - 1, 0)], encoding)
    )


def text_edit(lines: list[str], edit: Edit, encoding: str) -> types.TextEdit:
    start = position(lines, edit.line, edit.column, encoding)
    end = position(lines, edit.end_line, edit.end_column, encoding)
    return types.TextEdit(range=types.Range(start=start, end=end), new_text=edit.text)


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


def to_lsp(
    placed: Diagnostic,
    program: Program,
    part: int,
    encoding: str,
    other_file: Callable[[str, Optional[int]], tuple[str, list[str]]],
    verdict: Optional[tuple[str, str]] = None,
    part_lines: Optional[list[list[str]]] = None,
) -> types.Diagnostic:
    """The LSP form of a finding already placed in `program.parts[part]`; a verifier's
    verdict is appended to the message, and a finding the verifier measured as not
    affected is shown as information, not a warning. `part_lines` are the parts' lines
    when the caller has them (publishing many findings splits each text once).
    `other_file(path, cell)` gives the URI and lines of a related place in another file (a
    cell of another notebook: that cell's document, or the notebook's URI and no lines when
    the editor does not show it; the message then names the cell and line)."""
    from evallint.docs import anchor  # the rules (and LibCST): loaded by the first lint
    from evallint.rules import RULES_BY_CODE

    rule = RULES_BY_CODE.get(placed.code)
    split = part_lines or [split_lines(p.text) for p in program.parts]
    lines = split[part]
    related = []
    for place in placed.related:
        if place.path == placed.path:
            index = (place.cell - 1) if place.cell is not None else part
            uri = program.parts[index].uri
            place_lines = split[index]
        else:
            uri, place_lines = other_file(place.path, place.cell)
        message = place.message
        if place.path != placed.path and place.cell is not None and not place_lines:
            point = types.Position(line=0, character=0)  # a notebook the editor does not show
            message = f"{message} (cell {place.cell}, line {place.line})"
        else:
            point = position(place_lines, place.line, place.column, encoding)
        related.append(
            types.DiagnosticRelatedInformation(
                location=types.Location(uri=uri, range=types.Range(start=point, end=point)),
                message=message,
            )
        )
    return types.Diagnostic(
        range=types.Range(
            start=position(lines, placed.line, placed.column, encoding),
            end=position(lines, placed.end_line, placed.end_column, encoding),
        ),
        severity=types.DiagnosticSeverity.Information
        if verdict and verdict[0] == "not-affected"
        else types.DiagnosticSeverity.Warning,
        code=placed.code,
        code_description=types.CodeDescription(href=f"{DOCS_URL}#{anchor(rule.code)}")
        if rule
        else None,
        source="evallint",
        message=f"{placed.message} [verified {verdict[0]}: {verdict[1]}]"
        if verdict
        else placed.message,
        related_information=related or None,
        data={"verdict": verdict[0]} if verdict else None,
    )
