"""The pytest plugin around a small generated project: library code proved by its own tests."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.slow  # each test runs pytest in a child that imports torch

LIBRARY = """\
import torch
from torch import nn


def build():
    return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))


def predict(model, batch):
    with torch.no_grad():
        return model(batch).argmax(1)  # runtime: EVL001


def fit(model, batch, target, steps=3):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(batch), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""

TESTS = """\
import torch
from mylib import build, fit, predict


def test_predict_shape():
    torch.manual_seed(0)
    model = build()
    assert predict(model, torch.randn(16, 4)).shape == (16,)


def test_fit_then_direct_call():
    model = build()
    fit(model, torch.randn(8, 4), torch.randint(0, 3, (8,)))
    assert model(torch.randn(2, 4)).shape == (2, 3)
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "mylib.py").write_text(LIBRARY, encoding="utf-8")
    (tmp_path / "test_mylib.py").write_text(TESTS, encoding="utf-8")
    return tmp_path


def pytest_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_plugin_reports_library_events_matched_to_static_findings(tmp_path: Path) -> None:
    root = project(tmp_path)
    done = pytest_in(root, "-p", "evallint.runtime.pytest_plugin")
    assert "2 passed" in done.stdout, done.stdout + done.stderr
    assert "evallint runtime checker" in done.stdout
    line = (
        LIBRARY.splitlines().index("        return model(batch).argmax(1)  # runtime: EVL001") + 1
    )
    assert f"{root.resolve() / 'mylib.py'}:{line}:16: EVL001 at run time" in done.stdout
    assert "argmax flips" in done.stdout
    assert "1 call site(s) lie only in test files" in done.stdout  # the direct model(x) call
    # the static analysis reports the helper and the test that reaches it in train mode; the
    # runtime event (whose caller chain runs through that test) confirms both
    assert "Static findings confirmed at run time: 2" in done.stdout


def test_entry_point_with_flag_writes_json(tmp_path: Path) -> None:
    root = project(tmp_path)
    out = tmp_path / "events.json"
    done = pytest_in(root, "--evallint", "--evallint-format", "json", "--evallint-output", str(out))
    assert "2 passed" in done.stdout, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert [(e["code"], Path(e["path"]).name) for e in report["events"]] == [("EVL001", "mylib.py")]
    assert report["steps"] == 3
    assert report["training_forwards"] == 3


def test_entry_point_is_inert_without_the_flag(tmp_path: Path) -> None:
    (tmp_path / "test_light.py").write_text(
        textwrap.dedent(
            """
            import sys


            def test_no_torch_loaded():
                assert "torch" not in sys.modules
            """
        ),
        encoding="utf-8",
    )
    done = pytest_in(tmp_path)
    assert "1 passed" in done.stdout, done.stdout + done.stderr
    assert "evallint runtime checker" not in done.stdout
