"""A module looked up in a dict literal by key, and an element of a list filled in another
method (session 13).

Before: `registry[name]` was `not a list evallint can read` (unresolved) whatever the dict
held, and `self.nets.append(net)` in `fit`, read as `self.nets[i]` in `predict`, evaluated
`net` in `predict` (`no assignment to net`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.verifier.projects import verify_flagged as _verify  # noqa: E402
from tests.verifier.projects import write_project as _write  # noqa: E402

REGISTRY = """
from torch import nn
def activation(name):
    table = {{"relu": nn.ReLU(), "tanh": nn.Tanh(), "{other}": {layer}}}
    return table[name]
class Net(nn.Module):
    def __init__(self, n, act):
        super().__init__()
        self.lin = nn.Linear(n, n)
        self.act = activation(act)
def evaluate(x, act):
    net = Net(4, {act})
    return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("other", "layer", "act", "verdict"),
    [
        ("sigmoid", "nn.Sigmoid()", "act", "not-affected"),  # every value agrees
        ("drop", "nn.Dropout(0.5)", "act", "unresolved"),  # only some values depend on it
        ("drop", "nn.Dropout(0.5)", "'drop'", "confirmed"),  # the key is read
        ("drop", "nn.Dropout(0.5)", "'relu'", "not-affected"),
    ],
)
def test_a_dict_lookup_decides_only_when_every_candidate_agrees(
    tmp_path: Path, other: str, layer: str, act: str, verdict: str
) -> None:
    _write(tmp_path, {"m.py": REGISTRY.format(other=other, layer=layer, act=act)})
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == verdict, found.summary
    if verdict == "unresolved":
        assert "dict `table`" in found.summary, found.summary


def test_a_dict_changed_after_it_is_built_is_not_read(tmp_path: Path) -> None:
    source = REGISTRY.format(other="sigmoid", layer="nn.Sigmoid()", act="act").replace(
        "    return table[name]", "    table[name] = make(name)\n    return table[name]"
    )
    _write(tmp_path, {"m.py": source})
    assert _verify(tmp_path / "m.py", "net").verdict == "unresolved"


def test_candidates_of_a_lookup_give_no_size_figure(tmp_path: Path) -> None:
    source = REGISTRY.format(other="proj", layer="nn.Linear(4, 4)", act="act")
    _write(tmp_path, {"m.py": source})
    found = _verify(tmp_path / "m.py", "net", "EVL002")
    assert found.verdict == "confirmed", found.summary
    layers = [layer["layer"] for layer in found.evidence["memory"]["per_layer"]]
    assert len(layers) == 1, layers  # the Net's own Linear; the dict's Linear may not be built


ENSEMBLE = """
from torch import nn
class Model:
    def __init__(self, n):
        self.n = n
        self.nets = []
    def fit(self, x):
        for i in range(3):
            net = nn.Sequential(nn.Linear(self.n, self.n), {layer})
            self.nets.append(net)
    def predict(self, x):
        return [self.encode(self.nets[i], x) for i in range(3)]
    def encode(self, net, x):
        return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("layer", "verdict"), [("nn.ReLU()", "not-affected"), ("nn.Dropout(0.5)", "confirmed")]
)
def test_a_list_element_is_read_where_it_is_added(tmp_path: Path, layer: str, verdict: str) -> None:
    _write(tmp_path, {"m.py": ENSEMBLE.format(layer=layer)})
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == verdict, found.summary
