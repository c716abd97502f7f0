"""EVL002: a module runs forward in an evaluation region with autograd on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModuleFacts
from evallint.diagnostics import Diagnostic, Fix
from evallint.rules.base import (
    Example,
    Rule,
    call_anchor,
    demonstrates_a_layer,
    first_forwards,
    owned_elsewhere,
    region_start,
    subject_text,
    where_evaluated,
)
from evallint.rules.fixes import COMPREHENSIONS, FixBuilder


class EvalWithAutograd(Rule):
    """
    ## What it does
    Finds evaluation code that runs a module's forward pass while gradient tracking may be
    on (no enclosing `torch.no_grad()` / `torch.inference_mode()` /
    `torch.set_grad_enabled(False)`, no such decorator) and nothing in the evaluation needs
    gradients (no `.backward()`, `torch.autograd.grad`, `.grad` read or `requires_grad_()`).

    ## Why is this bad?
    `model.eval()` does not turn autograd off: it only switches Dropout and BatchNorm to
    inference behaviour. With autograd on, every forward records its graph and keeps each
    layer's activations alive for a backward pass that never comes. Measured on an H100,
    evaluation peaks at 16x (ResNet-50), 32x (ViT-B) and 35x (BERT-base) the memory of the
    same evaluation under `no_grad`: the difference between batch 128 and out-of-memory.
    Accumulating such outputs (`outputs.append(logits)`) also keeps every batch's graph.

    ## Example
    ```python
    model.eval()
    for x, y in val_loader:
        logits = model(x)
    ```

    ## Use instead
    ```python
    model.eval()
    with torch.no_grad():  # or torch.inference_mode()
        for x, y in val_loader:
            logits = model(x)
    ```

    ## Known problems
    An evaluation that needs gradients (saliency maps, adversarial examples, style transfer)
    is recognised by its `.backward()`/`autograd.grad`/`.grad`/`requires_grad_()` calls and
    by optimizers built over inputs rather than module parameters; one that gets them in a
    way evallint cannot see is reported. `model.generate()` (transformers) disables autograd
    itself and is not reported. A single torch.nn layer built alone and only called,
    switched and read (`ln = nn.LayerNorm(4); print(ln(x).shape)`: teaching code showing
    what the layer does) is a demonstration of the layer, not reported; one that is given to
    anything (a container, an optimizer, a function) is part of a model.

    ## Fix safety
    Wrapping the loop in `with torch.no_grad():` changes nothing numerically; it is unsafe only
    if code in the loop calls `.backward()` indirectly.
    """

    code = "EVL002"
    name = "eval-with-autograd"
    summary = "Evaluation runs a module forward with autograd on and no use for gradients"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(4, 2)
            model.eval()
            with torch.inference_mode():
                for x in test_loader:
                    y = model(x)
        """),
        Example("""
            import torch
            @torch.no_grad()
            def evaluate(model, loader):
                model.eval()
                return [model(x) for x in loader]
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(4, 2)
            model.eval()
            for x in test_loader:
                y = model(x)
        """,
            (5,),
        ),
        Example(
            """
            import torch
            def evaluate(model, loader):
                model.eval()
                for x in loader:
                    y = model(x)
            model = torch.nn.Linear(4, 2)
            evaluate(model, val_loader)
        """,
            (5,),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        builders: list[FixBuilder] = []

        def statement_of(node: cst.CSTNode) -> Optional[cst.CSTNode]:
            # the statement the fix wraps in no_grad: each one after training is its own fix
            if not builders:
                builders.append(FixBuilder(facts))
            return builders[0].enclosing_statement(node)

        def loop_of(node: cst.CSTNode) -> Optional[cst.CSTNode]:
            # a script's top-level loops are separate evaluations, each fixed on its own
            if not builders:
                builders.append(FixBuilder(facts))
            return builders[0].outermost_loop(node)

        for forward in first_forwards(
            facts,
            lambda forward: bool(
                forward.grad_facts
                and forward.affects_grad
                and not owned_elsewhere(facts, forward, grad=True)
                and not demonstrates_a_layer(facts, forward)
            ),
            statement_of,
            loop_of,
        ):
            module = subject_text(facts, forward)
            message = (
                f"`{module}` runs with autograd on in {where_evaluated(forward)}: "
                f"every activation is kept for a backward pass that never comes (16-35x the memory); "
                f"wrap it in `with torch.no_grad():` (eval() does not disable autograd)"
            )
            related = []
            if forward.call.unit is facts.unit:
                related.append(region_start(facts, forward))
            fix = self.fix(facts, forward) if facts.want_fixes else None
            yield self.forward_diagnostic(facts, forward, message, related, module, fix)

    @staticmethod
    def fix(facts: ModuleFacts, forward) -> Optional[Fix]:
        """Wrap the evaluating call or loop in `with torch.no_grad():`, or decorate the
        evaluation function with `@torch.no_grad()`."""
        builder = FixBuilder(facts)
        description = "Run the evaluation under `torch.no_grad()`"
        call = call_anchor(facts, forward)
        if call is not None:
            statement = builder.enclosing_statement(call)
            return (
                builder.wrap_in_no_grad(statement, description) if statement is not None else None
            )
        region = forward.region.node
        if forward.region.after_training and forward.call.unit is facts.unit:
            region = builder.enclosing_statement(
                forward.call.node
            )  # the evaluating statement, not the eval() switch
        if isinstance(region, COMPREHENSIONS):
            region = builder.enclosing_statement(region)
        if isinstance(region, (cst.For, cst.While, cst.SimpleStatementLine)):
            return builder.wrap_in_no_grad(region, description)
        if isinstance(region, cst.FunctionDef):
            return builder.add_decorator(region, description)
        return None
