"""Unit tests of session 9's precision mechanisms (branch prec9): module classes of other
files read as mode-free, epoch loops bounded by a setting, closures returned by factories."""

from __future__ import annotations

from textwrap import dedent

import libcst as cst
import pytest

from evallint import lint_source
from evallint.analysis.conditions import assumed_to_run
from evallint.analysis.plain_modules import _mode_free_classes

_CLASSES = """
import torch
import torch.nn as nn
from torch.nn import Linear


class Head(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.fc = nn.Sequential(Linear(d, 64), nn.ReLU(), nn.Dropout(0.0), nn.Linear(64, k))

    def forward(self, x):
        return self.fc(x)


class Net(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.head = Head(d, k)
        self.scale = nn.Parameter(torch.ones(k))


class Dropping(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.2)


class UsesDropping(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Dropping()


class Keeps(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net


class BuiltElsewhere(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.body = make_layers(cfg)


class ReadsFlag(nn.Module):
    def forward(self, x):
        return x * 2 if self.training else x


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(4)


class NotAModule:
    def __init__(self):
        self.fc = nn.Linear(2, 2)
"""


def test_mode_free_classes_are_those_built_of_mode_independent_layers() -> None:
    assert _mode_free_classes(_CLASSES) == {"Head", "Net"}


def test_mode_free_reader_survives_bad_source() -> None:
    assert _mode_free_classes("class (:") == frozenset()


def _loop(source: str) -> cst.For:
    module = cst.parse_module(dedent(source))
    return next(s for s in module.body if type(s) is cst.For)


@pytest.mark.parametrize(
    ("header", "assumed"),
    [
        ("for epoch in range(1, args.max_epoch + 1):", True),
        ('for epoch in range(cfg["epochs"]):', True),
        ("for epoch in tqdm(range(config.train.epochs)):", True),
        ("for epoch in range(int(sys.argv[1])):", False),
        ("for epoch in range(epochs):", False),
        ("for x in [1, 2]:", False),
    ],
)
def test_script_loops_bounded_by_a_setting_are_assumed_to_run(header: str, assumed: bool) -> None:
    assert assumed_to_run(_loop(f"{header}\n    pass\n"), None) is assumed


def test_closure_call_maps_captured_parameter_to_factory_argument() -> None:
    source = """
    import torch
    import torch.nn as nn


    def make(net):
        def run(evaluate):
            if evaluate:
                net.eval()
            else:
                net.train()

        return run


    def score(model, batches):
        with torch.no_grad():
            return [model(x).argmax(1).tolist() for x in batches]


    def main(batches):
        model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
        switch = make(model)
        switch(evaluate=SWITCH)
        return score(model, batches)
    """
    found = {d.code for d in lint_source(dedent(source).replace("SWITCH", "True"))}
    assert "EVL001" not in found
    found = {d.code for d in lint_source(dedent(source).replace("SWITCH", "False"))}
    assert "EVL001" in found


_KEPT_VALUES = """
import copy

import torch
from torch import nn


def window(size: int, sigma: float):
    steps = torch.arange(size).float()
    return torch.exp(-steps * steps / sigma).repeat(3, 1)


def dropping_layer(p: float):
    return nn.Dropout(p)


def copied(value):
    return copy.deepcopy(value)


class KeepsOptions(nn.Module):
    def __init__(self, border: int = 0, **options):
        super().__init__()
        self.border = border
        self.options = options


class KeepsWindow(nn.Module):
    def __init__(self, size: int = 7, sigma: float = 1.5):
        super().__init__()
        self.window = window(size, sigma)


class KeepsBuiltLayer(nn.Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        self.drop = dropping_layer(p)


class KeepsWindowOfGivenValue(nn.Module):
    def __init__(self, net, size: int = 7):
        super().__init__()
        self.window = window(net, size)


class KeepsCopy(nn.Module):
    def __init__(self, size: int = 7):
        super().__init__()
        self.kept = copied(size)


class KeepsNamedOption(nn.Module):
    def __init__(self, net, **options):
        super().__init__()
        self.net = net
"""


def test_kept_rest_arguments_and_tensors_of_file_functions_are_mode_free() -> None:
    """`self.options = options` (a `**options` dict, never a submodule) and `self.window =
    window(size, sigma)` (a function of the file that builds no module, given settings) keep
    a class mode-free; a function that builds a layer, one given a value that may be a
    module, one that calls a pass-through library function, and a kept plain parameter do
    not."""
    assert _mode_free_classes(_KEPT_VALUES) == frozenset({"KeepsOptions", "KeepsWindow"})
