"""Facts about one project class that layer extraction needs, read from its source alone.

`foreign_bases`: base classes that are neither project classes nor plain `nn.Module`/`object`
(a torch layer or container subclassed, or a library class whose layers evallint cannot see);
`super_init_call`: the `super().__init__(...)` call that builds such a torch base;
`reads_training`: where the class's own code reads `self.training` (behaviour evallint does
not simulate); `called_attributes`: the `self.x` the class calls (`self.x(...)`), so an
attribute whose value cannot be followed matters only when it is called. Also parameter
binding and list building shared by the extractor.
"""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from evallint.verifier.conditions import Guard, guards_hold
from evallint.verifier.resolution import Bound, Ctx, Found, last_assignment, literal
from evallint.verifier.source_index import (
    NOT_MODULES,
    Assignment,
    SourceFile,
    call_arg,
    dotted_or_none,
    init_of,
    ordered_dict_values,
)

PLAIN_BASES = frozenset(
    {
        "object",
        "torch.nn.Module",
        "torch.nn.modules.module.Module",
        "abc.ABC",
        "typing.Generic",
        "typing.Protocol",
        "typing_extensions.Protocol",
    }
)
"""Bases that add no layers and no mode-dependent behaviour."""

_READS_TRAINING = re.compile(r"\bself\.training\b(?!\s*=[^=])")
_PASSED_ON = re.compile(r"\b(F|functional)\.\w+\(")
"""`F.dropout(x, p, self.training)`: the mode handed to a functional call, which the extractor
reads as a layer of its own, not custom code."""
_CALLED = re.compile(r"\bself\.(\w+)\s*\(")


def foreign_bases(file: SourceFile, cls: cst.ClassDef, project: set[str]) -> list[str]:
    """Qualified names of `cls`'s bases that are not in `project` (the dotted base names that
    resolved to project classes) and not plain bases."""
    out: list[str] = []
    for base in cls.bases:
        if base.keyword is not None:
            continue
        value = base.value
        if isinstance(value, cst.Subscript):  # Generic[T], Protocol[T]
            value = value.value
        dotted = dotted_or_none(value)
        if dotted is None:
            out.append(file.code(base.value))
            continue
        if dotted in project:
            continue
        qualified = file.qualify(dotted)
        if qualified in PLAIN_BASES or dotted in ("object", "ABC", "Generic", "Protocol"):
            continue
        out.append(qualified)
    return out


def super_init_call(file: SourceFile, cls: cst.ClassDef) -> Optional[cst.Call]:
    """The `super().__init__(...)` (or `super(Cls, self).__init__(...)`) call in `__init__`."""
    init = init_of(cls)
    if init is None:
        return None
    for call, func in file.calls:
        callee = call.func
        if (
            func is init
            and isinstance(callee, cst.Attribute)
            and callee.attr.value == "__init__"
            and isinstance(callee.value, cst.Call)
            and dotted_or_none(callee.value.func) == "super"
        ):
            return call
    return None


def reads_training(file: SourceFile, cls: cst.ClassDef) -> list[str]:
    """Why the class's own code may depend on the mode: its first `self.training` read."""
    code = file.code(cls)
    lines = code.splitlines()
    for found in _READS_TRAINING.finditer(code):
        index = code.count("\n", 0, found.start())
        if _PASSED_ON.search(lines[index]) is None:
            return [
                f"class {cls.name.value} reads `self.training` at {file.path.name}:"
                f"{file.line(cls) + index}: its own mode-dependent code is not simulated"
            ]
    return []


def called_but_unfollowed(assign: Assignment, file: SourceFile, called: set[str]) -> list[str]:
    """`self.x = cfg.encoder` that added no layer: unresolved when the class calls `self.x(...)`
    (a module evallint cannot see), nothing when it never does (a plain value)."""
    value = assign.value
    if assign.target.split(".", 1)[1] not in called:
        return []
    if not isinstance(value, (cst.Attribute, cst.Subscript, cst.Call)) or plain_function(
        value, file
    ):
        return []
    return [
        f"`{assign.target} = {file.code(value)[:40]}` at {file.path.name}:{assign.line} is "
        "called like a module and evallint cannot follow it"
    ]


