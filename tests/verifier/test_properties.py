"""Property tests: the NumPy reference equals torch over random shapes and settings, and a
reference that disagrees with torch surfaces as an `error` verdict, never as a confirmation."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from evallint.diagnostics import Diagnostic  # noqa: E402
from evallint.verifier import reference, verify  # noqa: E402
from evallint.verifier.layer_spec import LayerSpec  # noqa: E402
from evallint.verifier.torch_run import compare, run_dropout  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None)
momenta = st.one_of(st.none(), st.floats(0.01, 1.0))


def _input(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(
        rng.normal(size=(1, shape[1]) + (1,) * (len(shape) - 2)), rng.uniform(0.5, 2.0), size=shape
    )


@SETTINGS
@given(
    dims=st.sampled_from([0, 1, 2, 3]),
    batch=st.integers(2, 5),
    channels=st.integers(1, 4),
    spatial=st.integers(1, 3),
    momentum=momenta,
    eps=st.floats(1e-6, 1e-1),
    affine=st.booleans(),
    track=st.booleans(),
    batches=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_batchnorm_reference_matches_torch(
    dims: int,
    batch: int,
    channels: int,
    spatial: int,
    momentum: Optional[float],
    eps: float,
    affine: bool,
    track: bool,
    batches: int,
    seed: int,
) -> None:
    """dims 0 is BatchNorm1d on (N, C); 1-3 are BatchNorm{d}d with d spatial axes."""
    kind = f"BatchNorm{max(dims, 1)}d"
    shape = (batch, channels) + (spatial,) * dims
    layer = getattr(torch.nn, kind)(
        channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track
    ).double()
    weight = bias = None
    if affine:
        rng = np.random.default_rng(seed + 1)
        weight, bias = rng.uniform(0.5, 1.5, channels), rng.normal(size=channels)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias))
    stats = reference.RunningStats.fresh(channels) if track else None
    for index in range(batches):
        x = _input(shape, seed + index)
        got = layer.train()(torch.from_numpy(x)).detach().numpy()
        assert compare(
            "train", reference.batch_norm(x, stats, True, momentum, eps, weight, bias), got
        ).ok
        if track:
            assert stats is not None
            assert compare("running_mean", stats.mean, layer.running_mean.numpy()).ok
            assert compare("running_var", stats.var, layer.running_var.numpy()).ok
            assert stats.num_batches_tracked == int(layer.num_batches_tracked)
        got_eval = layer.eval()(torch.from_numpy(x)).detach().numpy()
        assert compare(
            "eval", reference.batch_norm(x, stats, False, momentum, eps, weight, bias), got_eval
        ).ok


@SETTINGS
@given(
    dims=st.sampled_from([1, 2, 3]),
    batch=st.integers(1, 4),
    channels=st.integers(1, 4),
    spatial=st.integers(2, 4),
    momentum=momenta,
    eps=st.floats(1e-6, 1e-1),
    affine=st.booleans(),
    batches=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_instance_norm_with_running_stats_matches_torch(
    dims: int,
    batch: int,
    channels: int,
    spatial: int,
    momentum: Optional[float],
    eps: float,
    affine: bool,
    batches: int,
    seed: int,
) -> None:
    layer = getattr(torch.nn, f"InstanceNorm{dims}d")(
        channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=True
    ).double()
    weight = layer.weight.detach().numpy() if affine else None
    bias = layer.bias.detach().numpy() if affine else None
    stats = reference.RunningStats.fresh(channels)
    for index in range(batches):
        x = _input((batch, channels) + (spatial,) * dims, seed + index)
        got = layer.train()(torch.from_numpy(x)).detach().numpy()
        assert compare(
            "train", reference.instance_norm(x, stats, True, momentum, eps, weight, bias), got
        ).ok
        assert compare("running_mean", stats.mean, layer.running_mean.numpy()).ok
        assert compare("running_var", stats.var, layer.running_var.numpy()).ok
        got_eval = layer.eval()(torch.from_numpy(x)).detach().numpy()
        assert compare(
            "eval", reference.instance_norm(x, stats, False, momentum, eps, weight, bias), got_eval
        ).ok


@SETTINGS
@given(
    kind=st.sampled_from(
        ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
    ),
    p=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**16),
)
def test_dropout_family_reference_matches_torch_in_both_modes(
    kind: str, p: float, seed: int
) -> None:
    run = run_dropout(LayerSpec(kind, {"p": p}), seed)
    assert run.checks and all(check.ok for check in run.checks), [c for c in run.checks if not c.ok]
    assert run.figures["eval_dropped_fraction"] == 0.0


@SETTINGS
@given(
    lower=st.floats(0.0, 0.5),
    width=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
    training=st.booleans(),
)
def test_rrelu_reference_matches_torch(
    lower: float, width: float, seed: int, training: bool
) -> None:
    upper = lower + width
    x = np.random.default_rng(seed).normal(size=(16, 16))
    torch.manual_seed(seed)
    got = torch.nn.RReLU(lower, upper).double().train(training)(torch.from_numpy(x)).numpy()
    negative = x < 0
    slopes = np.where(negative, got / np.where(negative, x, 1.0), 1.0) if training else None
    assert compare("rrelu", reference.rrelu(x, lower, upper, training, slopes), got).ok
    if training and negative.any():
        assert lower - 1e-9 <= slopes[negative].min() and slopes[negative].max() <= upper + 1e-9


MODEL = """
    from torch import nn
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.3))
    model(None)
"""


def test_a_perturbed_reference_is_an_error_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(MODEL))
    diagnostic = Diagnostic(str(path), 4, 1, 4, 10, "EVL001", "m", (), "model")
    assert verify([diagnostic])[0].verdict == "confirmed"
    real = reference.batch_norm
    monkeypatch.setattr(reference, "batch_norm", lambda *a, **k: real(*a, **k) * (1 + 1e-3))
    [finding] = verify([diagnostic])
    assert finding.verdict == "error"
    assert "NumPy reference and torch disagree on BatchNorm1d" in finding.summary


def test_a_perturbed_dropout_reference_is_an_error_verdict_for_evl004(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "head.py"
    path.write_text(
        "import torch.nn.functional as F\nclass Head:\n    def forward(self, x):\n        return F.dropout(x, 0.4)\n"
    )
    diagnostic = Diagnostic(str(path), 4, 16, 4, 32, "EVL004", "m", (), "dropout")
    real = reference.dropout
    monkeypatch.setattr(
        reference,
        "dropout",
        lambda x, p, keep, training: real(x, p, keep, training) + (0.01 if training else 0.0),
    )
    [finding] = verify([diagnostic])
    assert finding.verdict == "error" and "F.dropout acting output" in finding.summary
