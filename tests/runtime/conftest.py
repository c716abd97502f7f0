"""Training scripts written for the runtime checker's tests; `# runtime: EVLnnn` marks the
line an event must be reported at."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

HEADER = """\
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
train_loader = [(torch.randn(16, 8), torch.randint(0, 4, (16,))) for _ in range(4)]
val_loader = [(torch.randn(16, 8), torch.randint(0, 4, (16,))) for _ in range(2)]
"""

CORRECT = (
    HEADER
    + """
for epoch in range(2):
    model.train()
    for x, y in train_loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in val_loader)
"""
)

EVAL_IN_TRAIN_MODE = (
    HEADER
    + """
for epoch in range(2):
    model.train()
    for x, y in train_loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        for x, y in val_loader:
            correct = (model(x).argmax(1) == y).sum().item()  # runtime: EVL001
"""
)

EVAL_WITH_GRAD = (
    HEADER
    + """
for epoch in range(2):
    model.train()
    for x, y in train_loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for x, y in val_loader:
        correct = (model(x).argmax(1) == y).sum().item()  # runtime: EVL002
"""
)

TRAIN_AFTER_EVAL = (
    HEADER
    + """

def validate(net):
    net.eval()
    with torch.no_grad():
        return sum((net(x).argmax(1) == y).sum().item() for x, y in val_loader)


model.train()
for epoch in range(3):
    for x, y in train_loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()  # runtime: EVL003
        opt.step()
    validate(model)
"""
)

LONG_TRAINING = (
    HEADER
    + """
step = 0
model.train()
while True:
    for x, y in train_loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
"""
)


def expected_lines(source: str) -> set[tuple[int, str]]:
    return {
        (number, match.group(1))
        for number, line in enumerate(source.splitlines(), start=1)
        for match in [re.search(r"# runtime: (EVL\d{3})", line)]
        if match
    }


@pytest.fixture
def write_script(tmp_path: Path):
    def write(source: str, name: str = "train.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write
