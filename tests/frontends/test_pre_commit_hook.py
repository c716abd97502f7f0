"""The published hook: `pre-commit try-repo` installs this checkout and runs `evallint` on the files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"

BUGGY = """\
import torch
import torch.nn as nn
model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
for x, y in val_loader:
    out = model(x)
"""

CLEAN = """\
import torch
import torch.nn as nn
model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
model.eval()
with torch.no_grad():
    for x, y in val_loader:
        out = model(x)
"""


def try_repo(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run the hook over a fresh git repository holding one staged training script."""
    work = tmp_path / "project"
    work.mkdir()
    (work / "train.py").write_text(source, encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "add", "train.py"], cwd=work, check=True)
    env = dict(
        os.environ, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), PRE_COMMIT_COLOR="never"
    )
    env["PATH"] = f"{PRE_COMMIT.parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(ROOT), "evallint", "--all-files"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.integration
def test_hook_fails_on_a_buggy_script(tmp_path: Path) -> None:
    completed = try_repo(tmp_path, BUGGY)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "train.py:5:11: EVL001 " in completed.stdout
    assert "train.py:5:11: EVL002 " in completed.stdout


@pytest.mark.integration
def test_hook_passes_on_a_clean_script(tmp_path: Path) -> None:
    completed = try_repo(tmp_path, CLEAN)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "EVL0" not in completed.stdout
