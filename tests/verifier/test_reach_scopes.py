"""What a name means where it is read (session 13): a variable of the function around a
nested function, and `self` of a test class at a call whose callee names the module.

Before: `model` in `def custom_eval(x): return 2 * model(x)` was `no assignment to model`
(unresolved), and `self.learner` reported at `maml.predict(batch)` inside a test class's
method stopped at `no self.learner = ... in class TestMAML`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.verifier.projects import verify_flagged as _verify  # noqa: E402
from tests.verifier.projects import write_project as _write  # noqa: E402

CLOSURE = """
from torch import nn
def test_custom():
    model = {layer}
{again}
    def evaluate(x):
        return 2 * model(x)  # flagged
    return evaluate
"""


@pytest.mark.parametrize(
    ("layer", "again", "verdict"),
    [
        ("nn.Linear(1, 1)", "", "not-affected"),
        ("nn.Sequential(nn.Linear(1, 1), nn.Dropout(0.5))", "", "confirmed"),
        ("nn.Linear(1, 1)", "    model = make()", "unresolved"),  # which one is live: not known
    ],
)
def test_a_nested_function_reads_the_variable_of_the_function_around_it(
    tmp_path: Path, layer: str, again: str, verdict: str
) -> None:
    _write(tmp_path, {"m.py": CLOSURE.format(layer=layer, again=again)})
    found = _verify(tmp_path / "m.py", "model")
    assert found.verdict == verdict, found.summary


TEST_CLASS = """
from torch import nn
class Runner:
    def __init__(self, learner):
        self.learner = learner
    def predict(self, x):
        return self.learner(x)
class TestRunner:
    def test_predict(self):
        runner = Runner(nn.Sequential(nn.Linear(2, 2), {layer}))
        return runner.predict(1)  # flagged
"""


@pytest.mark.parametrize(
    ("layer", "verdict"), [("nn.ReLU()", "not-affected"), ("nn.Dropout(0.5)", "confirmed")]
)
def test_self_of_a_test_class_is_the_callee_receiver(
    tmp_path: Path, layer: str, verdict: str
) -> None:
    _write(tmp_path, {"m.py": TEST_CLASS.format(layer=layer)})
    found = _verify(tmp_path / "m.py", "self.learner")
    assert found.verdict == verdict, found.summary
