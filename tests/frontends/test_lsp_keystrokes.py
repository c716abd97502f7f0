"""Keystroke by keystroke, the language server's findings are exactly a cold lint's.

The typing session of `benchmarks/lsp_latency.py` (a comment, statements typed one
character at a time, most of them not parsable until their brackets close, a backspace run,
a retype) in a smaller script of the same shape, driven through the server's lint method
as its lint thread calls it. After every edit the server answers by one of its paths (the
last findings moved when only comments changed, the syntax error while the text does not
parse, an incremental re-parse and analysis otherwise, with whatever it keeps between
lints: the parser's statements, node facts, the project index, project files' class
tables); whichever path it takes, a version that parses must get the very findings (order,
positions, messages, fixes, related places) a fresh `lint_source` of the same text gets.
`test_lsp_edit_sequence.py` covers edits of what a function's meaning depends on outside
its own text; this one covers the many small edits a latency benchmark times."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from evallint.engine.run import lint_source  # noqa: E402
from evallint.lsp.program import Program  # noqa: E402
from evallint.lsp.server import EvallintServer  # noqa: E402

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"

BLOCK = """

class Net{i}(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.Dropout(0.1))
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.body(x))


def train_epoch_{i}(model, loader, optimizer):
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)


def evaluate_{i}(model, loader):
    correct = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def run_{i}(train_loader, val_loader, epochs=3):
    model = Net{i}()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        loss = train_epoch_{i}(model, train_loader, optimizer)
        acc = evaluate_{i}(model, val_loader)
        print(epoch, loss, acc)
"""

TYPED = [
    "\n    # mean",
    "\n    n = max(len(loader), 1)",
    -3,
    "2)",
    "\n    model.eval()",
    -len("\n    model.eval()"),
    "\n    s = 1.0 / n",
]
"""Typed after `total = 0.0` of the middle block's training function (a negative number:
that many backspaces). `model.eval()` there, typed and erased, changes the findings."""


def _keystrokes() -> list[tuple[int, int, str]]:
    """(offset, characters removed, text inserted) per keystroke, offsets into the text as
    it is when the keystroke is applied."""
    text = HEADER + "".join(BLOCK.format(i=i) for i in range(1))
    anchor = "    total = 0.0"
    offset = text.index(anchor, text.index("def train_epoch_0")) + len(anchor)
    edits: list[tuple[int, int, str]] = []
    for typed in TYPED:
        if isinstance(typed, int):
            for _ in range(-typed):
                offset -= 1
                edits.append((offset, 1, ""))
        else:
            for char in typed:
                edits.append((offset, 0, char))
                offset += 1
    return edits


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def test_every_keystroke_gets_a_cold_lints_findings(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("a project of its own\n", encoding="utf-8")
    (tmp_path / "models.py").write_text(  # a project file the forward-method tables read
        "import torch.nn as nn\n\n\nclass Scorer(nn.Module):\n"
        "    def score(self, x):\n        return self(x)\n",
        encoding="utf-8",
    )
    path = tmp_path / "train.py"
    uri = path.as_uri()
    text = HEADER + "".join(BLOCK.format(i=i) for i in range(1))
    server = EvallintServer()
    assert server.lint(Program.of_text(uri, str(path), 1, text)) == lint_source(text, str(path))
    compared, kinds = 0, set()
    for version, (offset, removed, inserted) in enumerate(_keystrokes(), start=2):
        text = text[:offset] + inserted + text[offset + removed :]
        found = server.lint(Program.of_text(uri, str(path), version, text))
        if not _parses(text):
            continue  # the last findings, moved, and the syntax error: not a cold lint's
        expected = lint_source(text, str(path))
        assert found == expected, (version, text[offset - 40 : offset + 40])
        compared += 1
        kinds.add(tuple(sorted((d.code, d.line) for d in expected)))
    assert compared >= 15
    assert len(kinds) >= 3  # the findings moved and changed along the way: a stale answer fails
