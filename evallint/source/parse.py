"""The only caller of `libcst.parse_module`: source text to a tree, or a reason it failed."""

from __future__ import annotations

import ast
import gc
import io
import re
import threading
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional, Union

import libcst as cst

from evallint.source.reparse import edited_tree

PARSER_STACK_BYTES = 512 * 1024 * 1024
"""LibCST's native parser recurses once per nesting level and overflows a default thread
stack (a segfault, not an exception) near 5,000 nested brackets or operands; a parse on a
thread with a large stack (reserved, not committed memory) survives them."""


@dataclass(frozen=True)
class ParseFailure:
    """Why a file could not be parsed, with the 1-based position LibCST reported."""

    reason: str
    line: int = 1
    column: int = 1


MAX_NESTING = 1_000
"""Expression depth beyond which a file is reported, not parsed: LibCST's parse time grows
quadratically with nesting (an 8,000-operand chain takes over a minute)."""
BIG_STATEMENT_CHARS = 1_000
DEEP_STATEMENT_CHARS = 10_000
"""Only statements this long can nest deep enough to matter; only they are measured."""


def parse_module(
    source: str, python_tree: Optional[ast.Module] = None
) -> cst.Module | ParseFailure:
    """Parse once, on a thread with a large stack (a thread costs microseconds; a segfault
    costs the whole run). Sources that could nest pathologically deep are first measured
    with CPython's parser, which is ten times cheaper than LibCST's; a caller that already
    holds CPython's tree of this source (flake8) passes it as `python_tree`."""
    if may_nest_deeply(source):
        depth = deepest_big_statement(source, python_tree)
        if depth is not None and depth[0] > MAX_NESTING:
            return ParseFailure(
                f"nesting too deep to analyse (over {MAX_NESTING} levels)", depth[1]
            )
    return parse_pieces([source])[0]


def parse_pieces(sources: list[str]) -> list[cst.Module | ParseFailure]:
    """Parse each text as a module, all on one large-stack thread (see `parse_module`;
    callers check nesting themselves)."""
    result: list[Union[cst.Module, ParseFailure]] = []
    previous = threading.stack_size(PARSER_STACK_BYTES)
    try:
        worker = threading.Thread(
            target=lambda: result.extend(map(_parse, sources)), name="evallint-parse"
        )
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous)
    return result if len(result) == len(sources) else [ParseFailure("parser failed")] * len(sources)


def may_nest_deeply(source: str) -> bool:
    """Deep nesting needs a long logical line: thousands of brackets, or a very long line,
    or an unusually long file (operand chains split over many short lines)."""
    return len(source) > BIG_STATEMENT_CHARS and (
        source.count("(") + source.count("[") > 2_000
        or len(source) > 50_000
        or max(map(len, source.splitlines()), default=0) > BIG_STATEMENT_CHARS
    )


def deepest_big_statement(source: str, tree: Optional[ast.Module] = None) -> tuple[int, int] | None:
    """(depth, line) of the most deeply nested statement spanning more than
    BIG_STATEMENT_CHARS, or None when there is none (the common case: no walk at all)."""
    if len(source) < BIG_STATEMENT_CHARS:
        return None
    try:
        tree = tree if isinstance(tree, ast.Module) else shared_python_tree(source)
    except SyntaxError as error:
        if "too many" in str(error.msg):  # "too many nested parentheses"
            return (MAX_NESTING + 1, error.lineno or 1)
        return (0, 1)  # LibCST reports it in its own words (or parses newer syntax): big stack
    except ValueError:
        return (0, 1)
    except (RecursionError, MemoryError):
        return (MAX_NESTING + 1, 1)
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    deepest: tuple[int, int] | None = None
    statements: list[ast.AST] = list(tree.body)
    while statements:
        statement = statements.pop()
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            statements.extend(getattr(statement, field, ()) or ())
        if not isinstance(statement, (ast.stmt, ast.excepthandler)):
            continue  # a match case: its body is measured
        start = line_starts[statement.lineno - 1] + statement.col_offset
        end = line_starts[(statement.end_lineno or statement.lineno) - 1] + (
            statement.end_col_offset or 0
        )
        if end - start > DEEP_STATEMENT_CHARS:
            depth = _expression_depth(statement)
            if deepest is None or depth > deepest[0]:
                deepest = (depth, statement.lineno)
    return deepest


def _expression_depth(root: ast.AST) -> int:
    deepest = 0
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, ast.stmt) and node is not root:
            continue  # nested statements are measured on their own
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


_RECENT_TREES: tuple[tuple[str, ast.Module], ...] = ()
"""The last texts CPython parsed through `python_tree`, newest first (replaced whole, never
changed in place, so the lint and fix threads can share it)."""
RECENT_TREES_KEPT = 2


def python_tree(source: str) -> ast.Module:
    """`ast.parse(source)`, shared by the readers of one text: a language server's lint asks
    for it three times (is it valid Python, where do its top-level statements end, which
    methods of its classes run a forward), and on 5,000 lines each parse costs 40-70 ms.
    The tree is keyed by the text itself, so it is the tree a fresh parse would give; callers
    must not modify it. Raises what `ast.parse` raises (failures are not kept)."""
    global _RECENT_TREES
    for text, tree in _RECENT_TREES:
        if text is source or text == source:
            return tree
    edited = edited_tree(*_RECENT_TREES[0], source) if _RECENT_TREES else None
    tree = edited or ast.parse(source)  # an edit's statements re-parsed (see reparse.py)
    _RECENT_TREES = ((source, tree), *_RECENT_TREES[: RECENT_TREES_KEPT - 1])
    return tree


