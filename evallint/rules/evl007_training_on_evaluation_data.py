"""EVL007: a training step inside an evaluation region."""

from __future__ import annotations

from collections.abc import Iterator

from evallint.analysis.facts import ModuleFacts
from evallint.diagnostics import Diagnostic
from evallint.rules.base import Example, Rule, related_at


class TrainingOnEvaluationData(Rule):
    """
    ## What it does
    Finds `optimizer.step()` / `loss.backward()` run unconditionally inside an evaluation
    region: a loop over validation or test data, or a function named like `evaluate()` or
    `validate()`, that does not put the model into training mode itself.

    ## Why is this bad?
    Updating weights on the data you measure on is a leak: validation and test scores stop
    measuring generalisation (and improve every epoch for the wrong reason). It is usually a
    copy-pasted training loop body; sometimes a deliberate test-time adaptation that forgot
    to say so.

    ## Example
    ```python
    model.eval()
    for x, y in val_loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    model.eval()
    with torch.no_grad():
        for x, y in val_loader:
            val_loss += criterion(model(x), y).item()
    ```

    ## Known problems
    Deliberate test-time adaptation or fine-tuning on a held-out split is recognised when the
    loop or function calls `train()`; a loop over a loader whose name mentions both training
    and evaluation (`train_val_loader`) is not reported.

    ## Fix safety
    No fix: whether the step should be removed or the data is mislabelled is the author's call.
    """

    code = "EVL007"
    name = "training-on-evaluation-data"
    summary = "An optimizer step or backward pass runs inside an evaluation loop"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in val_loader:
                model.train()
                loss = model(x).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in val_loader:
                loss = model(x).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        """,
            (7,),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        seen: set[int] = set()
        for found in facts.training_on_eval_data:
            if id(found.place.node) in seen:
                continue
            seen.add(id(found.place.node))
            message = (
                f"training step inside an evaluation ({found.region.description}): the weights are updated on evaluation data, "
                f"so its scores no longer measure generalisation; remove the step or call `train()` if this is deliberate adaptation"
            )
            related = [
                related_at(
                    found.place.__class__(found.region.node, facts.unit),
                    "the evaluation starts here",
                )
            ]
            yield self.diagnostic(facts, found.place, (), message, related, "")
