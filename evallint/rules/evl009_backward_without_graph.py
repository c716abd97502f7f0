"""EVL009: backward() on a value computed under no_grad / inference_mode."""

from __future__ import annotations

from collections.abc import Iterator

from evallint.analysis.facts import ModuleFacts
from evallint.diagnostics import Diagnostic
from evallint.rules.base import Example, Rule, related_at


class BackwardWithoutGraph(Rule):
    """
    ## What it does
    Finds `loss.backward()` where `loss` was computed inside `torch.no_grad()`,
    `torch.inference_mode()` or after `torch.set_grad_enabled(False)`.

    ## Why is this bad?
    A value computed without autograd has no graph: `backward()` raises `RuntimeError:
    element 0 of tensors does not require grad` (or, if something in it requires grad through
    another path, silently computes only part of the gradient). It usually means a training
    step was pasted into an evaluation block, or the `no_grad` block is wider than intended.

    ## Example
    ```python
    with torch.no_grad():
        loss = criterion(model(x), y)
    loss.backward()
    ```

    ## Use instead
    ```python
    with torch.no_grad():
        target = teacher(x)
    loss = criterion(model(x), target)
    loss.backward()
    ```

    ## Known problems
    Only a name assigned in the same function is followed.

    ## Fix safety
    No fix: which part belongs outside `no_grad` is the author's decision.
    """

    code = "EVL009"
    name = "backward-without-graph"
    summary = "backward() on a value computed under no_grad or inference_mode"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(2, 1)
            with torch.no_grad():
                target = model(x)
            loss = (model(x) - target).pow(2).mean()
            loss.backward()
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(2, 1)
            with torch.no_grad():
                loss = model(x).sum()
            loss.backward()
        """,
            (5,),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        for found in facts.backward_calls:
            if found.bound_without_grad is None:
                continue  # the variable was computed with autograd on (or elsewhere)
            message = (
                f"`{found.variable}` was computed with autograd off (no_grad/inference_mode), so it has no graph: "
                f"`backward()` raises RuntimeError; compute it outside the no_grad block"
            )
            related = [
                related_at(
                    found.bound_without_grad, f"`{found.variable}` computed here without autograd"
                )
            ]
            yield self.diagnostic(facts, found.place, (), message, related, found.variable)