def called_attributes(file: SourceFile, cls: cst.ClassDef) -> set[str]:
    """`x` for every `self.x(...)` in the class's code."""
    return set(_CALLED.findall(file.code(cls)))


def plain_function(value: cst.BaseExpression, file: SourceFile) -> bool:
    """A torch/numpy/math function, or a literal: called, but not a module."""
    dotted = dotted_or_none(value.func if isinstance(value, cst.Call) else value)
    if dotted is None:
        return False
    qualified = file.qualify(dotted)
    return bool(NOT_MODULES.match(qualified)) and not isinstance(value, cst.Call)


Element = tuple[cst.BaseExpression, str]
"""A module expression a list or container holds, with the `if` test (as written) it was
added under when that test was not decided ("" when it certainly is there)."""


def list_elements(name: str, ctx: Ctx) -> list[Element]:
    """The elements of a list a container is built from (`nn.Sequential(*layers)`):
    `layers = [...]` (or a comprehension), then `layers.append(x)`, `.extend([...])`,
    `.insert(i, x)` and `layers += [...]`. A local list is read in its function; `self.layers`
    in every method of the class. A list whose value evallint cannot read (`layers = a + b`,
    no assignment, `layers += other`) is returned as itself, so following it says what stopped.
    An element added under an `if` that certainly fails is left out.
    """
    out: list[Element] = []
    attribute = name.startswith("self.")
    if attribute and ctx.cls is None:
        return [(cst.parse_expression(name), "")]

    def here(func: Optional[cst.FunctionDef]) -> bool:
        if attribute:
            return func is not None and ctx.file.class_of(func) is ctx.cls
        return func is ctx.func

    def undecided(
        guards: tuple[Guard, ...], func: Optional[cst.FunctionDef], line: int
    ) -> Optional[str]:
        """None when the guards certainly fail, else the undecided test ("" if none)."""
        if not guards:
            return ""
        bindings = ctx.bindings if func is ctx.func else {}
        held, test = guards_hold(guards, Ctx(ctx.file, func, ctx.cls, bindings, line, ctx.depth))
        return None if held is False else test

    if attribute:
        assigns = [a for a in ctx.file.assignments if a.target == name and here(a.func)]
    else:
        last = last_assignment(ctx.file, name, ctx.func, ctx.line)
        assigns = [last] if last is not None else []
    unread = not assigns
    for assign in assigns:
        if isinstance(assign.value, (cst.List, cst.Tuple)):
            out.extend((e.value, "") for e in assign.value.elements)
        elif isinstance(assign.value, (cst.ListComp, cst.GeneratorExp)):
            out.append((assign.value.elt, ""))
        else:
            unread = True
    for grown in ctx.file.extensions:
        if grown.target == name and here(grown.func):
            test = undecided(grown.guards, grown.func, grown.line)
            if test is None:
                continue
            if isinstance(grown.value, (cst.List, cst.Tuple)):
                out.extend((e.value, test) for e in grown.value.elements)
            else:
                unread = True
    for call, func in ctx.file.calls:
        callee = call.func
        if (
            here(func)
            and isinstance(callee, cst.Attribute)
            and callee.attr.value in ("append", "extend", "insert")
            and dotted_or_none(callee.value) == name
            and call.args
        ):
            test = undecided(ctx.file.call_guards.get(id(call), ()), func, ctx.file.line(call))
            if test is None:
                continue
            value = call.args[-1].value
            if callee.attr.value == "extend" and isinstance(value, (cst.List, cst.Tuple)):
                out.extend((e.value, test) for e in value.elements)
            else:
                out.append((value, test))
    if unread:
        out.append((cst.parse_expression(name), ""))
    return out


