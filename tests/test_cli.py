"""The `evallint` command as users run it: a real subprocess, exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
BUGGY = FIXTURES / "evl001_flat_script_no_eval.py"
CLEAN = FIXTURES / "clean_flat_epoch_script.py"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evallint", *args], capture_output=True, text=True, cwd=cwd
    )


def test_findings_exit_1_with_flake8_style_lines_and_summary() -> None:
    result = run(str(BUGGY))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{BUGGY}:34:19: EVL001 `model` may be in training mode")
    assert lines[-1].startswith("Found 1 finding in 1 file.")
    assert result.stderr == ""


def test_clean_file_exits_0() -> None:
    result = run(str(CLEAN))
    assert (result.returncode, result.stdout) == (0, "All checks passed.\n")


def test_json_shape_is_the_public_interface() -> None:
    result = run(str(BUGGY), "--format", "json")
    findings = json.loads(result.stdout)
    assert [set(f) for f in findings] == [
        {"path", "line", "column", "end_line", "end_column", "code", "message", "related"}
    ]
    assert findings[0]["related"] and set(findings[0]["related"][0]) == {
        "path",
        "line",
        "column",
        "message",
    }


def test_select_and_ignore_take_prefixes() -> None:
    both = FIXTURES / "evl001_evl002_checkpoint_inference.py"
    assert {f["code"] for f in json.loads(run(str(both), "--format", "json").stdout)} == {
        "EVL001",
        "EVL002",
    }
    assert {
        f["code"]
        for f in json.loads(run(str(both), "--format", "json", "--ignore", "EVL001").stdout)
    } == {"EVL002"}
    assert {
        f["code"]
        for f in json.loads(
            run(str(both), "--format", "json", "--select", "EVL00", "--ignore", "EVL002").stdout
        )
    } == {"EVL001"}


def test_unparsable_file_is_evl999_and_others_still_linted(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import torch\ndef f(:\n", encoding="utf-8")
    (tmp_path / "bad.py").write_bytes(b"import torch\nx = '\xff\xfe'\n")
    (tmp_path / "train.py").write_text(BUGGY.read_text(encoding="utf-8"), encoding="utf-8")
    result = run(".", cwd=tmp_path)
    assert result.returncode == 1
    codes = [line.split(": ", 1)[1].split()[0] for line in result.stdout.splitlines()[:-1]]
    assert codes == ["EVL999", "EVL999", "EVL001"]
    assert "bad.py:1:1: EVL999 cannot decode" in result.stdout
    assert "broken.py:2:" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_usage_errors_exit_2_with_one_line() -> None:
    missing = run("no/such/file.py")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "no/such/file.py" in missing.stderr
    assert run("--select", "XYZ1", str(BUGGY)).returncode == 2
    assert run("explain", "EVL777").returncode == 2


def test_rules_and_explain() -> None:
    listed = run("rules").stdout.splitlines()
    assert [line.split()[0] for line in listed] == [
        *(f"EVL00{n}" for n in range(1, 10)),
        "EVL100",
        "EVL999",
    ]
    page = run("explain", "evl002").stdout
    assert "## Why is this bad?" in page and "does not turn autograd off" in page


def test_debug_flow_shows_mode_and_grad_per_statement() -> None:
    out = run("debug", "--flow", str(FIXTURES / "clean_torchvision_phase_loop.py")).stdout
    assert "model=train grad=on assuming phase == 'train'" in out
    assert "model=eval grad=off assuming not phase == 'train'" in out
    assert "== function summaries ==" in out


def test_debug_flow_reads_a_notebook_as_its_code_cells(tmp_path: Path) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# title"},
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "import torch\nnet = torch.nn.Linear(2, 2)\nnet.eval()",
        },
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "print(net(torch.ones(1, 2)))",
        },
    ]
    notebook = {
        "cells": cells,
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "demo.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    out = run("debug", "--flow", str(path)).stdout
    assert '"cells"' not in out  # not the JSON read as Python
    assert "cell 2:3  net.eval()" in out
    assert "cell 3:1  print(net(torch.ones(1, 2)))" in out


def test_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.evallint]\nselectt = ['EVL001']\n", encoding="utf-8"
    )
    (tmp_path / "train.py").write_text("import torch\n", encoding="utf-8")
    result = run("train.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "pyproject.toml" in result.stderr and "selectt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_show_suppressed_lists_what_noqa_silenced(tmp_path: Path) -> None:
    lines = BUGGY.read_text(encoding="utf-8").splitlines()
    lines[33] += "  # noqa: EVL001"
    (tmp_path / "train.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    quiet = run("train.py", "--no-cache", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout) == (0, "All checks passed.\n")
    shown = run("train.py", "--show-suppressed", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[0].startswith(
        "train.py:34:19: EVL001"
    ) and shown.stdout.splitlines()[0].endswith("(suppressed)")
