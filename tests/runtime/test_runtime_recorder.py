"""The recorder in this process: hooks around a script run with runpy, events at exact lines."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CORRECT,
    EVAL_IN_TRAIN_MODE,
    EVAL_WITH_GRAD,
    HEADER,
    TRAIN_AFTER_EVAL,
    expected_lines,
)

torch = pytest.importorskip("torch")

from evallint.runtime.recorder import Recorder  # noqa: E402
from evallint.runtime.report import events_from  # noqa: E402


def record(path: Path, **budgets: Any) -> tuple[dict[str, Any], list[Any], list[str]]:
    recorder = Recorder(**budgets)
    recorder.install()
    try:
        runpy.run_path(str(path), run_name="__main__")
        gc.collect()
    finally:
        recorder.finish()
    summary = recorder.summary()
    events, notes = events_from(summary)
    return summary, events, notes


def found(events: list[Any]) -> set[tuple[int, str]]:
    return {(e.diagnostic.line, e.diagnostic.code) for e in events}


def test_correct_script_has_no_event(write_script) -> None:
    summary, events, _ = record(write_script(CORRECT))
    assert events == []
    assert summary["steps"] == 8
    assert summary["training_forwards"] == 8
    assert summary["evaluation_forwards"] == 4


@pytest.mark.parametrize(
    "source", [EVAL_IN_TRAIN_MODE, EVAL_WITH_GRAD, TRAIN_AFTER_EVAL], ids=["001", "002", "003"]
)
def test_each_mutant_is_found_at_its_line_and_nothing_else(write_script, source: str) -> None:
    path = write_script(source)
    _, events, _ = record(path)
    assert found(events) == expected_lines(source)
    assert all(e.diagnostic.path == str(path.resolve()) for e in events)


def test_eval_in_train_mode_is_measured_on_the_real_batch(write_script) -> None:
    _, events, _ = record(write_script(EVAL_IN_TRAIN_MODE))
    (event,) = events
    measured = event.details["measured"]
    assert measured["measured"] is True
    assert measured["output_shape"] == [16, 4]
    assert measured["argmax_total"] == 16
    assert 0 < measured["argmax_flips"] <= 16
    assert measured["mean_abs_delta"] > 0
    assert event.details["evaluation_in_train_mode"] == 4
    assert "argmax flips" in event.diagnostic.message
    assert "Dropout(p=0.5) `2`" in event.diagnostic.message


def test_measurement_leaves_the_users_model_and_random_stream_alone(write_script) -> None:
    source = (
        HEADER.replace("nn.Dropout(0.5)", "nn.BatchNorm1d(32), nn.Dropout(0.5)")
        + """
with torch.no_grad():
    for x, y in val_loader:
        model(x)
after = torch.rand(3)
"""
    )
    path = write_script(source)
    plain = runpy.run_path(str(path), run_name="__main__")  # no hooks
    _, events, _ = record(path)
    recorded = Recorder()
    recorded.install()
    try:
        under_hooks = runpy.run_path(str(path), run_name="__main__")
    finally:
        recorded.finish()
    assert torch.equal(under_hooks["after"], plain["after"])
    assert torch.equal(under_hooks["model"][2].running_mean, plain["model"][2].running_mean)
    (event,) = events
    moved = event.details["statistics_moved"]
    assert moved["layers"] == 1 and moved["largest"]["layer"] == "2"
    assert moved["largest"]["running_mean_shift"] > 0
    assert "moved the running statistics" in event.diagnostic.message


def test_submodule_forwards_are_not_top_level(write_script) -> None:
    source = (
        HEADER
        + """
class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = model

    def forward(self, x):
        return self.inner(x)


with torch.no_grad():
    Wrapper().eval()(val_loader[0][0])
"""
    )
    summary, events, _ = record(write_script(source))
    assert [site["module"] for site in summary["sites"]] == ["Wrapper"]
    assert summary["forwards"] == 1
    assert events == []


def test_a_forward_that_raises_does_not_hide_the_next_top_level_forward(write_script) -> None:
    source = (
        HEADER
        + """
try:
    model(torch.randn(2, 5))
except RuntimeError:
    pass
with torch.no_grad():
    model(torch.randn(16, 8))  # runtime: EVL001
"""
    )
    _, events, _ = record(write_script(source))
    assert found(events) == expected_lines(source)


def test_a_teacher_no_optimizer_trains_is_a_note_not_an_event(write_script) -> None:
    source = (
        HEADER
        + """
teacher = nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.3))
model.train()
for x, y in train_loader:
    with torch.no_grad():
        target = teacher(x).softmax(1)
    loss = nn.functional.cross_entropy(model(x), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
    )
    _, events, notes = record(write_script(source))
    assert events == []
    assert any("optimizer that does not train it" in note for note in notes)


def test_inference_script_without_optimizer_reports_train_mode_evaluation(write_script) -> None:
    source = (
        HEADER
        + """
with torch.inference_mode():
    predictions = [model(x).argmax(1) for x, _ in val_loader]  # runtime: EVL001
"""
    )
    summary, events, _ = record(write_script(source))
    assert found(events) == expected_lines(source)
    assert summary["sites"][0]["grad_states"] == ["inference_mode"]


def test_a_skipped_training_step_is_not_an_evaluation(write_script) -> None:
    source = (
        HEADER
        + """
model.train()
for step, (x, y) in enumerate(train_loader):
    loss = nn.functional.cross_entropy(model(x), y)
    if step == 2:
        continue  # a non-finite loss would be skipped like this
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
    )
    _, events, notes = record(write_script(source))
    assert events == []
    assert any("never backwarded" in note for note in notes)


def test_frozen_backbone_kept_in_eval_mode_is_not_training_in_eval_mode(write_script) -> None:
    source = """
import torch
from torch import nn

backbone = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16)).requires_grad_(False).eval()
head = nn.Linear(16, 4)
model = nn.Sequential(backbone, head)
opt = torch.optim.SGD(head.parameters(), lr=0.1)
for _ in range(3):
    loss = model(torch.randn(8, 8)).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
    _, events, _ = record(write_script(source))
    assert events == []


def test_step_budget_stops_the_script(write_script) -> None:
    from conftest import LONG_TRAINING

    from evallint.runtime.recorder import Stop

    recorder = Recorder(steps=3)
    recorder.install()
    with pytest.raises(Stop, match="--steps 3"):
        try:
            runpy.run_path(str(write_script(LONG_TRAINING)), run_name="__main__")
        finally:
            recorder.finish()
    assert recorder.steps == 3


def test_grad_on_evaluation_in_train_mode_is_both_events_and_training_is_never_copied(
    write_script,
) -> None:
    source = (
        HEADER
        + """
for epoch in range(2):
    for x, y in train_loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for x, y in val_loader:
        accuracy = (model(x).argmax(1) == y).float().mean()  # runtime: EVL001 EVL002
"""
    )
    summary, events, _ = record(write_script(source))
    ((line, _),) = expected_lines(source)
    assert found(events) == {(line, "EVL001"), (line, "EVL002")}
    by_line = {site["chain"][0][1]: site for site in summary["sites"]}
    assert by_line[line]["measured"]["measured"] is True  # the second evaluation was measured
    assert all(site["measured"] is None for site in summary["sites"] if site["training"])
