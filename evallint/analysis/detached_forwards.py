"""Forwards whose output is detached on the spot (issue 16, real code).

`features.append(model.encoder(batch).detach().cpu())` in a loop that trains nothing: the
forward builds a graph that the very next call throws away, so the loop extracts features
(for a k-means initialisation, a memory bank, an embedding plot) rather than training. Read
syntactically: which calls are the receivers of `.detach()`.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

from evallint.analysis.walk import iter_nodes


def detached_on_the_spot(statements: Iterable[cst.CSTNode]) -> set[int]:
    """The calls in these statements whose result is detached right away (`f(x).detach()`,
    `f(x)[0].detach()`)."""
    found: set[int] = set()
    for statement in statements:
        for node in iter_nodes(statement):
            if (
                type(node) is cst.Call
                and type(node.func) is cst.Attribute
                and node.func.attr.value == "detach"
            ):
                receiver = node.func.value
                while type(receiver) is cst.Subscript:
                    receiver = receiver.value
                if type(receiver) is cst.Call:
                    found.add(id(receiver))
    return found
