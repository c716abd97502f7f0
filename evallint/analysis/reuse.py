"""What one lint of an edited document may take from the previous lint: results that are
pure functions of a syntax node.

A language server re-parses only the top-level statements an edit changed
(`evallint.source.incremental`): every other statement keeps its LibCST nodes, the same
objects as in the previous lint. A LibCST node never changes, so anything computed from a
node alone (the nodes a walk visits, the names a scope binds, the parameters a function
tests) is the same for the same node object in any lint, and is kept here, keyed by the
node's identity with the node itself held (an identity reused after its node was freed
cannot return a stale value). Nothing that depends on another part of the file (a callee's
summary, a file-wide table, the order the analysis ran in) is kept: the analysis itself
runs in full on every lint, so its findings are a fresh lint's by construction.

Entries used by a lint are kept for the next one; the others are dropped when the next
lint starts (`Reuse.active`), so a document's store holds about one lint's worth.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from itertools import count, repeat
from typing import Any, Optional, TypeVar

import libcst as cst

from evallint.analysis import walk
from evallint.analysis.walk_slices import Listing

T = TypeVar("T")
N = TypeVar("N", bound=cst.CSTNode)

_MODULE_BODY_ONLY = walk._child_fields(cst.Module) == ("body",)
"""A module's walk is its own node then its statements' walks, in order: composed from the
statements' kept walks (the module node is new on every lint, its statements mostly not)."""


_BY_TEXT = object()
"""Stands for the node of an entry keyed by a text (see `Reuse.kept_by_text`)."""


