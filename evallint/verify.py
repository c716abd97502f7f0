"""Public library API of evallint's runtime verifier: check a live model, guard an evaluation.

Why a separate module: users call these from their own test suites, where a model is at hand.
`check_module(model)` lists the submodules whose output depends on train/eval mode and measures
what the mode changes; `guard(model)` raises (or warns) when a forward runs in training mode
during an evaluation. Importing this module needs neither torch nor numpy (evallint's core is
torch-free); the first call imports torch and says how to install it if it is missing.

    from evallint.verify import check_module, guard

    report = check_module(model)          # report.mode_dependent, report.summary()
    with torch.no_grad(), guard(model):   # EvalModeError if model is still in training mode
        evaluate(model, val_loader)
    with guard(model).evaluating():       # an evaluation block even with grad enabled
        saliency(model, images)
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Union

if TYPE_CHECKING:
    import torch
    from torch import nn

    from evallint.verifier.live import Guard, ModeDependent, ModuleReport, StatDrift

from evallint.verifier import EvalModeError, EvalModeWarning

__all__ = [
    "EvalModeError",
    "EvalModeWarning",
    "Guard",
    "ModeDependent",
    "ModuleReport",
    "StatDrift",
    "check_module",
    "guard",
]

INSTALL_HINT = "pip install 'torch-evallint[verify]'"


def _live() -> ModuleType:
    """The torch-backed implementation, imported on first use."""
    try:
        from evallint.verifier import live
    except ImportError as exc:
        raise ImportError(
            f"evallint.verify needs torch (the `verify` extra: {INSTALL_HINT}): {exc}"
        ) from exc
    return live


def check_module(
    module: nn.Module,
    example_input: Union[torch.Tensor, tuple[int, ...], None] = None,
    *,
    batches: int = 10,
    seed: int = 0,
) -> ModuleReport:
    """The mode-dependent submodules of `module` (qualified names and types) and the measured
    train- vs eval-mode divergence on a seeded input (shape from the first layer unless given),
    plus BatchNorm running-stat drift after `batches` train-mode batches. `module` itself is
    not changed: the measurements run on a deep copy with a forked RNG."""
    return _live().check_module(module, example_input, batches=batches, seed=seed)


def guard(model: nn.Module, *, action: Literal["raise", "warn"] = "raise") -> Guard:
    """A context manager that installs forward pre-hooks on `model` and its mode-dependent
    submodules: a forward in training mode while grad is disabled, or inside the guard's
    `evaluating()` block, raises `EvalModeError` (or warns `EvalModeWarning`)."""
    return _live().Guard(model, action)


def __getattr__(name: str) -> Any:
    """The result and exception types, loaded lazily like the functions (PEP 562)."""
    if name in ("Guard", "ModeDependent", "ModuleReport", "StatDrift"):
        return getattr(_live(), name)
    raise AttributeError(f"module 'evallint.verify' has no attribute {name!r}")
