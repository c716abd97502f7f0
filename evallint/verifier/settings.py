"""Parameters that hold settings, not modules (`n_heads=1`, `sizes=(3, 5)`).

A class stores its settings next to its submodules (`self.heads = heads`); the extractor
does not follow a setting to its callers as if it could be a module. A parameter is a
setting when its default is a constant other than `None` (`resolution.plain_default`), or
when it was passed on unchanged from a parameter or attribute that is one.
"""

from __future__ import annotations

import libcst as cst

from evallint.verifier.callee_subject import Extractor
from evallint.verifier.resolution import MAX_DEPTH, Ctx, not_a_module, plain_default
from evallint.verifier.source_index import dotted_or_none, inside


def plain_setting(extractor: Extractor, name: str, ctx: Ctx, depth: int = 0) -> bool:
    """Is the parameter `name` a setting (`plain_default`) here or, when it was passed on
    unchanged (`Layer(n_heads=n_heads)`, `Net(size=self.size)`), where it came from? An
    attribute counts when every assignment to it in its class is a setting or a constant."""
    if plain_default(ctx.func, name):
        return True
    bound = ctx.bindings.get(name)
    if bound is None or bound.ctx is None or depth > MAX_DEPTH:
        return False
    expr, where = bound.expr, bound.ctx
    if isinstance(expr, cst.Name):
        return plain_setting(extractor, expr.value, where, depth + 1)
    if not (
        isinstance(expr, cst.Attribute)
        and dotted_or_none(expr.value) == "self"
        and where.cls is not None
    ):
        return False
    target = f"self.{expr.attr.value}"
    assigns = [
        (cls_file, a)
        for cls_file, cls in extractor.class_chain(where.file, where.cls)
        for a in cls_file.assignments
        if a.target == target and a.func is not None and inside(cls_file, a.func, cls)
    ]
    return bool(assigns) and all(
        not_a_module(a.value)
        or (
            isinstance(a.value, cst.Name)
            and plain_setting(
                extractor,
                a.value.value,
                Ctx(cls_file, a.func, cls_file.class_of(a.func), {}, a.line, where.depth),
                depth + 1,
            )
        )
        for cls_file, a in assigns
    )