class Reuse:
    """One open document's store (used by one lint at a time)."""

    open = True
    """(a document's store never ends; see `_BatchWalks.close`)"""

    def __init__(self) -> None:
        self._current: dict[Any, tuple[object, Any]] = {}
        self._previous: dict[Any, tuple[object, Any]] = {}
        self.hits = 0
        self.misses = 0

    @contextmanager
    def active(self) -> Iterator[Reuse]:
        """Effect: for the duration, walks and `memo` calls (from any thread) use this store;
        entries the previous lint did not use are dropped first."""
        self._previous, self._current = self._current, {}
        self.hits = self.misses = 0
        global _active
        outer, outer_store = _active, walk._store
        _active = walk._store = self
        try:
            yield self
        finally:
            _active, walk._store = outer, outer_store

    def _get(self, key: Any, node: object) -> Optional[tuple[object, Any]]:
        """The entry for `key` if it was made for `node` (the same object: an identity in
        the key may have been reused by another object since)."""
        entry = self._current.get(key)
        if entry is not None and entry[0] is node:
            return entry
        entry = self._previous.get(key)
        if entry is not None and entry[0] is node:
            self._current[key] = entry
            return entry
        return None

    def walk(self, root: cst.CSTNode, limit: int) -> list[cst.CSTNode]:
        """`walk.iter_nodes(root)`'s nodes (limit 2: nested scopes entered)."""
        key = (id(root), limit)
        entry = self._get(key, root)
        if entry is not None:
            self.hits += 1
            return entry[1]
        self.misses += 1
        if type(root) is cst.Module and _MODULE_BODY_ONLY:
            nodes: list[cst.CSTNode] = [root]
            for statement in root.body:  # as `_push_children` admits them
                if 0 < walk._kind(type(statement)) <= limit:
                    nodes += self.walk(statement, limit)
            return nodes  # not kept: the assembled module is new on every lint
        nodes = walk.walk_list(root, limit)
        self._current[key] = (root, nodes)
        return nodes

    def memo(self, name: str, node: N, compute: Callable[[N], T]) -> T:
        """`compute(node)`, computed once per node object; `compute` must read nothing but
        the node (and constants)."""
        return self.memo_with(name, node, None, compute)

    def memo_with(self, name: str, node: N, context: Hashable, compute: Callable[[N], T]) -> T:
        """`compute(node)`, computed once per node object and `context`; `compute` must read
        nothing but the node, constants and what `context` holds."""
        key = (name, id(node), context)
        entry = self._get(key, node)
        if entry is not None:
            return entry[1]
        value = compute(node)
        self._current[key] = (node, value)
        return value

    def kept_by_text(self, name: str, text: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, computed once per `text`; the value must follow from the text alone."""
        key = (name, text)
        entry = self._get(key, _BY_TEXT)  # the lookup compared the text itself
        if entry is not None:
            return entry[1]
        value = compute()
        self._current[key] = (_BY_TEXT, value)
        return value


_active: Optional[Reuse] = None


_lint_memos: Optional[dict[Any, tuple[object, Any]]] = None
"""While a batch lint runs (`lint_memos`, no language server store active): `memo`'s values
of this lint, keyed like a store's entries (name, node identity; the node held)."""


@contextmanager
def lint_memos() -> Iterator[None]:
    """Effect: for the duration, `memo` keeps each value it computes, so a pure function of
    a node is computed once per node in this lint (a loop's `sums_into_a_later_backward`
    asks for its whole scope's backward roots: once per loop, the same scope each time).
    Nothing is kept past the lint: a batch lint has no previous lint to take from. Inside a
    language server's store (or an outer `lint_memos`), the outer one serves."""
    global _lint_memos
    outer = walk._store
    if _active is not None or _lint_memos is not None or (outer is not None and outer.open):
        yield
        return
    _lint_memos = {}
    walks = walk._store = _BatchWalks(_lint_memos)
    try:
        yield
    finally:
        _lint_memos = None
        walks.close()
        if walk._store is walks:  # not if a language server's store replaced it meanwhile
            walk._store = None


class _BatchWalks:
    """A batch lint's walks (`walk.NodeStore`): the nodes under a root are listed once per
    lint, as a language server's store lists them once per node object (many analyses walk
    the same function or statement again: scope names, tested parameters, single
    assignments, ...). Kept for one lint, keyed like `Reuse.walk`'s entries."""

    __slots__ = ("_memos", "_places", "_walks", "open")

    def __init__(self, memos: dict[Any, tuple[object, Any]]) -> None:
        self._walks: dict[tuple[int, int], tuple[cst.CSTNode, list[cst.CSTNode]]] = {}
        self._places: dict[int, tuple[Listing, int]] = {}
        """A node's identity -> a listing it is in and its position there (see
        walk_slices.py): a walk of a node under a root already listed is a slice."""
        self._memos = memos
        self.open = True

    def close(self) -> None:
        """Effect: keeps nothing from now on. A language server's store that began while
        this lint ran (on another thread) restores this one when it ends: closed, it walks
        and computes afresh, holds no tree, and the next batch lint replaces it."""
        self.open = False
        self._walks = {}
        self._places = {}
        self._memos = {}

    def walk(self, root: cst.CSTNode, limit: int) -> list[cst.CSTNode]:
        if not self.open:
            return walk.walk_list(root, limit)
        key = (id(root), limit)
        entry = self._walks.get(key)
        if entry is not None and entry[0] is root:
            return entry[1]
        place = self._places.get(key[0])
        if place is None or place[0].nodes[place[1]] is not root:
            listing = Listing(root)
            self._places.update(zip(map(id, listing.nodes), zip(repeat(listing), count())))
            place = (listing, 0)
        nodes = place[0].under(place[1], limit)
        self._walks[key] = (root, nodes)
        return nodes

    def memo(self, name: str, node: N, compute: Callable[[N], T]) -> T:
        if not self.open:
            return compute(node)
        key = (name, id(node))
        entry = self._memos.get(key)
        if entry is not None and entry[0] is node:
            return entry[1]
        value = compute(node)
        self._memos[key] = (node, value)
        return value


def memo(name: str, node: N, compute: Callable[[N], T]) -> T:
    """`compute(node)`, from the active document's store when a language server lints, else
    from this lint's values (`lint_memos`), else computed."""
    store = _active
    if store is None:
        kept = _lint_memos
        if kept is None:
            return compute(node)
        key = (name, id(node))
        entry = kept.get(key)
        if entry is not None and entry[0] is node:
            return entry[1]
        value = compute(node)
        kept[key] = (node, value)
        return value
    return store.memo(name, node, compute)


def memo_with(name: str, node: N, context: Hashable, compute: Callable[[N], T]) -> T:
    """`memo` for a `compute` that also reads what `context` holds (equal contexts: equal
    answers for the same node)."""
    store = _active
    if store is None:
        return compute(node)
    return store.memo_with(name, node, context, compute)


def text_store() -> Optional[Callable[[str, Hashable, Callable[[], T]], T]]:
    """The active store's `Reuse.kept_by_text`, or None when no language server lints."""
    store = _active
    return None if store is None else store.kept_by_text
