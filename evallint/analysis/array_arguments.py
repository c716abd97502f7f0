"""Names that a NumPy function is given: evidence that they hold no autograd graph.

NumPy converts its array arguments with `Tensor.__array__`, which calls `numpy()`, and
`numpy()` raises for a tensor that requires grad ("Can't call numpy() on Tensor that
requires grad"; checked on torch 2.13 for `argpartition`, `argsort`, `argmax`, `exp`,
`sort`, `concatenate`, `stack`, `asarray`, ...). So a name handed to such a function, in
code that runs, holds a NumPy array or a tensor with no graph. A few NumPy functions call
the tensor's own method of the same name instead (`np.squeeze`) or only look at the value
(`np.shape`); they prove nothing. `np.sum`/`np.mean` on a tensor raise a TypeError from
the tensor's method, so they prove it too.

The provenance (provenance.py) drops the graph of such a name from that point on, and so
of what is computed from it afterwards (`t_prob[top]` after `top = top_k(t_prob, 5)`, with
`top_k` a function of the file that passes its parameter to `np.argpartition`)."""

from __future__ import annotations

from typing import Callable

import libcst as cst

from evallint.analysis.walk import iter_nodes

_NOT_CONVERTING = frozenset(
    {
        "squeeze",
        "where",
        "shape",
        "ndim",
        "size",
        "isscalar",
        "iterable",
        "result_type",
        "may_share_memory",
        "shares_memory",
        "save",
        "savez",
        "savetxt",
    }
)
"""NumPy functions that do not convert their argument (or dispatch to the tensor's own
method): a tensor with a graph passes them without error."""


def converted_by_numpy(call: cst.Call, qualify: Callable) -> list[str]:
    """The names `call` hands positionally to a NumPy function that converts them
    (`np.argsort(scores)`, `np.concatenate([a, b])`); empty for any other call."""
    qualified = qualify(call.func) or ""
    if not qualified.startswith("numpy.") or qualified.split(".")[-1] in _NOT_CONVERTING:
        return []
    found: list[str] = []
    for argument in call.args:
        if argument.keyword is not None or argument.star:
            continue
        value = argument.value
        if type(value) is cst.Name:
            found.append(value.value)
        elif type(value) in (cst.List, cst.Tuple):
            found.extend(
                e.value.value
                for e in value.elements  # type: ignore[attr-defined]
                if type(e) is cst.Element and type(e.value) is cst.Name
            )
    return found


def array_parameters(function: cst.FunctionDef, qualify: Callable) -> tuple[str, ...]:
    """Per position, the parameter `function` hands to a converting NumPy call and never
    rebinds ('' for the others): `def top_k(array, k): ind = np.argpartition(array, -k)`
    gives ('array', '')."""
    params = [p.name.value for p in function.params.params]
    handed: set[str] = set()
    rebound: set[str] = set()
    for node in iter_nodes(function.body):
        if type(node) is cst.Call:
            handed.update(converted_by_numpy(node, qualify))
        elif type(node) in (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.For):
            targets = (
                [t.target for t in node.targets] if type(node) is cst.Assign else [node.target]  # type: ignore[attr-defined]
            )
            for target in targets:
                rebound.update(n.value for n in iter_nodes(target) if type(n) is cst.Name)
    return tuple(p if p in handed and p not in rebound else "" for p in params)
