"""After every edit of a fixed editing session, the language server's findings are a fresh
lint's: edits to what a function's meaning depends on outside its own text (an import, a
callee's body, a class's `__init__`, a decorator, a module-level name it reads, how a
caller calls it, a base class) each change the findings, and the server must follow.

A guard for anything the server takes from its previous lint of a document (incremental
parse, node facts kept by `evallint.analysis.reuse`, its project index, and any reuse of
per-function work added later): a store that answered for a function whose text did not
change, but whose meaning did, fails the step named in the assertion. Driven in process
(the server's lint method, as its lint thread calls it); `test_lsp_incremental.py` replays
a session through a real client."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pygls")

from evallint.engine.run import lint_source  # noqa: E402
from evallint.lsp.program import Program  # noqa: E402
from evallint.lsp.server import EvallintServer  # noqa: E402

SCRIPT = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import no_grad

EPOCHS = 3
backbone = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.1))

    def settle(self):
        self.train()

    def forward(self, x):
        return self.body(x)


def train_epoch(model, loader, optimizer):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()


def evaluate(model, loader):
    correct = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
    return correct


def evaluate_clean(model, loader):
    model.eval()
    total = 0.0
    with no_grad():
        for x, y in loader:
            total += F.cross_entropy(model(x), y).item()
    return total


def prepare(model):
    model.train()


def score(model, batch):
    return model(batch).sum()


def validate_backbone(val_loader):
    for x, _ in val_loader:
        features = backbone(x)
    return features


def run(train_loader, val_loader):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(EPOCHS):
        train_epoch(model, train_loader, optimizer)
        prepare(model)
        print(evaluate(model, val_loader), evaluate_clean(model, val_loader))
        model.eval()
        print(score(model, next(iter(val_loader))))
"""


def _edits() -> list[tuple[str, str, str, bool]]:
    """(what the edit does, text replaced, replacement, whether a fresh lint's findings
    change), applied one after another."""
    return [
        ("an import rebinds a name a function uses",
         "from torch import no_grad\n", "from contextlib import nullcontext as no_grad\n", True),
        ("the import back", "from contextlib import nullcontext as no_grad\n",
         "from torch import no_grad\n", True),
        ("a callee's body no longer switches to training mode",
         "    model.train()\n    for x, y in loader:\n", "    for x, y in loader:\n", True),
        ("and does again", "def train_epoch(model, loader, optimizer):\n    for x, y in loader:\n",
         "def train_epoch(model, loader, optimizer):\n    model.train()\n    for x, y in loader:\n", True),
        ("a class's __init__ drops its mode-dependent layers",
         "nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.1)", "nn.Linear(8, 8)", True),
        ("and gets them back", "self.body = nn.Sequential(nn.Linear(8, 8))",
         "self.body = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.1))", True),
        ("a decorator turns autograd off", "def evaluate(model, loader):\n",
         "@torch.no_grad()\ndef evaluate(model, loader):\n", True),
        ("and is removed", "@torch.no_grad()\ndef evaluate(model, loader):\n",
         "def evaluate(model, loader):\n", True),
        ("a caller wraps its call of a helper in no_grad",
         "        print(score(model, next(iter(val_loader))))\n",
         "        with torch.no_grad():\n            print(score(model, next(iter(val_loader))))\n",
         True),
        ("and unwraps it",
         "        with torch.no_grad():\n            print(score(model, next(iter(val_loader))))\n",
         "        print(score(model, next(iter(val_loader))))\n", True),
        ("a module-level statement freezes a module-level model a function reads",
         "backbone = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2))\n",
         "backbone = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2))\nbackbone.requires_grad_(False)\n",
         True),
        ("and no longer", "backbone.requires_grad_(False)\n", "", True),
        ("a helper the caller runs before evaluating switches to eval mode",
         "def prepare(model):\n    model.train()\n", "def prepare(model):\n    model.eval()\n", True),
        ("and back to training mode",
         "def prepare(model):\n    model.eval()\n", "def prepare(model):\n    model.train()\n", True),
        ("a statement typed in a function, nothing else changes",
         "    correct = 0\n", "    correct = 0\n    seen = 0\n", False),
        ("a renamed callee (its call now names nothing)",
         "def evaluate(model, loader):", "def evaluate_all(model, loader):", True),
        ("its call renamed too", "print(evaluate(model", "print(evaluate_all(model", True),
    ]  # fmt: skip


def _found(found: list) -> list[tuple[object, ...]]:
    return sorted({(d.code, d.line, d.column, d.end_line, d.end_column, d.message) for d in found})


def test_every_edit_of_the_session_finds_what_a_fresh_lint_finds(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("a project of its own\n", encoding="utf-8")
    path = tmp_path / "train.py"
    uri, text = path.as_uri(), SCRIPT
    server = EvallintServer()
    before = _found(lint_source(text, str(path)))
    assert _found(server.lint(Program.of_text(uri, str(path), 1, text))) == before
    assert {code for code, *_ in before} >= {"EVL001", "EVL002"}
    for version, (what, old, new, changes) in enumerate(_edits(), start=2):
        assert text.count(old) == 1, what
        text = text.replace(old, new, 1)
        expected = _found(lint_source(text, str(path)))
        assert _found(server.lint(Program.of_text(uri, str(path), version, text))) == expected, what
        # each edit that changes a fresh lint's findings is one a stale answer would miss
        assert (_kinds(expected) != _kinds(before)) is changes, what
        before = expected


def _kinds(found: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return sorted((code, message) for code, _, _, _, _, message in found)
