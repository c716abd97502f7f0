"""Measurements on a live `nn.Module`: the engine behind `evallint.verify`.

Why on a live module: static extraction sees only what the source spells out; a model a user
already holds (in a test suite, or built by `--import`) can be measured exactly. `check_module`
lists the submodules whose output depends on train/eval mode and measures how far train-mode
outputs and BatchNorm running statistics move; it works on a deep copy under a forked RNG, so
the caller's model and random stream are untouched. `Guard` is the runtime sanitizer: forward
pre-hooks that catch a training-mode forward where an evaluation was meant.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Union

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from evallint.verifier import EvalModeError, EvalModeWarning

BATCH_SIZE = 8
"""Seeded batch size: BatchNorm in training mode needs more than one value per channel."""

DRIFT_BATCHES = 10
"""K: train-mode batches run to measure running-statistic drift (one short validation loop)."""

_SPATIAL = {1: (32,), 2: (16, 16), 3: (8, 8, 8)}
_SEQUENCE = 12

Action = Literal["raise", "warn"]
Shape = tuple[int, ...]


@dataclass(frozen=True)
class ModeDependent:
    """One submodule whose output differs between train and eval mode."""

    name: str
    """Qualified name as `named_modules()` gives it (``""`` for the model itself)."""
    type: str
    params: dict[str, Any]
    """The settings that make it mode-dependent (p, momentum, track_running_stats, ...)."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name or "<model>", "type": self.type, "params": self.params}