def bind(
    file: SourceFile, func: Optional[cst.FunctionDef], call: cst.Call, ctx: Ctx
) -> dict[str, Bound]:
    """Bind a callee's parameters to the call's arguments, else to their defaults."""
    if func is None:
        return {}
    params = func.params
    ordered = [p for p in (*params.posonly_params, *params.params)]
    positional = [p.name.value for p in ordered]
    skip = 1 if positional and positional[0] in ("self", "cls") else 0
    bindings: dict[str, Bound] = {}
    callee_ctx = Ctx(file, None, None, {}, file.line(func), ctx.depth + 1)
    for p in (*ordered, *params.kwonly_params):
        bindings[p.name.value] = Bound(p.default, callee_ctx if p.default is not None else None)
    index = 0
    passed: set[str] = set()
    opaque = False
    """A `*args`/`**kwargs` evallint cannot read may carry any parameter not passed by name."""
    for arg in call.args:
        if arg.star == "**":
            items = _dict_items(arg.value, ctx)
            opaque = opaque or items is None
            for key, value in (items or {}).items():
                bindings[key] = Bound(value, ctx)
                passed.add(key)
            continue
        if arg.star:
            opaque = True
            continue
        if arg.keyword is not None:
            bindings[arg.keyword.value] = Bound(arg.value, ctx)
            passed.add(arg.keyword.value)
        elif skip + index < len(positional):
            bindings[positional[skip + index]] = Bound(arg.value, ctx)
            passed.add(positional[skip + index])
            index += 1
    if opaque:
        for name in bindings:
            if name not in passed:
                bindings[name] = Bound(None, None)
    return bindings


def _dict_items(value: cst.BaseExpression, ctx: Ctx) -> Optional[dict[str, cst.BaseExpression]]:
    """The entries of `**value` when it is a dict literal (here or assigned once, without
    conditions, earlier in the same function) with constant string keys, else None."""
    if isinstance(value, cst.Name):
        assign = last_assignment(ctx.file, value.value, ctx.func, ctx.line)
        scope = ctx.file.code(ctx.func) if ctx.func is not None else ""
        changed = re.search(
            rf"\b{re.escape(value.value)}(\s*\[[^\]]*\]\s*=[^=]|\s*\|=|\.(update|setdefault|pop)\()",
            scope,
        )  # filled in later (`kw["p"] = 0.5`, `kw.update(...)`): not only the literal
        if assign is None or assign.guards or changed or ctx.func is None:
            return None
        value = assign.value
    if not isinstance(value, cst.Dict):
        return None
    items: dict[str, cst.BaseExpression] = {}
    for element in value.elements:
        if not (isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString)):
            return None
        items[str(element.key.evaluated_value)] = element.value
    return items


def container_elements(call: cst.Call, ctx: Ctx) -> list[Element]:
    """The module expressions a Sequential/ModuleList/ModuleDict is built from."""
    out: list[Element] = []
    for arg in call.args:
        if arg.keyword is None:
            out.extend(_elements(arg.value, ctx))
    return out


def _elements(value: cst.BaseExpression, ctx: Ctx) -> list[Element]:
    listed = dotted_or_none(value)
    if listed is not None and (listed.count(".") == 0 or listed.startswith("self.")):
        # `nn.Sequential(*layers)`, `nn.ModuleList(layers)`: the list's elements (a name
        # that holds a module is returned as itself)
        return list_elements(listed, ctx)
    if isinstance(value, cst.BinaryOperation) and isinstance(
        value.operator, (cst.Add, cst.Multiply)
    ):  # `layers + [head]`, `[block] * 3`: both sides (a number adds nothing)
        return [*_elements(value.left, ctx), *_elements(value.right, ctx)]
    return [(element, "") for element in _plain_elements(value)]


def _plain_elements(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(value, (cst.List, cst.Tuple)):
        return [e.value for e in value.elements]
    if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
        return [value.elt]
    if isinstance(value, cst.Dict):
        return [e.value for e in value.elements if isinstance(e, cst.DictElement)]
    if isinstance(value, cst.Call) and dotted_or_none(value.func) in (
        "OrderedDict",
        "collections.OrderedDict",
        "dict",
    ):
        return ordered_dict_values(value)
    return [value]


def parameter_attribute(assign: Assignment, value: cst.Call, ctx: Ctx) -> Found:
    """`self.w = nn.Parameter(t)`: a tensor autograd tracks (unless `requires_grad=False`);
    any other value that is no module adds nothing."""
    dotted = dotted_or_none(value.func) or ""
    if ctx.file.qualify(dotted) not in ("torch.nn.Parameter", "torch.nn.parameter.Parameter"):
        return Found()
    flag = call_arg(value, 1, "requires_grad")
    if flag is not None and literal(flag, ctx) is not True:
        return Found()  # frozen, or not known to be tracked
    return Found(parameters=[f"`{assign.target}` ({ctx.file.path.name}:{assign.line})"])
