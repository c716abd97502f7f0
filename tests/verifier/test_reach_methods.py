"""A method of a model taken as the model (session 13): `self.model.validation_step(x)`.

Before: `attribute .validation_step of a class ... is not followed` (unresolved), and an
attribute assigned twice (`self.model = Net(); self.model = self.model.to(d)`) lost the
instance, so no method of it could be followed. Now the verdict covers exactly the submodules
the method reaches: the `self.x` it reads, through the methods and properties it calls.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.verifier.projects import verify_flagged as _verify  # noqa: E402
from tests.verifier.projects import write_project as _write  # noqa: E402

MODEL = """
from torch import nn
class Net(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.encoder = nn.Linear(n, n)
        self.head = nn.Sequential(nn.Linear(n, n), nn.Dropout(0.5))
        self.scale = 2
    def forward(self, x):
        return self.head(self.encoder(x))
    def encode(self, x):
        return self.encoder(x) * self.scale
    def score(self, x):
        return self._project(x).sum()
    def _project(self, x):
        return self.head(x)
    @property
    def weight(self):
        return self.encoder.weight
    def whole(self, x):
        return self(x)
class Runner:
    def __init__(self, n):
        self.model = Net(n)
        self.model = self.model.to("cpu")
    def evaluate(self, x):
        self.model.eval()
        return self.model.{method}(x)  # flagged
"""


@pytest.mark.parametrize(
    ("method", "verdict"),
    [
        ("encode", "not-affected"),  # reads only the encoder (a Linear) and a number
        ("score", "confirmed"),  # through `self._project` to the head's Dropout
        ("whole", "confirmed"),  # `self(x)` runs forward
    ],
)
def test_a_method_of_the_model_covers_what_it_reaches(
    tmp_path: Path, method: str, verdict: str
) -> None:
    _write(tmp_path, {"m.py": MODEL.format(method=method)})
    found = _verify(tmp_path / "m.py", f"self.model.{method}")
    assert found.verdict == verdict, found.summary
    if verdict == "not-affected":
        assert f"Net.{method}" in found.summary, found.summary


def test_a_method_of_the_model_is_measured_for_autograd(tmp_path: Path) -> None:
    _write(tmp_path, {"m.py": MODEL.format(method="encode")})
    found = _verify(tmp_path / "m.py", "self.model.encode", "EVL002")
    assert found.verdict == "confirmed", found.summary
    layers = found.evidence["memory"]["per_layer"]
    assert [layer["layer"].split("(")[0] for layer in layers] == ["Linear"], layers


SUPER = """
from torch import nn
class Base(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.drop = nn.Dropout(0.5)
    def encode(self, x):
        return self.drop(x)
class Net(Base):
    def __init__(self, n):
        super().__init__(n)
        self.lin = nn.Linear(n, n)
    def encode(self, x):
        return super().encode(self.lin(x))
def evaluate(x):
    net = Net(4)
    return net.encode(x)  # flagged
"""


def test_a_super_call_in_the_method_leaves_it_open(tmp_path: Path) -> None:
    _write(tmp_path, {"m.py": SUPER})
    found = _verify(tmp_path / "m.py", "net.encode")
    assert found.verdict == "unresolved", found.summary
    assert "super()" in found.summary, found.summary


NESTED = """
from torch import nn
class Inner(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.lin = nn.Linear(n, n)
        self.drop = nn.Dropout(0.5)
    def forward(self, x):
        return self.drop(self.lin(x))
    def represent(self, x):
        return self.lin(x)
class Outer(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.inner = Inner(n)
    def user(self, x):
        return self.inner.represent(x)
def evaluate(x):
    net = Outer(4)
    return net.user(x)  # flagged
"""


def test_a_method_of_a_submodule_reaches_only_what_it_reads(tmp_path: Path) -> None:
    _write(tmp_path, {"m.py": NESTED})
    found = _verify(tmp_path / "m.py", "net.user")
    assert found.verdict == "not-affected", found.summary
    dropout = NESTED.replace("return self.lin(x)\n    def", "return self.drop(x)\n    def", 1)
    dropout = dropout.replace(
        "def represent(self, x):\n        return self.lin(x)",
        "def represent(self, x):\n        return self.drop(x)",
    )
    _write(tmp_path, {"m.py": dropout})
    assert _verify(tmp_path / "m.py", "net.user").verdict == "confirmed"


WRAPPED = """
from torch import nn
class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
class Core(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)
    def energy(self, x):
        return self.lin(x)
class Wrapper:
    def __init__(self, model, lr=0.1):
        self.model = model
class CoreWrapper(Wrapper):
    def __init__(self, **kwargs):
        model = Core()
        super().__init__(model, **kwargs)
    def predict(self, x):
        self.model.eval()
        return self.model.energy(x)  # flagged
class PlainWrapper(Wrapper):
    def __init__(self):
        super().__init__(Plain())
"""


def test_a_base_class_attribute_is_what_this_subclass_passes_to_super(tmp_path: Path) -> None:
    """`self.model = model` in a base class: for a `CoreWrapper`, the model its own
    `super().__init__(model)` passes (other subclasses pass other models)."""
    _write(tmp_path, {"m.py": WRAPPED})
    found = _verify(tmp_path / "m.py", "self.model.energy")
    assert found.verdict == "not-affected", found.summary
    assert "Core.energy" in found.summary, found.summary


def test_self_passed_on_by_the_method_reaches_every_submodule(tmp_path: Path) -> None:
    source = MODEL.format(method="encode").replace(
        "return self.encoder(x) * self.scale", "return run(self, x)"
    )
    _write(tmp_path, {"m.py": source + "def run(model, x):\n    return model.head(x)\n"})
    found = _verify(tmp_path / "m.py", "self.model.encode")
    assert found.verdict == "confirmed", found.summary  # the head's Dropout may run
