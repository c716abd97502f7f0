"""Lean traversal of expressions: only the child fields that can hold code are followed.

LibCST's generic visitor also walks every whitespace and punctuation node and costs about as
much as the parse itself; the analysis only needs calls, names, attributes and strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import libcst as cst

_SKIPPED_FIELD_PREFIXES = (
    "whitespace", "lpar", "rpar", "comma", "semicolon", "dot", "colon", "equal", "operator", "lbracket",
    "rbracket", "lbrace", "rbrace", "newline", "leading_lines", "header", "footer", "indent", "star",
    "asynchronous", "lines_after_decorators", "first_line", "empty_lines", "trailing_whitespace",
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(node_type: type) -> tuple[str, ...]:
    fields = _FIELDS.get(node_type)
    if fields is None:
        fields = tuple(
            f.name for f in dataclasses.fields(node_type)
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
        kind = 2 if issubclass(value_type, _SCOPE_NODES) else 1 if issubclass(value_type, cst.CSTNode) else 0
        _KIND[value_type] = kind
    return kind


def iter_nodes(root: cst.CSTNode, *, enter_scopes: bool = False) -> Iterator[cst.CSTNode]:
    """Pre-order over code-bearing nodes under `root` (root included), without recursion,
    so thousands of nested parentheses cannot overflow the stack. Nested functions, classes
    and lambdas are skipped unless `enter_scopes`: their bodies run at another time.
    (The hottest loop of the analysis: children are pushed right to left, no lists built.)"""
    limit = 2 if enter_scopes else 1
    stack: list[cst.CSTNode] = [root]
    pop, push, kinds = stack.pop, stack.append, _KIND
    while stack:
        node = pop()
        yield node
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


def calls_in_evaluation_order(root: cst.CSTNode) -> list[cst.Call]:
    """Calls under `root` in the order Python evaluates them: arguments and receivers
    before the call itself (post-order), left to right."""
    result: list[cst.Call] = []
    stack: list[tuple[cst.CSTNode, bool]] = [(root, False)]
    pop, push, kinds = stack.pop, stack.append, _KIND
    while stack:
        node, expanded = pop()
        if expanded:
            result.append(node)  # type: ignore[arg-type]
            continue
        node_type = type(node)
        if node_type is cst.Call:
            push((node, True))
        elif _kind(node_type) == 2:
            continue
        for name in reversed(_FIELDS.get(node_type) or _child_fields(node_type)):
            value = getattr(node, name)
            value_type = type(value)
            if value_type is list or value_type is tuple:
                for item in reversed(value):
                    kind = kinds.get(type(item))
                    if kind is None:
                        kind = _kind(type(item))
                    if kind:
                        push((item, False))
            else:
                kind = kinds.get(value_type)
                if kind is None:
                    kind = _kind(value_type)
                if kind:
                    push((value, False))
    return result
