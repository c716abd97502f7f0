"""Verdicts for EVL004 (functional dropout), EVL005 (`.training = ...`), EVL006 (loss kept with
its graph) and the `--import` dynamic mode, on the project's fixtures and small sources."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("numpy")
pytest.importorskip("torch")

from evallint.diagnostics import Diagnostic  # noqa: E402
from evallint.engine.run import lint_paths  # noqa: E402
from evallint.verifier import verify  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATA = Path(__file__).resolve().parent / "data"


def verified(name: str, code: str, **kwargs: bool) -> list:
    diagnostics = [d for d in lint_paths([str(FIXTURES / name)]) if d.code == code]
    assert diagnostics, f"{name} has no {code} finding"
    return verify(diagnostics, **kwargs)


def test_evl004_dropout_in_eval_measures_the_zeroed_fraction_with_p_from_init_default() -> None:
    [finding] = verified("evl004_mlp_functional_dropout_no_flag.py", "EVL004")
    assert finding.verdict == "confirmed"
    figures = finding.evidence["measurement"]["figures"]
    assert figures["p"] == 0.3 and figures["host_mode"] == "eval"
    assert figures["dropped_fraction"] == pytest.approx(0.3, abs=0.02)
    assert (
        "still zeroes 30." in finding.summary
        and "ProjectionHead.__init__" in finding.evidence["origins"]["p"]
    )


def test_evl004_never_acting_alpha_dropout_and_rrelu() -> None:
    alpha, feature = verified("evl004_selu_alpha_dropout_never_active.py", "EVL004")
    assert alpha.verdict == feature.verdict == "confirmed"
    assert alpha.evidence["measurement"]["figures"]["host_mode"] == "train"
    assert "drops 0% of activations instead of" in alpha.summary
    rrelu, dropout2d = verified("evl004_rrelu_and_dropout2d_spelled_out.py", "EVL004")
    # `self.lower, self.upper, self.p = lower, upper, p` is read (tuple assignment): the
    # slopes come from the constructor's defaults (1/8, 1/3), not assumed from torch's
    assert "fixed slope 0.229" in rrelu.summary and "assumed" not in rrelu.summary
    assert "[0.125, 0.333]" in rrelu.summary
    assert dropout2d.evidence["measurement"]["figures"]["unit"] == "channels"


def test_evl004_p_zero_is_not_affected_and_checks_pass(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import torch.nn.functional as F\nclass M:\n    def forward(self, x):\n        return F.dropout(x, 0.0)\n"
    )
    [finding] = verify([Diagnostic(str(path), 4, 16, 4, 32, "EVL004", "m", (), "dropout")])
    assert finding.verdict == "not-affected"
    assert finding.evidence["measurement"]["checks"]["failed"] == []


def test_evl005_training_false_lists_children_left_in_training_mode() -> None:
    true_case, false_case = verified("evl005_evl001_training_attribute_false.py", "EVL005")
    assert false_case.verdict == "confirmed"
    live = false_case.evidence["live"]
    assert live["top_training"] is False and any(c["training"] for c in live["children"])
    assert "still have training=True" in false_case.summary
    assert true_case.summary.startswith("starting from eval mode")


def test_evl005_other_kinds_are_skipped_and_linear_only_is_not_affected(tmp_path: Path) -> None:
    assert verified("evl005_with_no_grad_not_called.py", "EVL005") == []
    path = tmp_path / "lin.py"
    path.write_text(
        "from torch import nn\nmodel = nn.Sequential(nn.Linear(3, 3), nn.ReLU())\nmodel.training = False\n"
    )
    [finding] = verify([Diagnostic(str(path), 3, 1, 3, 23, "EVL005", "m", (), "model")])
    assert finding.verdict == "not-affected" and "still have training=True" in finding.summary


def test_evl006_graph_kept_per_iteration_vs_item() -> None:
    [finding] = verified("evl006_running_loss_keeps_graph.py", "EVL006")
    accumulation = finding.evidence["accumulation"]
    assert finding.verdict == "confirmed" and accumulation["backward_in_loop"]
    assert accumulation["kept_autograd_nodes_per_iteration"] > 0
    assert (
        accumulation["item_autograd_nodes_per_iteration"]
        == accumulation["item_bytes_per_iteration"]
        == 0
    )


def test_evl006_without_backward_keeps_activations_of_the_resolved_model(tmp_path: Path) -> None:
    path = tmp_path / "loop.py"
    path.write_text(
        textwrap.dedent("""
        from torch import nn
        model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
        losses = []
        for x in loader:
            loss = model(x).sum()
            losses.append(loss)
    """)
    )
    [finding] = verify([Diagnostic(str(path), 7, 5, 7, 24, "EVL006", "m", (), "losses")])
    accumulation = finding.evidence["accumulation"]
    assert finding.verdict == "confirmed" and not accumulation["backward_in_loop"]
    assert (
        accumulation["model"] == "model" and accumulation["kept_bytes_per_iteration"] >= 16 * 32 * 4
    )
    assert "of saved activations" in finding.summary


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copy(DATA / name, target)
    return target


def test_import_instantiates_a_guarded_model_file_without_running_main(tmp_path: Path) -> None:
    _copy(tmp_path, "guarded_model.py")
    user = tmp_path / "evaluate.py"
    user.write_text(
        textwrap.dedent("""
        from guarded_model import Net, Plain
        model = Net(12, p=0.25)
        plain = Plain()
        model(None)
    """)
    )
    confirmed, plain = verify(
        [
            Diagnostic(str(user), 5, 1, 5, 10, "EVL001", "m", (), "model"),
            Diagnostic(str(user), 5, 1, 5, 10, "EVL001", "m", (), "plain"),
        ],
        import_modules=True,
    )
    dynamic = confirmed.evidence["dynamic"]
    assert confirmed.verdict == "confirmed", confirmed.summary
    assert [(m["name"], m["type"]) for m in dynamic["mode_dependent"]] == [
        ("bn", "BatchNorm1d"),
        ("drop", "Dropout"),
    ]
    assert dynamic["arguments"] == "(12, p=0.25)" and dynamic["train_vs_eval_mean_abs"] > 0
    assert plain.verdict == "not-affected"


def test_import_refuses_non_literal_arguments_and_reports_a_failing_top_level(
    tmp_path: Path,
) -> None:
    _copy(tmp_path, "guarded_model.py")
    _copy(tmp_path, "script_with_top_level_code.py")
    user = tmp_path / "evaluate.py"
    user.write_text(
        textwrap.dedent("""
        import sys
        from guarded_model import Net
        from script_with_top_level_code import Head
        model = Net(int(sys.argv[1]))
        head = Head()
        model(None)
    """)
    )
    args, script = verify(
        [
            Diagnostic(str(user), 7, 1, 7, 10, "EVL001", "m", (), "model"),
            Diagnostic(str(user), 7, 1, 7, 10, "EVL001", "m", (), "head"),
        ],
        import_modules=True,
    )
    assert "is not a literal" in args.summary and args.evidence["dynamic"]["refused"]
    # --import runs the module (in a child process): its top-level error is the reason
    assert "raised RuntimeError: top-level code ran" in script.summary
    # a refused import never overrides a conclusive static verdict
    assert script.verdict == script.evidence["dynamic"]["static_verdict"] == "confirmed"
    assert args.verdict == args.evidence["dynamic"]["static_verdict"]
