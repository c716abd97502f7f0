"""EVL005's consequence for a bare grad-switch call follows the switch: a bare
`torch.no_grad()` leaves autograd on; a bare `torch.enable_grad()` leaves it as it was (off
under a caller's `no_grad`), and its fix is `set_grad_enabled(True)`, not `False`."""

from __future__ import annotations

from evallint import lint_source

_STEP = "import torch\n\n\ndef step(model, x):\n    CALL\n    return model(x).sum()\n"


def _evl005(call: str) -> list[str]:
    return [d.message for d in lint_source(_STEP.replace("CALL", call)) if d.code == "EVL005"]


def test_bare_no_grad_leaves_autograd_on() -> None:
    (message,) = _evl005("torch.no_grad()")
    assert "autograd stays on" in message and "set_grad_enabled(False)" in message


def test_bare_enable_grad_leaves_autograd_as_it_was() -> None:
    (message,) = _evl005("torch.enable_grad()")
    assert "stays as it was" in message and "set_grad_enabled(True)" in message
