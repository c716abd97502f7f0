"""What the source says at a finding's location, for the codes whose subject is not a model.

Why separate from `extract_layers`: EVL004 points at a functional call (its subject is the
function), EVL006 at an accumulation inside a loop (its subject is the running total), EVL005
at a `.training = ...` assignment; `--import` needs the class a model variable is built from
and the literal arguments at the construction site. Each reader here parses with LibCST (via
`layers`) and never runs user code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import libcst as cst

from evallint.verifier.layers import (
    UNKNOWN,
    Extraction,
    _arg,
    _Ctx,
    _dotted_or_none,
    _Extractor,
    _File,
    _init_of,
    _Instance,
)

FUNCTIONAL_SIGNATURES: dict[str, tuple[str, ...]] = {
    **{
        f"torch.nn.functional.{n}": ("input", "p", "training", "inplace")
        for n in (
            "dropout",
            "dropout1d",
            "dropout2d",
            "dropout3d",
            "alpha_dropout",
            "feature_alpha_dropout",
        )
    },
    "torch.nn.functional.rrelu": ("input", "lower", "upper", "training", "inplace"),
    "torch.nn.functional.batch_norm": (
        "input",
        "running_mean",
        "running_var",
        "weight",
        "bias",
        "training",
        "momentum",
        "eps",
    ),
    "torch.dropout": ("input", "p", "training"),
}
"""Parameter order of the functional calls EVL004 flags (torch 2.13; `torch.dropout`'s third
parameter is `train`, read as `training`)."""

FUNCTIONAL_TRAINING_DEFAULT = {
    "alpha_dropout": False,
    "feature_alpha_dropout": False,
    "rrelu": False,
    "batch_norm": False,
}
"""`training` defaults; every other flagged function defaults to True (pytorch-facts.md)."""

MAX_LOOP_CANDIDATES = 8
"""Names called in a loop that are tried as its model (each try is one extraction)."""


def _file(extractor: _Extractor, path: Union[str, Path]) -> Optional[_File]:
    return extractor.file(Path(path))


def _calls_at(file: _File, line: int) -> list[cst.Call]:
    return [call for call, _ in file.calls if file.line(call) == line]


# --- EVL004 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionalCall:
    """A flagged `F.dropout(...)`-like call with the arguments the source fixes."""

    function: str
    """Qualified: ``torch.nn.functional.dropout``."""
    params: dict[str, Any]
    """Literal arguments (and `self.x` attributes whose `__init__` default is a literal)."""
    training: Optional[bool]
    """The literal (or default) `training`; None when it is an expression."""
    unread: tuple[str, ...]
    origins: dict[str, str] = field(default_factory=dict)
    """Where a parameter that is not a literal at the call got its value."""
    path: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        return self.function.rsplit(".", 1)[1]


def functional_call_at(
    path: Union[str, Path], line: int, column: int
) -> Union[FunctionalCall, str]:
    """The flagged functional call at (line, 1-based column), or why it cannot be read."""
    extractor = _Extractor()
    file = _file(extractor, path)
    if file is None:
        return f"cannot read or parse {path}"
    candidates = [
        c
        for c in _calls_at(file, line)
        if file.qualify(_dotted_or_none(c.func) or "") in FUNCTIONAL_SIGNATURES
    ]
    exact = [c for c in candidates if file.positions[c].start.column == column - 1]
    chosen = (exact or candidates or [None])[0]
    if chosen is None:
        return f"no torch.nn.functional dropout/rrelu/batch_norm call at {Path(path).name}:{line}"
    function = file.qualify(_dotted_or_none(chosen.func) or "")
    func = file.enclosing_function(line)
    cls = file.class_of(func)
    ctx = _Ctx(file, func, cls, {}, line, 0)
    params: dict[str, Any] = {}
    unread: list[str] = []
    origins: dict[str, str] = {}
    names = FUNCTIONAL_SIGNATURES[function]
    for index, name in enumerate(names[1:], start=1):
        expr = _arg(chosen, index, name)
        if expr is None and name == "training" and function == "torch.dropout":
            expr = _arg(chosen, index, "train")
        if expr is None:
            continue
        value = extractor.literal(expr, ctx)
        if value is UNKNOWN and cls is not None:
            value, origin = _init_default(extractor, file, cls, expr)
            if value is not UNKNOWN:
                origins[name] = origin
        if value is UNKNOWN:
            unread.append(f"{name}={file.code(expr)}")
        else:
            params[name] = value
    short = function.rsplit(".", 1)[1]
    if "training" in params:
        training: Optional[bool] = bool(params.pop("training"))
    elif any(u.startswith("training=") for u in unread):
        training = None
    else:
        training = FUNCTIONAL_TRAINING_DEFAULT.get(short, True)
    return FunctionalCall(function, params, training, tuple(unread), origins, str(path), line)


def _init_default(
    extractor: _Extractor, file: _File, cls: cst.ClassDef, expr: cst.BaseExpression
) -> tuple[Any, str]:
    """`self.p` where `__init__` does `self.p = p` and `p` has a literal default: that default.

    Why a default is acceptable evidence: it is what the module uses unless its construction
    passes another value, and the evidence says which it was.
    """
    dotted = _dotted_or_none(expr)
    init = _init_of(cls)
    if dotted is None or not dotted.startswith("self.") or dotted.count(".") != 1 or init is None:
        return UNKNOWN, ""
    assigned = [a for a in file.assignments if a.target == dotted and a.func is init]
    if not assigned:
        return UNKNOWN, ""
    bindings = extractor.bind(
        file, init, cst.Call(func=cst.Name(cls.name.value)), _Ctx(file, None, None, {}, 0, 0)
    )
    ctx = _Ctx(file, init, cls, bindings, assigned[-1].line, 1)
    value = extractor.literal(assigned[-1].value, ctx)
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
    extractor = _Extractor()
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
        dotted = _dotted_or_none(call.func)
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
    extractor = _Extractor()
    file = _file(extractor, path)
    if file is None:
        return None
    for assign in file.assignments:
        if assign.target.endswith(".training") and assign.line == line:
            ctx = _Ctx(file, assign.func, file.class_of(assign.func), {}, line, 0)
            value = extractor.literal(assign.value, ctx)
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
    extractor = _Extractor()
    file = _file(extractor, path)
    if file is None:
        return f"cannot read or parse {path}"
    func = file.enclosing_function(line)
    ctx = _Ctx(file, func, file.class_of(func), {}, line, 0)
    try:
        expr = cst.parse_expression(subject)
    except cst.ParserSyntaxError:
        return f"subject `{subject}` is not an expression"
    value = extractor.value(expr, ctx)
    if not isinstance(value, _Instance):
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
        literal = UNKNOWN if arg.star else extractor.literal(arg.value, call_ctx)
        if literal is UNKNOWN:
            return (
                f"constructor argument `{call_file.code(arg)}` of {value.cls.name.value} at "
                f"{call_file.path.name}:{call_file.line(call[0])} is not a literal; --import only passes literals"
            )
        if arg.keyword is not None:
            kwargs[arg.keyword.value] = literal
        else:
            args.append(literal)
    init = _init_of(value.cls)
    if init is not None:
        missing = _required_without_default(init, len(args), set(kwargs))
        if missing:
            return f"{value.cls.name.value}.__init__ needs {', '.join(missing)}, which the construction site does not pass"
    return Construction(
        str(value.file.path), value.cls.name.value, tuple(args), kwargs, call_file.line(call[0])
    )


def _construction_call(
    extractor: _Extractor, file: _File, expr: cst.BaseExpression, ctx: _Ctx
) -> Optional[tuple[cst.Call, _File, _Ctx]]:
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
            assign = extractor.last_assignment(file, expr.value, ctx.func, ctx.line)
            if assign is None:
                assign = extractor.last_assignment(
                    file, expr.value, None, ctx.line if ctx.func is None else 10**9
                )
                if assign is None:
                    return None
                ctx = _Ctx(file, None, None, {}, assign.line - 1, ctx.depth + 1)
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
