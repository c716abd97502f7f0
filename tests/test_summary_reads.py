"""`benchmarks/summary_reads.py`: the inventory of what a function summary reads outside its
function is taken without changing what the analysis finds, charges reads to the run that
made them, and leaves the analysis uninstrumented after."""

from __future__ import annotations

from pathlib import Path

from evallint.analysis.facts import ModuleFacts
from evallint.analysis.file_analysis import FileAnalysis
from evallint.analysis.interpreter import _Interpreter
from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.engine.run import lint_source
from tests.benchmark_scripts import summary_reads

SCRIPT = """\
import torch
import torch.nn as nn

EPOCHS = 3


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1))

    def forward(self, x):
        return self.body(x)


def evaluate(model, loader):
    correct = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
    return correct


def run(loader):
    model = Net()
    for epoch in range(EPOCHS):
        print(evaluate(model, loader))
"""


def test_inventory_charges_reads_to_their_run_and_changes_no_finding(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("a project of its own\n", encoding="utf-8")
    name = str(tmp_path / "train.py")
    expected = lint_source(SCRIPT, name)
    assert expected  # EVL001 and EVL002 in evaluate
    run_before = _Interpreter.run
    found = summary_reads().inventory(SCRIPT, name)
    assert found.findings == len(expected)  # the instrumented analysis finds the same
    assert {"evaluate", "run", "Net.__init__", "Net.forward", "<module>"} <= set(found.runs)
    # a loop's constant bound is looked up at the module's top level: `run` reads the module
    assert "flow.loop" in found.reads["FileAnalysis.module"]["run"]
    assert "run" in found.reads["FileAnalysis.summary_for"]  # `evaluate` is its callee
    assert "run" in found.grows["FileAnalysis.call_counts"]
    # restored: no instrumented class or method is left behind
    assert _Interpreter.run is run_before
    for cls in (FileAnalysis, ModuleFacts, FunctionInfo, ClassInfo):
        assert "__getattribute__" not in vars(cls)
    assert lint_source(SCRIPT, name) == expected
