"""Re-parse only what changed: the language server's parser.

An editor sends the whole text after every keystroke, but a keystroke changes one top-level
statement. CPython's parser (a tenth of LibCST's cost) finds where each top-level statement
ends; the text is cut there into pieces, each piece is parsed by LibCST only if its text is
new, and the module is assembled from the pieces' statements. Positions come from each
piece's own code, shifted by the lines before it, so they are exactly a full parse's.

The assembled module is for analysis only: comments between pieces live in the pieces'
headers, which it drops, so its generated code is not the text (fixes use a full parse).
Anything unusual (a syntax error, newer syntax than this Python reads, a statement nested
too deep to analyse) takes the full parse, so its results and error messages are the batch
linter's. The nesting guard is the full parse's (`parse_module`), applied per piece: only
a piece long enough to hold a statement of DEEP_STATEMENT_CHARS is measured, once per
piece text, so a large file is still parsed piece by piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union, cast

import libcst as cst

from evallint.source.parse import (
    DEEP_STATEMENT_CHARS,
    MAX_NESTING,
    ParseFailure,
    collector_paused,
    deepest_big_statement,
    may_nest_deeply,
    parse_module,
    parse_pieces,
    python_tree,
)
from evallint.source.positions import NodePositions, PiecewisePositions

_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+$")
"""One line with its ending; LibCST and CPython both end lines at \\r\\n, \\r and \\n."""


@dataclass
class ParsedText:
    module: cst.Module
    positions: Union[NodePositions, PiecewisePositions]


PieceKey = tuple[str, int]
"""A piece's text and how many identical pieces precede it: repeated text (two identical
functions) must still give distinct nodes, since the analysis tells nodes apart by identity."""


class IncrementalParser:
    """Keeps the pieces of the last text it parsed; one instance per open document."""

    def __init__(self) -> None:
        self._pieces: dict[PieceKey, tuple[cst.Module, NodePositions]] = {}
        self._too_deep: dict[str, bool] = {}
        """Long piece text -> whether it holds a statement nested over MAX_NESTING."""
        self.reparsed = 0
        """Pieces LibCST parsed on the last call (tests and the benchmark read it)."""
        self._positions: Optional[PiecewisePositions] = None
        """The last assembled text's positions: the next one starts from its node table."""

    def parse(self, source: str) -> ParsedText | ParseFailure:
        cut = _pieces(source)
        if cut is None:
            return self._parse_whole(source)
        seen: dict[str, int] = {}
        keys: list[PieceKey] = []
        for text, _ in cut:
            keys.append((text, seen.get(text, 0)))
            seen[text] = keys[-1][1] + 1
        if may_nest_deeply(source) and self._any_too_deep([text for text, _ in cut]):
            return self._parse_whole(source)  # the full parse reports it, as the CLI does
        new = [key for key in keys if key not in self._pieces]
        for key, tree in zip(new, parse_pieces([text for text, _ in new])):
            if isinstance(tree, ParseFailure):
                return self._parse_whole(source)
            self._pieces[key] = (tree, NodePositions(tree))
        self.reparsed = len(new)
        self._pieces = {key: self._pieces[key] for key in keys}
        parsed = _assemble(
            [self._pieces[key] for key in keys], [lines for _, lines in cut], self._positions
        )
        self._positions = cast(PiecewisePositions, parsed.positions)
        return parsed

    def _any_too_deep(self, texts: list[str]) -> bool:
        """`parse_module`'s nesting check of the whole text, piece by piece: a statement
        lies within one piece, and only pieces that can hold a long one are measured."""
        too_deep: dict[str, bool] = {}
        for text in texts:
            if len(text) > DEEP_STATEMENT_CHARS:
                known = self._too_deep.get(text)
                if known is None:
                    depth = deepest_big_statement(text)
                    known = depth is not None and depth[0] > MAX_NESTING
                too_deep[text] = known
        self._too_deep = too_deep
        return any(too_deep.values())

    def _parse_whole(self, source: str) -> ParsedText | ParseFailure:
        self._pieces = {}
        self._positions = None
        self.reparsed = 1
        tree = parse_module(source)
        return tree if isinstance(tree, ParseFailure) else ParsedText(tree, NodePositions(tree))


def _pieces(source: str) -> Optional[list[tuple[str, int]]]:
    """The text cut after the last line of each top-level statement (the trailing lines
    join the last piece), as (text, lines) pairs; None when the whole-file parser should
    decide (CPython's parser rejects the text: a syntax error, or nesting it cannot hold)."""
    try:
        with collector_paused():
            tree = python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    ends = sorted({statement.end_lineno or statement.lineno for statement in tree.body})
    if len(ends) < 2:
        return None
    lines = _LINE.findall(source)
    cuts = [0, *ends[:-1], len(lines)]
    return [("".join(lines[start:end]), end - start) for start, end in zip(cuts, cuts[1:])]


def _assemble(
    pieces: list[tuple[cst.Module, NodePositions]],
    line_counts: list[int],
    previous: Optional[PiecewisePositions] = None,
) -> ParsedText:
    first, last = pieces[0][0], pieces[-1][0]
    body: list[cst.BaseStatement] = []
    placed: list[tuple[NodePositions, int]] = []
    lines_before = 0
    for (tree, positions), lines in zip(pieces, line_counts):
        body.extend(tree.body)
        placed.append((positions, lines_before))
        lines_before += lines
    module = first.with_changes(
        body=body, footer=last.footer, has_trailing_newline=last.has_trailing_newline
    )
    return ParsedText(module, PiecewisePositions(placed, previous))