@dataclass(frozen=True)
class StatDrift:
    """How far one norm layer's running statistics moved over `batches` train-mode batches."""

    name: str
    type: str
    running_mean_shift: float
    running_var_shift: float
    """Mean |Δ| over channels, from the copy's state before the batches to after them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "running_mean_shift": self.running_mean_shift,
            "running_var_shift": self.running_var_shift,
        }


@dataclass(frozen=True)
class ModuleReport:
    """What `check_module` found and measured. Divergence fields are None when not measured
    (`problem` then says why)."""

    model_type: str
    mode_dependent: tuple[ModeDependent, ...]
    input_shape: Optional[Shape] = None
    train_vs_eval_mean_abs: Optional[float] = None
    train_vs_eval_max_abs: Optional[float] = None
    batches: int = 0
    drift: tuple[StatDrift, ...] = ()
    eval_output_change_mean_abs: Optional[float] = None
    """Eval-mode output on the same input before vs after the train-mode batches."""
    problem: Optional[str] = None
    notes: tuple[str, ...] = field(default=())

    @property
    def affected(self) -> bool:
        """Would running this model in the wrong mode change its numbers?"""
        if self.mode_dependent:
            return True
        return bool(self.train_vs_eval_max_abs) or any(
            d.running_mean_shift or d.running_var_shift for d in self.drift
        )

    def summary(self) -> str:
        """One line a reader can act on."""
        if not self.affected:
            measured = (
                ""
                if self.train_vs_eval_max_abs is None
                else " (train and eval outputs are identical)"
            )
            return f"{self.model_type}: no submodule depends on train/eval mode{measured}"
        names = ", ".join(f"{m.name or '<model>'} ({m.type})" for m in self.mode_dependent[:4])
        more = f" and {len(self.mode_dependent) - 4} more" if len(self.mode_dependent) > 4 else ""
        text = f"{self.model_type}: mode-dependent {names}{more}"
        if self.train_vs_eval_mean_abs is not None:
            text += (
                f"; train-mode output differs from eval by mean |Δ|={self.train_vs_eval_mean_abs:.3g} "
                f"(max {self.train_vs_eval_max_abs:.3g}) on a seeded input of shape {list(self.input_shape or ())}"
            )
        if self.drift:
            worst = max(self.drift, key=lambda d: d.running_mean_shift + d.running_var_shift)
            text += (
                f"; {self.batches} train-mode batches moved {worst.name}.running_mean by {worst.running_mean_shift:.3g} "
                f"and running_var by {worst.running_var_shift:.3g}"
            )
            if self.eval_output_change_mean_abs is not None:
                text += (
                    f", changing the model's eval-mode output on the same seeded input by mean "
                    f"|Δ|={self.eval_output_change_mean_abs:.3g}"
                )
        if self.problem:
            text += f" (not measured: {self.problem})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type,
            "mode_dependent": [m.to_json() for m in self.mode_dependent],
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "train_vs_eval_mean_abs": self.train_vs_eval_mean_abs,
            "train_vs_eval_max_abs": self.train_vs_eval_max_abs,
            "batches": self.batches,
            "drift": [d.to_json() for d in self.drift],
            "eval_output_change_mean_abs": self.eval_output_change_mean_abs,
            "problem": self.problem,
            "notes": list(self.notes),
            "summary": self.summary(),
        }


# --- which submodules depend on the mode ------------------------------------------------------


def mode_dependence(module: nn.Module) -> Optional[dict[str, Any]]:
    """The settings that make `module` itself (not its children) mode-dependent, else None.

    Follows pytorch-facts.md: dropout with p > 0, RReLU with lower != upper, BatchNorm and
    InstanceNorm with running statistics, multi-layer RNNs with dropout, attention with dropout,
    and the Transformer layers (dropout plus an eval-only fast path).
    """
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return {"p": module.p} if module.p > 0 else None
    if isinstance(module, nn.RReLU):
        return (
            {"lower": module.lower, "upper": module.upper} if module.lower != module.upper else None
        )
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
        if module.track_running_stats and module.running_mean is not None:
            return {
                "num_features": module.num_features,
                "momentum": module.momentum,
                "eps": module.eps,
                "track_running_stats": True,
            }
        return None
    if isinstance(module, nn.RNNBase):
        if module.num_layers > 1 and module.dropout > 0:
            return {"num_layers": module.num_layers, "dropout": module.dropout}
        return None
    if isinstance(module, nn.MultiheadAttention):
        return {"dropout": module.dropout} if module.dropout > 0 else None
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.Transformer)):
        return {"fast_path_in_eval": True}
    return None


def mode_dependent_submodules(model: nn.Module) -> tuple[ModeDependent, ...]:
    """Every mode-dependent submodule of `model` (itself included), in `named_modules` order."""
    found = []
    for name, module in model.named_modules():
        params = mode_dependence(module)
        if params is not None:
            found.append(ModeDependent(name, type(module).__name__, params))
    return tuple(found)


# --- seeded inputs -----------------------------------------------------------------------------


def infer_input_shape(model: nn.Module, batch: int = BATCH_SIZE) -> Optional[tuple[Shape, bool]]:
    """(shape, integer indices?) of an input the model's first sized layer accepts, or None.

    Why the first layer: a model's forward starts there in the common case (Sequential, or a
    class whose first registered submodule is the stem). Embedding inputs are token indices.
    """
    for module in model.modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            return (batch, _SEQUENCE), True
        if isinstance(module, nn.Linear):
            return (batch, module.in_features), False
        if isinstance(module, nn.Bilinear):
            return None
        if isinstance(module, nn.modules.conv._ConvNd):
            return (batch, module.in_channels) + _SPATIAL[len(module.kernel_size)], False
        if isinstance(
            module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
        ):
            dims = _norm_dims(module)
            if dims == 0:
                return None  # lazy: size unknown until the first forward
            extra = (
                ()
                if dims == 1 and isinstance(module, nn.modules.batchnorm._BatchNorm)
                else _SPATIAL[dims]
            )
            return (batch, module.num_features) + extra, False
        if isinstance(module, nn.RNNBase):
            return (
                (batch, _SEQUENCE, module.input_size)
                if module.batch_first
                else (_SEQUENCE, batch, module.input_size)
            ), False
        if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            width = module.linear1.in_features
            return (
                (batch, _SEQUENCE, width)
                if module.self_attn.batch_first
                else (_SEQUENCE, batch, width)
            ), False
        if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            if isinstance(module, nn.GroupNorm):
                return (batch, module.num_channels) + _SPATIAL[2], False
            return (batch,) + tuple(module.normalized_shape), False
    return None


def _norm_dims(module: nn.Module) -> int:
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
        return 0
    name = type(module).__name__
    for d in (1, 2, 3):
        if name.endswith(f"{d}d"):
            return d
    return 2  # SyncBatchNorm: images in practice


def _first_parameter(model: nn.Module) -> Optional[torch.Tensor]:
    return next(iter(model.parameters()), None)


def seeded_input(
    shape: Shape, integer: bool, model: nn.Module, seed: int, vocabulary: int = 0
) -> torch.Tensor:
    """A reproducible input: per-channel shifted and scaled normals (activation-like), or indices."""
    generator = torch.Generator().manual_seed(seed)
    reference = _first_parameter(model)
    device = reference.device if reference is not None else torch.device("cpu")
    if integer:
        return torch.randint(0, max(1, vocabulary), shape, generator=generator).to(device)
    dtype = (
        reference.dtype
        if reference is not None and reference.is_floating_point()
        else torch.float32
    )
    channels = shape[1] if len(shape) > 1 else 1
    stat_shape = (1, channels) + (1,) * (len(shape) - 2) if len(shape) > 1 else (1,)
    mean = torch.randn(stat_shape, generator=generator, dtype=torch.float64)
    std = 0.5 + 1.5 * torch.rand(stat_shape, generator=generator, dtype=torch.float64)
    x = mean + std * torch.randn(shape, generator=generator, dtype=torch.float64)
    return x.to(device=device, dtype=dtype)


def _vocabulary(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            return module.num_embeddings
    return 0


def _flat_output(output: Any) -> torch.Tensor:
    """All floating tensors of a forward's output (tensor, tuple, list, dict, dataclass-like)."""
    tensors: list[torch.Tensor] = []

    def collect(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() or value.is_complex():
                tensors.append(value.detach().reshape(-1).to(torch.float64))
        elif isinstance(value, (tuple, list)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif hasattr(value, "__dict__"):
            for item in vars(value).values():
                collect(item)

    collect(output)
    if not tensors:
        raise TypeError("the forward returned no floating-point tensor to compare")
    return torch.cat(tensors)


def _stats(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A norm layer's running statistics (cloned); callers pick layers that track them."""
    mean, var = module.running_mean, module.running_var
    assert isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor)
    return mean.clone(), var.clone()


# --- check_module ------------------------------------------------------------------------------


def check_module(
    module: nn.Module,
    example_input: Union[torch.Tensor, Shape, None] = None,
    *,
    batches: int = DRIFT_BATCHES,
    seed: int = 0,
) -> ModuleReport:
    """List the mode-dependent submodules of `module` and measure what the mode changes.

    `example_input` (a tensor, or a shape for seeded normal inputs) overrides the shape inferred
    from the first sized layer. The caller's module, its buffers and the global RNG are left
    exactly as they were: everything runs on a deep copy inside `torch.random.fork_rng`.
    """
    dependent = mode_dependent_submodules(module)
    model_type = type(module).__name__
    probe = copy.deepcopy(module)
    integer = False
    if isinstance(example_input, torch.Tensor):
        shape: Optional[Shape] = tuple(example_input.shape)
        integer = not example_input.is_floating_point()
    elif example_input is not None:
        shape = tuple(example_input)
    else:
        inferred = infer_input_shape(probe)
        shape, integer = inferred if inferred is not None else (None, False)
    if shape is None:
        return ModuleReport(
            model_type,
            dependent,
            problem="no input shape: the first layer does not say what it takes "
            "(pass example_input)",
        )
    vocabulary = _vocabulary(probe)

    def batch(index: int) -> torch.Tensor:
        if isinstance(example_input, torch.Tensor) and index == 0:
            return example_input.detach().clone()
        assert shape is not None
        return seeded_input(shape, integer, probe, seed + index, vocabulary)

    norms = [
        (name, m)
        for name, m in probe.named_modules()
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm))
        and m.track_running_stats
        and m.running_mean is not None
    ]
    devices = [p.device for p in probe.parameters() if p.device.type == "cuda"]
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Transformer fast-path notices
            torch.manual_seed(seed)
            x = batch(0)
            eval_before = _flat_output(probe.eval()(x))
            # the statistics before the first train-mode batch: `batches` batches move them
            before = {name: _stats(m) for name, m in norms}
            train_out = _flat_output(probe.train()(x))
            for index in range(1, batches):
                # the train-mode output is what this measures:
                probe(batch(index))  # evallint: ignore[EVL001]
            eval_after = _flat_output(probe.eval()(x))
    except Exception as exc:  # noqa: BLE001 - a model that cannot run on the seeded input is a finding too
        problem = f"{type(exc).__name__} running the model on a seeded input of shape {list(shape)}: {str(exc).splitlines()[0][:200]}"
        return ModuleReport(model_type, dependent, input_shape=shape, problem=problem)
    if train_out.shape != eval_before.shape:
        delta = torch.tensor([float("inf")], dtype=torch.float64)
    else:
        delta = (train_out - eval_before).abs()
    drift = tuple(
        StatDrift(
            name,
            type(m).__name__,
            float((_stats(m)[0] - before[name][0]).abs().double().mean()),
            float((_stats(m)[1] - before[name][1]).abs().double().mean()),
        )
        for name, m in norms
    )
    change = (
        (eval_after - eval_before).abs().mean().item()
        if norms and eval_after.shape == eval_before.shape
        else None
    )
    notes: tuple[str, ...] = ()
    if not dependent and delta.max().item() > 0:
        notes = (
            "outputs differ between the modes although no known mode-dependent layer was found: "
            "a custom module reads `self.training`",
        )
    return ModuleReport(
        model_type,
        dependent,
        shape,
        delta.mean().item(),
        delta.max().item(),
        batches,
        drift,
        change,
        None,
        notes,
    )


