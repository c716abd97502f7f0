"""What the source says at a finding's location, for the codes whose subject is not a model.

Why separate from `extract_layers`: EVL004 points at a functional call (its subject is the
function), EVL006 at an accumulation inside a loop (its subject is the running total), EVL005
at a `.training = ...` assignment; `--import` needs the class a model variable is built from
and the literal arguments at the construction site. Each reader here parses with LibCST (via
`layers`) and never runs user code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import libcst as cst

from evallint.torch_facts import FUNCTIONAL
from evallint.verifier.class_facts import bind
from evallint.verifier.extract import Extractor
from evallint.verifier.layer_spec import UNKNOWN, Extraction, FunctionalCall
from evallint.verifier.resolution import Ctx, Instance, last_assignment, literal
from evallint.verifier.source_index import SourceFile, call_arg, dotted_or_none, init_of

MAX_LOOP_CANDIDATES = 8
"""Names called in a loop that are tried as its model (each try is one extraction)."""


def _file(extractor: Extractor, path: Union[str, Path]) -> Optional[SourceFile]:
    return extractor.file(Path(path))


def _calls_at(file: SourceFile, line: int) -> list[cst.Call]:
    return [call for call, _ in file.calls if file.line(call) == line]


# --- EVL004 ------------------------------------------------------------------------------------


def functional_call_at(
    path: Union[str, Path], line: int, column: int
) -> Union[FunctionalCall, str]:
    """The flagged functional call at (line, 1-based column), or why it cannot be read."""
    extractor = Extractor()
    file = _file(extractor, path)
    if file is None:
        return f"cannot read or parse {path}"
    candidates = [
        c for c in _calls_at(file, line) if file.qualify(dotted_or_none(c.func) or "") in FUNCTIONAL
    ]
    exact = [c for c in candidates if file.positions[c].start.column == column - 1]
    if not (exact or candidates):
        return f"no torch.nn.functional dropout/rrelu/batch_norm call at {Path(path).name}:{line}"
    chosen = (exact or candidates)[0]
    function = file.qualify(dotted_or_none(chosen.func) or "")
    func = file.enclosing_function(line)
    cls = file.class_of(func)
    ctx = Ctx(file, func, cls, {}, line, 0)
    params: dict[str, Any] = {}
    unread: list[str] = []
    origins: dict[str, str] = {}
    fact = FUNCTIONAL[function]
    for index, keyword in enumerate(fact.parameters[1:], start=1):
        expr = call_arg(chosen, index, keyword)
        name = "training" if keyword == fact.keyword else keyword
        if expr is None:
            continue
        value = literal(expr, ctx)
        if value is UNKNOWN and cls is not None:
            value, origin = _init_default(extractor, file, cls, expr)
            if value is not UNKNOWN:
                origins[name] = origin
        if value is UNKNOWN:
            unread.append(f"{name}={file.code(expr)}")
        else:
            params[name] = value
    if "training" in params:
        training: Optional[bool] = bool(params.pop("training"))
    elif any(u.startswith("training=") for u in unread):
        training = None
    else:
        training = fact.default
    return FunctionalCall(function, params, training, tuple(unread), origins, str(path), line)


def _init_default(
    extractor: Extractor, file: SourceFile, cls: cst.ClassDef, expr: cst.BaseExpression
) -> tuple[Any, str]:
    """`self.p` where `__init__` does `self.p = p` and `p` has a literal default: that default.

    Why a default is acceptable evidence: it is what the module uses unless its construction
    passes another value, and the evidence says which it was.
    """
    dotted = dotted_or_none(expr)
    init = init_of(cls)
    if dotted is None or not dotted.startswith("self.") or dotted.count(".") != 1 or init is None:
        return UNKNOWN, ""
    assigned = [a for a in file.assignments if a.target == dotted and a.func is init]
    if not assigned:
        return UNKNOWN, ""
    bindings = bind(
        file, init, cst.Call(func=cst.Name(cls.name.value)), Ctx(file, None, None, {}, 0, 0)
    )
    ctx = Ctx(file, init, cls, bindings, assigned[-1].line, 1)
    value = literal(assigned[-1].value, ctx)
    origin = (
        f"`{dotted}` is set in {cls.name.value}.__init__ ({file.path.name}:{assigned[-1].line}); "
        "its default there is used"
    )
    return value, origin


# --- EVL006 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccumulationSite:
    """The loop around a flagged accumulation: its model (if one resolves) and its backward."""

    form: str
    """``sum`` (`total += value`) or ``append`` (`values.append(value)`)."""
    backward_in_loop: bool
    model: str = ""
    extraction: Optional[Extraction] = None
    tried: tuple[str, ...] = ()
    """Why the names called in the loop did not resolve to a model with parameters."""


def accumulation_site(path: Union[str, Path], line: int) -> Union[AccumulationSite, str]:
    """Read the accumulation at `line` and the innermost loop around it."""
    extractor = Extractor()
    file = _file(extractor, path)
    if file is None:
        return f"cannot read or parse {path}"
    loops = [
        node
        for node in _loops(file.wrapper.module)
        if file.span(node)[0] <= line <= file.span(node)[1]
    ]
    if not loops:
        return f"no loop around {Path(path).name}:{line}"
    loop = max(loops, key=lambda node: file.span(node)[0])
    start, end = file.span(loop)
    form = (
        "append"
        if any(
            isinstance(c.func, cst.Attribute) and c.func.attr.value == "append"
            for c in _calls_at(file, line)
        )
        else "sum"
    )
    in_loop = [(call, func) for call, func in file.calls if start <= file.line(call) <= end]
    backward = any(
        isinstance(c.func, cst.Attribute) and c.func.attr.value == "backward" for c, _ in in_loop
    )
    tried: list[str] = []
    seen: set[str] = set()
    for call, _ in in_loop:
        dotted = dotted_or_none(call.func)
        if (
            dotted is None
            or dotted in seen
            or (isinstance(call.func, cst.Attribute) and not dotted.startswith("self."))
        ):
            continue
        seen.add(dotted)
        if len(seen) > MAX_LOOP_CANDIDATES:
            break
        found = extractor.subject(file, dotted, file.line(call))
        if any(layer.has_parameters and layer.origin == "source" for layer in found.layers):
            extraction = Extraction(
                tuple(found.layers), tuple(dict.fromkeys(found.unresolved)), found.root
            )
            return AccumulationSite(form, backward, dotted, extraction, tuple(tried))
        tried.append(
            f"`{dotted}`: "
            + (
                found.unresolved[0]
                if found.unresolved
                else "no layer with parameters in the source"
            )
        )
    return AccumulationSite(form, backward, tried=tuple(tried))


def _loops(module: cst.Module) -> list[Union[cst.For, cst.While]]:
    found: list[Union[cst.For, cst.While]] = []

    class _Loops(cst.CSTVisitor):
        def visit_For(self, node: cst.For) -> None:
            found.append(node)

        def visit_While(self, node: cst.While) -> None:
            found.append(node)

    module.visit(_Loops())
    return found


# --- EVL005 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingAssignment:
    """`receiver.training = value` at the flagged line."""

    receiver: str
    value: Any
    """True/False, or `UNKNOWN` when the assigned value is not a literal."""


def training_assignment_at(path: Union[str, Path], line: int) -> Optional[TrainingAssignment]:
    """The `.training = ...` assignment at `line`, or None (another EVL005 kind)."""
    extractor = Extractor()
    file = _file(extractor, path)
    if file is None:
        return None
    for assign in file.assignments:
        if assign.target.endswith(".training") and assign.line == line:
            ctx = Ctx(file, assign.func, file.class_of(assign.func), {}, line, 0)
            value = literal(assign.value, ctx)
            return TrainingAssignment(
                assign.target[: -len(".training")], value if isinstance(value, bool) else UNKNOWN
            )
    return None


# --- --import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Construction:
    """A project class a model variable is built from, with the literal arguments it receives."""

    path: str
    class_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    line: int


def construction_of(path: Union[str, Path], subject: str, line: int) -> Union[Construction, str]:
    """Follow `subject` to a project class instantiation; refuse (with the reason) unless every
    argument at the construction site is a literal, so instantiating it runs no user data."""
    extractor = Extractor()
    file = _file(extractor, path)
    if file is None:
        return f"cannot read or parse {path}"
    func = file.enclosing_function(line)
    ctx = Ctx(file, func, file.class_of(func), {}, line, 0)
    try:
        expr = cst.parse_expression(subject)
    except cst.ParserSyntaxError:
        return f"subject `{subject}` is not an expression"
    value = extractor.value(expr, ctx)
    if not isinstance(value, Instance):
        reasons = value.unresolved or [
            f"`{subject}` is not built from a class defined in the project"
        ]
        return reasons[0]
    call = _construction_call(extractor, file, expr, ctx)
    if call is None:
        return (
            f"the construction of `{subject}` is not a direct call of class {value.cls.name.value}"
        )
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    call_file, call_ctx = call[1], call[2]
    for arg in call[0].args:
        given = UNKNOWN if arg.star else literal(arg.value, call_ctx)
        if given is UNKNOWN:
            return (
                f"constructor argument `{call_file.code(arg)}` of {value.cls.name.value} at "
                f"{call_file.path.name}:{call_file.line(call[0])} is not a literal; --import only passes literals"
            )
        if arg.keyword is not None:
            kwargs[arg.keyword.value] = given
        else:
            args.append(given)
    init = init_of(value.cls)
    if init is not None:
        missing = _required_without_default(init, len(args), set(kwargs))
        if missing:
            return f"{value.cls.name.value}.__init__ needs {', '.join(missing)}, which the construction site does not pass"
    return Construction(
        str(value.file.path), value.cls.name.value, tuple(args), kwargs, call_file.line(call[0])
    )


def _construction_call(
    extractor: Extractor, file: SourceFile, expr: cst.BaseExpression, ctx: Ctx
) -> Optional[tuple[cst.Call, SourceFile, Ctx]]:
    """The `Class(...)` call `expr` resolves to: through names and `.to()`-like method calls."""
    for _ in range(16):
        if isinstance(expr, cst.Call):
            callee = expr.func
            if isinstance(callee, cst.Attribute) and callee.attr.value in (
                "to",
                "cuda",
                "cpu",
                "float",
                "double",
                "train",
                "eval",
            ):
                expr = callee.value
                continue
            return expr, file, ctx
        if isinstance(expr, cst.Name):
            assign = last_assignment(file, expr.value, ctx.func, ctx.line)
            if assign is None:
                assign = last_assignment(
                    file, expr.value, None, ctx.line if ctx.func is None else 10**9
                )
                if assign is None:
                    return None
                ctx = Ctx(file, None, None, {}, assign.line - 1, ctx.depth + 1)
            else:
                ctx = ctx.at(assign.line - 1)
            expr = assign.value
            continue
        return None
    return None


def _required_without_default(
    init: cst.FunctionDef, positional: int, keywords: set[str]
) -> list[str]:
    params = [*init.params.posonly_params, *init.params.params][1:]
    missing = [
        p.name.value
        for i, p in enumerate(params)
        if p.default is None and i >= positional and p.name.value not in keywords
    ]
    missing += [
        p.name.value
        for p in init.params.kwonly_params
        if p.default is None and p.name.value not in keywords
    ]
    return missing
