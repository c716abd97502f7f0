"""Calls inside an nn.Module method whose train/eval behaviour cannot follow the module's
mode: functional forms given a `training` flag (`F.dropout(x, p)`), and mode-dependent layers
built and called on the spot (`nn.Dropout(p)(x)`), a new module in training mode on every
call that `model.eval()` never reaches."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.facts import FunctionalModeCall, Place
from evallint.analysis.statement_shapes import (
    class_follows_mode,
    constant_bool,
    functional_training_argument,
    under_training_test,
)
from evallint.analysis.symbols import ImportTable
from evallint.analysis.vocabulary import FUNCTIONAL_MODE
from evallint.source.literals import literal_value

_INLINE_LAYERS = frozenset(
    f"torch.nn.{name}"
    for name in (
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "AlphaDropout",
        "FeatureAlphaDropout",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
    )
)
"""Layers whose forward depends on the mode: built inside a method and called at once, they
are always in training mode."""


def _rate(layer: cst.Call) -> Optional[cst.BaseExpression]:
    for position, argument in enumerate(layer.args):
        if (argument.keyword is None and position == 0) or (
            argument.keyword is not None and argument.keyword.value == "p"
        ):
            return argument.value
    return None


def _never_acts(layer: cst.Call) -> bool:
    """`nn.Dropout(0)` / `nn.Dropout(p=0.0)`: a rate of zero drops nothing in any mode."""
    value = _rate(layer)
    return type(value) in (cst.Integer, cst.Float) and float(value.value) == 0.0  # type: ignore[union-attr]


def _rate_from_caller(layer: cst.Call, method: cst.FunctionDef) -> bool:
    """`def forward(self, x, d): ... nn.Dropout(d)(x)`: every call chooses the rate, and an
    evaluation passes 0 (`net(x, 0.0)`), so the mode is the caller's argument."""
    value = _rate(layer)
    if type(value) is not cst.Name:
        return False
    params = method.params
    return any(
        p.name.value == value.value
        for p in (*params.posonly_params, *params.params, *params.kwonly_params)
    )


def _functional_rate_from_caller(call: cst.Call, function: str, method: cst.FunctionDef) -> bool:
    """`def forward(self, x, word_dropout): ... F.dropout(x, word_dropout)` with the rate a
    parameter that has no default or a default of 0: every call chooses whether anything
    drops (an evaluation or a sampler passes or keeps 0), so the mode is the caller's
    argument. A parameter defaulting to a positive rate drops in evaluation unless told not
    to, and stays reported."""
    if "dropout" not in function:
        return False
    value: Optional[cst.BaseExpression] = None
    for position, argument in enumerate(call.args):
        if (argument.keyword is None and position == 1) or (
            argument.keyword is not None and argument.keyword.value == "p"
        ):
            value = argument.value
    if type(value) is not cst.Name:
        return False
    params = method.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == value.value:
            default = param.default
            if default is None:
                return True
            return type(default) in (cst.Integer, cst.Float) and (literal_value(default) == 0)
    return False


def inline_layer(call: cst.Call, imports: ImportTable) -> Optional[str]:
    """`nn.Dropout(p)(x)`: the qualified mode-dependent layer class built and called at once."""
    built = call.func
    if type(built) is not cst.Call:
        return None
    qualified = imports.qualify(built.func) or ""
    if qualified not in _INLINE_LAYERS or _never_acts(built):
        return None
    return qualified


def mode_call(
    call: cst.Call,
    owner: cst.ClassDef,
    method: cst.FunctionDef,
    imports: ImportTable,
    place: Place,
) -> Optional[FunctionalModeCall]:
    """What a call inside a method of an nn.Module class does with the module's mode, when it
    is a functional form with a `training` flag or a mode-dependent layer built on the spot."""
    layer = inline_layer(call, imports)
    if layer is not None:
        if under_training_test(method, call) or _rate_from_caller(
            cast(cst.Call, call.func), method
        ):
            return None  # `if self.training: x = nn.Dropout(p)(x)`; `nn.Dropout(d)(x)`
        return FunctionalModeCall(place, layer.rsplit(".", 1)[-1], True, built_inline=True)
    qualified = imports.qualify(call.func) or ""
    spec = FUNCTIONAL_MODE.get(qualified)
    if spec is None:
        return None
    argument = functional_training_argument(call, imports)
    value = constant_bool(argument.value) if argument is not None else spec[2]
    if value is True and under_training_test(method, call):
        return None  # `if self.training: out = F.dropout(out, p)` drops only while training
    if value is True and argument is None and _functional_rate_from_caller(call, qualified, method):
        return None  # `F.dropout(x, drop_prob)`: each call passes its rate (0 to evaluate)
    # a literal True for a flag that has a default states the intent (see facts.py)
    meant = (
        argument is not None
        and value is True
        and spec[2] is not None
        and not class_follows_mode(owner, imports)
    )
    return FunctionalModeCall(place, qualified.split(".")[-1], value, argument, meant)
