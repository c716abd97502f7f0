"""Verdicts and evidence for hand-built diagnostics."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("numpy")
pytest.importorskip("torch")

from evallint.diagnostics import Diagnostic  # noqa: E402
from evallint.verifier import VERDICTS, verify  # noqa: E402

MODELS = """
    import torch
    from torch import nn

    class Good(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.act = nn.ReLU()
            self.norm = nn.LayerNorm(16)

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.drop = nn.Dropout(p=0.5)

    good = Good()
    bad = Bad()
    other = load_somehow()
"""


@pytest.fixture()
def source(tmp_path: Path) -> str:
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(MODELS))
    return str(path)


def diag(path: str, code: str, subject: str) -> Diagnostic:
    return Diagnostic(path, 22, 1, 22, 10, code, "message", (), subject)


def test_dropout_batchnorm_model_is_confirmed(source: str) -> None:
    [finding] = verify([diag(source, "EVL001", "bad")])
    assert finding.verdict == "confirmed"
    assert (
        "Dropout(p=0.5) at net.py:17" in finding.summary
        and "% of activations zeroed" in finding.summary
    )
    assert (
        "BatchNorm2d(8) at net.py:16: one validation pass of 10 batches moved running_mean"
        in finding.summary
    )
    types = [m["type"] for m in finding.evidence["measurements"]]
    assert types == ["Dropout", "BatchNorm2d"]
    assert all(not m["checks"]["failed"] for m in finding.evidence["measurements"])
    payload = json.loads(json.dumps(finding.to_json()))
    assert payload["verdict"] == "confirmed" and payload["code"] == "EVL001"
    assert {layer["type"] for layer in payload["evidence"]["layers"]} == {
        "Conv2d",
        "BatchNorm2d",
        "Dropout",
    }


def test_linear_layernorm_model_is_not_affected(source: str) -> None:
    eval_mode, training = verify([diag(source, "EVL001", "good"), diag(source, "EVL003", "good")])
    assert eval_mode.verdict == training.verdict == "not-affected"
    assert "only Linear/ReLU/LayerNorm" in eval_mode.summary


def test_unknown_constructor_is_unresolved(source: str) -> None:
    [finding] = verify([diag(source, "EVL001", "other")])
    assert finding.verdict == "unresolved"
    assert "load_somehow(...)" in finding.summary


def test_evl002_measures_saved_activations_against_zero(source: str) -> None:
    [finding] = verify([diag(source, "EVL002", "good")])
    memory = finding.evidence["memory"]
    assert finding.verdict == "confirmed"
    assert memory["grad_bytes"] > 0 and memory["no_grad_bytes"] == 0
    # Linear(16,16) on a batch of 32 saves at least its float32 input
    assert memory["per_layer"][0]["bytes"] >= 32 * 16 * 4


def test_evl003_phrasing_and_other_codes_skipped(source: str) -> None:
    findings = verify([diag(source, "EVL003", "bad"), diag(source, "EVL999", "bad")])
    assert [f.diagnostic.code for f in findings] == ["EVL003"]
    assert "drops 0% instead of" in findings[0].summary
    assert findings[0].verdict in VERDICTS


def test_plot_writes_one_png_per_confirmed_finding(source: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from evallint.verifier import write_plots

    findings = verify(
        [
            diag(source, "EVL001", "bad"),
            diag(source, "EVL002", "bad"),
            diag(source, "EVL001", "good"),
        ]
    )
    written = write_plots(findings, str(tmp_path / "plots"))
    assert len(written) == 2
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in written)
