"""What a name means where the extractor meets it: a variable of the function around a nested
function (a closure), and a base class's `__init__` parameter as the subclass's
`super().__init__(...)` binds it.
"""

from __future__ import annotations

from typing import Optional

from evallint.verifier.class_facts import bind, super_init_call
from evallint.verifier.parameters import Extractor, parameter
from evallint.verifier.resolution import Bound, Ctx, Found, Instance, Value
from evallint.verifier.source_index import init_of, param_names


def chain_bindings(ext: Extractor, inst: Instance, depth: int) -> dict[int, dict[str, Bound]]:
    """The parameters of each base class's `__init__` up the chain, bound to what the
    subclass's `super().__init__(...)` passes (single inheritance, by explicit call only);
    parameters a `**kwargs` may carry are left out (followed to every caller instead)."""
    out = {id(inst.cls): inst.bindings}
    chain = ext.class_chain(inst.file, inst.cls)
    prev_file, prev, prev_bindings = inst.file, inst.cls, inst.bindings
    for cls_file, cls in chain[1:]:
        call = super_init_call(prev_file, prev)
        if call is None or init_of(cls) is None or len(prev.bases) != 1:
            break
        ctx = Ctx(prev_file, init_of(prev), prev, prev_bindings, prev_file.line(call), depth)
        bound = bind(cls_file, init_of(cls), call, ctx)
        bound = {k: b for k, b in bound.items() if b.expr is not None}
        out[id(cls)] = bound
        prev_file, prev, prev_bindings = cls_file, cls, bound
    return out


def closure(ext: Extractor, name: str, ctx: Ctx) -> Optional[Value]:
    """A name a nested function reads from the function around it (`model` in
    `def custom_eval(x): return model(x)`): followed when that function assigns it once
    (several assignments: the one live when the nested function runs is not known)."""
    if ctx.func is None:
        return None
    start = ctx.file.span(ctx.func)[0]
    around = [
        f
        for defs in ctx.file.functions.values()
        for f in defs
        if f is not ctx.func and ctx.file.span(f)[0] < start <= ctx.file.span(f)[1]
    ]
    outer = max(around, key=lambda f: ctx.file.span(f)[0]) if around else None
    if outer is None:
        return None
    assigns = [a for a in ctx.file.assignments if a.target == name and a.func is outer]
    where = f"{ctx.file.path.name}:{ctx.line}"
    if len(assigns) > 1:
        return Found(
            unresolved=[
                f"`{name}` at {where} is a variable of the enclosing function "
                f"`{outer.name.value}`, assigned {len(assigns)} times"
            ]
        )
    if assigns:
        octx = Ctx(ctx.file, outer, ctx.file.class_of(outer), {}, assigns[0].line, ctx.depth + 1)
        return ext.value(assigns[0].value, octx)
    if name in param_names(outer):
        octx = Ctx(ctx.file, outer, ctx.file.class_of(outer), {}, ctx.line, ctx.depth + 1)
        return parameter(ext, name, octx)
    return None
