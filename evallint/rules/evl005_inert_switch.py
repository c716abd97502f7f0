"""EVL005: a mode or grad switch that does nothing (or raises)."""

from __future__ import annotations

from collections.abc import Iterator

from evallint.analysis.facts import ModuleFacts
from evallint.diagnostics import Diagnostic, Edit, Fix
from evallint.rules.base import Example, Rule

_CONSEQUENCE = {
    "uncalled-mode-method": "without the call nothing changes: the module stays in its current mode",
    "bare-grad-call": "as a bare statement it creates a context manager and throws it away: autograd stays on",
    "uncalled-grad-manager": "`with` needs an instance: this raises TypeError ('type' object does not support the context manager protocol)",
    "training-attribute": "setting `.training` changes only the top module: its Dropout and BatchNorm children stay as they were",
}
_ADVICE = {
    "uncalled-mode-method": "call it",
    "bare-grad-call": "use it in a `with` statement (or `torch.set_grad_enabled(False)`)",
    "uncalled-grad-manager": "call it: `with torch.no_grad():`",
    "training-attribute": "call `.eval()` / `.train()` instead",
}


class InertSwitch(Rule):
    """
    ## What it does
    Finds mode and grad switches that have no effect: `model.eval` or `model.train` without
    the call, a bare `torch.no_grad()` / `torch.inference_mode()` statement, `with
    torch.no_grad:` without the call, and `model.training = False`.

    ## Why is this bad?
    Each looks like it switches something and does not. `model.eval` is an attribute access;
    a bare `torch.no_grad()` builds a context manager that is never entered; `with
    torch.no_grad:` raises `TypeError` at run time; assigning `model.training` flips the flag of
    the top module only, while `eval()`/`train()` set it on every submodule, which is what
    Dropout and BatchNorm read. The evaluation then silently runs in training mode or with
    autograd on.

    ## Example
    ```python
    model.eval
    torch.no_grad()
    for x in val_loader:
        out = model(x)
    ```

    ## Use instead
    ```python
    model.eval()
    with torch.no_grad():
        for x in val_loader:
            out = model(x)
    ```

    ## Known problems
    `model.eval` is reported only where `model` is known to be a module. A bare decorator
    `@torch.no_grad` (no parentheses) works on PyTorch 2.x and is not reported.

    ## Fix safety
    Adding the missing call, or replacing `model.training = False` by `model.eval()`, is safe.
    A bare `torch.no_grad()` statement has no certain fix (which statements should it cover?).
    """

    code = "EVL005"
    name = "inert-switch"
    summary = "A mode or grad switch that does nothing (uncalled, bare, or `.training = ...`)"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(2, 2)
            torch.set_grad_enabled(False)
            was_training = model.training
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(2, 2)
            model.eval
            torch.no_grad()
            model.training = False
        """,
            (3, 4, 5),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        for found in facts.inert_switches:
            message = f"`{found.subject}`: {_CONSEQUENCE[found.kind]}; {_ADVICE[found.kind]}"
            fix = None
            if facts.want_fixes and found.replacement is not None:
                line, column, end_line, end_column = found.place.position()
                if found.kind == "uncalled-grad-manager":
                    fix = Fix(
                        "Call the context manager",
                        (Edit(end_line, end_column, end_line, end_column, "()"),),
                    )
                else:
                    fix = Fix(
                        f"Replace with `{found.replacement}`",
                        (Edit(line, column, end_line, end_column, found.replacement),),
                    )
            yield self.diagnostic(facts, found.place, (), message, [], found.subject, fix=fix)
