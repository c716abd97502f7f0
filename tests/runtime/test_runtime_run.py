"""`evallint run -- python train.py`: the child process, its limits, the formats, the matching."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CORRECT,
    EVAL_IN_TRAIN_MODE,
    EVAL_WITH_GRAD,
    HEADER,
    LONG_TRAINING,
    TRAIN_AFTER_EVAL,
    expected_lines,
)

pytest.importorskip("torch")

pytestmark = pytest.mark.slow  # each test starts a Python that imports torch


def run(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evallint", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_json(cwd: Path, *args: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    done = run(cwd, "--format", "json", *args)
    return json.loads(done.stdout), done


def test_text_report_says_what_it_runs_first_and_finds_the_mutant(write_script) -> None:
    path = write_script(EVAL_IN_TRAIN_MODE)
    done = run(path.parent, "--", "python", "train.py", "--lr", "0.1")
    first = done.stdout.splitlines()[0]
    assert first.startswith("evallint run: running `python train.py --lr 0.1` as `")
    assert "-m evallint.runtime.bootstrap" in first and "timeout 600 s" in first
    ((line, _),) = expected_lines(EVAL_IN_TRAIN_MODE)
    assert f"{path.resolve()}:{line}:24: EVL001 at run time `Sequential`" in done.stdout
    assert "argmax flips" in done.stdout
    assert done.returncode == 1


def test_correct_script_exits_zero_with_no_event(write_script) -> None:
    path = write_script(CORRECT)
    report, done = run_json(path.parent, "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    assert report["events"] == []
    assert report["outcome"]["status"] == "completed"
    assert report["steps"] == 8
    assert report["static"]["never_reached"] == []


@pytest.mark.parametrize(
    "source", [EVAL_IN_TRAIN_MODE, EVAL_WITH_GRAD, TRAIN_AFTER_EVAL], ids=["001", "002", "003"]
)
def test_each_mutant_at_its_exact_line(write_script, source: str) -> None:
    path = write_script(source)
    report, done = run_json(path.parent, "--", "python", "train.py")
    assert done.returncode == 1
    assert {(e["line"], e["code"]) for e in report["events"]} == expected_lines(source)
    assert {e["path"] for e in report["events"]} == {str(path.resolve())}


def test_eval_in_train_mode_numbers_in_json(write_script) -> None:
    path = write_script(EVAL_IN_TRAIN_MODE)
    report, _ = run_json(path.parent, "--", "python", "train.py")
    (event,) = report["events"]
    measured = event["runtime"]["measured"]
    assert measured["argmax_total"] == 16
    assert 0 < measured["argmax_flips"] <= 16
    assert measured["mean_abs_delta"] > 0


def test_static_findings_are_confirmed_missed_or_never_reached(write_script) -> None:
    source = TRAIN_AFTER_EVAL.replace(
        "def validate(net):",
        "def never_called(net):\n"
        "    for x, y in val_loader:\n"
        "        print((net(x).argmax(1) == y).float().mean())\n\n\n"
        "def validate(net):",
    )
    path = write_script(source)
    report, _ = run_json(path.parent, "--", "python", "train.py")
    static = report["static"]
    confirmed = {
        (c["static"]["code"], c["static"]["line"]) for c in static["confirmed_at_run_time"]
    }
    lines = source.splitlines()
    assert (
        confirmed
        == {(code, line) for line, code in expected_lines(source)}
        == {("EVL003", lines.index("        loss.backward()  # runtime: EVL003") + 1)}
    )
    never_called = lines.index("        print((net(x).argmax(1) == y).float().mean())") + 1
    assert {(d["code"], d["line"]) for d in static["never_reached"]} == {
        ("EVL001", never_called),
        ("EVL002", never_called),
    }
    assert static["missed_by_static_analysis"] == []


def test_runtime_event_the_static_analysis_missed(write_script) -> None:
    source = (
        HEADER
        + """
for epoch in range(2):
    model.train()
    for x, y in train_loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # training accuracy in train mode, through a name looked up at run time, which the
    # static analysis cannot follow:
    net = globals()["model"]
    with torch.no_grad():
        for x, y in train_loader:
            correct = (net(x).argmax(1) == y).sum().item()  # runtime: EVL001
