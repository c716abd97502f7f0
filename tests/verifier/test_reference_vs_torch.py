"""The NumPy reference agrees with real torch layers (pytorch-facts.md numerics)."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

from evallint.verifier import reference  # noqa: E402
from evallint.verifier.layer_spec import LayerSpec  # noqa: E402
from evallint.verifier.torch_run import TOLERANCE, run_dropout, run_norm, run_rrelu  # noqa: E402


@pytest.mark.parametrize("kind", ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"])
@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_running_stats_and_outputs_match_torch(
    kind: str, momentum: object, affine: bool
) -> None:
    run = run_norm(
        LayerSpec(kind, {"num_features": 6, "momentum": momentum, "affine": affine, "eps": 1e-3})
    )
    assert run.checks and all(check.ok for check in run.checks), [c for c in run.checks if not c.ok]
    assert run.figures["running_mean_shift"] > 0.05
    assert run.figures["train_vs_eval_mean_abs"] > 0.05


def test_batchnorm_uses_biased_var_to_normalise_and_unbiased_for_running_var() -> None:
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 3))
    stats = reference.RunningStats.fresh(3)
    out = reference.batch_norm(x, stats, True, momentum=1.0, eps=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1.0)
    np.testing.assert_allclose(stats.var, x.var(axis=0, ddof=1))
    np.testing.assert_allclose(stats.mean, x.mean(axis=0))
    layer = torch.nn.BatchNorm1d(3, momentum=1.0, eps=1e-12).double()
    layer(torch.from_numpy(x))
    np.testing.assert_allclose(layer.running_var.numpy(), stats.var, rtol=TOLERANCE)


def test_momentum_none_is_a_cumulative_average() -> None:
    batches = [np.random.default_rng(i).normal(i, 1.0, size=(8, 2)) for i in range(3)]
    stats = reference.RunningStats.fresh(2)
    for x in batches:
        reference.batch_norm(x, stats, True, momentum=None)
    np.testing.assert_allclose(stats.mean, np.mean([x.mean(axis=0) for x in batches], axis=0))
    assert stats.num_batches_tracked == 3


def test_batchnorm_rejects_a_batch_of_one_and_eps_zero_in_training_like_torch() -> None:
    for x, eps, message in (
        (np.ones((1, 3)), 1e-5, "more than 1 value per channel"),
        (np.ones((2, 3)), 0.0, "eps must be positive"),
    ):
        with pytest.raises(ValueError, match=message):
            reference.batch_norm(x, reference.RunningStats.fresh(3), True, eps=eps)
        with pytest.raises(ValueError, match=message):
            torch.nn.BatchNorm1d(3, eps=eps).double()(torch.from_numpy(x))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_instance_norm_with_running_stats_matches_torch(momentum: object) -> None:
    run = run_norm(
        LayerSpec(
            "InstanceNorm2d", {"num_features": 3, "track_running_stats": True, "momentum": momentum}
        )
    )
    assert all(check.ok for check in run.checks)
    assert (run.figures["running_mean_shift"] == 0.0) == (momentum is None)


@pytest.mark.parametrize("p", [0.25, 0.5, 0.9])
def test_dropout_scales_survivors_by_one_over_keep(p: float) -> None:
    run = run_dropout(LayerSpec("Dropout", {"p": p}))
    assert all(check.ok for check in run.checks)
    assert run.figures["survivor_scale"] == pytest.approx(1.0 / (1.0 - p))
    assert run.figures["dropped_fraction"] == pytest.approx(p, abs=0.02)
    assert run.figures["eval_dropped_fraction"] == 0.0


@pytest.mark.parametrize(
    "kind", ["Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
)
def test_dropout_variants_match_torch_with_the_same_mask(kind: str) -> None:
    run = run_dropout(LayerSpec(kind, {"p": 0.3}))
    assert all(check.ok for check in run.checks), [c for c in run.checks if not c.ok]
    assert run.figures["unit"] == ("activations" if kind == "AlphaDropout" else "channels")


def test_reference_dropout_with_a_wrong_mask_is_caught() -> None:
    x = np.random.default_rng(0).normal(size=(8, 8))
    out = torch.nn.Dropout(0.5)(torch.from_numpy(x)).numpy()
    wrong = reference.dropout(x, 0.5, np.ones_like(x, dtype=bool), True)
    assert np.max(np.abs(out - wrong)) > TOLERANCE


def test_rrelu_eval_slope_is_the_mean_of_lower_and_upper() -> None:
    run = run_rrelu(LayerSpec("RReLU", {"lower": 0.1, "upper": 0.3}))
    assert all(check.ok for check in run.checks)
    assert run.figures["eval_slope"] == pytest.approx(0.2)
    assert 0.1 <= run.figures["train_slope_min"] < run.figures["train_slope_max"] <= 0.3
    x = np.array([-2.0, 3.0])
    np.testing.assert_allclose(
        reference.rrelu(x, 1 / 8, 1 / 3, False), [-2.0 * (1 / 8 + 1 / 3) / 2, 3.0]
    )
