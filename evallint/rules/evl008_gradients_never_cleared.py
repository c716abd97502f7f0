"""EVL008: a training loop steps the optimizer but never clears gradients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModuleFacts, Place
from evallint.diagnostics import Diagnostic, Fix
from evallint.rules.base import Example, Rule, related_at
from evallint.rules.fixes import FixBuilder


class GradientsNeverCleared(Rule):
    """
    ## What it does
    Finds a loop that calls `backward()` and `optimizer.step()` but never clears gradients:
    no `optimizer.zero_grad()`, `model.zero_grad()`, `zero_grad(set_to_none=True)`, or
    `p.grad = None` anywhere in the loop.

    ## Why is this bad?
    `backward()` adds into `.grad`; it does not overwrite it. Without clearing, every step
    uses the sum of all gradients since the start: the effective learning rate grows with the
    iteration count, and training diverges or crawls while the loss curve looks merely noisy.

    ## Example
    ```python
    for x, y in train_loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Known problems
    Gradient accumulation clears gradients every k steps inside the loop, which counts as
    clearing. Clearing done inside a helper called from the loop counts when the helper can be
    read: a function of the file or project, or a method of the class or its bases
    (`loss = self.standard_loss(x, y)` whose body calls `self.optimizer.zero_grad()`), itself
    or through one more helper. A helper of a library, or one that clears another optimizer's
    gradients, is taken at its word: any clearing counts.

    ## Fix safety
    The fix inserts `optimizer.zero_grad()` before the statement that calls `backward()`;
    it changes the numbers (that is the point) and assumes no accumulation across iterations
    was intended.
    """

    code = "EVL008"
    name = "gradients-never-cleared"
    summary = "A training loop calls backward() and step() but never zero_grad()"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in train_loader:
                optimizer.zero_grad(set_to_none=True)
                model(x).sum().backward()
                optimizer.step()
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in train_loader:
                model(x).sum().backward()
                optimizer.step()
        """,
            (6,),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        seen: set[int] = set()
        for found in facts.step_blocks:
            if (
                found.kind != "loop"
                or found.step is None
                or found.backward is None
                or found.clears_grad
            ):
                continue  # steps on gradients that are cleared (or never accumulated)
            if id(found.step.node) in seen:
                continue
            seen.add(id(found.step.node))
            optimizer = _optimizer_text(found.step.node)
            message = (
                f"`{optimizer}.step()` in a loop that never clears gradients: `backward()` adds into `.grad`, so each step "
                f"applies the sum of all gradients so far; call `{optimizer}.zero_grad()` every iteration"
            )
            related = [related_at(found.backward, "gradients accumulate here")]
            fix = self.fix(facts, found.backward, optimizer) if facts.want_fixes else None
            yield self.diagnostic(facts, found.step, (), message, related, optimizer, fix=fix)

    @staticmethod
    def fix(facts: ModuleFacts, backward: Place, optimizer: str) -> Optional[Fix]:
        builder = FixBuilder(facts)
        statement = builder.enclosing_statement(backward.node)
        if statement is None:
            return None
        return builder.insert_before(
            statement,
            f"{optimizer}.zero_grad()",
            f"Call `{optimizer}.zero_grad()` before backward()",
        )


def _optimizer_text(step: cst.CSTNode) -> str:
    func = getattr(step, "func", None)
    if isinstance(func, cst.Attribute):
        args = getattr(step, "args", ())
        receiver = func.value
        text = cst.Module([]).code_for_node(receiver)
        if args and "scaler" in text:
            return cst.Module([]).code_for_node(args[0].value)
        return text
    return "optimizer"
