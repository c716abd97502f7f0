"""Lean traversal of expressions: only the child fields that can hold code are followed.

LibCST's generic visitor also walks every whitespace and punctuation node and costs about as
much as the parse itself; the analysis only needs calls, names, attributes and strings.
"""

from __future__ import annotations

import ast
import dataclasses
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, Optional, Protocol, TypeVar

import libcst as cst

T = TypeVar("T")
N = TypeVar("N", bound=cst.CSTNode)

_SKIPPED_FIELD_PREFIXES = (
    "whitespace",
    "lpar",
    "rpar",
    "comma",
    "semicolon",
    "dot",
    "colon",
    "equal",
    "operator",
    "lbracket",
    "rbracket",
    "lbrace",
    "rbrace",
    "newline",
    "leading_lines",
    "header",
    "footer",
    "indent",
    "star",
    "asynchronous",
    "lines_after_decorators",
    "first_line",
    "empty_lines",
    "trailing_whitespace",
)
_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAF_TYPES = (str, bool, int, "str", "bool", "int")
"""Declared types of fields that never hold a node (`Name.value`, `Integer.value`): not
even looked at, so a leaf costs one dictionary lookup."""


def _child_fields(node_type: type) -> tuple[str, ...]:
    fields = _FIELDS.get(node_type)
    if fields is None:
        fields = tuple(
            f.name
            for f in dataclasses.fields(node_type)
            if not f.name.startswith(_SKIPPED_FIELD_PREFIXES) and f.type not in _LEAF_TYPES
        )
        _FIELDS[node_type] = fields
    return fields


_SCOPE_NODES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
_KIND: dict[type, int] = {}
"""type -> 0 not a node, 1 a node, 2 a scope node: `isinstance` on LibCST's abstract base
classes goes through ABCMeta and was the walk's largest cost."""


def _kind(value_type: type) -> int:
    kind = _KIND.get(value_type)
    if kind is None:
        kind = (
            2
            if issubclass(value_type, _SCOPE_NODES)
            else 1
            if issubclass(value_type, cst.CSTNode)
            else 0
        )
        _KIND[value_type] = kind
    return kind


def _push_children(node: cst.CSTNode, push: Callable[[cst.CSTNode], None], limit: int) -> None:
    """Push `node`'s code-bearing children right to left (so they pop left to right); kinds
    above `limit` (scope nodes, for limit 1) are left out. No lists are built: this is the
    hottest loop of the analysis."""
    kinds = _KIND
    fields = _FIELDS.get(type(node))
    if fields is None:
        fields = _child_fields(type(node))
    for name in reversed(fields):
        value = getattr(node, name)
        value_type = type(value)
        if value_type is list or value_type is tuple:
            for item in reversed(value):
                kind = kinds.get(type(item))
                if kind is None:
                    kind = _kind(type(item))
                if 0 < kind <= limit:
                    push(item)
        else:
            kind = kinds.get(value_type)
            if kind is None:
                kind = _kind(value_type)
            if 0 < kind <= limit:
                push(value)


push_children = _push_children
"""(public name: callers that keep their own stack, with state per node)"""


class NodeStore(Protocol):
    """What `evallint.analysis.reuse.Reuse` offers the walks (see there)."""

    open: bool
    """False for a batch lint's store that has ended (see `reuse.lint_memos`)."""

    def walk(self, root: cst.CSTNode, limit: int) -> list[cst.CSTNode]: ...

    def memo(self, name: str, node: N, compute: Callable[[N], T]) -> T: ...


_store: Optional[NodeStore] = None
"""Set by `evallint.analysis.reuse` while a language server lints a document: the results
of walks already made (a tree never changes, and an editor's incremental parse keeps the
nodes of unchanged statements), so a walk is a list read instead of a traversal."""


def iter_nodes(root: cst.CSTNode, *, enter_scopes: bool = False) -> Iterator[cst.CSTNode]:
    """Pre-order over code-bearing nodes under `root` (root included), without recursion,
    so thousands of nested parentheses cannot overflow the stack. Nested functions, classes
    and lambdas are skipped unless `enter_scopes`: their bodies run at another time."""
    store = _store
    if store is not None:
        return iter(store.walk(root, 2 if enter_scopes else 1))
    return _walk(root, 2 if enter_scopes else 1)


def walk_list(root: cst.CSTNode, limit: int) -> list[cst.CSTNode]:
    """`iter_nodes` as a list (`limit` 2 enters nested scopes, 1 does not)."""
    result: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = [root]
    pop, push, keep = stack.pop, stack.append, result.append
    while stack:
        node = pop()
        keep(node)
        _push_children(node, push, limit)
    return result


def _walk(root: cst.CSTNode, limit: int) -> Iterator[cst.CSTNode]:
    stack: list[cst.CSTNode] = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        yield node
        _push_children(node, push, limit)


