"""What the extractor passes around while it follows an expression, and literal evaluation.

`Ctx` is where an expression is evaluated (file, function, class, parameter bindings), `Found`
the layers (and the reasons to stop) one expression led to, `Instance` a project-class instance
whose attributes can still be followed. `literal` evaluates constants: literals, bounded
arithmetic, bound parameters and module-level constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

import libcst as cst

from evallint.torch_facts import FUNCTIONAL
from evallint.verifier.layer_spec import UNKNOWN, LayerSpec
from evallint.verifier.source_index import Assignment, SourceFile, arith, call_arg

MAX_DEPTH = 16
"""How many hops (assignment, call site, class, factory) one extraction may take."""


@dataclass
class Bound:
    """A constructor/function parameter bound to the expression passed at the call site."""

    expr: Optional[cst.BaseExpression]
    ctx: Optional[Ctx]


@dataclass
class Ctx:
    """Where an expression is evaluated: file, function, enclosing class, parameter bindings."""

    file: SourceFile
    func: Optional[cst.FunctionDef]
    cls: Optional[cst.ClassDef]
    bindings: dict[str, Bound]
    line: int
    depth: int
    instance: Optional[Instance] = None
    """What `self` is when it is an instance of a subclass of `cls` (a base class's method
    calling a method the subclass defines)."""

    def at(self, line: int) -> Ctx:
        return Ctx(
            self.file, self.func, self.cls, self.bindings, line, self.depth + 1, self.instance
        )


@dataclass
class Found:
    """Partial result of following one expression."""

    layers: list[LayerSpec] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    root: str = ""
    caller: str = ""
    """The call site whose argument this was, when a parameter had several callers."""
    parameters: list[str] = field(default_factory=list)
    """`nn.Parameter` attributes held directly (see `layer_spec.Extraction.parameters`)."""

    def extend(self, other: Found) -> None:
        self.layers.extend(other.layers)
        self.parameters.extend(other.parameters)
        self.unresolved.extend(other.unresolved)
        self.root = self.root or other.root
        self.caller = self.caller or other.caller


class Instance:
    """A resolved project-class instance (so `self.net.head` can be followed)."""

    def __init__(
        self,
        file: SourceFile,
        cls: cst.ClassDef,
        bindings: dict[str, Bound],
        built: Optional[tuple[cst.Call, Ctx]] = None,
    ) -> None:
        self.file = file
        self.cls = cls
        self.bindings = bindings
        self.built = built
        """The construction call and where it is, when known (`ScaledEmbedding(n, 32)`)."""


Value = Union[Found, Instance]


def last_assignment(
    file: SourceFile, target: str, func: Optional[cst.FunctionDef], line: int
) -> Optional[Assignment]:
    candidates = [
        a for a in file.assignments if a.target == target and a.func is func and a.line <= line
    ]
    return candidates[-1] if candidates else None


def keyed_args(call: cst.Call, names: tuple[str, ...]) -> Iterator[tuple[Optional[str], cst.Arg]]:
    """Each argument of `call` with the parameter it binds: its keyword, else the positional
    parameter of `names` (`argN` past them); None for a `*args`/`**kwargs` argument."""
    position = 0
    for arg in call.args:
        if arg.star:
            yield None, arg
            continue
        if arg.keyword is not None:
            yield arg.keyword.value, arg
        else:
            yield (names[position] if position < len(names) else f"arg{position}"), arg
            position += 1


def literal_args(
    call: cst.Call, names: tuple[str, ...], ctx: Ctx
) -> tuple[dict[str, Any], tuple[str, ...]]:
    params: dict[str, Any] = {}
    unread: list[str] = []
    for key, arg in keyed_args(call, names):
        if key is None:
            unread.append(f"{arg.star}{ctx.file.code(arg.value)}")
            continue
        value = literal(arg.value, ctx)
        if value is UNKNOWN:
            unread.append(key)
        else:
            params[key] = value
    return params, tuple(unread)


def literal(expr: cst.BaseExpression, ctx: Ctx) -> Any:
    """A constant: literals, simple arithmetic, bound parameters, module-level constants."""
    if ctx.depth > MAX_DEPTH:
        return UNKNOWN
    if isinstance(expr, (cst.Integer, cst.Float)):
        return expr.evaluated_value
    if isinstance(expr, cst.SimpleString):
        return expr.evaluated_value
    if isinstance(expr, cst.Name):
        if expr.value in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[expr.value]
        if expr.value in ctx.bindings:
            bound = ctx.bindings[expr.value]
            if bound.expr is None or bound.ctx is None:
                return UNKNOWN
            return literal(bound.expr, bound.ctx.at(bound.ctx.line))
        constant = last_assignment(ctx.file, expr.value, None, 10**9)
        if constant is not None and (ctx.func is not None or constant.line <= ctx.line):
            return literal(
                constant.value, Ctx(ctx.file, None, None, {}, constant.line - 1, ctx.depth + 1)
            )
        return UNKNOWN
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        inner = literal(expr.expression, ctx)
        return -inner if isinstance(inner, (int, float)) else UNKNOWN
    if isinstance(expr, cst.BinaryOperation):
        left, right = literal(expr.left, ctx), literal(expr.right, ctx)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return arith(expr.operator, left, right)
        return UNKNOWN
    if isinstance(expr, (cst.Tuple, cst.List)):
        items = [literal(e.value, ctx) for e in expr.elements]
        return UNKNOWN if any(i is UNKNOWN for i in items) else tuple(items)
    return UNKNOWN


def functional_layer(call: cst.Call, ctx: Ctx, dotted: str) -> Found:
    """A functional dropout/rrelu call (`F.dropout(x, p, self.training)`) as the layer it acts
    like: mode-dependent when `training` follows the mode, else a fixed `F.name` layer."""
    file = ctx.file
    qualified = file.qualify(dotted)
    if not qualified.startswith("torch.nn.functional."):
        return Found()
    name = qualified.rsplit(".", 1)[1]
    fact = FUNCTIONAL.get(qualified)
    kind = fact.layer if fact is not None else None
    if fact is None or kind is None:
        return Found()
    params, unread = literal_args(call, fact.parameters, ctx)
    params.pop("input", None)
    unread = tuple(u for u in unread if u not in ("input", "training"))
    training = call_arg(call, fact.position, fact.keyword)
    line = file.line(call)
    if training is None or literal(training, ctx) is not UNKNOWN:
        # a literal or default `training`: the call acts (or not) the same in both modes
        if "training" not in params:
            params["training"] = fact.default
        return Found(
            layers=[LayerSpec(f"F.{name}", params, str(file.path), line, "forward", unread)]
        )
    return Found(layers=[LayerSpec(kind, params, str(file.path), line, "forward", unread)])


_CONSTANTS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString)
_SCALAR_ONLY = (cst.Subtract, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)


def not_a_module(expr: cst.BaseExpression) -> bool:
    """Is `expr` certainly no module? A number, text, `True`/`False`/`None`, a non-empty tuple
    or list of those, a comparison, `not x`, or arithmetic other than `+` (which may join
    lists of modules); `x.shape` and `x.shape[i]` (sizes). An empty list is not: it may be
    filled later."""
    if isinstance(expr, (*_CONSTANTS, cst.FormattedString, cst.Comparison)):
        return True
    if isinstance(expr, cst.Name):
        return expr.value in ("True", "False", "None")
    if isinstance(expr, (cst.List, cst.Tuple)):
        return bool(expr.elements) and all(not_a_module(e.value) for e in expr.elements)
    if isinstance(expr, cst.UnaryOperation):
        return True  # -x, not x, ~x: no module supports them
    if isinstance(expr, cst.BinaryOperation):
        if isinstance(expr.operator, _SCALAR_ONLY):
            return True  # no list or module supports -, /, //, %, **
        sides = (expr.left, expr.right)
        if all(not_a_module(side) for side in sides):
            return True
        # `n * k`, `a + 1`: a number with something that is no list literal (`[blk] * 3`
        # and `layers + [head]` may hold modules; containers follow both sides)
        return any(isinstance(side, _CONSTANTS) for side in sides) and not any(
            isinstance(side, (cst.List, cst.Tuple, cst.ListComp)) for side in sides
        )
    if isinstance(expr, cst.Subscript):
        expr = expr.value
    return isinstance(expr, cst.Attribute) and expr.attr.value == "shape"


def plain_default(func: Optional[cst.FunctionDef], name: str) -> bool:
    """Does parameter `name` of `func` default to a value that is no module (`n_heads=1`,
    `sizes=(3, 5)`, `use_bn=False`)? Such a parameter is a setting, not a submodule: it is
    not followed to the callers as a module. `None` says nothing (`norm=None` is often an
    optional module)."""
    if func is None:
        return False
    params = func.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name and param.default is not None:
            default = param.default
            return not_a_module(default) and not (
                isinstance(default, cst.Name) and default.value == "None"
            )
    return False
