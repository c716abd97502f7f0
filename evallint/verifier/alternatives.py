"""A module that is one of several, which one not decided: an element of a list of models
(`self.net_lst[i]`) or one of a factory's return paths.

All of them mode-dependent: confirmed by any; none: not affected when all were resolved (the
last one stands for the sizes, not their sum); some only: unresolved, named.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import libcst as cst

from evallint.verifier.class_facts import list_elements
from evallint.verifier.conditions import only_if
from evallint.verifier.resolution import Ctx, Found, Value, last_assignment
from evallint.verifier.source_index import SourceFile, dotted_or_none


class Extractor(Protocol):
    """What this module asks of `extract.Extractor` (which imports this module)."""

    def value(self, expr: cst.BaseExpression, ctx: Ctx) -> Value: ...

    def found(self, value: Value, ctx: Ctx) -> Found: ...


def element_name(element: cst.BaseExpression, ctx: Ctx) -> str:
    code = ctx.file.code(element)
    shown = f"`{code[:50]}{'...' if len(code) > 50 else ''}`"
    try:
        return f"{shown} ({ctx.file.path.name}:{ctx.file.line(element)})"
    except KeyError:  # a node evallint made, not one of the file's
        return shown


def _mixed(found: list[Found]) -> bool:
    dependent = [any(layer.sensitivity is not False for layer in f.layers) for f in found]
    return any(dependent) and not all(dependent)


def _merged(found: list[Found], reason: str) -> Found:
    out = Found()
    for f in found:
        out.extend(f)
    out.layers = [layer for layer in out.layers if layer.sensitivity is False]
    out.unresolved.insert(0, reason)
    return out


def element_of(ext: Extractor, listed: str, ctx: Ctx) -> Found:
    """`nets[i]`, `self.net_lst[i]`: one element of a list built in view, which one not
    decided; a mode dependence only some elements have leaves it open."""
    where = f"{ctx.file.path.name}:{ctx.line}"
    if not listed.startswith("self."):
        local = last_assignment(ctx.file, listed, ctx.func, ctx.line)
        if local is None or not isinstance(local.value, (cst.List, cst.Tuple)):
            return Found(unresolved=[f"`{listed}[...]` at {where} is not a list evallint can read"])
    found = []
    for element, test in list_elements(listed, ctx):
        if dotted_or_none(element) == listed:
            reason = f"list `{listed}` is filled in a way evallint cannot read"
            found.append(Found(unresolved=[reason]))
            continue
        value = ext.found(ext.value(element, ctx.at(ctx.line)), ctx)
        found.append(only_if(value, test, element_name(element, ctx) if test else ""))
    if not found:
        return Found(unresolved=[f"list `{listed}` holds no module evallint can see"])
    if _mixed(found):
        reason = (
            f"only some elements of `{listed}` depend on the mode, and the index was not decided"
        )
        return _merged(found, reason)
    out = Found()
    for f in found:
        out.extend(f)
    return out


def one_of_returns(
    ext: Extractor,
    func: cst.FunctionDef,
    file: SourceFile,
    others: list[Found],
    last: Value,
    ctx: Ctx,
) -> Value:
    """A factory with several returns: `others` (found) and `last` (the last return)."""
    found = [*others, ext.found(last, ctx)]
    if _mixed(found):
        name = f"`{func.name.value}` ({file.path.name}:{file.line(func)})"
        reason = (
            f"factory {name} returns a mode-dependent module on some paths only, "
            "and evallint did not decide which path runs"
        )
        return _merged(found, reason)
    # every path agrees: the last one stands for them (its layers, not the sum of all
    # paths, give the sizes); what stopped another path still leaves it open
    reasons = [reason for f in others for reason in f.unresolved]
    if not reasons:
        return last
    out = ext.found(last, ctx)
    return replace(out, unresolved=[*out.unresolved, *reasons])
