"""Layers built only under a condition, and arguments passed through `**kwargs` (session 12).

Before: every `self.x = ...` of a constructor counted whatever `if` was around it (a
BatchNorm built only `if batch_norm:`, default False, gave `confirmed`), the `else` branch of
an `if`/`else` hid the `if` branch (a false `not affected` when the BatchNorm was in the `if`),
and `Net(**cfg)` left every parameter at its default (a false `not affected` for a Dropout
whose `p` came through `cfg`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.verifier.projects import verify_flagged as _verify  # noqa: E402
from tests.verifier.projects import write_project as _write  # noqa: E402


def _verdict(tmp_path: Path, source: str, subject: str, *rest: str):
    """Write `source` as m.py, verify the finding on `subject` (`rest`: the code, default
    EVL001) and check its verdict (the last of `rest`)."""
    *code, verdict = rest
    _write(tmp_path, {"m.py": source})
    found = _verify(tmp_path / "m.py", subject, *code)
    assert found.verdict == verdict, found.summary
    return found


GUARDED = """
from torch import nn
class Block(nn.Module):
    def __init__(self, n, batch_norm=False):
        super().__init__()
        self.linear = nn.Linear(n, n)
        self.batch_norm = batch_norm
        if batch_norm is True:
            self.bn = nn.BatchNorm1d(n)
def evaluate(x, flag):
    net = {build}
    return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("build", "verdict"),
    [
        ("Block(4)", "not-affected"),  # the default decides: no BatchNorm
        ("Block(4, batch_norm=True)", "confirmed"),
        ("Block(4, batch_norm=flag)", "unresolved"),  # the condition is not known
    ],
)
def test_a_layer_built_under_a_condition_counts_only_when_the_condition_holds(
    tmp_path: Path, build: str, verdict: str
) -> None:
    found = _verdict(tmp_path, GUARDED.format(build=build), "net", verdict)
    if verdict == "unresolved":
        assert "batch_norm is True" in found.summary, found.summary


BRANCHES = """
from torch import nn
class Block(nn.Module):
    def __init__(self, n, use_bn={use_bn}):
        super().__init__()
        self.linear = nn.Linear(n, n)
        self.use_bn = use_bn
        if self.use_bn:
            self.norm = nn.BatchNorm1d(n)
        else:
            self.norm = nn.Identity()
def evaluate(x):
    net = Block(4)
    return net(x)  # flagged
"""


@pytest.mark.parametrize(("use_bn", "verdict"), [("True", "confirmed"), ("False", "not-affected")])
def test_both_branches_of_an_if_else_are_read(tmp_path: Path, use_bn: str, verdict: str) -> None:
    _verdict(tmp_path, BRANCHES.format(use_bn=use_bn), "net", verdict)


def test_an_unknown_condition_between_two_branches_leaves_it_open(tmp_path: Path) -> None:
    source = BRANCHES.format(use_bn="True").replace("net = Block(4)", "net = Block(4, x.bn)")
    _verdict(tmp_path, source, "net", "unresolved")


KWARGS = """
from torch import nn
class Net(nn.Module):
    def __init__(self, n, p=0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n, n), nn.Dropout(p))
def evaluate(x, cfg):
    params = {params}
    net = Net(**params)
    return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("params", "verdict"),
    [
        ("cfg", "unresolved"),  # `p` may come through `cfg`: not read
        ("{'n': 4, 'p': 0.3}", "confirmed"),
        ("{'n': 4}", "not-affected"),  # a dict literal without `p`: the default holds
    ],
)
def test_arguments_passed_through_double_star_are_read_or_named(
    tmp_path: Path, params: str, verdict: str
) -> None:
    found = _verdict(tmp_path, KWARGS.format(params=params), "net", verdict)
    if verdict == "unresolved":
        assert "argument `p` of Dropout" in found.summary, found.summary


APPENDED = """
from torch import nn
class Net(nn.Module):
    def __init__(self, n, use_bn=False, layers_p=0.0):
        super().__init__()
        layers = [nn.Linear(n, n)]
        if use_bn:
            layers.append(nn.BatchNorm1d(n))
        if layers_p > 0:
            layers += [nn.Dropout(layers_p)]
        self.body = nn.Sequential(*layers)
def evaluate(x, flag):
    net = {build}
    return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("build", "verdict"),
    [
        ("Net(4)", "not-affected"),
        ("Net(4, use_bn=True)", "confirmed"),
        ("Net(4, layers_p=0.2)", "confirmed"),
        ("Net(4, use_bn=flag)", "unresolved"),
    ],
)
def test_a_layer_appended_under_a_condition_counts_only_when_it_holds(
    tmp_path: Path, build: str, verdict: str
) -> None:
    found = _verdict(tmp_path, APPENDED.format(build=build), "net", verdict)
    if verdict == "unresolved":
        assert "only if `use_bn`" in found.summary, found.summary


