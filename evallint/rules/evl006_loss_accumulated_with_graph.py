"""EVL006: a training loop accumulates the loss with its autograd graph."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from evallint.analysis.facts import GraphAccumulation, ModuleFacts
from evallint.diagnostics import Diagnostic, Edit, Fix
from evallint.rules.base import Example, Rule


class LossAccumulatedWithGraph(Rule):
    """
    ## What it does
    Finds a training loop that adds a loss (or any value computed from a model's forward with
    autograd on) into a running total or a list without detaching it: `running_loss += loss`,
    `epoch_loss += loss * x.size(0)`, `losses.append(loss)`.

    ## Why is this bad?
    The total is a tensor that references every iteration's autograd graph, so none of them is
    freed until the loop ends: memory grows with every batch, often until the epoch runs out of
    memory, and the arithmetic itself is tracked for a backward pass that never comes.

    ## Example
    ```python
    for x, y in train_loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss
    ```

    ## Use instead
    ```python
        running_loss += loss.item()  # or loss.detach()
    ```

    ## Known problems
    Not reported when the accumulated value is itself backpropagated (gradient accumulation:
    `total += loss; total.backward()`). Values are followed through assignments in the same
    function; a loss returned by a helper is followed only when the helper receives the model.

    ## Fix safety
    The fix appends `.detach()`, which keeps the value a tensor with the same numbers.
    """

    code = "EVL006"
    name = "loss-accumulated-with-graph"
    summary = "A training loop accumulates a loss with its autograd graph (memory grows every step)"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            total = 0.0
            for x in train_loader:
                loss = model(x).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                total += loss.item()
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            total, history = 0.0, []
            for x in train_loader:
                loss = model(x).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                total += loss
                history.append(loss * 2)
        """,
            (10, 11),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        for found in facts.graph_accumulations:
            message = (
                f"`{found.accumulator}` accumulates `{found.value}` with its autograd graph: every iteration's graph stays "
                f"alive until the loop ends and memory grows each step; use `.item()` or `.detach()`"
            )
            fix = self.fix(facts, found) if facts.want_fixes else None
            yield self.diagnostic(facts, found.place, (), message, [], found.accumulator, fix=fix)

    @staticmethod
    def fix(facts: ModuleFacts, found: GraphAccumulation) -> Fix:
        node = found.place.node
        value = node.value if isinstance(node, cst.AugAssign) else node.args[0].value  # type: ignore[union-attr]
        simple = isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript))
        text = f"{found.value}.detach()" if simple else f"({found.value}).detach()"
        line, column, end_line, end_column = facts.unit.locate(value)
        return Fix(
            "Detach the accumulated value", (Edit(line, column, end_line, end_column, text),)
        )
