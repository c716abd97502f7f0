"""Context-sensitive summaries by constant flags.

A function shared by training and evaluation often takes a flag: `iteration(epoch, loader,
train=True)` backwards only under `if train:`. Its general summary cannot tell which use a
call is, so a forward in it is "training or evaluation by a flag" and the caller's region
decides. A call that passes a constant for such a flag (`iteration(epoch, test_loader,
train=False)`) gets a summary of its own, interpreted with the flag fixed: the dead branch is
skipped, and a block that trains only under the flag is an evaluation (or training) there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import libcst as cst

from evallint.analysis.conditions import condition_key
from evallint.analysis.regions import Region, RegionKind
from evallint.analysis.scope import FunctionInfo
from evallint.analysis.walk import iter_nodes

Flags = tuple[tuple[str, bool], ...]
"""(parameter, constant value) pairs, sorted: the context a summary is specialised for."""

MAX_FLAGS = 3
"""Flags one call may fix (each distinct combination is one more interpretation)."""

_CONSTANTS = {"True": True, "False": False}


def tested_parameters(info: FunctionInfo) -> frozenset[str]:
    """Parameters of `info` that an `if` or a conditional expression in its body tests as a
    plain flag (`if train:`, `x if not eval_mode else y`)."""
    params = set(info.params) | set(info.keyword_only)
    tested: set[str] = set()
    for node in iter_nodes(info.node.body):
        test = node.test if type(node) in (cst.If, cst.IfExp, cst.While) else None  # type: ignore[attr-defined]
        if test is None:
            continue
        key = condition_key(test)
        if key is not None and key[0] in params:
            tested.add(key[0])
    return frozenset(tested)


def constant_flags(info: FunctionInfo, call: cst.Call, tested: frozenset[str]) -> Flags:
    """The tested parameters this call passes a constant `True`/`False` for."""
    if not tested:
        return ()
    positional_params = [p for p in info.params if p not in ("self", "cls")]
    if info.owner is not None and info.params[:1] != ("self",) and info.params[:1] != ("cls",):
        positional_params = list(info.params)  # a static method
    flags: dict[str, bool] = {}
    index = 0
    for arg in call.args:
        if arg.star:
            if arg.keyword is None:
                return tuple(sorted(flags.items()))  # `*args`: later positions are unknown
            continue
        name: Optional[str]
        if arg.keyword is not None:
            name = arg.keyword.value
        else:
            name = positional_params[index] if index < len(positional_params) else None
            index += 1
        value = arg.value
        if name in tested and type(value) is cst.Name and value.value in _CONSTANTS:
            flags[name] = _CONSTANTS[value.value]
    if len(flags) > MAX_FLAGS:
        return ()
    return tuple(sorted(flags.items()))


def settle(region: Region, flags: Flags) -> Region:
    """A block that trains only under a flag, with the flag fixed by the context: training
    when the flag says so, else an evaluation (the gradients its training branch needed are
    not needed on this path)."""
    if region.kind is not RegionKind.MIXED or not flags:
        return region
    for name, value in flags:
        if region.condition == name:
            if value == region.trains_when:
                return replace(region, kind=RegionKind.TRAIN, needs_grad=True)
            return replace(region, kind=RegionKind.EVAL, needs_grad=False)
    return region
