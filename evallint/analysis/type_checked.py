"""Attributes the code type-checks against a plain class: `isinstance(self.feed, FeedDef)`.

An attribute named like a module (`self.batch_model_feed_def`, a strategy object that is
given the model: `self.batch_model_feed_def.get_loss(self.model, batch)`) is taken for one
by its name when nothing else says what it holds. A check of its type does say: when every
`isinstance` test of the attribute in its class names a class of the project (or of this
file) that is no nn.Module (its bases end in `object` or `ABC`), the code expects a plain
object there, and calling it or its methods runs no module's forward. A test against any
other class (a module class, a library class) leaves the attribute to the other evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from evallint.analysis.plain_objects import plain_class_named
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo


def _checked_classes(call: cst.Call) -> tuple[str, list[str]] | None:
    """(`self.X`, the class names) of `isinstance(self.X, C)` / `isinstance(self.X, (C, D))`."""
    if (
        type(call.func) is not cst.Name
        or call.func.value != "isinstance"
        or len(call.args) != 2
        or any(a.keyword is not None or a.star for a in call.args)
    ):
        return None
    subject = dotted_name(call.args[0].value)
    if subject is None or not subject.startswith("self.") or subject.count(".") != 1:
        return None
    kinds = call.args[1].value
    elements = [e.value for e in kinds.elements] if type(kinds) is cst.Tuple else [kinds]
    names = [dotted_name(e) for e in elements]
    if any(n is None for n in names):
        return None
    return subject, [n for n in names if n is not None]


def plain_checked_attributes(file: FileAnalysis, owner: ClassInfo) -> set[str]:
    """The `self.X` of the class that every `isinstance` test in its methods checks against
    plain classes only."""
    plain: set[str] = set()
    other: set[str] = set()
    for method in owner.methods.values():
        for node in iter_nodes(method.node.body):
            if type(node) is not cst.Call:
                continue
            found = _checked_classes(node)
            if found is None:
                continue
            subject, names = found
            if all(plain_class_named(file, name) for name in names):
                plain.add(subject)
            else:
                other.add(subject)
    return plain - other
