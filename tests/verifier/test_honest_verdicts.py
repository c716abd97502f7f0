"""Regression tests for issue 17's wrong verdicts and numbers: each failed before the fix.

A verdict must say only what was established: `not affected` only when every argument that
decides mode dependence was read and every caller was followed; numbers name what they
measured and what they assumed, and do not depend on what else ran.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.autograd.graph import saved_tensors_hooks  # noqa: E402

from evallint.diagnostics import Diagnostic  # noqa: E402
from evallint.verifier import verify  # noqa: E402
from evallint.verifier.live import check_module  # noqa: E402


def _one(tmp_path: Path, source: str, code: str = "EVL001", subject: str = "model") -> object:
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent(source))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "# flagged" in text)
    [found] = verify([Diagnostic(str(path), line, 1, line, 5, code, "msg", (), subject)])
    return found


def test_unread_deciding_argument_is_unresolved_naming_it(tmp_path: Path) -> None:
    # was: not affected (the LSTM's dropout read as torch's default 0.0)
    found = _one(
        tmp_path,
        """
        from torch import nn
        def build(cfg):
            return nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4, 2, dropout=cfg.dropout))
        model = build(None)
        model(1)  # flagged
        """,
    )
    assert found.verdict == "unresolved", found.summary
    assert "`dropout` of LSTM" in found.summary


def test_unread_dropout_p_is_not_printed_as_read(tmp_path: Path) -> None:
    # was: confirmed, "Dropout(p=0.5)" although p is `cfg.p`
    found = _one(
        tmp_path,
        """
        from torch import nn
        def build(cfg):
            return nn.Sequential(nn.Linear(4, 4), nn.Dropout(cfg.p))
        model = build(None)
        model(1)  # flagged
        """,
    )
    assert found.verdict == "unresolved", found.summary
    assert "`p` of Dropout" in found.summary and "p=0.5" not in found.summary


def test_every_caller_is_checked_and_the_deciding_one_named(tmp_path: Path) -> None:
    # was: not affected (only the first caller, which passes a Linear-only model, was followed)
    found = _one(
        tmp_path,
        """
        from torch import nn
        def evaluate(net):
            return net(1)  # flagged
        plain = nn.Sequential(nn.Linear(4, 4))
        evaluate(plain)
        noisy = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3))
        evaluate(noisy)
        """,
        subject="net",
    )
    assert found.verdict == "confirmed", found.summary
    assert "evaluate(noisy)" in found.summary and ":8" in found.evidence["caller"]


def test_one_unfollowed_caller_leaves_the_verdict_open(tmp_path: Path) -> None:
    found = _one(
        tmp_path,
        """
        from torch import nn
        import registry
        def evaluate(net):
            return net(1)  # flagged
        evaluate(nn.Sequential(nn.Linear(4, 4)))
        evaluate(registry.get("model"))
        """,
        subject="net",
    )
    assert found.verdict == "unresolved", found.summary


@pytest.mark.parametrize(
    "layer",
    [
        "nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0)",
        "nn.Transformer(16, 2, 1, 1, 32, dropout=0.0)",
        "nn.Dropout(p=0)",
        "nn.MultiheadAttention(16, 2)",
    ],
)
def test_zero_dropout_is_not_affected(tmp_path: Path, layer: str) -> None:
    # was: confirmed for the Transformer layers whatever their dropout
    found = _one(
        tmp_path,
        f"""
        from torch import nn
        model = nn.Sequential(nn.Linear(16, 16), {layer})
        model(1)  # flagged
        """,
    )
    assert found.verdict == "not-affected", found.summary


def test_alpha_dropout_is_not_described_as_zeroed(tmp_path: Path) -> None:
    found = _one(
        tmp_path,
        """
        from torch import nn
        model = nn.Sequential(nn.Linear(16, 16), nn.AlphaDropout(0.2))
        model(1)  # flagged
        """,
    )
    assert found.verdict == "confirmed"
    assert "zeroed" not in found.summary and "saturation value -alpha'" in found.summary


def test_text_and_json_say_what_was_measured_and_what_was_assumed(tmp_path: Path) -> None:
    found = _one(
        tmp_path,
        """
        from torch import nn
        def build(width):
            return nn.Sequential(nn.BatchNorm1d(width), nn.Linear(4, 4))
        model = build(int("7"))
        model(1)  # flagged
        """,
    )
    assert found.verdict == "confirmed"
    assert "measured: each layer alone, freshly built, on synthetic data" in found.summary
    assert "not the user's trained model" in found.evidence["measured"]
    assert found.evidence["assumed"] == {"BatchNorm1d()": {"num_features": 64}}
    assert "predictions" not in found.summary


def _true_saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """What autograd keeps for `model(x)`: each saved storage once, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    assert out is not None
    return sum(storages.values())


