"""Lean traversal of expressions: only the child fields that can hold code are followed.

LibCST's generic visitor also walks every whitespace and punctuation node and costs about as
much as the parse itself; the analysis only needs calls, names, attributes and strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import libcst as cst

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


def _child_fields(node_type: type) -> tuple[str, ...]:
    fields = _FIELDS.get(node_type)
    if fields is None:
        fields = tuple(
            f.name
            for f in dataclasses.fields(node_type)
            if not f.name.startswith(_SKIPPED_FIELD_PREFIXES)
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
    for name in reversed(_FIELDS.get(type(node)) or _child_fields(type(node))):
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


def iter_nodes(root: cst.CSTNode, *, enter_scopes: bool = False) -> Iterator[cst.CSTNode]:
    """Pre-order over code-bearing nodes under `root` (root included), without recursion,
    so thousands of nested parentheses cannot overflow the stack. Nested functions, classes
    and lambdas are skipped unless `enter_scopes`: their bodies run at another time."""
    limit = 2 if enter_scopes else 1
    stack: list[cst.CSTNode] = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        yield node
        _push_children(node, push, limit)


def calls_in_evaluation_order(root: cst.CSTNode) -> list[cst.Call]:
    """Calls under `root` in the order Python evaluates them: arguments and receivers
    before the call itself (post-order), left to right. A call is pushed again inside a
    1-tuple below its children, and collected when that pops."""
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
