"""What one lint reads: a Python document, or a notebook's cells joined in order.

A notebook's code cells share one namespace, so they are analysed as one program (the
same virtual source the CLI builds, `evallint.source.notebook`); its findings are then
placed back in the cell they belong to, and a fix is offered in a cell only when every
line it touches is the cell's own text (not a masked magic, not a dedented cell)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from evallint.diagnostics import Diagnostic, Edit
from evallint.source.text import split_lines


@dataclass(frozen=True)
class Part:
    """A text the editor shows: the whole file, or one notebook cell."""

    uri: str
    text: str
    code: bool = True
    """Analysed: a Python code cell (markdown and other languages are not)."""


@dataclass(frozen=True)
class Program:
    uri: str
    """The text document's URI, or the notebook's."""
    path: str
    """A file path (for configuration, project imports and findings), or `<uri>`."""
    version: Optional[int]
    parts: tuple[Part, ...]
    text: str
    """What the analysis reads."""
    virtual: object = None
    """The notebook's `VirtualSource`; None for a Python document."""

    @property
    def notebook(self) -> bool:
        return self.virtual is not None

    @staticmethod
    def of_text(uri: str, path: str, version: Optional[int], text: str) -> Program:
        return Program(uri, path, version, (Part(uri, text),), text)

    @staticmethod
    def of_cells(uri: str, path: str, version: Optional[int], parts: list[Part]) -> Program:
        from evallint.source.notebook import join_cells  # nbformat: only for notebooks

        virtual = join_cells(("code" if p.code else "markdown", p.text) for p in parts)
        return Program(uri, path, version, tuple(parts), virtual.text, virtual)

    def with_texts(self, texts: list[str]) -> Program:
        """The same document with new part texts (a fix applied to some cells)."""
        parts = [dataclasses.replace(p, text=t) for p, t in zip(self.parts, texts)]
        if self.notebook:
            return Program.of_cells(self.uri, self.path, self.version, parts)
        return Program.of_text(self.uri, self.path, self.version, texts[0])

    def index_of(self, uri: str) -> Optional[int]:
        for index, part in enumerate(self.parts):
            if part.uri == uri:
                return index
        return None

    def place(self, d: Diagnostic) -> tuple[int, Diagnostic]:
        """(0-based part, the finding in that part's lines and columns); related places in
        the same program carry their own part as `cell` (1-based) for notebooks."""
        if not self.notebook:
            return 0, d
        from evallint.source.notebook import map_diagnostic

        placed = map_diagnostic(d, self.virtual)  # type: ignore[arg-type]
        return (placed.cell or 1) - 1, placed

    def part_edits(self, edits: tuple[Edit, ...]) -> Optional[tuple[int, list[Edit]]]:
        """A fix's edits (in the program's lines) as edits of one part, or None when they
        cannot be written there faithfully."""
        if not self.notebook:
            return 0, list(edits)
        virtual = self.virtual
        program_lines = split_lines(self.text)
        found: Optional[int] = None
        moved: list[Edit] = []
        for edit in edits:
            placed = self._cell_edit(edit, virtual, program_lines)
            if placed is None or (found is not None and placed[0] != found):
                return None
            found = placed[0]
            moved.append(placed[1])
        return None if found is None else (found, moved)

    def _cell_edit(
        self, edit: Edit, virtual: object, program_lines: list[str]
    ) -> Optional[tuple[int, Edit]]:
        spans = virtual.cells  # type: ignore[attr-defined]
        span = next((s for s in spans if s.start <= edit.line <= s.end), None)
        if span is None or any(span.shifts):
            return None
        part = self.parts[span.index - 1]
        cell_lines = split_lines(part.text)
        last = edit.end_line
        if edit.end_line == span.end + 1 and edit.end_column == 1:
            last = span.end  # the end of the cell's last line, line break included
        elif edit.end_line > span.end:
            return None
        for line in range(edit.line, last + 1):  # only the cell's own text, never a mask
            own = cell_lines[line - span.start] if line - span.start < len(cell_lines) else ""
            if program_lines[line - 1].rstrip("\r\n") != own.rstrip("\r\n"):
                return None
        start = edit.line - span.start + 1
        text = edit.text
        if last != edit.end_line:
            end_line = len(cell_lines)
            final = cell_lines[-1] if cell_lines else ""
            end_column = len(final.rstrip("\r\n")) + 1
            if not final.endswith(("\n", "\r")) and text.endswith("\n"):
                text = text[:-1]  # the cell has no line break at its end to replace
            return span.index - 1, Edit(start, edit.column, end_line, end_column, text)
        return span.index - 1, Edit(
            start, edit.column, edit.end_line - span.start + 1, edit.end_column, text
        )
