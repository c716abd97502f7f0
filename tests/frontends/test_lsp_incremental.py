"""What the language server publishes while a script is edited equals a from-scratch lint of
each version: its shortcuts (re-parsing only the statements that changed, moving findings
over comment-only edits, the project index kept between lints) never change a finding.

A real client (pytest-lsp over stdio, `debounce: 0`) replays a session of edits to a
training script: a statement typed in a function, a callee that starts switching modes
and stops again, an import, module-level statements, a class's layers and methods, a
comment, a syntax error and its repair, a renamed and a duplicated function."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from evallint.engine.run import lint_source  # noqa: E402

PUBLISH = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS

SCRIPT = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import no_grad

backbone = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.1))

    def settle(self):
        self.eval()

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


def validate_backbone(val_loader):
    for x, _ in val_loader:
        features = backbone(x)
    return features


def run(train_loader, val_loader):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        train_epoch(model, train_loader, optimizer)
        print(evaluate(model, val_loader), evaluate_clean(model, val_loader))


backbone.eval()
with torch.no_grad():
    validate_backbone(val_loader)
"""

SWITCH_BACK = "        optimizer.step()\n"


def _edits() -> list[tuple[str, str, str]]:
    """(what the edit does, text replaced, replacement), applied one after another."""
    return [
        ("type a statement in a function", "    correct = 0\n", "    correct = 0\n    seen = 0\n"),
        ("type more of it", "    seen = 0\n", "    seen = len(loader)\n"),
        ("the callee switches to eval mode at its end", SWITCH_BACK, SWITCH_BACK + "    model.eval()\n"),
        ("and stops again", SWITCH_BACK + "    model.eval()\n", SWITCH_BACK),
        ("an import", "from torch import no_grad\n", "from contextlib import nullcontext as no_grad\n"),
        ("the import back", "from contextlib import nullcontext as no_grad\n", "from torch import no_grad\n"),
        ("a module-level statement goes", "\nbackbone.eval()\n", "\n"),
        ("a module-level assignment", "backbone = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2))",
         "backbone = nn.Sequential(nn.Linear(8, 8))"),
        ("a class's layers", "nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.1)", "nn.Linear(8, 8)"),
        ("a class's method", "    def settle(self):\n        self.eval()\n", "    def settle(self):\n        self.train()\n"),
        ("a method added", "    def forward(self, x):\n",
         "    def predict(self, x):\n        self.eval()\n        return self(x)\n\n    def forward(self, x):\n"),
        ("a comment", "    correct = 0\n", "    # count the right answers\n    correct = 0\n"),
        ("a syntax error", "    return correct\n", "    return (correct\n"),
        ("its repair", "    return (correct\n", "    return correct\n"),
        ("a renamed callee", "def train_epoch(", "def train_one_epoch("),
        ("its call renamed too", "        train_epoch(", "        train_one_epoch("),
        ("a duplicated function", "def validate_backbone(val_loader):\n",
         "def validate_twice(val_loader):\n    for x, _ in val_loader:\n        features = backbone(x)\n    return features\n\n\ndef validate_backbone(val_loader):\n"),
    ]  # fmt: skip


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "evallint.lsp"])
)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options={"debounce": 0}
        )
    )
    yield
    await lsp_client.shutdown_session()


async def _published(client: LanguageClient, uri: str, version: int) -> list[types.Diagnostic]:
    """The diagnostics the server publishes for `version` of the document."""
    while True:
        params = await asyncio.wait_for(client.wait_for_notification(PUBLISH), 60)
        if params.uri == uri and params.version == version:
            return list(params.diagnostics)


def _seen(diagnostics: list[types.Diagnostic]) -> list[tuple[object, ...]]:
    return sorted(
        (
            str(d.code),
            d.range.start.line,
            d.range.start.character,
            d.range.end.line,
            d.range.end.character,
            d.message,
        )
        for d in diagnostics
    )


def _from_scratch(text: str, path: Path) -> list[tuple[object, ...]]:
    """The batch linter's findings in LSP coordinates (0-based; the script is ASCII)."""
    return sorted(
        (d.code, d.line - 1, d.column - 1, d.end_line - 1, d.end_column - 1, d.message)
        for d in lint_source(text, str(path))
    )


@pytest.mark.integration
@pytest.mark.asyncio
async def test_every_edit_publishes_what_a_from_scratch_lint_finds(
    client: LanguageClient, tmp_path: Path
) -> None:
    (tmp_path / "README.md").write_text("a project of its own\n", encoding="utf-8")
    path = tmp_path / "train.py"
    uri, text = path.as_uri(), SCRIPT
    item = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
    waiter = asyncio.ensure_future(_published(client, uri, 1))
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    first = _seen(await waiter)
    assert first == _from_scratch(text, path)
    assert {c for c, *_ in first} >= {"EVL001", "EVL002"}  # the session starts with findings
    changed = 0
    for version, (what, old, new) in enumerate(_edits(), start=2):
        assert text.count(old) >= 1, what
        before = _from_scratch(text, path)
        text = text.replace(old, new, 1)
        waiter = asyncio.ensure_future(_published(client, uri, version))
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        seen = _seen(await waiter)
        expected = _from_scratch(text, path)
        if what == "a syntax error":
            # the server keeps the last findings (moved with the lines) beside the error
            assert [c for c, *_ in expected] == ["EVL999"], what
            assert [f for f in seen if f[0] == "EVL999"] == expected, what
            continue
        assert seen == expected, what
        changed += _kinds(before) != _kinds(expected)
    assert changed >= 4  # the session changes what is found, not only where


def _kinds(found: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return sorted((code, message) for code, _, _, _, _, message in found)
