"""Lists of layers, settings and re-exported classes (session 11, benchmarks/verify_reach.py).

Each case was unresolved, or wrongly `not affected`, before: `layers += [...]` was not read
(a Dropout added that way was missed: a false `not affected`), `self.layers` and lists a
method returns were not followed, numbers and settings (`n_heads=1`) passed to a layer were
followed as if they were modules, and a class re-exported by a package's `__init__.py` was
not found.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.verifier.projects import verify_flagged as _verify  # noqa: E402
from tests.verifier.projects import write_project as _write  # noqa: E402

GROWN = """
from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        for _ in range(2):
            layers += [nn.Linear(4, 4), {extra}]
        self.body = nn.Sequential(*layers)
def evaluate(x):
    net = Net()
    return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("extra", "verdict"), [("nn.Dropout(0.5)", "confirmed"), ("nn.ReLU()", "not-affected")]
)
def test_list_grown_with_plus_equals_is_read(tmp_path: Path, extra: str, verdict: str) -> None:
    _write(tmp_path, {"m.py": GROWN.format(extra=extra)})
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == verdict, found.summary


def test_list_grown_by_an_unreadable_value_stays_unresolved(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {"m.py": GROWN.replace("layers += [nn.Linear(4, 4), {extra}]", "layers += make()")},
    )
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == "unresolved", found.summary


def test_attribute_list_and_a_list_a_method_returns(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "m.py": """
            from torch import nn
            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.parts = []
                    self.parts.append(nn.Linear(4, 4))
                    self.body = nn.ModuleList(self.parts)
                    self.head = nn.Sequential(*self.build())
                def build(self):
                    out = []
                    out.append(nn.Dropout(0.2))
                    return out
            def evaluate(x):
                net = Net()
                return net(x)  # flagged
            """
        },
    )
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == "confirmed", found.summary
    assert "Dropout(p=0.2)" in found.summary


def test_settings_passed_to_layers_are_not_followed_as_modules(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "m.py": """
            from torch import nn
            class Block(nn.Module):
                def __init__(self, width, heads):
                    super().__init__()
                    self.width = width
                    self.heads = heads
                    self.proj = nn.Linear(width, width)
            class Net(nn.Module):
                def __init__(self, width, heads=2, sizes=(3, 5), dropout=0.0):
                    super().__init__()
                    self.sizes = sizes
                    self.blocks = nn.ModuleList([Block(width, heads) for _ in self.sizes])
                    self.drop = nn.Dropout(dropout)
            class Detector:
                def __init__(self, width=8):
                    self.width = width
                def fit(self, x):
                    self.model = Net(self.width)
                    return self.model(x)  # flagged
            """
        },
    )
    found = _verify(tmp_path / "m.py", "self.model")
    assert found.verdict == "not-affected", found.summary


def test_a_parameter_without_a_setting_default_is_still_followed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "m.py": """
            from torch import nn
            class Net(nn.Module):
                def __init__(self, extra=None):
                    super().__init__()
                    self.extra = extra
                    self.proj = nn.Linear(4, 4)
            def evaluate(x, extra):
                net = Net(extra)
                return net(x)  # flagged
            """
        },
    )
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == "unresolved", found.summary


def test_class_re_exported_by_a_package_init(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/models/__init__.py": "from .noisy import Noisy\n",
            "pkg/models/noisy.py": """
            from torch import nn
            class Noisy(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3))
            """,
            "pkg/models/tests/deep/test_noisy.py": """
            from pkg.models import Noisy
            def test_it(x):
                model = Noisy()
                return model(x)  # flagged
            """,
        },
    )
    found = _verify(tmp_path / "pkg/models/tests/deep/test_noisy.py", "model")
    assert found.verdict == "confirmed", found.summary


CALLEE = """
from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3))
class Detector:
    def __init__(self):
        self.model = Net()
    def score(self, x):
        return self.model(x)
    def step(self, x, net):
        return net(x)
    def fit(self, x):
        self.net = Net()
        return self.step(x, self.net)  # PARAM
def test_score(x):
    detector = Detector()
    return detector.score(x)  # flagged
"""


def test_callee_self_named_at_the_call_is_followed_through_the_receiver(tmp_path: Path) -> None:
    """`self.model` reported at `detector.score(x)`: `self` is the receiver."""
    _write(tmp_path, {"m.py": CALLEE})
    found = _verify(tmp_path / "m.py", "self.model")
    assert found.verdict == "confirmed", found.summary
    assert "detector.score(x)" in found.summary


def test_callee_parameter_named_at_the_call_is_the_argument(tmp_path: Path) -> None:
    """`net` reported at `self.step(x, self.net)`: `net` is the argument passed."""
    _write(
        tmp_path,
        {"m.py": CALLEE.replace("  # flagged\n", "\n").replace("# PARAM", "# flagged")},
    )
    text = (tmp_path / "m.py").read_text()
    assert text.count("# flagged") == 1
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == "confirmed", found.summary


def test_name_meaning_nothing_at_the_line_and_no_call_stays_unresolved(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {"m.py": CALLEE.replace("return detector.score(x)  # flagged", "return 1  # flagged")},
    )
    found = _verify(tmp_path / "m.py", "self.model")
    assert found.verdict == "unresolved", found.summary


TEMPLATE = {
    "pkg/__init__.py": "",
    "pkg/base.py": """
    class Base:
        def __init__(self):
            self.net = None
        def prepare(self):
            return None, None
        def fit(self, x):
            self.loader, self.net = self.prepare()
            return self.net
        def score(self, x):
            return self.forward_batch(x, self.net)
    """,
    "pkg/noisy.py": """
    from torch import nn
    from pkg.base import Base
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), {layer})
    class Detector(Base):
        def prepare(self):
            net = Net()
            return [1, 2], net
        def forward_batch(self, x, net):
            return net(x)  # flagged
    """,
}


@pytest.mark.parametrize(
    ("layer", "verdict"), [("nn.Dropout(0.3)", "confirmed"), ("nn.ReLU()", "unresolved")]
)
def test_template_method_called_by_the_base_class_with_an_unpacked_attribute(
    tmp_path: Path, layer: str, verdict: str
) -> None:
    """`self.forward_batch(x, self.net)` in the base class; `self.net` unpacked from
    `self.prepare()`, which the subclass overrides. Callers only in a base class's code never
    give `not affected` (code outside may call the method too)."""
    _write(tmp_path, {k: v.replace("{layer}", layer) for k, v in TEMPLATE.items()})
    found = _verify(tmp_path / "pkg/noisy.py", "net")
    assert found.verdict == verdict, found.summary
    if verdict == "confirmed":
        assert "Dropout(p=0.3)" in found.summary


@pytest.mark.parametrize(
    "container",
    [
        "nn.ModuleList([nn.Dropout(0.4)] * 3)",
        "nn.Sequential(*([nn.Linear(4, 4)] + [nn.Dropout(0.4)]))",
        "nn.Sequential(*(blocks * 2))",
    ],
)
def test_lists_joined_or_repeated_keep_their_modules(tmp_path: Path, container: str) -> None:
    """Arithmetic on numbers is no module, but `[m] * 3` and `a + [m]` hold modules."""
    text = GROWN.format(extra="nn.ReLU()").replace(
        "self.body = nn.Sequential(*layers)",
        f"blocks = [nn.Dropout(0.4)]\n        self.body = {container}",
    )
    _write(tmp_path, {"m.py": text})
    found = _verify(tmp_path / "m.py", "net")
    assert found.verdict == "confirmed", found.summary
