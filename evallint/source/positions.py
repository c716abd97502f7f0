"""Source positions of LibCST nodes, at a fraction of `PositionProvider`'s cost.

LibCST computes positions by generating the code again while recording line and column for
every node, and `MetadataWrapper.resolve` adds a full visit of the tree on top. Findings
need the positions of a handful of nodes, so this records plain character offsets during
one code generation (an integer add per token) and turns only the offsets asked for into
(line, column), by bisecting the line starts of the generated text. The spans are exactly
`PositionProvider`'s (tests compare them on every fixture); if a LibCST release changes the
code generator's protocol, `node_spans` falls back to `PositionProvider` itself.
"""

from __future__ import annotations

import bisect
import re
from typing import Collection, Optional

import libcst as cst

Span = tuple[int, int, int, int]  # start line, start column, end line, end column (1-based)

_NEWLINE = re.compile(r"\r\n?|\n")


class _OffsetRecorder:
    """A stand-in for LibCST's `CodegenState` that records (start, end) offsets per node.
    Offsets are keyed by `id(node)` (the tree, held by `NodePositions`, keeps every node and
    so its id alive): a node's own `__hash__` is a Python call, once per node per lookup."""

    __slots__ = (
        "_stack",
        "default_indent",
        "default_newline",
        "indent_tokens",
        "nodes",
        "offset",
        "spans",
        "tokens",
    )

    def __init__(self, module: cst.Module) -> None:
        self.default_indent = module.default_indent
        self.default_newline = module.default_newline
        self.indent_tokens: list[str] = []
        self.tokens: list[str] = []
        self.offset = 0
        self._stack: list[int] = []
        self.spans: dict[int, tuple[int, int]] = {}
        self.nodes: list[cst.CSTNode] = []
        """Every node with a span, in the order its span was first recorded."""

    def increase_indent(self, value: str) -> None:
        self.indent_tokens.append(value)

    def decrease_indent(self) -> None:
        self.indent_tokens.pop()

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.tokens.append(token)
            self.offset += len(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self.offset += len(value)

    def pop_trailing_newline(self) -> None:
        """Positions were recorded before the module drops its last newline; keep it."""

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append(self.offset)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        key = id(node)
        if key not in self.spans:  # a syntactic position recorded inside wins
            self.spans[key] = (start, self.offset)
            self.nodes.append(node)

    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: Optional[cst.CSTNode] = None,
        end_node: Optional[cst.CSTNode] = None,
    ) -> _SyntacticPosition:
        return _SyntacticPosition(self, node, start_node, end_node)


class _SyntacticPosition:
    """`record_syntactic_position`'s context manager, as a plain class (a generator-based
    context manager cost more than the offsets it records)."""

    __slots__ = ("end_node", "node", "recorder", "start", "start_node")

    def __init__(
        self,
        recorder: _OffsetRecorder,
        node: cst.CSTNode,
        start_node: Optional[cst.CSTNode],
        end_node: Optional[cst.CSTNode],
    ) -> None:
        self.recorder = recorder
        self.node = node
        self.start_node = start_node
        self.end_node = end_node
        self.start = 0

    def __enter__(self) -> None:
        self.start = self.recorder.offset

    def __exit__(self, *exc: object) -> None:
        recorder = self.recorder
        start, end = self.start, recorder.offset
        if self.start_node is not None:
            start = recorder.spans[id(self.start_node)][0]
        if self.end_node is not None:
            end = recorder.spans[id(self.end_node)][1]
        if id(self.node) not in recorder.spans:
            recorder.nodes.append(self.node)
        recorder.spans[id(self.node)] = (start, end)