def test_memory_reads_pooling_arguments_and_counts_shared_storage_once(tmp_path: Path) -> None:
    # was: MaxPool2d(2) built with an assumed kernel of 3, the ReLU output counted again as
    # the pooling's input, and the input size assumed without saying so
    found = _one(
        tmp_path,
        """
        from torch import nn
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(8 * 16 * 16, 10),
        )
        model(1)  # flagged
        """,
        code="EVL002",
    )
    assert found.verdict == "confirmed", found.summary
    memory = found.evidence["memory"]
    shape = found.evidence["assumed"]["input"]
    assert shape == [32, 3, 32, 32] and "input [32, 3, 32, 32]" in found.summary
    torch.manual_seed(0)
    real = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 10),
    ).eval()
    assert memory["grad_bytes"] == _true_saved_bytes(real, torch.randn(*shape))


def test_drift_counts_every_train_mode_batch() -> None:
    # was: the statistics were read after the first train-mode batch, so 10 batches moved
    # them 9 times (and a single batch not at all)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    report = check_module(model, (16, 4), batches=1)
    assert report.batches == 1 and report.drift[0].running_mean_shift > 0


def test_each_verdict_seeds_its_own_generator(tmp_path: Path) -> None:
    # was: the LSTM was built from the global generator, so its figures changed with the run
    source = """
        from torch import nn
        model = nn.LSTM(8, 8, 2, dropout=0.3)
        model(1)  # flagged
        """
    torch.manual_seed(1)
    first = _one(tmp_path, source)
    torch.manual_seed(2)
    torch.randn(1000)
    second = _one(tmp_path, source)
    assert first.verdict == "confirmed"
    assert first.evidence["measurements"] == second.evidence["measurements"]


def test_absurd_argument_is_unresolved_quickly(tmp_path: Path) -> None:
    # was: a hang (10**10**9 evaluated as a Python integer)
    start = time.monotonic()
    found = _one(
        tmp_path,
        """
        from torch import nn
        model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(p=10**10**9))
        model(1)  # flagged
        """,
    )
    assert time.monotonic() - start < 30
    assert found.verdict == "unresolved" and "`p` of Dropout" in found.summary


def test_out_of_range_argument_is_unresolved_not_a_crash(tmp_path: Path) -> None:
    found = _one(
        tmp_path,
        """
        from torch import nn
        model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(p=5.0))
        model(1)  # flagged
        """,
    )
    assert found.verdict == "unresolved" and "torch rejects Dropout(p=5.0)" in found.summary


def test_sarif_carries_the_verdict_and_what_was_measured(tmp_path: Path) -> None:
    # was: `--verify --format sarif` printed the text format
    import json
    import subprocess
    import sys

    path = tmp_path / "ev.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3))
            with torch.no_grad():
                for x in val_loader:
                    acc = model(x).argmax(1)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "evallint", "verify", str(path), "--format", "sarif"],
        capture_output=True,
        text=True,
        check=False,
    )
    [result] = json.loads(done.stdout)["runs"][0]["results"]
    assert result["properties"]["verdict"] == "confirmed"
    assert "synthetic data" in result["properties"]["measured"]


def test_text_output_names_the_verdict_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # was: "verdict: unresolved: unresolved: argument `p` ..." and "not-affected: not affected:"
    from evallint.cli import main

    path = tmp_path / "ev.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            def build(cfg):
                return nn.Sequential(nn.Linear(4, 4), nn.Dropout(cfg.p))
            model = build(None)
            with torch.no_grad():
                for x in val_loader:
                    acc = model(x).argmax(1)
            """
        )
    )
    main(["verify", str(path), "--no-cache", "--exit-zero"])
    out = capsys.readouterr().out
    assert "verdict: unresolved: argument `p` of Dropout" in out, out
    assert "unresolved: unresolved" not in out
