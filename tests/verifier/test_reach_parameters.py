"""A model that holds only `nn.Parameter` tensors (session 13).

Before: `no layers found in class ...` (unresolved) for EVL002. The tensors require grad, so
autograd records the forward's operations on them: the finding holds (`confirmed`, with no
memory figure: the forward is the class's own tensor code). Frozen tensors
(`requires_grad=False`) confirm nothing, and EVL001 stays `not affected` (nothing in the class
depends on the mode).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.verifier.projects import verify_flagged as _verify  # noqa: E402
from tests.verifier.projects import write_project as _write  # noqa: E402

MIXTURE = """
import torch
from torch import nn
class Mixture(nn.Module):
    def __init__(self, k, d):
        super().__init__()
        self.means = nn.Parameter(torch.randn(k, d){flag})
        self.k = k
    def forward(self, x):
        return ((x[:, None, :] - self.means) ** 2).sum(-1)
def score(x):
    model = Mixture(3, 2)
    model.eval()
    return model(x)  # flagged
"""


@pytest.mark.parametrize(
    ("flag", "verdict"),
    [
        ("", "confirmed"),
        (", requires_grad=True", "confirmed"),
        (", requires_grad=False", "unresolved"),
    ],
)
def test_parameters_held_directly_are_recorded_by_autograd(
    tmp_path: Path, flag: str, verdict: str
) -> None:
    _write(tmp_path, {"m.py": MIXTURE.format(flag=flag)})
    found = _verify(tmp_path / "m.py", "model", "EVL002")
    assert found.verdict == verdict, found.summary
    if verdict == "confirmed":
        assert "`self.means` (m.py:7)" in found.summary, found.summary
        assert "not measured" in found.summary, found.summary


def test_parameters_held_directly_do_not_depend_on_the_mode(tmp_path: Path) -> None:
    _write(tmp_path, {"m.py": MIXTURE.format(flag="")})
    assert _verify(tmp_path / "m.py", "model", "EVL001").verdict == "not-affected"
