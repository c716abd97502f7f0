"""Forward results a method keeps on its object: `self.output[:, :, y0:y1] = tile[...]` after
`tile = self.model(x)` hands the result to the object's other methods (a `post_process()` that
the caller runs next), so what the results are for is the caller's to say, not this method's,
even when no autograd graph comes with them (the forward ran under no_grad)."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.walk import iter_nodes, reads_any


def _root(target: cst.BaseExpression) -> Optional[str]:
    """`self.output[i]` -> 'self'; `out` -> None (a local, not stored on an object)."""
    if type(target) is cst.Name:
        return None
    while type(target) in (cst.Attribute, cst.Subscript):
        target = cast("cst.Attribute | cst.Subscript", target).value
    return target.value if type(target) is cst.Name else None


def _receiver(function: cst.FunctionDef) -> Optional[str]:
    params = function.params
    first = (*params.posonly_params, *params.params)[:1]
    return first[0].name.value if first else None


def stores_forward_results(function: cst.FunctionDef, forwards: list[cst.Call]) -> bool:
    """Whether a value computed by one of the method's forwards (directly, or through locals
    bound to it) is assigned to an attribute or item of the method's own object. (A value it
    returns is not enough: `return scores.argmax(-1).tolist()` is the evaluation's answer.)"""
    receiver = _receiver(function)
    if receiver is None or not forwards:
        return False
    ids = {id(call) for call in forwards}
    names: set[str] = set()
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign:
            targets = [t.target for t in node.targets]
        elif type(node) in (cst.AugAssign, cst.AnnAssign):
            targets = [cast("cst.AugAssign | cst.AnnAssign", node).target]
        else:
            continue
        value = cast("cst.Assign | cst.AugAssign | cst.AnnAssign", node).value
        if value is None or not reads_any(value, ids, names):
            continue
        for target in targets:
            if _root(target) == receiver:
                return True
            names.update(n.value for n in iter_nodes(target) if type(n) is cst.Name)
    return False
