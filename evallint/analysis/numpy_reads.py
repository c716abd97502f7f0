"""Containers the function hands whole to NumPy.

`np.mean(reward_batch)`, `np.array(y_preds)`: NumPy converts every element, and converting a
tensor that requires grad raises `RuntimeError: Can't call numpy() on Tensor that requires
grad` (checked on torch 2.13). Code that runs this way proves the container's values carry no
graph, whatever the analysis inferred for them (an environment's reward read as the policy's
output). EVL006 asks this of a container it would report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes


def converted_by_numpy(
    body: cst.CSTNode, qualify: Callable[[cst.BaseExpression], Optional[str]]
) -> set[str]:
    """Names (or dotted names) given whole, as the first argument, to a NumPy function."""
    found: set[str] = set()
    for node in iter_nodes(body):
        if type(node) is not cst.Call or not node.args:
            continue
        call: cst.Call = node
        first = call.args[0]
        if first.keyword is not None or first.star:
            continue
        if not (qualify(call.func) or "").startswith("numpy."):
            continue
        name = dotted_name(first.value)
        if name is not None:
            found.add(name)
    return found
