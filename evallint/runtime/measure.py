"""The damage of an evaluation in train mode, measured on the user's model and batch (torch).

`compare_modes` deep-copies the module, puts back the BatchNorm statistics it had before the
forward, runs the copy in eval mode on the same arguments under `no_grad` with the random
stream forked, and compares with the train-mode output the user's forward really produced.
The user's module, its statistics and its random stream are left as they were.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

Stats = dict[str, tuple[torch.Tensor, torch.Tensor]]


def norm_statistics(layers: Iterable[tuple[str, nn.Module]], *, live: bool = False) -> Stats:
    """(running_mean, running_var) of the norm layers among `layers`: copies, or with `live`
    the buffers themselves (BatchNorm updates them in place, so they can be read later)."""
    found: Stats = {}
    for name, layer in layers:
        if isinstance(layer, (_BatchNorm, _InstanceNorm)) and layer.running_mean is not None:
            assert layer.running_var is not None
            mean, var = layer.running_mean.detach(), layer.running_var.detach()
            found[name] = (mean, var) if live else (mean.clone(), var.clone())
    return found


def statistics_moved(before: Stats, now: Stats) -> Optional[dict[str, Any]]:
    """How far each norm layer's running statistics moved from `before` to `now`, largest first."""
    moved: list[dict[str, Any]] = []
    for name, (mean0, var0) in before.items():
        if name not in now:
            continue
        mean1, var1 = now[name]
        if mean1.shape != mean0.shape:
            continue
        mean_shift = float((mean1 - mean0).abs().mean())
        var_shift = float((var1 - var0).abs().mean())
        scale = float(mean0.abs().mean()) + float(var0.abs().mean())
        moved.append(
            {
                "layer": name,
                "running_mean_shift": mean_shift,
                "running_var_shift": var_shift,
                "relative": (mean_shift + var_shift) / scale if scale > 0 else None,
            }
        )
    if not moved:
        return None
    moved.sort(key=lambda m: -(m["running_mean_shift"] + m["running_var_shift"]))
    return {"layers": len(moved), "largest": moved[0], "all": moved[:20]}


def _first_float_tensor(value: Any, depth: int = 0) -> Optional[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    if depth > 3:
        return None
    items: Iterable[Any] = ()
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    for item in items:
        found = _first_float_tensor(item, depth + 1)
        if found is not None:
            return found
    return None


def _class_dim(shape: tuple[int, ...]) -> Optional[int]:
    """Where the classes are: [B, C] and [B, C, H, W(, D)] -> 1; [B, T, V] -> 2."""
    if len(shape) == 2 or len(shape) in (4, 5):
        return 1
    if len(shape) == 3:
        return 2
    return None


def compare_modes(
    module: nn.Module, before: Stats, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> dict[str, Any]:
    """Train-mode output as it ran vs. eval mode on the same batch; never raises."""
    try:
        trained = _first_float_tensor(output)
        if trained is None:
            return {"measured": False, "reason": "the output holds no floating-point tensor"}
        twin = copy.deepcopy(module)
        layers = dict(twin.named_modules())
        for name, (mean, var) in before.items():
            layer = layers.get(name)
            if layer is not None and getattr(layer, "running_mean", None) is not None:
                layer.running_mean.copy_(mean)
                layer.running_var.copy_(var)
        twin.eval()
        devices = [trained.device.index or 0] if trained.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            evaluated = _first_float_tensor(twin(*args, **kwargs))
        del twin
        if evaluated is None or evaluated.shape != trained.shape:
            return {"measured": False, "reason": "eval-mode output has another shape"}
        a = trained.detach().float().cpu()
        b = evaluated.detach().float().cpu()
        result: dict[str, Any] = {
            "measured": True,
            "output_shape": list(a.shape),
            "mean_abs_delta": float((a - b).abs().mean()),
            "eval_output_mean_abs": float(b.abs().mean()),
        }
        dim = _class_dim(tuple(a.shape))
        if dim is not None and a.shape[dim] > 1:
            flips = (a.argmax(dim) != b.argmax(dim)).reshape(-1)
            result.update(
                argmax_dim=dim, argmax_flips=int(flips.sum()), argmax_total=int(flips.numel())
            )
        return result
    except Exception as exc:  # a module that cannot be copied or rerun: say so, keep going
        return {"measured": False, "reason": f"{type(exc).__name__}: {exc}"[:200]}