SUBCLASSED = """
from torch import nn
class Scaled(nn.{kind}):
    def reset_parameters(self):
        self.weight.data.normal_(0, 0.01)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = Scaled({args})
def evaluate(x):
    net = Net()
    return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("kind", "args", "code", "verdict"),
    [
        ("Embedding", "10, 4", "EVL002", "confirmed"),
        ("Embedding", "10, 4", "EVL001", "not-affected"),
        ("Dropout", "0.3", "EVL001", "confirmed"),
        ("Dropout", "p", "EVL001", "unresolved"),  # `p` is no value evallint can read
    ],
)
def test_a_torch_layer_subclass_without_init_is_built_by_the_construction_call(
    tmp_path: Path, kind: str, args: str, code: str, verdict: str
) -> None:
    _verdict(tmp_path, SUBCLASSED.format(kind=kind, args=args), "net", code, verdict)


SETTING = """
from torch import nn
class Detector:
    def __init__(self, dropout_rate={default}, scale=2):
        self.dropout_rate = dropout_rate
    def fit(self, x):
        self.net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(self.dropout_rate))
        return self.score(x)
    def score(self, x):
        return self.net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("default", "verdict"), [("0.2", "confirmed"), ("0.0", "unresolved"), ("None", "unresolved")]
)
def test_a_setting_read_from_a_constructor_default_is_named_as_assumed(
    tmp_path: Path, default: str, verdict: str
) -> None:
    found = _verdict(tmp_path, SETTING.format(default=default), "self.net", verdict)
    if verdict == "confirmed":  # the default is an assumption, and the verdict says so
        assert "assumed: `dropout_rate=0.2`, the default of Detector.__init__" in found.summary
        assert "Dropout(p=0.2, assumed)" in found.summary
    else:  # a default that would rule the Dropout out is not enough for `not affected`
        assert "argument `p` of Dropout" in found.summary, found.summary


NESTED = """
from torch import nn
class Detector:
    def fit(self, x):
        def make(width):
            return nn.Sequential(nn.Linear(width, 1), {layer})
        self.disc = make(4)
        return self.disc(x)  # flagged
"""


@pytest.mark.parametrize(
    ("layer", "verdict"), [("nn.Dropout(0.1)", "confirmed"), ("nn.Sigmoid()", "not-affected")]
)
def test_a_factory_defined_inside_the_method_is_followed(
    tmp_path: Path, layer: str, verdict: str
) -> None:
    _verdict(tmp_path, NESTED.format(layer=layer), "self.disc", verdict)


BRANCHING_FACTORY = """
from torch import nn
def make(kind):
    if kind == "drop":
        return nn.Dropout(0.5)
    return {last}
def evaluate(x, kind):
    net = nn.Sequential(nn.Linear(4, 4), make(kind))
    return net(x)  # flagged
"""


@pytest.mark.parametrize(
    ("last", "verdict"), [("nn.ReLU()", "unresolved"), ("nn.Dropout(0.1)", "confirmed")]
)
def test_every_return_of_a_factory_is_read(tmp_path: Path, last: str, verdict: str) -> None:
    _verdict(tmp_path, BRANCHING_FACTORY.format(last=last), "net", verdict)


INDEXED = """
from torch import nn
class Ensemble:
    def fit(self, x):
        self.nets = []
        for _ in range(3):
            self.nets.append(nn.Sequential(nn.Linear(4, 4), {layer}))
        return [self.score(x, i) for i in range(3)]
    def score(self, x, i):
        return self.nets[i](x)  # flagged
"""


@pytest.mark.parametrize(
    ("layer", "verdict"), [("nn.Dropout(0.1)", "confirmed"), ("nn.ReLU()", "not-affected")]
)
def test_an_indexed_element_of_a_list_of_models_is_followed(
    tmp_path: Path, layer: str, verdict: str
) -> None:
    _verdict(tmp_path, INDEXED.format(layer=layer), "self.nets[i]", verdict)


def test_the_sizes_of_a_factory_with_several_returns_are_those_of_one_path(tmp_path: Path) -> None:
    source = BRANCHING_FACTORY.format(last="nn.Linear(4, 4)").replace(
        "return nn.Dropout(0.5)", "return nn.Linear(4, 4)"
    )
    found = _verdict(tmp_path, source, "net", "EVL002", "confirmed")
    assert "through 2 layer(s)" in found.summary, found.summary  # not 3: one path, not both


def test_a_layer_under_an_undecided_condition_is_not_in_the_memory_figure(tmp_path: Path) -> None:
    source = """
    from torch import nn
    class Net(nn.Module):
        def __init__(self, n, wide):
            super().__init__()
            self.body = nn.Linear(n, n)
            if wide:
                self.extra = nn.Linear(n, n)
    def evaluate(x, flag):
        net = Net(4, flag)
        return net(x)  # flagged
    """
    found = _verdict(tmp_path, source, "net", "EVL002", "confirmed")
    assert "through 1 layer(s)" in found.summary, found.summary
    found = _verify(tmp_path / "m.py", "net", "EVL001")
    assert found.verdict == "not-affected", found.summary  # neither Linear depends on the mode
