"""EVL006 numerics: what accumulating a loss with its graph keeps alive, per iteration.

Why measure both the tensors and the graph: when the loop calls `backward()` each iteration,
autograd frees the saved activations, yet `total += loss` still chains every iteration's
graph nodes onto `total`; without a backward in the loop the saved activations stay too. The
loop is replayed as written (forward, loss, optional backward and step, accumulate) twice:
accumulating the tensor and accumulating `loss.item()`. Saved tensors are tracked with
`saved_tensors_hooks` and weak references (the pack hook stores a detached alias, so the
tracking itself creates no reference cycle); graph nodes are counted from the accumulated
values. Per-iteration figures are the slope between two loop lengths, so one-off allocations
(the model, the optimizer state) cancel out.
"""

from __future__ import annotations

import gc
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from evallint.verifier.layer_spec import LayerSpec
from evallint.verifier.torch_run import build_module, forward_for_memory, memory_input_shape

SHORT, LONG = 2, 6
"""Loop lengths whose difference gives the per-iteration figures."""

BATCH_SIZE = 16
STAND_IN = "stand-in MLP Linear(256, 256) -> ReLU -> Linear(256, 10)"


@dataclass
class AccumulationRun:
    """Per-iteration growth with the tensor accumulated and with `.item()` accumulated."""

    form: str
    backward: bool
    model: str
    kept_bytes_per_iteration: float
    kept_nodes_per_iteration: float
    detached_bytes_per_iteration: float
    detached_nodes_per_iteration: float
    activation_bytes_per_iteration: float
    """Bytes of tensors saved for backward in one forward (what a loop without backward keeps)."""
    skipped: list[str] = field(default_factory=list)
    assumed: dict[str, Any] = field(default_factory=dict)


def _modules(
    layers: Optional[list[LayerSpec]], skipped: list[str], assumed: dict[str, Any]
) -> list[nn.Module]:
    if not layers:
        return [nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))]
    built: list[nn.Module] = []
    for layer in layers:
        if (
            layer.kind.startswith("F.")
            or not hasattr(nn, layer.kind)
            or layer.kind.endswith("Loss")
        ):
            continue
        layer_assumed: dict[str, Any] = {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                built.append(build_module(layer, layer_assumed))
        except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
            skipped.append(
                f"{layer.kind} at {layer.location}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            )
            continue
        if layer_assumed:
            assumed[f"{layer.kind} at {layer.location}"] = layer_assumed
    return built


def _loss(modules: list[nn.Module], skipped: list[str]) -> torch.Tensor:
    """One forward through the layers (each fed its own seeded input when shapes do not chain)
    reduced to a scalar loss, as a training step would compute it."""
    total: Optional[torch.Tensor] = None
    current: Optional[tuple[int, ...]] = None
    for module in modules:
        try:
            shape = memory_input_shape(module, current, BATCH_SIZE)
            out = forward_for_memory(module, shape, requires_grad=False)
        except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
            note = (
                f"{type(module).__name__}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            )
            if note not in skipped:
                skipped.append(note)
            current = None
            continue
        current = tuple(out.shape) if out.dim() >= 2 else None
        term = out.float().pow(2).mean()
        total = term if total is None else total + term
    if total is None:
        raise RuntimeError("no layer of the model could run a forward")
    return total


def _graph_nodes(values: list[Any]) -> int:
    seen: set[Any] = set()
    stack = [v.grad_fn for v in values if isinstance(v, torch.Tensor) and v.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return len(seen)


def _replay(
    modules: list[nn.Module],
    iterations: int,
    form: str,
    backward: bool,
    detach: bool,
    skipped: list[str],
    seed: int,
) -> tuple[int, int, int]:
    """(saved-tensor bytes still alive, graph nodes reachable from the accumulator, bytes saved
    by the last forward) after `iterations` steps of the loop."""
    torch.manual_seed(seed)
    parameters = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=1e-3) if parameters else None
    parameter_storages = {p.untyped_storage().data_ptr() for p in parameters}
    tracked: list[tuple[weakref.ReferenceType, int]] = []
    last_forward = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        alias = t.detach()
        if t.untyped_storage().data_ptr() not in parameter_storages:
            tracked.append((weakref.ref(alias), t.numel() * t.element_size()))
        return alias

    total: Any = 0.0
    history: list[Any] = []
    for _ in range(iterations):
        before = len(tracked)
        with saved_tensors_hooks(pack, lambda t: t):
            loss = _loss(modules, skipped)
        last_forward = sum(size for _, size in tracked[before:])
        if backward and optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        value = loss.item() if detach else loss
        if form == "append":
            history.append(value)
        else:
            total = total + value
    del loss
    gc.collect()
    alive = sum(size for ref, size in tracked if ref() is not None)
    nodes = _graph_nodes(history if form == "append" else [total])
    return alive, nodes, last_forward


def accumulation_memory(
    layers: Optional[list[LayerSpec]], form: str, backward: bool, model: str, seed: int = 0
) -> AccumulationRun:
    """Replay the flagged loop with the resolved layers (or a stand-in MLP when `layers` is None)."""
    skipped: list[str] = []
    assumed: dict[str, Any] = {"batch_size": BATCH_SIZE, "iterations": [SHORT, LONG]}
    modules = _modules(layers, skipped, assumed)
    for module in modules:
        module.train()
    figures = {}
    for detach in (False, True):
        short = _replay(modules, SHORT, form, backward, detach, skipped, seed)
        long = _replay(modules, LONG, form, backward, detach, skipped, seed)
        figures[detach] = (
            (long[0] - short[0]) / (LONG - SHORT),
            (long[1] - short[1]) / (LONG - SHORT),
            long[2],
        )
    return AccumulationRun(
        form,
        backward,
        model if layers else STAND_IN,
        figures[False][0],
        figures[False][1],
        figures[True][0],
        figures[True][1],
        figures[False][2],
        skipped,
        assumed,
    )
