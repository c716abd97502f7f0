"""The words of a verdict: one-line summaries of what a layer run measured, and its JSON.

Every phrase says what was measured: one freshly built layer on synthetic data, with the
sizes evallint assumed, never the user's trained model.
"""

from __future__ import annotations

from typing import Any

from evallint.torch_facts import ALPHA_DROPOUT_KINDS
from evallint.verifier.torch_run import TOLERANCE, LayerRun

MAX_PHRASES = 3
"""Layers named in the one-line summary; the evidence lists all of them."""

MEASURED_LAYERS = (
    "each mode-dependent layer found in the source, built alone with the arguments read from "
    "it (sizes it did not fix are assumed and listed), freshly initialised, on seeded "
    "synthetic data; not the user's trained model on its data"
)
MEASURED_LAYERS_SHORT = "measured: each layer alone, freshly built, on synthetic data"
MEASURED_MEMORY = (
    "the layers found in the source chained in order, freshly built, one synthetic batch of "
    "the assumed input size; bytes autograd's saved-tensor hooks see, each storage once, "
    "parameters excluded"
)


def assumed_text(assumed: dict[str, Any]) -> str:
    """`input [32, 256], batch_size 32, Linear at m.py:3: in_features=256`."""
    parts = []
    for key, value in assumed.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={v}" for k, v in value.items())
            parts.append(f"{key}: {inner}")
        else:
            parts.append(f"{key} {value}")
    return "; ".join(parts) if parts else "nothing"


def measurement_json(run: LayerRun) -> dict[str, Any]:
    return {
        "layer": run.layer.label(),
        "type": run.layer.kind,
        "location": run.layer.location,
        "figures": run.figures,
        "assumed": run.assumed,
        "checks": {
            "count": len(run.checks),
            "max_relative_error": max((c.max_error for c in run.checks), default=0.0),
            "tolerance": TOLERANCE,
            "failed": [c.name for c in run.checks if not c.ok],
        },
    }


def layer_name(run: LayerRun) -> str:
    assumed = run.assumed.get("num_features")
    suffix = f" ({assumed} channels assumed)" if assumed is not None else ""
    return f"{run.layer.label()} at {run.layer.location}{suffix}"


def _dropped(run: LayerRun) -> str:
    """AlphaDropout does not zero: it sets a unit to SELU's negative saturation value -alpha'
    (about -1.758) and then applies an affine correction that keeps mean and variance."""
    if run.layer.kind in ALPHA_DROPOUT_KINDS:
        return "set to the saturation value -alpha' (≈ -1.758, then affinely rescaled)"
    return "zeroed"


def phrase_eval(run: LayerRun) -> str:
    """What running this layer in training mode during evaluation does (EVL001)."""
    f = run.figures
    if "dropped_fraction" in f:
        return (
            f"{layer_name(run)}: {100 * f['dropped_fraction']:.1f}% of {f['unit']} {_dropped(run)}, eval output differs "
            f"by mean |Δ|={f['train_vs_eval_mean_abs']:.2f} (max {f['train_vs_eval_max_abs']:.1f})"
        )
    if "running_mean_shift" in f:
        return (
            f"{layer_name(run)}: one validation pass of {f['batches']} batches moved running_mean by "
            f"{f['running_mean_shift']:.2f} and running_var by {f['running_var_shift']:.2f}; this layer's eval-mode "
            f"output on the same input changed by mean |Δ|={f['eval_output_change_mean_abs']:.2f}"
        )
    if "eval_slope" in f:
        return (
            f"{layer_name(run)}: negative slope drawn from [{f['train_slope_min']:.3f}, {f['train_slope_max']:.3f}] "
            f"instead of {f['eval_slope']:.3f}, output differs by mean |Δ|={f['train_vs_eval_mean_abs']:.3f}"
        )
    return (
        f"{layer_name(run)}: train-mode output differs from eval by mean |Δ|={f['train_vs_eval_mean_abs']:.3f}; "
        f"two passes on the same input differ by {f['two_train_passes_mean_abs']:.3f}"
    )


def phrase_training_resumed(run: LayerRun) -> str:
    """What training with this layer still in eval mode does (EVL003)."""
    f = run.figures
    verb = "saturates" if run.layer.kind in ALPHA_DROPOUT_KINDS else "drops"
    if "dropped_fraction" in f:
        return (
            f"{layer_name(run)}: {verb} 0% instead of {100 * f['dropped_fraction']:.1f}% of {f['unit']} "
            "while training (regularisation silently off)"
        )
    if "running_mean_shift" in f:
        return (
            f"{layer_name(run)}: normalises training batches with frozen running stats (output off by mean "
            f"|Δ|={f['train_vs_eval_mean_abs']:.2f}) and {f['batches']} training batches leave running_mean/var "
            f"unchanged (train mode would move them by {f['running_mean_shift']:.2f}/{f['running_var_shift']:.2f})"
        )
    if "eval_slope" in f:
        return f"{layer_name(run)}: fixed slope {f['eval_slope']:.3f} instead of random slopes while training"
    return (
        f"{layer_name(run)}: trains without its dropout (output differs from train mode by mean "
        f"|Δ|={f['train_vs_eval_mean_abs']:.3f})"
    )


def bytes_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
