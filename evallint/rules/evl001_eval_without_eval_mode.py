"""EVL001: a module runs forward in an evaluation region while it may be in training mode."""

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
    hidden_mode_methods,
    mode_related,
    owned_elsewhere,
    region_start,
    subject_text,
    where_evaluated,
)
from evallint.rules.fixes import COMPREHENSIONS, FixBuilder


class EvalWithoutEvalMode(Rule):
    """
    ## What it does
    Finds evaluation code (a loop over validation/test data, a function such as
    `evaluate()`/`validate()`/`predict()`, a metrics-only loop) that runs a module's forward
    pass while the module may still be in training mode on some path: `eval()` was never
    called, was called on one branch only, or `train()` came after it.

    ## Why is this bad?
    New modules start in training mode, and `model.eval()` is the only thing that changes
    it. In training mode Dropout keeps zeroing activations (a p=0.5 layer zeroes half of
    them and doubles the rest), so metrics are noisy and too low; BatchNorm normalises each
    batch with its own statistics instead of the learned running ones, so predictions depend
    on what else is in the batch; and every forward overwrites BatchNorm's running mean and
    variance with evaluation data, silently changing the model, even under `torch.no_grad()`.

    ## Example
    ```python
    model = Net()
    train(model, train_loader)
    with torch.no_grad():
        for x, y in val_loader:
            correct += (model(x).argmax(1) == y).sum().item()
    ```

    ## Use instead
    ```python
    model.eval()
    with torch.no_grad():
        for x, y in val_loader:
            correct += (model(x).argmax(1) == y).sum().item()
    ```

    ## Known problems
    Evaluation is recognised from evidence (data names, function names, metrics, the
    absence of a training step), and inside training code by what a block does: after the
    last training step, or in a periodic `if step % N == 0:` block, code that only reports
    what a module computes (printed, plotted, saved, `.item()`, `argmax`, metrics) and feeds
    nothing back into the training step is an evaluation. An evaluation loop over data
    called, say, `batches` that reports nothing is not checked. A function that no code in
    its file calls is judged by its callers in other project files (scripts, notebooks);
    when there are none (a library API) it is judged by itself: if it loops over data and
    never calls `eval()`, it is reported. Per-batch helpers are left to their callers.
    Framework hooks (Lightning `validation_step`, HF `Trainer`) are never reported for
    their forwards: the framework switches modes around them. A Lightning hook that runs
    inside an evaluation loop (`on_validation_batch_end`, `validation_step`, the test and
    predict ones, their `*_start` hooks) and returns with the module switched to train
    mode is reported at that `train()`: Lightning calls `eval()` once before the loop, so
    the remaining steps run in train mode. Models with no mode-dependent layer (a bare
    `nn.Linear`) are not reported; `evallint verify` tells which flagged models are affected.
    A function's loop over `range(...)` bounded by its parameters, or over an iterable it
    was given or holds (an epoch loop, a validation loader), whose body trains or evaluates
    is taken to run at least once: an `eval()` inside it counts after it. A caller that runs
    such a helper for zero epochs (and then evaluates the fresh model) is missed; a script's
    own bound read at run time (`range(int(sys.argv[1]))`) keeps the zero-epoch path. A run
    stopped by hand (`except KeyboardInterrupt:`) goes on from where the loop ends. A helper
    that calls `train()` itself to backpropagate for gradients (a Fisher diagonal) is not
    reported where an evaluation calls it. A single torch.nn layer built alone and only
    called, switched and read (`dropout = nn.Dropout(0.5); dropout.train(); print(dropout(x))`:
    teaching code showing the layer in each mode) is a demonstration, not reported; a layer
    given to anything (a container, an optimizer, a function, `load_state_dict`) is part of a
    model and is. A `with` on a call given the modules (or a list of them) sets their mode
    for its body and restores it after: a class of the project is read through its
    `__enter__` (`.eval()`, `.train(False)`, or `.train(self.flag)` with the flag from
    `__init__`); an outside library's manager (not read) is taken at its word when passed a
    constant `train=`/`training=`/`mode=` flag (easydl's `TrainingModeManager(nets,
    train=False)`, whose `__enter__` calls `net.train(self.train)` on each and `__exit__`
    restores the modes it saved). An outside manager without such a flag is not read.

    ## Fix safety
    Inserting `model.eval()` before the loop is safe when training resumes with an explicit
    `model.train()`; without one, add that too (see EVL003).
    """

    code = "EVL001"
    name = "eval-without-eval-mode"
    summary = "Evaluation runs a module forward while it may be in training mode"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            model.eval()
            with torch.no_grad():
                for x in val_loader:
                    out = model(x)
        """),
        Example("""
            import torch
            def evaluate(model, loader):
                model.eval()
                with torch.no_grad():
                    for x, y in loader:
                        out = model(x)
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            with torch.no_grad():
                for x in val_loader:
                    out = model(x)
        """,
            (5,),
        ),
        Example(
            """
            import torch
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
            for epoch in range(3):
                model.train()
                for x in train_loader:
                    loss = model(x).sum()
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
                if epoch % 2 == 0:
                    model.eval()
                with torch.no_grad():
                    for x in val_loader:
                        out = model(x)
        """,
            (14,),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        yield from self._hooks(facts)
        for forward in first_forwards(
            facts,
            lambda forward: bool(
                forward.train_facts
                and forward.mode_matters
                and not owned_elsewhere(facts, forward, grad=False)
                and not demonstrates_a_layer(facts, forward)
            ),
        ):
            module = subject_text(facts, forward)
            hidden = hidden_mode_methods(facts, forward.call.node, forward.subject)
            message = (
                f"`{module}` may be in training mode in {where_evaluated(forward)}: "
                f"Dropout keeps dropping and BatchNorm uses batch statistics and overwrites its running stats with evaluation data; "
                f"{self.advice(module, hidden)} before evaluating"
            )
            related = mode_related(facts, forward.train_facts, f"`{module}`")
            if forward.region.node is not None and forward.call.unit is facts.unit:
                related.append(region_start(facts, forward))
            fix = self.fix(facts, forward, module, hidden) if facts.want_fixes else None
            yield self.forward_diagnostic(facts, forward, message, related, module, fix)

    def _hooks(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        """Lightning evaluation-phase hooks that return with the module switched to train
        mode: the evaluation loop's remaining steps run in it."""
        for hook in facts.hooks_leaving_train:
            module = hook.subject
            message = (
                f"`{module}` is left in training mode when `{hook.hook}()` returns: Lightning "
                f"called `eval()` once before the evaluation loop and restores the mode only "
                f"after it, so the remaining evaluation steps run with Dropout dropping and "
                f"BatchNorm using batch statistics and overwriting its running stats; call "
                f"`{module}.eval()` before returning (or restore the mode it had)"
            )
            related = mode_related(facts, hook.eval_facts, f"`{module}`")
            yield self.diagnostic(facts, hook.site, (), message, related, module)

    @staticmethod
    def advice(module: str, hidden: frozenset[str]) -> str:
        """What to call: `model.eval()`, or, when the module's class overrides `eval()` with
        a method that switches no mode, `nn.Module.eval(model)` (or `model.train(False)`
        unless `train()` is overridden alike)."""
        if "eval" not in hidden:
            return f"call `{module}.eval()`"
        other = "" if "train" in hidden else f" (or `{module}.train(False)`)"
        return (
            f"its class's own `eval()` switches no mode, so call `nn.Module.eval({module})`{other}"
        )

    @staticmethod
    def fix(
        facts: ModuleFacts, forward, module: str, hidden: frozenset[str] = frozenset()
    ) -> Optional[Fix]:
        """`model.eval()` before the call that evaluates, before the evaluation loop, or at
        the top of the evaluation function; nothing for a whole evaluation script. For a
        module whose class's own `eval()` switches no mode, `model.train(False)` (nothing
        when its `train()` is overridden alike)."""
        builder = FixBuilder(facts)
        code, description = f"{module}.eval()", f"Call `{module}.eval()` before evaluating"
        if "eval" in hidden:
            if "train" in hidden:
                return None
            code = f"{module}.train(False)"
            description = f"Call `{module}.train(False)` before evaluating"
        call = call_anchor(facts, forward)
        if call is not None:
            statement = builder.enclosing_statement(call)
            return (
                builder.insert_before(statement, code, description)
                if statement is not None
                else None
            )
        region = forward.region.node
        if isinstance(region, COMPREHENSIONS):
            region = builder.enclosing_statement(region)
        if isinstance(region, (cst.For, cst.While, cst.SimpleStatementLine)):
            return builder.insert_before(region, code, description)
        if isinstance(region, cst.FunctionDef):
            return builder.insert_at_body_start(region, code, description)
        return None
