"""EVL004 numerics: run a flagged functional call inside a module, in the mode it ignores.

Why inside a module: the finding says the call does not follow `module.training`. A tiny host
module whose forward makes the call exactly as written (same function, same literal
arguments, `training` as written or defaulted) is put in eval mode (for dropout that keeps
dropping) or train mode (for alpha_dropout/rrelu that never act), and the output is compared
with what the mode promises. Masks and slopes are read back from torch's output and the NumPy
reference must reproduce both the as-written and the intended output, or the run is an error.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from evallint.torch_facts import DEFAULTS
from evallint.verifier import reference
from evallint.verifier.layer_spec import FunctionalCall, LayerSpec
from evallint.verifier.torch_run import LayerRun, compare, run_norm

_CHANNELWISE = ("dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout")
_SHAPES = {
    "dropout1d": (32, 16, 32),
    "dropout2d": (32, 16, 8, 8),
    "dropout3d": (32, 16, 4, 4, 4),
    "feature_alpha_dropout": (32, 16, 8, 8),
}


class _Host(nn.Module):
    """A module whose forward makes the flagged call as written (the mode is never passed)."""

    def __init__(self, call: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.call = call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.call(x)


def _function(name: str, qualified: str) -> Callable[..., torch.Tensor]:
    return torch.dropout if qualified == "torch.dropout" else getattr(F, name)


def run_functional(call: FunctionalCall, seed: int = 0) -> LayerRun:
    """Measure the flagged call; `figures['acts_in_wrong_mode']`/`['inactive_in_training']` say
    which way it is wrong, `assumed` lists torch defaults standing in for unread arguments."""
    name = call.name
    assumed: dict[str, Any] = {}
    layer = LayerSpec(f"F.{name}", dict(call.params), call.path, call.line, "forward", call.unread)
    if name == "batch_norm":
        momentum = call.params.get("momentum", 0.1)
        eps = call.params.get("eps", 1e-5)
        run = run_norm(
            LayerSpec(
                "BatchNorm1d",
                {"momentum": momentum, "eps": eps, "affine": False},
                call.path,
                call.line,
                "forward",
            ),
            seed,
        )
        run.figures["hard_coded_training"] = True
        run.assumed.update(
            {k: v for k, v in (("momentum", momentum), ("eps", eps)) if k not in call.params}
        )
        return LayerRun(
            layer,
            run.figures,
            run.checks,
            run.assumed,
            run.train_output,
            run.eval_output,
            run.trace,
        )
    kind = "RReLU" if name == "rrelu" else "Dropout"
    values: dict[str, Any] = {}
    for key in ("lower", "upper") if name == "rrelu" else ("p",):
        values[key] = float(call.params[key]) if key in call.params else float(DEFAULTS[kind][key])
        if key not in call.params:
            assumed[key] = values[key]
    function = _function(name, call.function)
    shape = _SHAPES.get(name, (64, 256))
    x = np.random.default_rng(seed).normal(size=shape)
    tx = torch.from_numpy(x)
    written = bool(call.training)
    # the host's mode is the one the call ignores: eval when it acts anyway, train when it never acts
    host = _Host(lambda t: function(t, *values.values(), written)).double()
    host.train(not written)
    torch.manual_seed(seed)
    with torch.no_grad():
        as_written = host(tx).numpy()
        intended = function(tx, *values.values(), not written).numpy()
    acting, idle = (as_written, intended) if written else (intended, as_written)
    if name == "rrelu":
        checks, figures = _rrelu_checks(x, acting, idle, values)
    else:
        checks, figures = _dropout_checks(name, x, acting, idle, values["p"])
    figures["training_as_written"] = written
    figures["host_mode"] = "train" if host.training else "eval"
    delta = np.abs(as_written - intended)
    figures["written_vs_intended_mean_abs"] = float(delta.mean())
    figures["written_vs_intended_max_abs"] = float(delta.max())
    return LayerRun(
        layer, figures, checks, assumed, train_output=acting.ravel(), eval_output=idle.ravel()
    )


def _dropout_checks(
    name: str, x: np.ndarray, acting: np.ndarray, idle: np.ndarray, p: float
) -> tuple[list, dict[str, Any]]:
    alpha = "alpha" in name
    if alpha:
        a = (
            1.0 / np.sqrt((reference.ALPHA_DROPOUT_ALPHA**2 * p + 1.0) * (1.0 - p))
            if p < 1
            else 0.0
        )
        keep = np.abs(acting - a * reference.ALPHA_DROPOUT_ALPHA * (p - 1.0)) > 1e-9
    else:
        keep = acting != 0
    if name in _CHANNELWISE:
        keep = (
            keep.reshape(x.shape[0], x.shape[1], -1)
            .any(axis=2)
            .reshape(x.shape[:2] + (1,) * (x.ndim - 2))
        )
    ref = reference.alpha_dropout if alpha else reference.dropout
    checks = [
        compare(f"F.{name} acting output", ref(x, p, keep, True), acting),
        compare(f"F.{name} inactive output", ref(x, p, keep, False), idle),
    ]
    figures = {
        "p": p,
        "dropped_fraction": float(1.0 - keep.mean()),
        "unit": "channels" if name in _CHANNELWISE else "activations",
    }
    return checks, figures


def _rrelu_checks(
    x: np.ndarray, acting: np.ndarray, idle: np.ndarray, values: dict[str, float]
) -> tuple[list, dict[str, Any]]:
    negative = x < 0
    slopes = np.where(negative, acting / np.where(negative, x, 1.0), 1.0)
    checks = [
        compare(
            "F.rrelu acting output",
            reference.rrelu(x, values["lower"], values["upper"], True, slopes),
            acting,
        ),
        compare(
            "F.rrelu inactive output",
            reference.rrelu(x, values["lower"], values["upper"], False),
            idle,
        ),
    ]
    figures = {
        "lower": values["lower"],
        "upper": values["upper"],
        "eval_slope": float(np.median(idle[negative] / x[negative])),
        "train_slope_min": float(slopes[negative].min()),
        "train_slope_max": float(slopes[negative].max()),
    }
    return checks, figures
