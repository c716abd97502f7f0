"""NumPy reference numerics for the layers whose output depends on train/eval mode.

Why a second implementation: the verifier's numbers are evidence, so they must not rest on
torch alone. Every function here is written from the behaviour listed in
shared/pytorch-facts.md and is cross-checked against the real torch layer by `torch_run`;
a disagreement is reported as a verifier error. Randomness is never drawn here: the caller
passes the dropout mask or the RReLU slopes (taken from torch's own output), so the two
implementations can be compared element by element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

ALPHA_DROPOUT_ALPHA = 1.7580993408473766
"""SELU's -alpha' * scale: the value alpha dropout saturates dropped units to (ATen Dropout.cpp)."""


def dropout(x: np.ndarray, p: float, keep: np.ndarray, training: bool) -> np.ndarray:
    """Dropout / Dropout1d/2d/3d: survivors scaled by 1/(1-p) in training, identity in eval.

    `keep` is a boolean mask broadcastable to `x`: element-wise for Dropout, shape (N, C, 1, ...)
    for the channel-dropping variants.
    """
    if not training or p == 0.0:
        return x.copy()
    if p == 1.0:
        return np.zeros_like(x)
    return x * np.broadcast_to(keep, x.shape) / (1.0 - p)


def alpha_dropout(x: np.ndarray, p: float, keep: np.ndarray, training: bool) -> np.ndarray:
    """AlphaDropout / FeatureAlphaDropout: dropped units go to the SELU floor, then an affine map
    restores zero mean and unit variance (a = ((1-p)(1+p*alpha^2))^-1/2, b = a*alpha*p)."""
    if not training or p == 0.0:
        return x.copy()
    a = 1.0 / np.sqrt((ALPHA_DROPOUT_ALPHA**2 * p + 1.0) * (1.0 - p))
    mask = np.broadcast_to(keep, x.shape).astype(x.dtype)
    return a * (x * mask + (mask - 1.0) * ALPHA_DROPOUT_ALPHA) + a * ALPHA_DROPOUT_ALPHA * p


def rrelu(
    x: np.ndarray,
    lower: float,
    upper: float,
    training: bool,
    slopes: Optional[np.ndarray] = None,
) -> np.ndarray:
    """RReLU: a random negative slope in [lower, upper] per element in training (given as
    `slopes`), the fixed slope (lower+upper)/2 in eval."""
    if training:
        if slopes is None:
            raise ValueError("training-mode RReLU needs the slopes torch drew")
        negative = x * slopes
    else:
        negative = x * ((lower + upper) / 2.0)
    return np.where(x >= 0, x, negative)


@dataclass
class RunningStats:
    """The buffers a BatchNorm/InstanceNorm layer with track_running_stats=True carries."""

    mean: np.ndarray
    var: np.ndarray
    num_batches_tracked: int = 0

    @classmethod
    def fresh(cls, num_features: int) -> RunningStats:
        """A newly constructed layer's state: mean 0, variance 1, no batches seen."""
        return cls(np.zeros(num_features), np.ones(num_features), 0)

    def copy(self) -> RunningStats:
        return RunningStats(self.mean.copy(), self.var.copy(), self.num_batches_tracked)


def _update_factor(stats: RunningStats, momentum: Optional[float]) -> float:
    """Momentum, or for momentum=None the cumulative-average factor 1/num_batches_tracked."""
    stats.num_batches_tracked += 1
    return 1.0 / stats.num_batches_tracked if momentum is None else momentum


def _affine(y: np.ndarray, weight: Optional[np.ndarray], bias: Optional[np.ndarray]) -> np.ndarray:
    shape = (1, -1) + (1,) * (y.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def batch_norm(
    x: np.ndarray,
    stats: Optional[RunningStats],
    training: bool,
    momentum: Optional[float] = 0.1,
    eps: float = 1e-5,
    weight: Optional[np.ndarray] = None,
    bias: Optional[np.ndarray] = None,
) -> np.ndarray:
    """BatchNorm1d/2d/3d over axis 1; updates `stats` in place when training.

    Training (or no running stats): normalise with the batch mean and the BIASED batch variance,
    then move the running mean toward the batch mean and the running variance toward the
    UNBIASED batch variance. Eval with running stats: normalise with them, change nothing.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training and eps <= 0.0:
        # torch 2.13 checks this too (F.batch_norm)
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    use_batch = training or stats is None
    if use_batch:
        n = x.size // x.shape[1]
        if n <= 1:
            raise ValueError("Expected more than 1 value per channel when training")
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        if training and stats is not None:
            factor = _update_factor(stats, momentum)
            stats.mean = (1.0 - factor) * stats.mean + factor * mean
            stats.var = (1.0 - factor) * stats.var + factor * var * n / (n - 1)
    else:
        assert stats is not None
        mean, var = stats.mean, stats.var
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return _affine(y, weight, bias)


def instance_norm(
    x: np.ndarray,
    stats: Optional[RunningStats],
    training: bool,
    momentum: Optional[float] = 0.1,
    eps: float = 1e-5,
    weight: Optional[np.ndarray] = None,
    bias: Optional[np.ndarray] = None,
) -> np.ndarray:
    """InstanceNorm1d/2d/3d: per-sample, per-channel statistics over the spatial axes.

    With running stats, training moves them toward the batch average of the instance means and of
    the UNBIASED instance variances; eval then normalises every sample with the running stats.
    Unlike BatchNorm, momentum=None means 0 (no update) and num_batches_tracked is not counted:
    torch's `_InstanceNorm` passes `momentum or 0.0` to `F.instance_norm`.
    """
    axes = tuple(range(2, x.ndim))
    if training or stats is None:
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        if training and stats is not None:
            n = int(np.prod([x.shape[a] for a in axes]))
            factor = 0.0 if momentum is None else momentum
            inst_mean = mean.reshape(x.shape[0], x.shape[1]).mean(axis=0)
            inst_var = (var * n / (n - 1)).reshape(x.shape[0], x.shape[1]).mean(axis=0)
            stats.mean = (1.0 - factor) * stats.mean + factor * inst_mean
            stats.var = (1.0 - factor) * stats.var + factor * inst_var
    else:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean, var = stats.mean.reshape(shape), stats.var.reshape(shape)
    return _affine((x - mean) / np.sqrt(var + eps), weight, bias)
