"""EVL007: a training step inside an evaluation region."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModuleFacts, Place, StepBlock
from evallint.analysis.regions import RegionKind
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes
from evallint.diagnostics import Diagnostic
from evallint.rules.base import Example, Rule, related_at

_TRAINING_NAME_WORDS = frozenset(
    {"train", "training", "fit", "finetune", "tune", "adapt", "step", "test"}
)
"""Words that make a function named like an evaluation a training one too
(`train_and_evaluate`, `finetune_eval`, `eval_step`)."""


def training_on_evaluation(facts: ModuleFacts) -> Iterator[tuple[Place, StepBlock]]:
    """(first step or backward, its block) for every block over evaluation data that trains
    unconditionally: the analysis classified it as training, and it does not call `train()`
    itself (deliberate adaptation does)."""
    closures: Optional[set[str]] = None
    for block in facts.step_blocks:
        first = block.step or block.backward
        if (
            first is None
            or not block.evaluation_data
            or block.region.kind is not RegionKind.TRAIN
            or block.switches_to_train
        ):
            continue
        if block.kind == "loop" and "train" in block.words:
            continue  # `for x in train_val_loader`
        if block.kind == "loop" and _counts_steps(block.block):
            continue  # `for i in range(args.eval_step)`: a number of training steps
        if block.kind == "loop" and block.step is not None and _steps_its_items(block):
            continue  # `for opt in valid_optimizers.values(): scaler.step(opt)`: optimizers
        if block.kind == "function" and block.words & _TRAINING_NAME_WORDS:
            continue
        if (
            block.kind == "function"
            and type(block.block) is cst.FunctionDef
            and _trains_a_module_it_builds(block.block)
        ):
            continue  # builds a model and its optimizer: a training run, whatever its name
        if block.kind == "function" and type(block.block) is cst.FunctionDef:
            if closures is None:
                closures = _step_closures(facts.tree)
            if block.block.name.value in closures:
                continue  # `optimizer.step(lambda: eval(p))`: the objective of a training step
        yield first, block


def _trains_a_module_it_builds(function: cst.FunctionDef) -> bool:
    """The function builds a module (`model = MLPNet(...)`) and an optimizer over that
    module's parameters (`torch.optim.Adam(model.parameters())`): the weights it steps did
    not exist before the call, so nothing evaluated is being changed; the function is a
    training run (fit then score, whatever it is named). A function that steps a module it
    was given, or one it did not build, is judged as before."""
    built: set[str] = set()
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign and type(node.value) is cst.Call:
            head = dotted_name(node.value.func) or ""
            if head.split(".")[-1][:1].isupper():
                built.update(t.target.value for t in node.targets if type(t.target) is cst.Name)
    if not built:
        return False
    for node in iter_nodes(function.body):
        if type(node) is not cst.Call or not node.args:
            continue
        head = dotted_name(node.func) or ""
        if "optim." not in f".{head}" or not head.split(".")[-1][:1].isupper():
            continue
        first = node.args[0].value
        if (
            type(first) is cst.Call
            and type(first.func) is cst.Attribute
            and first.func.attr.value == "parameters"
            and type(first.func.value) is cst.Name
            and first.func.value.value in built
        ):
            return True
    return False


def _steps_its_items(block: StepBlock) -> bool:
    """The loop's variable is what its step updates (`opt.step()`, `scaler.step(opt)`): the
    loop runs over optimizers (a name such as `valid_optimizers` means the ones in use), not
    over data."""
    target = getattr(block.block, "target", None)
    step = block.step.node if block.step is not None else None
    if target is None or type(step) is not cst.Call:
        return False
    func = step.func
    if type(func) is not cst.Attribute or func.attr.value != "step":
        return False  # `one_step(model, batch, optimizer)`: a helper given the batch
    items = {n.value for n in iter_nodes(target) if type(n) is cst.Name}
    stepped = [func.value] + [a.value for a in step.args]
    return any(type(e) is cst.Name and e.value in items for e in stepped)


def _counts_steps(loop: cst.CSTNode) -> bool:
    """`for i in range(args.eval_step)`: the loop runs over integers, and no evaluation data
    is measured there (`range(len(val_set))` counts the items of a data set, so it is kept)."""
    iterable = getattr(loop, "iter", None)
    if not (
        type(iterable) is cst.Call
        and type(iterable.func) is cst.Name
        and iterable.func.value in ("range", "trange")
    ):
        return False
    return not any(
        type(node) is cst.Call and type(node.func) is cst.Name and node.func.value == "len"
        for node in iter_nodes(iterable)
    )


def _step_closures(tree: Optional[cst.Module]) -> set[str]:
    """Names of functions passed to an optimizer's `step()` as its closure, directly or
    called in a lambda (`optimizer.step(closure)`, `optimizer.step(lambda: f(x))`): each
    computes the loss the step minimises, whatever its name says."""
    found: set[str] = set()
    if tree is None:
        return found
    for node in iter_nodes(tree, enter_scopes=True):
        if not (
            type(node) is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value == "step"
        ):
            continue
        for argument in node.args:
            for inner in iter_nodes(argument.value, enter_scopes=True):
                if type(inner) is cst.Name:
                    found.add(inner.value)
    return found


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
    and evaluation (`train_val_loader`) is not reported, nor a loop whose variable is what its
    step updates (`for opt in valid_optimizers.values(): scaler.step(opt)` runs over the
    optimizers in use, not over validation data).

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
        for place, block in training_on_evaluation(facts):
            if id(place.node) in seen:
                continue
            seen.add(id(place.node))
            region = block.region
            message = (
                f"training step inside an evaluation ({region.description}): the weights are updated on evaluation data, "
                f"so its scores no longer measure generalisation; remove the step or call `train()` if this is deliberate adaptation"
            )
            related = [related_at(Place(region.node, facts.unit), "the evaluation starts here")]
            yield self.diagnostic(facts, place, (), message, related, "")