class NodePositions:
    """Lazy (line, column) spans for the nodes of one module, as `PositionProvider` gives them."""

    def __init__(self, module: cst.Module) -> None:
        self._offsets: Optional[dict[int, tuple[int, int]]] = None
        """id(node) -> (start, end) character offsets (the module held below keeps ids valid)."""
        self._nodes: list[cst.CSTNode] = []
        self._exact: Optional[dict[cst.CSTNode, Span]] = None
        self._line_starts: list[int] = []
        self._module = module

    def span(self, node: cst.CSTNode) -> Optional[Span]:
        if self._offsets is None and self._exact is None:
            self._compute()
        if self._exact is not None:
            return self._exact.get(node)
        assert self._offsets is not None
        offsets = self._offsets.get(id(node))
        if offsets is None:
            return None
        return (*self._line_column(offsets[0]), *self._line_column(offsets[1]))

    def nodes(self) -> Collection[cst.CSTNode]:
        """Every node with a span (computing the spans if need be)."""
        if self._offsets is None and self._exact is None:
            self._compute()
        if self._offsets is not None:
            return self._nodes
        return self._exact.keys()  # type: ignore[union-attr]

    def knows(self, node: cst.CSTNode) -> bool:
        """Whether `node` is in this module (a dictionary lookup once spans exist)."""
        if self._offsets is None and self._exact is None:
            self._compute()
        if self._offsets is not None:
            return id(node) in self._offsets
        return node in self._exact  # type: ignore[operator]

    def _compute(self) -> None:
        recorder = _OffsetRecorder(self._module)
        try:
            self._module._codegen(recorder)  # type: ignore[arg-type]
        except (AttributeError, TypeError, KeyError):  # a code generator we do not know
            self._exact = _provider_spans(self._module)
            return
        self._offsets = recorder.spans
        self._nodes = recorder.nodes
        self._line_starts = [0] + [
            match.end() for match in _NEWLINE.finditer("".join(recorder.tokens))
        ]

    def _line_column(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1


def _provider_spans(module: cst.Module) -> dict[cst.CSTNode, Span]:
    from libcst.metadata import MetadataWrapper, PositionProvider

    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {
        node: (span.start.line, span.start.column + 1, span.end.line, span.end.column + 1)
        for node, span in positions.items()
    }


class PiecewisePositions:
    """Spans for a module assembled from separately parsed pieces of one text (see
    `evallint.source.incremental`): each piece's own spans, moved down by the lines before it.
    Pieces start at column 0, so columns need no change. Which piece holds a node is looked
    up in one table built on the first call (C-speed dictionary updates), not by asking each
    piece in turn: with a lookup per finding, that scan made a 5,000-line file's positions
    cost more than its analysis.

    Given the positions of the previous text of the same document (`previous`), the table
    is that text's table with the new pieces' nodes added: an edit re-parses one piece, and
    building the table over every node was 3% of an edit on 5,000 lines. Entries of pieces
    no longer placed stay (they answer None, as a node outside the module does) until they
    outnumber the placed ones; a node in two pieces (never made by LibCST's parser, which
    builds new nodes per parse) makes the table be built as without `previous`, where the
    first piece wins."""

    def __init__(
        self,
        pieces: list[tuple[NodePositions, int]],
        previous: Optional[PiecewisePositions] = None,
    ) -> None:
        self._pieces = pieces
        self._placed = {id(positions): (positions, lines) for positions, lines in pieces}
        self._owner: Optional[dict[cst.CSTNode, NodePositions]] = None
        self._stale = 0
        """Entries of `_owner` for nodes of pieces not placed in this text."""
        self._previous = previous if previous is not None and previous._owner is not None else None
        """Held until this text's table is built (a table never built is not handed on, so
        no chain of earlier texts is kept)."""

    def _table(self) -> dict[cst.CSTNode, NodePositions]:
        previous, self._previous = self._previous, None
        owner = previous._take_table(self._placed) if previous is not None else None
        if owner is not None:
            table, stale = owner
            before = previous._placed  # type: ignore[union-attr]
            for positions, _ in self._pieces:
                if before.get(id(positions), (None,))[0] is positions:
                    continue  # its nodes are in the table
                nodes = positions.nodes()
                if not table.keys().isdisjoint(nodes):
                    break  # a node shared with another piece: build as the first piece wins
                table.update(dict.fromkeys(nodes, positions))
            else:
                if stale <= len(table) - stale:
                    self._stale = stale
                    return table
        built: dict[cst.CSTNode, NodePositions] = {}
        for positions, _ in reversed(self._pieces):  # the first piece wins
            built.update(dict.fromkeys(positions.nodes(), positions))
        self._stale = 0
        return built

    def _take_table(
        self, placed: dict[int, tuple[NodePositions, int]]
    ) -> Optional[tuple[dict[cst.CSTNode, NodePositions], int]]:
        """This text's table, handed to the next text's positions (placed: its pieces), with
        how many of its entries are not among those pieces' nodes; None if never built. This
        object builds its table again if asked after (nothing does: a lint asks positions of
        its own text)."""
        table, self._owner = self._owner, None
        if table is None:
            return None
        stale = self._stale + sum(
            len(positions.nodes())
            for positions, _ in self._pieces
            if placed.get(id(positions), (None,))[0] is not positions
        )
        return table, stale

    def span(self, node: cst.CSTNode) -> Optional[Span]:
        if self._owner is None:
            self._owner = self._table()
        positions = self._owner.get(node)
        if positions is None:
            return None
        placed = self._placed.get(id(positions))
        if placed is None or placed[0] is not positions:
            return None  # a node of a piece of an earlier text
        found = positions.span(node)
        assert found is not None
        return (found[0] + placed[1], found[1], found[2] + placed[1], found[3])
