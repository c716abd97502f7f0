"""Run the layers a finding is about in real torch, and cross-check them against `reference`.

Why both: torch shows what the user's code really does; the NumPy reference shows that the
verifier understood it. Each layer is built from the parameters read off the source, fed
seeded inputs, and compared with the reference element by element (Dropout masks and RReLU
slopes are read back from torch's output so both see the same randomness). A disagreement
beyond `TOLERANCE` is returned as a failed `Check`, never hidden. The cross-checks run in
float64 so they test semantics rather than float32 rounding; the autograd memory figure runs
in float32 because that is what a user's model keeps alive.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from evallint.torch_facts import (
    BATCHNORM_KINDS,
    DROPOUT_KINDS,
    INSTANCENORM_KINDS,
    POSITIONAL,
    RNN_KINDS,
    TRANSFORMER_KINDS,
)
from evallint.verifier import reference
from evallint.verifier.layer_spec import LayerSpec

TOLERANCE = 1e-5
"""Largest accepted |torch - reference| / max(1, |reference|)."""

BATCHES = 10
"""Length of the simulated validation loop."""

BATCH_SIZE = 16

ASSUMED_SIZES: dict[str, Any] = {
    "num_features": 64,
    "in_features": 256,
    "out_features": 256,
    "in_channels": 16,
    "out_channels": 16,
    "kernel_size": 3,
    "normalized_shape": 256,
    "input_size": 64,
    "hidden_size": 64,
    "embed_dim": 64,
    "num_heads": 4,
    "d_model": 64,
    "nhead": 4,
    "num_embeddings": 1000,
    "embedding_dim": 64,
    "num_groups": 4,
    "num_channels": 16,
}
"""Sizes used when the source passes a required size that is not a literal (reported as assumed)."""

_SPATIAL = {1: (32,), 2: (8, 8), 3: (4, 4, 4)}
"""Spatial extent of the seeded inputs, by layer dimensionality."""


@dataclass(frozen=True)
class Check:
    """One reference-vs-torch comparison."""

    name: str
    max_error: float

    @property
    def ok(self) -> bool:
        return bool(self.max_error <= TOLERANCE)


@dataclass
class LayerRun:
    """What running one mode-dependent layer in both modes showed."""

    layer: LayerSpec
    figures: dict[str, Any]
    checks: list[Check]
    assumed: dict[str, Any] = field(default_factory=dict)
    train_output: Optional[np.ndarray] = None
    eval_output: Optional[np.ndarray] = None
    trace: dict[str, list[float]] = field(default_factory=dict)
    """Per-batch running-statistic drift (for the plot); empty for stateless layers."""

    @property
    def agrees(self) -> bool:
        return all(check.ok for check in self.checks)


@dataclass
class MemoryRun:
    """Bytes autograd keeps alive for one batch through the found layers, with and without grad."""

    batch_size: int
    grad_bytes: int
    no_grad_bytes: int
    per_layer: list[tuple[LayerSpec, int]]
    skipped: list[str]
    assumed: dict[str, Any]


def compare(name: str, ref: np.ndarray, got: np.ndarray) -> Check:
    """Max relative error with an absolute floor of 1, so values near 0 don't blow it up."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if ref.shape != got.shape:
        return Check(f"{name} (shape {got.shape} != {ref.shape})", float("inf"))
    if ref.size == 0:
        return Check(name, 0.0)
    return Check(name, float(np.max(np.abs(got - ref) / np.maximum(1.0, np.abs(ref)))))


