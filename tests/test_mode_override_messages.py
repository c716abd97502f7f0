"""EVL001/EVL003 advice for a module whose class overrides `eval()`/`train()` with a method
that switches no mode (analysis/mode_overrides.py): `model.eval()` would run that method, so
the advice names the base's switch, `nn.Module.eval(model)` (or `model.train(False)` while
`train()` is nn.Module's) and `nn.Module.train(model)`; other modules keep `model.eval()`."""

from __future__ import annotations

from pathlib import Path

from evallint import lint_source

FIXTURES = Path(__file__).parent / "fixtures"


def _messages(name: str, code: str, *replacements: tuple[str, str]) -> list[str]:
    source = (FIXTURES / name).read_text(encoding="utf-8")
    for old, new in replacements:
        source = source.replace(old, new)
    return [d.message for d in lint_source(source, name) if d.code == code]


def test_eval_override_advice_names_module_eval() -> None:
    (message,) = _messages("evl001_eval_override_advice_names_module_eval.py", "EVL001")
    assert "call `nn.Module.eval(model)` (or `model.train(False)`)" in message
    assert "call `model.eval()`" not in message


def test_eval_advice_is_plain_without_the_override() -> None:
    source = (
        "import torch\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))\n"
        "with torch.no_grad():\n"
        "    for x in val_loader:\n"
        "        out = model(x)\n"
    )
    (message,) = [d.message for d in lint_source(source) if d.code == "EVL001"]
    assert "call `model.eval()` before evaluating" in message


def test_eval_override_advice_drops_train_false_when_train_is_overridden_too() -> None:
    (message,) = _messages(
        "evl001_eval_override_advice_names_module_eval.py",
        "EVL001",
        (
            "    def eval(self):",
            "    def train(self, mode=True):\n        return self\n\n    def eval(self):",
        ),
    )
    assert "call `nn.Module.eval(model)` before evaluating" in message


def test_train_override_advice_names_module_train() -> None:
    (message,) = _messages("evl003_train_override_advice_names_module_train.py", "EVL003")
    assert "call `nn.Module.train(model)` before training" in message
    assert "call `model.train()`" not in message