def calls_in_evaluation_order(root: cst.CSTNode) -> list[cst.Call]:
    """Calls under `root` in the order Python evaluates them: arguments and receivers
    before the call itself (post-order), left to right (callers must not modify the list)."""
    store = _store
    if store is not None:
        return store.memo("calls_in_evaluation_order", root, _calls_in_evaluation_order)
    return _calls_in_evaluation_order(root)


def _calls_in_evaluation_order(root: cst.CSTNode) -> list[cst.Call]:
    """A call is pushed again inside a 1-tuple below its children, and collected when that
    pops."""
    result: list[cst.Call] = []
    stack: list = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        node_type = type(node)
        if node_type is tuple:
            result.append(node[0])
            continue
        if node_type is cst.Call:
            push((node,))
        elif _kind(node_type) == 2:
            continue  # a nested scope runs at another time
        _push_children(node, push, 2)
    return result


def returns_of(function: cst.FunctionDef) -> list[cst.Return]:
    """The `return` statements of `function` itself (not of nested functions or classes).
    Only statements are walked: a `return` is a small statement, and no expression holds
    a statement (a lambda's body is an expression), so expressions are never entered."""
    found: list[cst.Return] = []
    stack: list[cst.CSTNode] = [function.body]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        node_type = type(node)
        if node_type is cst.SimpleStatementLine or node_type is cst.SimpleStatementSuite:
            found.extend(s for s in node.body if type(s) is cst.Return)  # type: ignore[attr-defined]
            continue
        for name in _STATEMENT_FIELDS.get(node_type, ()):
            value = getattr(node, name)
            if type(value) is list or type(value) is tuple:
                for item in value:
                    push(item)
            elif value is not None:
                push(value)
    return found


def small_statements(root: cst.CSTNode) -> list[cst.BaseSmallStatement]:
    """The small statements (`x = 1`, `return`, `f()`) under the statement or block `root`,
    in source order, not in nested functions or classes. Only statements are walked: no
    expression holds a statement."""
    found: list[cst.BaseSmallStatement] = []
    stack: list[cst.CSTNode] = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        node_type = type(node)
        if node_type is cst.SimpleStatementLine or node_type is cst.SimpleStatementSuite:
            found.extend(node.body)  # type: ignore[attr-defined]
            continue
        for name in reversed(_STATEMENT_FIELDS.get(node_type, ())):
            value = getattr(node, name)
            if type(value) is list or type(value) is tuple:
                for item in reversed(value):
                    push(item)
            elif value is not None:
                push(value)
    return found


_STATEMENT_FIELDS: dict[type, tuple[str, ...]] = {
    cst.IndentedBlock: ("body",),
    cst.If: ("body", "orelse"),
    cst.Else: ("body",),
    cst.For: ("body", "orelse"),
    cst.While: ("body", "orelse"),
    cst.With: ("body",),
    cst.Try: ("body", "handlers", "orelse", "finalbody"),
    cst.TryStar: ("body", "handlers", "orelse", "finalbody"),
    cst.ExceptHandler: ("body",),
    cst.ExceptStarHandler: ("body",),
    cst.Finally: ("body",),
    cst.Match: ("cases",),
    cst.MatchCase: ("body",),
}
"""Compound statement -> its fields that hold statements (function and class definitions
are absent: their bodies are other scopes)."""


class NodeMemo(Generic[T]):
    """A value computed once per node, kept by whoever owns the tree (a file's analysis) so
    it dies with it. Keyed by `id`, holding the node too: an id reused after its node was
    freed cannot return a stale value."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[cst.CSTNode, T]] = {}

    def get(self, node: N, compute: Callable[[N], T]) -> T:
        entry = self._entries.get(id(node))
        if entry is None or entry[0] is not node:
            entry = self._entries[id(node)] = (node, compute(node))
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)


_AST_HOLDS_STATEMENTS: tuple[type[ast.AST], ...] = (
    ast.stmt,
    ast.excepthandler,
    *((ast.match_case,) if hasattr(ast, "match_case") else ()),  # Python 3.10+
)


def ast_statements(tree: ast.AST) -> Iterator[ast.AST]:
    """`ast.walk(tree)` without the nodes no statement is under (expressions, arguments,
    aliases): the statements (and handlers, match cases) in `ast.walk`'s breadth-first order,
    `tree` first. No expression holds a statement, so each statement is at the same depth
    and in the same place of that order as in the full walk, at a fraction of its cost."""
    queue = deque([tree])
    while queue:
        node = queue.popleft()
        yield node
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                queue.extend(item for item in value if isinstance(item, _AST_HOLDS_STATEMENTS))


def reads_any(node: cst.CSTNode, ids: set[int], names: set[str]) -> bool:
    """Whether `node` contains one of the nodes `ids` or reads one of the local `names`."""
    return any(id(n) in ids or (type(n) is cst.Name and n.value in names) for n in iter_nodes(node))


def ast_dotted(node: ast.expr) -> str:
    """`a.b.c` of an `ast` Name/Attribute chain; "" for anything else (a call, a subscript)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])