def seeded_activations(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Activation-like data: each channel (axis 1) has its own mean ~ N(0,1) and std ~ U(0.5, 2)."""
    rng = np.random.default_rng(seed)
    channels = shape[1]
    stat_shape = (1, channels) + (1,) * (len(shape) - 2)
    mean = rng.normal(0.0, 1.0, size=channels).reshape(stat_shape)
    std = rng.uniform(0.5, 2.0, size=channels).reshape(stat_shape)
    return mean + std * np.random.default_rng(seed + 1).normal(size=shape)


def _batches(shape: tuple[int, ...], seed: int, count: int) -> list[np.ndarray]:
    """`count` batches drawn from one fixed per-channel distribution (one validation set)."""
    big = seeded_activations((shape[0] * count,) + shape[1:], seed)
    return [big[i * shape[0] : (i + 1) * shape[0]] for i in range(count)]


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _required(layer: LayerSpec, names: tuple[str, ...], assumed: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = layer.params.get(name)
        if value is None and name in ASSUMED_SIZES:
            value = ASSUMED_SIZES[name]
            assumed[name] = value
        if value is not None:
            out[name] = value
    return out


def build_module(layer: LayerSpec, assumed: dict[str, Any]) -> nn.Module:
    """The torch layer the source constructs, with literal args and assumed sizes for the rest."""
    kind = {"SyncBatchNorm": "BatchNorm2d"}.get(layer.kind, layer.kind)
    if kind != layer.kind:
        assumed["simulated_as"] = kind
    cls = getattr(nn, kind)
    names = POSITIONAL.get(kind, ())
    kwargs = {k: v for k, v in layer.params.items() if not k.startswith("arg") and k != "inplace"}
    for name in names:
        if name not in kwargs and name in ASSUMED_SIZES and not kind.startswith("Lazy"):
            kwargs[name] = ASSUMED_SIZES[name]
            assumed[name] = ASSUMED_SIZES[name]
    module: nn.Module = cls(**kwargs)
    return module


def _dims(kind: str) -> int:
    for d in (1, 2, 3):
        if kind.endswith(f"{d}d"):
            return d
    return 2


# --- the mode-dependent layers ----------------------------------------------------------------


def run_dropout(layer: LayerSpec, seed: int = 0) -> LayerRun:
    """Dropout family: zero fraction and survivor scale in train mode, identity in eval."""
    kind = layer.kind
    p = float(layer.param("p"))
    channelwise = kind in ("Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout")
    alpha = kind in ("AlphaDropout", "FeatureAlphaDropout")
    shape = (32, 16) + _SPATIAL[_dims(kind)] if channelwise else (64, 256)
    x = np.random.default_rng(seed).normal(size=shape)
    module = getattr(nn, kind)(p=p).double()
    tx = torch.from_numpy(x)
    torch.manual_seed(seed)
    with torch.no_grad():
        train_out = _numpy(module.train()(tx))
        eval_out = _numpy(module.eval()(tx))
    if alpha:
        a = 1.0 / np.sqrt((reference.ALPHA_DROPOUT_ALPHA**2 * p + 1.0) * (1.0 - p))
        dropped = a * reference.ALPHA_DROPOUT_ALPHA * (p - 1.0)
        keep = np.abs(train_out - dropped) > 1e-9
    else:
        keep = train_out != 0
    if channelwise:
        keep = (
            keep.reshape(shape[0], shape[1], -1)
            .any(axis=2)
            .reshape(shape[:2] + (1,) * (len(shape) - 2))
        )
    ref_train = (reference.alpha_dropout if alpha else reference.dropout)(x, p, keep, True)
    ref_eval = (reference.alpha_dropout if alpha else reference.dropout)(x, p, keep, False)
    checks = [
        compare(f"{kind} train output", ref_train, train_out),
        compare(f"{kind} eval output", ref_eval, eval_out),
    ]
    full_keep = np.broadcast_to(keep, shape)
    delta = np.abs(train_out - eval_out)
    figures: dict[str, Any] = {
        "p": p,
        "dropped_fraction": float(1.0 - keep.mean()),
        "unit": "channels" if channelwise else "activations",
        "eval_dropped_fraction": float(np.mean(eval_out != x)),
        "train_vs_eval_mean_abs": float(delta.mean()),
        "train_vs_eval_max_abs": float(delta.max()),
    }
    if not alpha and full_keep.any():
        figures["survivor_scale"] = float(np.median(train_out[full_keep] / x[full_keep]))
    return LayerRun(
        layer, figures, checks, train_output=train_out.ravel(), eval_output=eval_out.ravel()
    )


def run_rrelu(layer: LayerSpec, seed: int = 0) -> LayerRun:
    """RReLU: random negative slopes in training, the fixed mean slope in eval."""
    lower, upper = float(layer.param("lower")), float(layer.param("upper"))
    x = np.random.default_rng(seed).normal(size=(64, 256))
    module = nn.RReLU(lower, upper).double()
    tx = torch.from_numpy(x)
    torch.manual_seed(seed)
    with torch.no_grad():
        train_out = _numpy(module.train()(tx))
        eval_out = _numpy(module.eval()(tx))
    negative = x < 0
    slopes = np.where(negative, train_out / np.where(negative, x, 1.0), 1.0)
    out_of_range = np.maximum(lower - slopes[negative], slopes[negative] - upper)
    checks = [
        Check(
            "RReLU train slopes within [lower, upper]",
            float(max(0.0, out_of_range.max(initial=0.0))),
        ),
        compare("RReLU train output", reference.rrelu(x, lower, upper, True, slopes), train_out),
        compare("RReLU eval output", reference.rrelu(x, lower, upper, False), eval_out),
    ]
    delta = np.abs(train_out - eval_out)
    figures = {
        "eval_slope": float(np.median(eval_out[negative] / x[negative])),
        "train_slope_min": float(slopes[negative].min()),
        "train_slope_max": float(slopes[negative].max()),
        "train_vs_eval_mean_abs": float(delta.mean()),
        "train_vs_eval_max_abs": float(delta.max()),
    }
    return LayerRun(
        layer, figures, checks, train_output=train_out.ravel(), eval_output=eval_out.ravel()
    )


def run_norm(layer: LayerSpec, seed: int = 0, batches: int = BATCHES) -> LayerRun:
    """BatchNorm / InstanceNorm with running stats through a validation loop run in train mode.

    Reports how far the running statistics move, how train-mode output (batch statistics)
    differs from eval-mode output (running statistics), and how the eval-mode output on the
    same input changes because the loop moved the statistics.
    """
    instance = "InstanceNorm" in layer.kind
    assumed: dict[str, Any] = {}
    kind = layer.kind.replace("Lazy", "")
    if kind == "SyncBatchNorm":
        kind = "BatchNorm2d"
        assumed["simulated_as"] = kind
    channels = int(_required(layer, ("num_features",), assumed)["num_features"])
    momentum = layer.param("momentum")
    eps = float(layer.param("eps"))
    affine = bool(layer.param("affine"))
    dims = _dims(kind)
    shape = (BATCH_SIZE, channels) + (_SPATIAL[dims] if (instance or dims > 1) else ())
    module = getattr(nn, kind)(
        channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=True
    ).double()
    rng = np.random.default_rng(seed + 7)
    weight = bias = None
    if affine:
        weight, bias = rng.uniform(0.5, 1.5, channels), rng.normal(0.0, 0.5, channels)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(weight))
            module.bias.copy_(torch.from_numpy(bias))
    norm: Callable[..., np.ndarray] = reference.instance_norm if instance else reference.batch_norm
    stats = reference.RunningStats.fresh(channels)
    initial = stats.copy()
    data = _batches(shape, seed, batches)
    checks: list[Check] = []
    trace: dict[str, list[float]] = {"running_mean": [0.0], "running_var": [0.0]}

    def eval_pass(x: np.ndarray, label: str) -> np.ndarray:
        with torch.no_grad():
            got = _numpy(module.eval()(torch.from_numpy(x)))
        checks.append(
            compare(
                f"{layer.kind} eval output {label}",
                norm(x, stats, False, momentum, eps, weight, bias),
                got,
            )
        )
        return got

    eval_before = eval_pass(data[0], "before the loop")
    train_first = None
    for index, x in enumerate(data):
        with torch.no_grad():
            got = _numpy(module.train()(torch.from_numpy(x)))
        want = norm(x, stats, True, momentum, eps, weight, bias)
        checks.append(compare(f"{layer.kind} train output, batch {index + 1}", want, got))
        checks.append(
            compare(
                f"{layer.kind} running_mean, batch {index + 1}",
                stats.mean,
                _numpy(module.running_mean),
            )
        )
        checks.append(
            compare(
                f"{layer.kind} running_var, batch {index + 1}",
                stats.var,
                _numpy(module.running_var),
            )
        )
        if train_first is None:
            train_first = got
        trace["running_mean"].append(float(np.abs(stats.mean - initial.mean).mean()))
        trace["running_var"].append(float(np.abs(stats.var - initial.var).mean()))
    if not instance:
        tracked = int(module.num_batches_tracked.item())
        checks.append(Check("num_batches_tracked", float(abs(tracked - stats.num_batches_tracked))))
    eval_after = eval_pass(data[0], "after the loop")
    assert train_first is not None
    delta = np.abs(train_first - eval_before)
    changed = np.abs(eval_after - eval_before)
    figures = {
        "num_features": channels,
        "momentum": momentum,
        "batches": batches,
        "batch_size": BATCH_SIZE,
        "running_mean_shift": trace["running_mean"][-1],
        "running_mean_shift_max": float(np.abs(stats.mean - initial.mean).max()),
        "running_var_shift": trace["running_var"][-1],
        "running_var_shift_max": float(np.abs(stats.var - initial.var).max()),
        "train_vs_eval_mean_abs": float(delta.mean()),
        "train_vs_eval_max_abs": float(delta.max()),
        "eval_output_change_mean_abs": float(changed.mean()),
        "eval_output_change_max_abs": float(changed.max()),
        "inputs": "seeded; per-channel mean ~ N(0,1), std ~ U(0.5,2); layer starts freshly constructed",
    }
    return LayerRun(
        layer, figures, checks, assumed, train_first.ravel(), eval_before.ravel(), trace
    )


def _sequence_input(module: nn.Module, width: int, seed: int) -> torch.Tensor:
    """The same seeded (sequence, batch, width) input on every call, batch first if asked."""
    batch_first = bool(getattr(module, "batch_first", False))
    shape = (8, 12, width) if batch_first else (12, 8, width)
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape))


def run_torch_only(layer: LayerSpec, seed: int = 0) -> LayerRun:
    """RNN/LSTM/GRU, MultiheadAttention, Transformer layers: no NumPy reference, torch only.

    Shows the train/eval divergence and that two train-mode passes on one input disagree.
    """
    assumed: dict[str, Any] = {}
    with warnings.catch_warnings():
        # nn.Transformer warns about its nested-tensor fast path; irrelevant to the comparison
        warnings.simplefilter("ignore", UserWarning)
        module = build_module(layer, assumed).double()

    def forward() -> np.ndarray:
        with torch.no_grad():
            if isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
                sequence = _sequence_input(module, module.input_size, seed)
                # runs the layer in the mode under test:
                out = module(sequence)[0]  # evallint: ignore[EVL001]
            elif isinstance(module, nn.MultiheadAttention):
                q = _sequence_input(module, module.embed_dim, seed)
                out = module(q, q, q)[0]
            elif isinstance(module, nn.TransformerDecoderLayer):
                t = _sequence_input(module, _width(module), seed)
                out = module(t, t)
            elif isinstance(module, nn.Transformer):
                t = _sequence_input(module.encoder.layers[0], module.d_model, seed)
                out = module(t, t)
            else:
                t = _sequence_input(module, _width(module), seed)
                out = module(t)
        return _numpy(out)

    torch.manual_seed(seed)
    module.train()
    train_a, train_b = forward(), forward()
    module.eval()
    eval_out = forward()
    delta = np.abs(train_a - eval_out)
    figures = {
        "train_vs_eval_mean_abs": float(delta.mean()),
        "train_vs_eval_max_abs": float(delta.max()),
        "two_train_passes_mean_abs": float(np.abs(train_a - train_b).mean()),
        "reference": "torch only (no NumPy reference for this layer)",
    }
    return LayerRun(layer, figures, [], assumed, train_a.ravel(), eval_out.ravel())


def run_layer(layer: LayerSpec, seed: int = 0) -> Optional[LayerRun]:
    """The measurement for one mode-dependent layer, or None when evallint cannot simulate it.

    Runs in its own generator state seeded with `seed` (torch.random.fork_rng), so the numbers
    do not depend on what else was measured before, and the caller's RNG is left alone."""
    kind = layer.kind
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind in DROPOUT_KINDS:
            return run_dropout(layer, seed)
        if kind == "RReLU":
            return run_rrelu(layer, seed)
        if kind in BATCHNORM_KINDS or kind in INSTANCENORM_KINDS:
            return run_norm(layer, seed)
        if kind in RNN_KINDS or kind in TRANSFORMER_KINDS or kind == "MultiheadAttention":
            return run_torch_only(layer, seed)
    return None


# --- EVL002: what autograd keeps alive --------------------------------------------------------


def memory_input_shape(
    module: nn.Module, current: Optional[tuple[int, ...]], batch: int
) -> tuple[int, ...]:
    """The input a layer expects: from its own sizes when it has them, else the previous output."""
    if isinstance(module, nn.Linear):
        if current is not None and current[-1] == module.in_features:
            return current
        return (batch, module.in_features)
    if isinstance(module, (nn.modules.conv._ConvNd,)):
        d = len(module.kernel_size)
        spatial = {1: (64,), 2: (32, 32), 3: (16, 16, 16)}[d]
        if current is not None and len(current) == d + 2 and current[1] == module.in_channels:
            return current
        return (batch, module.in_channels) + spatial
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
        d = 2 if isinstance(module, nn.SyncBatchNorm) else _dims(type(module).__name__)
        if current is not None and len(current) >= 2 and current[1] == module.num_features:
            return current
        rank_extra = {
            1: () if isinstance(module, nn.modules.batchnorm._BatchNorm) else (64,),
            2: (32, 32),
            3: (16, 16, 16),
        }[d]
        return (batch, module.num_features) + rank_extra
    if isinstance(module, nn.GroupNorm):
        return (batch, module.num_channels, 32, 32)
    if isinstance(module, (nn.LayerNorm, getattr(nn, "RMSNorm", nn.LayerNorm))):
        normalized: Any = module.normalized_shape
        shape = tuple(normalized)
        if current is not None and current[-len(shape) :] == shape:
            return current
        return (batch,) + shape
    return current if current is not None else (batch, 256)


def forward_for_memory(
    module: nn.Module,
    shape: tuple[int, ...],
    requires_grad: bool,
    given: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """One forward of `module` on an input of `shape`: `given` (the previous layer's real
    output) when it has that shape, else a seeded one."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        ids = torch.randint(0, module.num_embeddings, (shape[0], 64))
        return module(ids)  # evallint: ignore[EVL002]  measures what autograd keeps
    if isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        x = torch.randn(32, shape[0], module.input_size, requires_grad=requires_grad)
        return module(x)[0]
    if isinstance(module, nn.MultiheadAttention):
        x = torch.randn(32, shape[0], module.embed_dim, requires_grad=requires_grad)
        return module(x, x, x)[0]
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        x = torch.randn(32, shape[0], module.linear1.in_features, requires_grad=requires_grad)
        return module(x, x) if isinstance(module, nn.TransformerDecoderLayer) else module(x)
    if isinstance(module, nn.Transformer):
        x = torch.randn(32, shape[0], module.d_model, requires_grad=requires_grad)
        return module(x, x)
    if given is not None and tuple(given.shape) == shape:
        return module(given)
    x = torch.randn(*shape, requires_grad=requires_grad)
    return module(x)


def autograd_memory(layers: list[LayerSpec], batch_size: int = 32, seed: int = 0) -> MemoryRun:
    """Bytes of tensors autograd saves for backward in one eval-mode forward through `layers`.

    Measured with `saved_tensors_hooks` (parameters excluded: they are alive anyway), once with
    grad enabled and once under `no_grad`. Layers run one after another; a layer's input needs
    grad once any earlier layer had parameters, as in the real network.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _autograd_memory(layers, batch_size)


def _autograd_memory(layers: list[LayerSpec], batch_size: int) -> MemoryRun:
    per_layer: list[tuple[LayerSpec, int]] = []
    skipped: list[str] = []
    assumed: dict[str, Any] = {"batch_size": batch_size}
    current: Optional[tuple[int, ...]] = None
    out: Optional[torch.Tensor] = None
    upstream_params = False
    no_grad_total = 0
    counted: set[int] = set()
    """Storages already counted: a tensor saved by two layers (one's output, the next one's
    input) or two views of one storage are alive once."""
    alive: list[torch.Tensor] = []
    """Every output stays referenced until the end, so no storage address is reused."""
    for layer in layers:
        if (
            layer.kind.startswith("F.")
            or layer.kind == "StochasticDepth"
            or not hasattr(nn, layer.kind)
        ):
            skipped.append(f"{layer.kind} at {layer.location}: not built")
            continue
        layer_assumed: dict[str, Any] = {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                module = build_module(layer, layer_assumed).eval()
            shape = memory_input_shape(module, current, batch_size)
            if "input" not in assumed:
                assumed["input"] = list(shape)
            param_ptrs = {p.untyped_storage().data_ptr() for p in module.parameters()}
            saved: dict[int, int] = {}

            def pack(t: torch.Tensor) -> torch.Tensor:
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key not in param_ptrs and key not in counted:  # noqa: B023
                    counted.add(key)
                    saved[key] = storage.nbytes()  # noqa: B023
                return t

            given = out if out is not None and current == shape else None
            with saved_tensors_hooks(pack, lambda t: t):
                result = forward_for_memory(module, shape, upstream_params, given)
            no_grad_saved: list[int] = []

            def pack_no_grad(t: torch.Tensor) -> torch.Tensor:
                no_grad_saved.append(t.untyped_storage().nbytes())  # noqa: B023
                return t

            with torch.no_grad(), saved_tensors_hooks(pack_no_grad, lambda t: t):
                forward_for_memory(module, shape, upstream_params, None)
            no_grad_total += sum(no_grad_saved)
        except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
            skipped.append(
                f"{layer.kind} at {layer.location}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            )
            current, out = None, None
            continue
        if layer_assumed:
            assumed[f"{layer.kind} at {layer.location}"] = layer_assumed
        per_layer.append((layer, sum(saved.values())))
        alive.append(result)  # evallint: ignore[EVL006]  kept on purpose: the graph is measured
        out = result
        current = tuple(result.shape) if result.dim() >= 2 else None
        upstream_params = upstream_params or any(True for _ in module.parameters())
    return MemoryRun(
        batch_size, sum(b for _, b in per_layer), no_grad_total, per_layer, skipped, assumed
    )


def _width(layer: nn.Module) -> int:
    """d_model of a Transformer encoder/decoder layer (its first feed-forward's input)."""
    linear1 = layer.linear1
    assert isinstance(linear1, nn.Linear)
    return int(linear1.in_features)
