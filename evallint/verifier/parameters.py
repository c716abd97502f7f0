"""A function parameter as the module: the argument passed at every call site (`callers`).

Moved out of `extract` (which imports this module); `Extractor` is what it asks of it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional, Protocol

import libcst as cst

from evallint.verifier.callers import CallSiteCache, inherited_call_sites
from evallint.verifier.resolution import Ctx, Found, Instance, Value
from evallint.verifier.source_index import SourceFile, call_argument, positional_params

MAX_CALLERS = 16
"""Call sites followed for one parameter."""


class Extractor(Protocol):
    """What this module and scopes.py ask of `extract.Extractor` (which imports them)."""

    sites: CallSiteCache

    def value(self, expr: cst.BaseExpression, ctx: Ctx) -> Value: ...

    def found(self, value: Value, ctx: Ctx) -> Found: ...

    def file(self, path: Path) -> Optional[SourceFile]: ...

    def class_chain(
        self, file: SourceFile, cls: cst.ClassDef
    ) -> list[tuple[SourceFile, cst.ClassDef]]: ...


def parameter(ext: Extractor, name: str, ctx: Ctx) -> Value:
    """A function parameter: follow the argument passed at every call site (`callers`).

    One caller passing a mode-dependent model decides (the result names that caller); a
    caller that cannot be followed leaves the result open rather than `not affected`, and
    so do callers found only in other files (code outside the project may call it too).
    """
    assert ctx.func is not None
    func = ctx.func
    fname = func.name.value
    params = positional_params(func)
    reasons: list[str] = []
    resolved: list[tuple[str, Value, Found]] = []
    elsewhere = False
    chain = ext.class_chain(ctx.file, ctx.cls) if ctx.cls is not None else []
    for site in [
        *ext.sites.of(ctx.file, func, ctx.cls),
        *inherited_call_sites(chain, func),
    ]:
        arg = call_argument(site.call, name, params, site.offset)
        if arg is None:
            continue
        line = site.file.line(site.call)
        caller_ctx = Ctx(
            site.file, site.caller, site.file.class_of(site.caller), {}, line, ctx.depth + 1
        )
        if site.inherited and chain:  # a base class's `self.f(...)`: `self` is this class's
            caller_ctx.instance = Instance(ctx.file, chain[0][1], {})
        value = ext.value(arg, caller_ctx)
        found = ext.found(value, caller_ctx)
        where = f"`{site.file.code(site.call)[:60]}` at {site.file.path.name}:{line}"
        if isinstance(value, Instance) or found.layers or not found.unresolved:
            resolved.append((where, value, found))
            elsewhere = elsewhere or not site.local
        else:
            reasons.extend(f"the caller {where}: {r}" for r in found.unresolved[:1])
        if len(resolved) + len(reasons) >= MAX_CALLERS:
            reasons.append(f"`{fname}` has more callers than the {MAX_CALLERS} followed")
            break
    for where, _, found in resolved:
        if any(layer.mode_dependent for layer in found.layers):
            return replace(found, caller=where)
    if elsewhere and not reasons:
        reasons.append(
            f"`{name}` of `{fname}` is passed only mode-independent models by the callers "
            "in this project; code outside it may pass others"
        )
    if len(resolved) == 1 and not reasons:
        return resolved[0][1]
    for where, _, found in resolved:
        if reasons or any(layer.sensitivity is None for layer in found.layers):
            return replace(found, unresolved=[*found.unresolved, *reasons[:1]], caller=where)
    if resolved:
        return resolved[0][1]
    if reasons:
        return Found(unresolved=reasons[:1])
    return Found(
        unresolved=[f"`{name}` is a parameter of `{fname}` and no call in the project passes it"]
    )
