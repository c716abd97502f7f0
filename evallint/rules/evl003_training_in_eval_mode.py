"""EVL003: training resumes while the module may still be in eval mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModuleFacts, TrainingStep
from evallint.analysis.lattice import Origin
from evallint.diagnostics import Diagnostic, Fix
from evallint.rules.base import (
    Example,
    Rule,
    hidden_mode_methods,
    mode_related,
    receiver_text,
)
from evallint.rules.evl007_training_on_evaluation_data import training_on_evaluation
from evallint.rules.fixes import FixBuilder


class TrainingInEvalMode(Rule):
    """
    ## What it does
    Finds a training step (`loss.backward()` / `optimizer.step()` on a loss computed from the
    module, or a call to a function that trains it) that runs while the module may still be
    in eval mode because an `eval()` call, a call that leaves the module in eval mode
    (`validate(model)`), or `from_pretrained()` (Hugging Face models load in eval mode) came
    before it on some path with no `train()` in between. Also finds a PyTorch Lightning
    training-phase hook (a Callback's `on_train_epoch_end`, a LightningModule's
    `on_train_epoch_start`, ...) that calls `eval()` and may return without `train()`:
    since Lightning 2.2 the fit loop does not switch back to training mode for the next
    step. Validation, test and predict hooks are run in eval mode and restored by
    Lightning, and are not reported.

    ## Why is this bad?
    The classic case is an epoch loop that calls `model.train()` once before the loop and
    `validate()` at the end of each epoch: every epoch after the first trains with Dropout
    switched off (no regularisation) and BatchNorm using and never updating its running
    statistics. Nothing fails; the model just generalises worse and the run is wasted.

    ## Example
    ```python
    model.train()
    for epoch in range(epochs):
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        validate(model, val_loader)  # calls model.eval()
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            ...
        validate(model, val_loader)
    ```

    ## Known problems
    A module deliberately kept in eval mode while other modules train (a target network, a
    frozen teacher, a feature extractor with `requires_grad_(False)`) is recognised when it
    is frozen, forwarded under `no_grad`, detached, or not given to the optimizer (a
    `step()` steps the optimizer its own scope last bound to that name, if it binds one: a
    notebook or class that rebinds `optimizer` for another model does not make every step
    train the first), or when its `eval()` sits in one straight run of statements with a
    `train()` of another module (`student.train(); teacher.eval()`). An `eval()`
    in a scope that evaluates nothing (no evaluation loop, no forward under `no_grad`, no call
    named or fed like an evaluation) is taken as deliberate: a linear probe keeping a frozen
    backbone's BatchNorm statistics fixed. A model
    loaded with `from_pretrained()` and trained by a library (`Trainer`, a helper from an
    installed package) is not reported: the library calls `train()` itself. Modules loaded
    with `torch.load()` or an unknown factory have an unknown mode and are not reported.
    A function's epoch or data loop whose body trains or evaluates is taken to run at least
    once (see EVL001): training after it is judged by the mode its last iteration leaves.
    Models with no mode-dependent layer (only `nn.Linear`, activations, ...) are not
    reported: training them in eval mode changes nothing.

    ## Fix safety
    Inserting `model.train()` at the top of the epoch loop is safe; it is what the first
    epoch already ran with.
    """

    code = "EVL003"
    name = "training-in-eval-mode"
    summary = "Training resumes while the module may still be in eval mode"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(10):
                model.train()
                for x in train_loader:
                    loss = model(x).sum()
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
                model.eval()
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            model.train()
            for epoch in range(10):
                for x in train_loader:
                    loss = model(x).sum()
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
                model.eval()
                with torch.no_grad():
                    val_loss = sum(model(x).sum().item() for x in val_loader)
        """,
            (8,),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        yield from self._hooks(facts)
        seen: set[tuple[int, str]] = set()
        adapting = {id(block.region.node) for _, block in training_on_evaluation(facts)}
        for step in sorted(facts.training_steps, key=lambda s: s.order):
            step = _after_an_evaluation(step, facts.deliberate_switches)
            if not step.eval_facts or not step.mode_matters:
                continue  # no mode-dependent layer: training in eval mode changes nothing
            if step.region is not None and id(step.region.node) in adapting:
                continue  # EVL007 says it: training inside an evaluation is the bug, not the mode
            dedupe = (id(step.site.node), step.subject)
            if dedupe in seen:
                continue
            seen.add(dedupe)
            module = receiver_text(step.subject)
            loaded = all(f.origin is Origin.LOADED for f in step.eval_facts)
            cause = (
                "from `from_pretrained()`, which loads it in eval mode"
                if loaded
                else "from an earlier evaluation"
            )
            reached = ""
            if step.via and step.site.unit is facts.unit and step.via[0].unit is facts.unit:
                reached = f" (reached through the call at line {step.via[0].position()[0]})"
            hidden = hidden_mode_methods(facts, step.site.node, step.subject)
            call = (
                f"its class's own `train()` switches no mode, so call `nn.Module.train({module})`"
                if "train" in hidden
                else f"call `{module}.train()`"
            )
            message = (
                f"`{module}` is trained here while it may still be in eval mode {cause}"
                f"{reached}: "
                f"Dropout is off and BatchNorm statistics are frozen for this training; {call} before training"
            )
            related = mode_related(facts, step.eval_facts, f"`{module}`")
            fix = (
                self.fix(facts, step, module)
                if facts.want_fixes and "train" not in hidden
                else None
            )
            yield self.diagnostic(
                facts,
                step.site,
                step.via,
                message,
                related,
                module,
                fix=fix,
                inner="the training step in the called function",
            )

    def _hooks(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        """Lightning training-phase hooks that return with the module in eval mode."""
        for hook in facts.hooks_leaving_eval:
            module = hook.subject
            message = (
                f"`{module}` is left in eval mode when `{hook.hook}()` returns: Lightning (since "
                f"2.2) does not call `train()` before the next training step, so training "
                f"resumes with Dropout off and BatchNorm statistics frozen; call "
                f"`{module}.train()` before returning"
            )
            related = mode_related(facts, hook.eval_facts, f"`{module}`")
            yield self.diagnostic(facts, hook.site, (), message, related, module)

    @staticmethod
    def fix(facts: ModuleFacts, step, module: str) -> Optional[Fix]:
        """`model.train()` before the training loop, or at the top of its body when the
        evaluation happens inside that same loop, or before a training call."""
        builder = FixBuilder(facts)
        site = step.site
        if step.via and step.via[0].unit is facts.unit:
            # a helper's training reached through a call: `train()` goes before the call,
            # where the caller's mode is decided, not inside the helper it shares
            site, module = step.via[0], receiver_text(step.outer_subject or step.subject)
        elif site.unit is not facts.unit:
            return None
        code, description = f"{module}.train()", f"Call `{module}.train()` before training"
        loop = builder.enclosing_statement(site.node, loop_only=True)
        if loop is None or not _is_training_step(site.node):
            statement = builder.enclosing_statement(site.node)
            return (
                builder.insert_before(statement, code, description)
                if statement is not None
                else None
            )
        loop_span = facts.unit.locate(loop)
        inside = any(
            f.site is not None and _within(facts.unit.locate(f.site), loop_span)
            for f in step.eval_facts
        )
        if inside:
            return builder.insert_at_body_start(loop, code, description)
        return builder.insert_before(loop, code, description)


def _after_an_evaluation(step: TrainingStep, deliberate: frozenset[int]) -> TrainingStep:
    """The step with only the eval modes that come from an evaluation: this rule is about
    training after an evaluation, and an `eval()` in a scope that evaluates nothing is a
    deliberate freeze."""
    if not deliberate:
        return step
    kept = frozenset(
        f for f in step.eval_facts if not (f.origin is Origin.SWITCHED and id(f.site) in deliberate)
    )
    return step if kept == step.eval_facts else replace(step, eval_facts=kept)


def _is_training_step(node) -> bool:
    func = getattr(node, "func", None)
    return isinstance(func, cst.Attribute) and func.attr.value in ("backward", "step")


def _within(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return outer[:2] <= inner[:2] and inner[2:] <= outer[2:]
