"""A module that is one of several, which one not decided: an element of a list of models
(`self.net_lst[i]`) or one of a factory's return paths.

All of them mode-dependent: confirmed by any; none: not affected when all were resolved (the
last one stands for the sizes, not their sum); some only: unresolved, named.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Optional, Protocol

import libcst as cst

from evallint.verifier.class_facts import list_elements
from evallint.verifier.conditions import only_if
from evallint.verifier.layer_spec import UNKNOWN
from evallint.verifier.resolution import Ctx, Found, Value, last_assignment, literal
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


def _built_at(element: cst.BaseExpression, ctx: Ctx) -> Ctx:
    """Where an element of a list is evaluated: in the method that adds it
    (`self.nets.append(net)` in `fit`, read in `predict`), at the line it is added."""
    try:
        line = ctx.file.line(element)
    except KeyError:  # a node evallint made (the list itself, unread)
        return ctx.at(ctx.line)
    func = ctx.file.enclosing_function(line)
    if func is None or func is ctx.func:
        return ctx.at(ctx.line)
    return Ctx(ctx.file, func, ctx.file.class_of(func), {}, line, ctx.depth + 1, ctx.instance)


def element_of(
    ext: Extractor, listed: str, ctx: Ctx, key: Optional[cst.BaseExpression] = None
) -> Found:
    """`nets[i]`, `self.net_lst[i]`: one element of a list built in view, which one not
    decided; a mode dependence only some elements have leaves it open. `layers[name]` of a
    dict literal: see `entry_of`."""
    where = f"{ctx.file.path.name}:{ctx.line}"
    if not listed.startswith("self."):
        local = last_assignment(ctx.file, listed, ctx.func, ctx.line)
        if local is not None and isinstance(local.value, cst.Dict):
            return entry_of(ext, listed, local.value, key, ctx.at(local.line))
        if local is None or not isinstance(local.value, (cst.List, cst.Tuple)):
            return Found(unresolved=[f"`{listed}[...]` at {where} is not a list evallint can read"])
    found = []
    for element, test in list_elements(listed, ctx):
        if dotted_or_none(element) == listed:
            reason = f"list `{listed}` is filled in a way evallint cannot read"
            found.append(Found(unresolved=[reason]))
            continue
        value = ext.found(ext.value(element, _built_at(element, ctx)), ctx)
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


def entry_of(
    ext: Extractor,
    listed: str,
    table: cst.Dict,
    key: Optional[cst.BaseExpression],
    ctx: Ctx,
) -> Found:
    """`registry[name]` of a dict literal of modules or classes built in this function.

    A key read from the source picks its value. Otherwise the value is one of them: all
    mode-dependent, or none, decides (each candidate's layers are marked as built only if
    the key selects it, so none of them enters a size figure); some only leaves it open,
    naming the dict. A dict changed after it is built, or with `**other` in it, is not read."""
    where = f"`{listed}` ({ctx.file.path.name}:{ctx.line})"
    code = ctx.file.code(ctx.func) if ctx.func is not None else ""
    changed = re.search(
        rf"\b{re.escape(listed)}(\s*\[[^\]]*\]\s*=[^=]|\.(update|setdefault|__setitem__)\()", code
    )
    entries = [e for e in table.elements if isinstance(e, cst.DictElement)]
    if changed or len(entries) != len(table.elements) or not entries:
        return Found(unresolved=[f"dict {where} is changed or built in a way evallint cannot read"])
    wanted = literal(key, ctx) if key is not None else UNKNOWN
    if wanted is not UNKNOWN:
        for entry in entries:
            if literal(entry.key, ctx) == wanted:
                return ext.found(ext.value(entry.value, ctx), ctx)
        return Found(unresolved=[f"dict {where} has no key {wanted!r}"])
    found = [ext.found(ext.value(entry.value, ctx), ctx) for entry in entries]
    if len(found) > 1 and _mixed(found):
        reason = f"only some values of dict {where} depend on the mode, and the key was not decided"
        return _merged(found, reason)
    out = Found()
    test = f"the key of {where} selects it" if len(found) > 1 else ""
    for f in found:
        layers = [replace(layer, condition=layer.condition or test) for layer in f.layers]
        out.extend(replace(f, layers=layers))
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