# --- guard -------------------------------------------------------------------------------------


class Guard:
    """Forward pre-hooks that flag a training-mode forward during evaluation.

    Why hooks on the mode-dependent submodules as well as the model: `model.training = False`
    (or a partial `.eval()`) leaves children in training mode while the top flag looks right;
    those children are what changes the numbers. A forward is an evaluation when grad is
    disabled (`no_grad`, `inference_mode`, `set_grad_enabled(False)`) or when it runs inside
    `evaluating()`. Hooks are installed on entering and removed on leaving (re-entrant).
    """

    def __init__(self, model: nn.Module, action: Action = "raise") -> None:
        if action not in ("raise", "warn"):
            raise ValueError(f"action must be 'raise' or 'warn', not {action!r}")
        self.model = model
        self.action = action
        self._handles: list[RemovableHandle] = []
        self._depth = 0
        self._evaluating = 0

    def __enter__(self) -> Guard:
        if self._depth == 0:
            watched = [("", self.model)] + [
                (name, m)
                for name, m in self.model.named_modules()
                if name and mode_dependence(m) is not None
            ]
            self._handles = [m.register_forward_pre_hook(self._hook(name)) for name, m in watched]
        self._depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for handle in self._handles:
                handle.remove()
            self._handles = []

    @contextmanager
    def evaluating(self) -> Iterator[Guard]:
        """A block that is an evaluation even with grad enabled (e.g. an evaluation that needs
        input gradients); any training-mode forward inside it is flagged."""
        with self:
            self._evaluating += 1
            try:
                yield self
            finally:
                self._evaluating -= 1

    def _hook(self, name: str) -> Callable[[nn.Module, Any], None]:
        def check(module: nn.Module, args: Any) -> None:
            if not module.training:
                return
            if torch.is_grad_enabled() and not self._evaluating:
                return
            where = (
                "inside guard(...).evaluating()"
                if self._evaluating
                else "with grad disabled (no_grad/inference_mode)"
            )
            what = "the model" if not name else f"submodule `{name}`"
            message = (
                f"{what} ({type(module).__name__}) ran forward in training mode {where}: "
                f"Dropout keeps dropping and BatchNorm updates its running statistics; call model.eval() first"
            )
            if self.action == "raise":
                raise EvalModeError(message)
            warnings.warn(message, EvalModeWarning, stacklevel=2)

        return check