"""
    )
    path = write_script(source)
    report, _ = run_json(path.parent, "--", "python", "train.py")
    missed = report["static"]["missed_by_static_analysis"]
    assert [(e["line"], e["code"]) for e in missed] == sorted(expected_lines(source))


def test_step_budget_stops_early_with_partial_results(write_script) -> None:
    path = write_script(LONG_TRAINING)
    report, done = run_json(path.parent, "--steps", "5", "--", "python", "train.py")
    assert report["outcome"] == {
        "status": "stopped",
        "reason": "--steps 5: stopped after 5 optimizer steps",
    }
    assert report["steps"] == 5
    assert done.returncode == 0


def test_evaluation_budget_stops_early(write_script) -> None:
    source = (
        HEADER
        + """
while True:
    with torch.no_grad():
        model.eval()(val_loader[0][0])
"""
    )
    path = write_script(source)
    report, _ = run_json(path.parent, "--evals", "3", "--", "python", "train.py")
    assert report["outcome"]["status"] == "stopped"
    assert report["evaluation_forwards"] == 3


def test_timeout_stops_the_script_and_keeps_the_report(write_script) -> None:
    path = write_script(LONG_TRAINING)
    report, done = run_json(path.parent, "--timeout", "20", "--", "python", "train.py")
    assert report["outcome"]["status"] == "stopped"
    assert report["outcome"]["reason"].startswith("timeout")
    assert report["limits"]["timeout_seconds"] == 20
    assert done.returncode == 0


def test_no_network_in_the_script_or_its_subprocesses(write_script, tmp_path: Path) -> None:
    marker = tmp_path / "reached.txt"
    source = f"""
import socket, subprocess, sys

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
socket.create_connection(server.getsockname(), timeout=5).close()  # loopback still works
child = subprocess.run(
    [sys.executable, "-c", "import socket; socket.create_connection(('93.184.216.34', 80), timeout=5)"],
    capture_output=True, text=True,
)
assert "blocks the network" in child.stderr, child.stderr
try:
    socket.create_connection(("93.184.216.34", 80), timeout=5)
except OSError as exc:
    assert "blocks the network" in str(exc)
else:
    raise SystemExit("connected")
try:
    socket.getaddrinfo("example.com", 443)
except OSError as exc:
    assert "blocks the network" in str(exc)
import os
assert os.environ["HTTPS_PROXY"] == "http://127.0.0.1:9"
open({str(marker)!r}, "w").write("ok")
"""
    path = write_script(source)
    report, done = run_json(path.parent, "--no-static", "--", "python", "train.py")
    assert report["outcome"]["status"] == "completed", done.stderr
    assert marker.read_text() == "ok"


def test_memory_limit_is_enforced(write_script) -> None:
    source = """
import torch
block = bytearray(3 * 1024 ** 3)
"""
    path = write_script(source)
    report, done = run_json(
        path.parent, "--memory", "2048", "--no-static", "--", "python", "train.py"
    )
    assert report["outcome"]["status"] == "failed"
    assert "MemoryError" in report["outcome"]["reason"]
    assert done.returncode == 2


def test_sarif_and_output_file(write_script) -> None:
    path = write_script(EVAL_WITH_GRAD)
    out = path.parent / "run.sarif"
    done = run(
        path.parent, "--format", "sarif", "--output-file", str(out), "--", "python", "train.py"
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"wrote {out}: 1 runtime event")
    log = json.loads(out.read_text())
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "EVL002"
    ((line, _),) = expected_lines(EVAL_WITH_GRAD)
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == line
    assert result["properties"]["runtime"]["evaluation_graph_freed"] == 4
    assert log["runs"][0]["properties"]["outcome"]["status"] == "completed"


def test_module_target(write_script, tmp_path: Path) -> None:
    write_script(EVAL_IN_TRAIN_MODE, name="trainer.py")
    report, done = run_json(tmp_path, "--", "python", "-m", "trainer")
    expected = sorted(expected_lines(EVAL_IN_TRAIN_MODE))
    assert [(e["line"], e["code"]) for e in report["events"]] == expected, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--", "bash", "train.sh"], "is not a Python interpreter"),
        (["--steps", "3"], "give the command after `--`"),
        (["--", "python", "missing.py"], "missing.py: no such file"),
        (["--steps", "0", "--", "python", "x.py"], "--steps must be at least 1"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = run(tmp_path, *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert "Traceback" not in done.stderr
