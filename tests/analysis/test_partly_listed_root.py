"""A project root listed only in part (`MAX_INDEXED_FILES`, files in name order) must still
hold the file being linted in its view of the project's classes and methods: before, a file
that sorted past the cut lost its own classes' forward methods from that view, and a module
call whose constant argument picks a `no_grad` branch of `forward` was reported as an
EVL002 (found when new files in the repository pushed a fixture past the cut)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evallint import lint_paths
from evallint.analysis import project_files

SCRIPT = """
import torch
import torch.nn as nn


class Dispatching(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.3), nn.Linear(8, 8))

    def forward(self, batch, mode):
        x = batch["x"].float()
        if mode == "loss":
            return (self.net(x) - batch["y"]).pow(2).mean()
        elif mode == "inference":
            with torch.no_grad():
                out = self.net(x)
            return out
        raise ValueError(mode)


model = Dispatching()
model.eval()
for batch in test_loader:
    save_images(model(batch, mode="inference"))
"""


def _project(tmp_path: Path, script_text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for index in range(3):  # files sorting before the script fill the listing
        (tmp_path / f"a_filler_{index}.py").write_text(f"VALUE_{index} = {index}\n")
    script = tmp_path / "z_translate.py"
    script.write_text(script_text)
    return script


@pytest.mark.parametrize("cut", [2, 1000])
def test_file_past_the_listing_cut_keeps_its_own_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    script = _project(tmp_path, SCRIPT)
    monkeypatch.setattr(project_files, "MAX_INDEXED_FILES", cut)
    listed = project_files.project_files(tmp_path.resolve())
    assert (script.resolve() in listed) is (cut > 4)
    assert [(d.line, d.code) for d in lint_paths([str(script)])] == []


def test_the_same_call_with_the_grad_branch_is_still_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _project(tmp_path, SCRIPT.replace('mode="inference"', 'mode="loss"'))
    monkeypatch.setattr(project_files, "MAX_INDEXED_FILES", 2)
    assert "EVL002" in {d.code for d in lint_paths([str(script)])}
