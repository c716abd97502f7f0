"""Lightning hooks that leave the LightningModule in the other phase's mode.

Since Lightning 2.2 the fit loop does not call `train()` at the start of every epoch (it
restores the modes it captured around validation, and only there), so a Callback hook or a
LightningModule hook of the training phase that calls `eval()` and returns without
`train()` leaves every later training step in eval mode.

The mirror image: an evaluation loop (validation, test, predict) calls `eval()` once,
before its first batch, and restores the captured modes only after its last; a hook it
runs before or between the steps (`on_validation_batch_end`, `validation_step`, ...) that
calls `train()` and returns so leaves the remaining batches of that loop in train mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable, Optional

from evallint.analysis.facts import Place, UnitRef
from evallint.analysis.lattice import Mode, ModeFact, Origin, PathState
from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.analysis.summaries import Summary

TRAINING_PHASE_HOOKS = frozenset(
    {
        "on_fit_start",
        "on_train_start",
        "on_train_epoch_start",
        "on_train_epoch_end",
        "on_train_batch_start",
        "on_train_batch_end",
        "on_before_backward",
        "on_after_backward",
        "on_before_optimizer_step",
        "on_before_zero_grad",
        "training_step",
    }
)
"""Hooks Lightning calls between training steps; the training that follows inherits the
mode they leave (`on_train_end`/`on_fit_end` come after the last step: not listed)."""


EVALUATION_PHASE_HOOKS = frozenset(
    {
        f"{prefix}{phase}{suffix}"
        for phase in ("validation", "test", "predict")
        for prefix, suffix in (
            ("on_", "_start"),
            ("on_", "_epoch_start"),
            ("on_", "_batch_start"),
            ("on_", "_batch_end"),
            ("", "_step"),
        )
    }
)
"""Hooks an evaluation loop runs after its `eval()` and before or between its steps: the
steps that follow inherit the mode they leave (`*_epoch_end`/`*_end` come after the last
step, before Lightning restores the modes: not listed)."""


@dataclass(frozen=True)
class HookLeavesEval:
    """A hook that may return with its module in the other phase's mode: eval mode after a
    training-phase hook (`HookLeavesEval` proper), train mode after an evaluation-phase hook."""

    site: Place
    """The `eval()`/`train()` (or the call leaving that mode) on a path to the hook's return."""
    subject: str
    hook: str
    eval_facts: frozenset
    """The mode facts left at the return (eval facts, or train facts for a hook that leaves
    train mode)."""


def _is_lightning_callback(cls: ClassInfo) -> bool:
    return any(
        "lightning" in b.lower() and (b.split(".")[-1] == "Callback" or ".callbacks." in b)
        for b in cls.bases
    )


def training_hook_module(info: FunctionInfo) -> Optional[str]:
    """`pl_module` for a training-phase hook of a Lightning Callback (`on_train_batch_end(self,
    trainer, pl_module, ...)`): Lightning runs those hooks with the module in train mode."""
    owner = info.owner
    if owner is None or info.name not in TRAINING_PHASE_HOOKS or not _is_lightning_callback(owner):
        return None
    params = [p for p in info.params if p != "self"]
    return params[1] if len(params) >= 2 else None


def in_training_hook(info: FunctionInfo, keys: Iterable[str], state: PathState) -> PathState:
    """The entry state of a Callback's training-phase hook: its `pl_module` in train mode."""
    hooked = training_hook_module(info)
    if hooked is None or hooked not in keys:
        return state
    return state.with_mode(hooked, frozenset({ModeFact(Mode.TRAIN, Origin.CALLED)}))


def _is_lightning_module(cls: ClassInfo) -> bool:
    return cls.self_managed and any("Lightning" in b for b in cls.bases)


GRAD_ON_EPOCH_END_HOOKS = frozenset({"on_epoch_end", "on_train_epoch_end"})
"""LightningModule hooks the fit loop runs after a training epoch, outside any `no_grad`
(`on_validation_epoch_end` runs inside the evaluation loop's `no_grad`: not listed)."""


def after_training_epoch_hook(info: FunctionInfo) -> bool:
    """`def on_train_epoch_end(self):` (or 1.x's `on_epoch_end`) of a LightningModule: Lightning
    calls it after the training epoch with autograd on and no caller in the project, so a
    forward in it whose results only leave autograd (images logged) builds a wasted graph."""
    owner = info.owner
    return (
        owner is not None and info.name in GRAD_ON_EPOCH_END_HOOKS and _is_lightning_module(owner)
    )


def hooks_leaving_eval(
    classes: Iterable[ClassInfo],
    summary_for: Callable[[FunctionInfo], Optional[Summary]],
    unit: UnitRef,
) -> list[HookLeavesEval]:
    """Training-phase hooks that may return with their module in eval mode."""
    return _hooks_leaving(classes, summary_for, unit, TRAINING_PHASE_HOOKS, Mode.EVAL)


def hooks_leaving_train(
    classes: Iterable[ClassInfo],
    summary_for: Callable[[FunctionInfo], Optional[Summary]],
    unit: UnitRef,
) -> list[HookLeavesEval]:
    """Evaluation-phase hooks that may return with their module switched to train mode."""
    return _hooks_leaving(classes, summary_for, unit, EVALUATION_PHASE_HOOKS, Mode.TRAIN)


def _hooks_leaving(
    classes: Iterable[ClassInfo],
    summary_for: Callable[[FunctionInfo], Optional[Summary]],
    unit: UnitRef,
    hooks: frozenset[str],
    mode: Mode,
) -> list[HookLeavesEval]:
    """Hooks among `hooks` whose module is, at some return, in `mode` by a switch or a call
    of the hook's own (not the mode Lightning gave it)."""
    found: list[HookLeavesEval] = []
    for cls in classes:
        callback = _is_lightning_callback(cls)
        if not callback and not _is_lightning_module(cls):
            continue
        for name, method in cls.methods.items():
            if name not in hooks:
                continue
            summary = summary_for(method)
            if summary is None:
                continue
            if callback:  # (self, trainer, pl_module, ...)
                if len(summary.params) < 2:
                    continue
                key = summary.params[1]
            else:
                key = "self"
            facts = summary.exit_modes.get(key) or frozenset()
            left = frozenset(
                f
                for f in facts
                if f.mode is mode
                and f.origin in (Origin.SWITCHED, Origin.CALLED)
                and f.site is not None
            )
            if not left:
                continue
            first = min(left, key=lambda f: unit.locate(f.site)[:2])
            found.append(HookLeavesEval(Place(first.site, unit), key, name, left))
    return found
