"""Following through calls: a subject named as the callee sees it, and what a call returns.

The analysis reports a forward that runs inside a callee at the caller's line, naming the
module as the callee sees it: `self.model` at `detector.score(x)`, or `net` at
`self.training_forward(batch, self.net, loss)`. At that line the name means nothing, so the
extractor maps it through the call: `self` becomes the receiver (`detector`), a parameter
the argument passed for it (`self.net`), and the subject is followed from there. Only a call
on the finding's line whose callee evallint finds, and which has that parameter, is used.

`returned_element`: `a, self.net = self.prepare()` is recorded as `self.prepare()[1]` (see
`source_index`); the element is read from the tuple the function's last `return` builds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, Protocol, Union

import libcst as cst

from evallint.verifier.class_facts import bind
from evallint.verifier.resolution import Ctx, Found, Instance, Value
from evallint.verifier.source_index import (
    SourceFile,
    call_argument,
    dotted_or_none,
    positional_params,
    return_statements,
)


class Extractor(Protocol):
    """What this module asks of `extract.Extractor` (which imports this module)."""

    def value(self, expr: cst.BaseExpression, ctx: Ctx) -> Value: ...

    def found(self, value: Value, ctx: Ctx) -> Found: ...

    def own_method(self, name: str, ctx: Ctx) -> Optional[tuple[SourceFile, cst.FunctionDef]]: ...

    def class_chain(
        self, file: SourceFile, cls: cst.ClassDef
    ) -> list[tuple[SourceFile, cst.ClassDef]]: ...

    def project_callable(
        self, dotted: str, ctx: Ctx
    ) -> Optional[tuple[SourceFile, Union[cst.ClassDef, cst.FunctionDef]]]: ...


class _Head(cst.CSTTransformer):
    """Replace the leftmost name of a dotted subject by an expression."""

    def __init__(self, name: str, by: cst.BaseExpression) -> None:
        super().__init__()
        self.name = name
        self.by = by

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self.by if original_node.value == self.name else updated_node

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # only the object side, never `.attr`
        return False

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        return updated_node.with_changes(value=original_node.value.visit(self))


def head_name(expr: cst.BaseExpression) -> Optional[str]:
    while isinstance(expr, (cst.Attribute, cst.Subscript)):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None


def _callee(
    extractor: Extractor, call: cst.Call, ctx: Ctx
) -> Optional[tuple[cst.FunctionDef, Optional[cst.BaseExpression]]]:
    """The function a call on the line runs, and its receiver (None for a plain function)."""
    callee = call.func
    if isinstance(callee, cst.Attribute):
        receiver = callee.value
        if dotted_or_none(receiver) == "self":
            method = extractor.own_method(callee.attr.value, ctx)
            return (method[1], receiver) if method is not None else None
        owner = extractor.value(receiver, ctx.at(ctx.line))
        if not isinstance(owner, Instance):
            return None
        for cls_file, cls in extractor.class_chain(owner.file, owner.cls):
            for func in cls_file.functions.get(callee.attr.value, []):
                if cls_file.class_of(func) is cls:
                    return func, receiver
        return None
    dotted = dotted_or_none(callee)
    if dotted is None:
        return None
    found = extractor.project_callable(dotted, ctx)
    if found is None or not isinstance(found[1], cst.FunctionDef):
        return None
    return found[1], None


def through_call(
    extractor: Extractor, subject: cst.BaseExpression, head: str, ctx: Ctx
) -> Optional[Found]:
    """The subject followed through a call on the finding's line, or None when no call on
    the line gives `head` a meaning."""
    file = ctx.file
    for call, _ in file.calls:
        start, end = file.span(call)
        if not start <= ctx.line <= end:
            continue
        target = _callee(extractor, call, ctx)
        if target is None:
            continue
        func, receiver = target
        params = positional_params(func)
        method = bool(params) and params[0] in ("self", "cls")
        if head == "self":
            if not method or receiver is None:
                continue
            by: Optional[cst.BaseExpression] = receiver
        else:
            by = call_argument(call, head, params, 1 if method else 0)
        if by is None:
            continue
        mapped = subject.visit(_Head(head, by))
        assert isinstance(mapped, cst.BaseExpression)
        value = extractor.value(mapped, ctx.at(ctx.line))
        found = extractor.found(value, ctx)
        where = f"`{file.code(call)[:60]}` at {file.path.name}:{file.line(call)}"
        return replace(found, caller=found.caller or where)
    return None


def returned_element(extractor: Extractor, call: cst.Call, index: int, ctx: Ctx) -> Value:
    """Element `index` of the tuple a project function or method returns."""
    callee = call.func
    target: Optional[tuple[SourceFile, Union[cst.ClassDef, cst.FunctionDef]]] = None
    if isinstance(callee, cst.Attribute) and dotted_or_none(callee.value) == "self":
        target = extractor.own_method(callee.attr.value, ctx)
    elif (dotted := dotted_or_none(callee)) is not None:
        target = extractor.project_callable(dotted, ctx)
    if target is not None and isinstance(target[1], cst.FunctionDef):
        file, func = target[0], target[1]
        returns = [r.value for r in return_statements(func) if r.value is not None]
        if returns and isinstance(returns[-1], cst.Tuple) and index < len(returns[-1].elements):
            bindings = bind(file, func, call, ctx)
            fctx = Ctx(
                file,
                func,
                file.class_of(func),
                bindings,
                file.line(returns[-1]),
                ctx.depth + 1,
                ctx.instance,
            )
            return extractor.value(returns[-1].elements[index].value, fctx)
    return Found(
        unresolved=[
            f"element {index} of what `{ctx.file.code(call)[:50]}` at "
            f"{ctx.file.path.name}:{ctx.file.line(call)} returns is not followed"
        ]
    )