_SHARED_TREES: tuple[tuple[str, ast.Module], ...] = ()
"""The texts `shared_python_tree` parsed last, most recently asked first (replaced whole,
never changed in place)."""
SHARED_TREES_KEPT = 4


def shared_python_tree(source: str) -> ast.Module:
    """`ast.parse(source)` for the readers of a whole text (the nesting check of a big file,
    the class tables of project files: module classes, forward methods, method names, plain
    classes): each reads a project file with its own parse, often right after another
    reader parsed the same text. On the torch-heavy sample 140 of 376 CPython parses were of
    a text parsed before, 90 of them among the last 4 texts. Callers must not modify the
    tree; raises what `ast.parse` raises (failures are not kept)."""
    global _SHARED_TREES
    kept = _SHARED_TREES
    for index, (text, tree) in enumerate(kept):
        if text is source or text == source:
            if index:
                _SHARED_TREES = ((text, tree), *kept[:index], *kept[index + 1 :])
            return tree
    tree = ast.parse(source)
    _SHARED_TREES = ((source, tree), *kept[: SHARED_TREES_KEPT - 1])
    return tree


def _python_says(source: str) -> ParseFailure | None:
    """CPython's own account of a syntax error (its line and words are the ones users know),
    when CPython rejects the file too; None when only LibCST does."""
    try:
        ast.parse(source)
    except SyntaxError as error:
        return ParseFailure(
            error.msg or "invalid syntax", error.lineno or 1, (error.offset or 0) or 1
        )
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing and analysing a file allocate millions
    of small objects that stay alive until the file is done, so a collection in the middle
    only traverses them for nothing (measured: ~25% of parse time, ~15% of a whole run).
    The few cycles made meanwhile are collected after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(source: str) -> cst.Module | ParseFailure:
    with collector_paused():
        return _parse_now(source)


def _parse_now(source: str) -> cst.Module | ParseFailure:
    try:
        try:
            return cst.parse_module(source)
        except cst.ParserSyntaxError:
            normalized = without_indentation_form_feeds(source)
            if normalized is source:
                normalized = with_indentation_tabs_expanded(source)
                if normalized is source:
                    raise
            try:
                return cst.parse_module(normalized)  # columns after a dropped form feed shift
            except cst.ParserSyntaxError:
                expanded = with_indentation_tabs_expanded(normalized)
                if expanded is normalized:
                    raise
                return cst.parse_module(expanded)
    except cst.ParserSyntaxError as exc:
        return _python_says(source) or ParseFailure(
            exc.message.splitlines()[0] if exc.message else "syntax error",
            exc.raw_line,
            exc.raw_column + 1,
        )
    except RecursionError:
        return ParseFailure("nesting too deep to analyse")
    except (ValueError, MemoryError) as exc:
        return ParseFailure(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


_INDENTED_FORM_FEED = re.compile(r"^[ \t]*\f[ \t\f]*", re.MULTILINE)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def without_indentation_form_feeds(source: str) -> str:
    """`source` with each line's indentation measured from its last form feed, as CPython
    does; lines inside string literals keep their text. LibCST's tokenizer does not reset
    the column at a form feed (old GNU-style code has them) and rejects some valid files:
    those are parsed again from this text. The lines stay where they are (a finding on such
    a line has its column counted without the dropped characters), and fixes are rendered
    onto the original text."""
    if "\f" not in source or _INDENTED_FORM_FEED.search(source) is None:
        return source
    inside: set[int] = set()
    try:
        # universal newlines: a CR-only or CRLF file numbers its lines as _LINE does
        for token in tokenize.generate_tokens(io.StringIO(source, newline=None).readline):
            if token.start[0] < token.end[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        return source  # LibCST reports the error
    return "".join(
        line
        if number in inside or "\f" not in line
        else _INDENTED_FORM_FEED.sub(lambda m: m.group().rsplit("\f", 1)[1], line, count=1)
        for number, line in enumerate(_LINE.findall(source), 1)
    )


_INDENTATION = re.compile(r"^[ \t]*\t[ \t]*", re.MULTILINE)
_INDENTED_WITH_TAB = re.compile(r"(?:\A|(?<=[\r\n]))[ \t]*\t")
"""A line (ended by LF, CRLF or CR) whose indentation holds a tab."""
TAB_SIZE = 8
"""CPython's tokenizer: a tab in indentation moves the column to the next multiple of 8."""


def with_indentation_tabs_expanded(source: str) -> str:
    """`source` with the tabs of each line's indentation replaced by the spaces CPython
    counts for them (to the next multiple of 8), when CPython accepts the file; else
    `source` itself. LibCST's tokenizer requires each indented line's whitespace to begin
    with the text of its block's indentation, so a block indented `4 spaces` holding a line
    indented `tab + 4 spaces` (column 12 to CPython) is rejected ("no matching outer block
    for dedent"), although Python runs it. Such files are parsed again from this text: the
    lines stay where they are (a finding on an expanded line has its column counted in the
    expanded text, as after a dropped form feed); lines inside string literals keep their
    text; a file CPython rejects (inconsistent tabs and spaces, say) is left as it is, so it
    is still reported."""
    if "\t" not in source or _INDENTED_WITH_TAB.search(source) is None:
        return source
    inside: set[int] = set()
    try:
        ast.parse(source)
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.start[0] < token.end[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError, ValueError, RecursionError, MemoryError):
        return source  # LibCST reports the error (in CPython's words when it has them)
    return "".join(
        line
        if number in inside or "\t" not in line
        else _INDENTATION.sub(lambda m: m.group().expandtabs(TAB_SIZE), line, count=1)
        for number, line in enumerate(_LINE.findall(source), 1)
    )
