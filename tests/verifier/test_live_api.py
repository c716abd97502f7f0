"""The library API: `evallint.verify.check_module` and `evallint.verify.guard` on live models."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from evallint.verify import EvalModeError, EvalModeWarning, check_module, guard  # noqa: E402


def mlp_with_dropout_and_bn() -> nn.Module:
    return nn.Sequential(
        nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)
    )


def test_import_needs_no_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['numpy'] = None\n"
        "import evallint.verify as v\n"
        "try:\n    v.check_module(object())\nexcept ImportError as e:\n    print('OK', 'torch-evallint[verify]' in str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "OK True"


def test_check_module_finds_dropout_and_batchnorm_with_qualified_names() -> None:
    model = mlp_with_dropout_and_bn()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    report = check_module(model)
    assert [(m.name, m.type) for m in report.mode_dependent] == [
        ("1", "BatchNorm1d"),
        ("3", "Dropout"),
    ]
    assert report.input_shape == (8, 8)
    assert report.affected and report.train_vs_eval_mean_abs > 0.1
    [drift] = report.drift
    assert drift.name == "1" and drift.running_mean_shift > 0.01 and drift.running_var_shift > 0.01
    assert report.eval_output_change_mean_abs > 0
    # the caller's model, buffers, mode and RNG are untouched
    assert model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert "BatchNorm1d" in report.summary() and report.to_json()["mode_dependent"][1][
        "params"
    ] == {"p": 0.5}


def test_check_module_reports_none_for_linear_relu_layernorm() -> None:
    report = check_module(
        nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 2))
    )
    assert report.mode_dependent == () and not report.affected
    assert report.train_vs_eval_max_abs == 0.0 and report.drift == ()
    assert "no submodule depends on train/eval mode" in report.summary()


def test_check_module_nested_names_conv_input_and_custom_training_flag() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.norm = nn.BatchNorm2d(4, momentum=None)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(self.conv(x))

    class Noisy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(5, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) + (1.0 if self.training else 0.0)

    report = check_module(nn.Sequential(Block(), nn.Flatten()))
    assert [(m.name, m.type) for m in report.mode_dependent] == [("0.norm", "BatchNorm2d")]
    assert report.input_shape[:2] == (8, 3)
    noisy = check_module(Noisy())
    assert noisy.mode_dependent == () and noisy.affected and noisy.notes


def test_check_module_without_a_sized_first_layer_says_why() -> None:
    report = check_module(nn.Sequential(nn.ReLU(), nn.Dropout()))
    assert report.problem and "example_input" in report.problem
    assert [m.type for m in report.mode_dependent] == ["Dropout"]
    assert check_module(nn.Sequential(nn.ReLU(), nn.Dropout()), (4, 6)).train_vs_eval_mean_abs > 0


def test_guard_raises_on_train_mode_forward_under_no_grad() -> None:
    model = mlp_with_dropout_and_bn()
    with pytest.raises(EvalModeError, match="training mode"), torch.no_grad(), guard(model):
        model(torch.randn(4, 8))


def test_guard_catches_children_left_in_training_mode() -> None:
    model = mlp_with_dropout_and_bn()
    model.training = False  # the top flag only: BatchNorm and Dropout stay in training mode
    with (
        pytest.raises(EvalModeError, match="submodule `1` \\(BatchNorm1d\\)"),
        torch.inference_mode(),
        guard(model),
    ):
        model(torch.randn(4, 8))


def test_guard_silent_for_correct_eval_loop_and_training_step() -> None:
    model = mlp_with_dropout_and_bn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with guard(model):
            model.train()
            loss = model(torch.randn(4, 8)).sum()
            loss.backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                for _ in range(2):
                    model(torch.randn(4, 8))
        with guard(model).evaluating():
            model(torch.randn(4, 8))  # still in eval mode
    assert not model._forward_pre_hooks and not model[1]._forward_pre_hooks  # hooks removed


def test_guard_evaluating_block_and_warn_action() -> None:
    model = mlp_with_dropout_and_bn()
    with pytest.raises(EvalModeError, match="evaluating"), guard(model).evaluating():
        model(torch.randn(4, 8))
    with pytest.warns(EvalModeWarning), torch.no_grad(), guard(model, action="warn"):
        model(torch.randn(4, 8))
    with pytest.raises(ValueError):
        guard(model, action="ignore")  # type: ignore[arg-type]
