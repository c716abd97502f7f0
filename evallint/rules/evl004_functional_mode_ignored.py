"""EVL004: functional dropout (or batch norm) inside a module ignores the module's mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

from evallint.analysis.facts import FunctionalModeCall, ModuleFacts
from evallint.diagnostics import Diagnostic, Edit, Fix
from evallint.rules.base import Example, Rule

_CONSEQUENCE = {
    "drops-in-eval": "`training` defaults to True, so it keeps dropping after `model.eval()` (noisy, biased evaluation)",
    "forced-in-eval": "`training=True` keeps it dropping after `model.eval()` (noisy, biased evaluation)",
    "never-acts": "`training` defaults to False, so it never acts, not even while training (no regularisation)",
    "batch-stats-in-eval": "`training=True` normalises with batch statistics and updates the running stats even in eval mode",
    "inline-dropout": "a layer built inside the method is a new module in training mode on every call, so `model.eval()` never reaches it and it keeps dropping in evaluation",
    "inline-batchnorm": "a layer built inside the method is a new module in training mode on every call, so `model.eval()` never reaches it: it normalises with batch statistics in evaluation and its weights are never learned",
}


def _problem(found: FunctionalModeCall) -> Optional[str]:
    """What goes wrong with this call's `training` flag, if anything."""
    if found.built_inline:
        return "inline-batchnorm" if found.function.startswith("BatchNorm") else "inline-dropout"
    if found.training_argument is not None and found.training is None:
        return None  # `training=self.training` or any expression: follows the mode
    if found.function == "batch_norm":
        return "batch-stats-in-eval" if found.training else None
    if found.training and found.training_argument is not None:
        # a literal `training=True` asks for dropout in every mode (Monte Carlo dropout,
        # test-time noise): a mistake where the class's other dropout follows the mode
        return None if found.forced_on_purpose else "forced-in-eval"
    if found.training:
        return "drops-in-eval"
    return "never-acts" if found.training_argument is None else None


class FunctionalModeIgnored(Rule):
    """
    ## What it does
    Finds `torch.nn.functional` calls inside an `nn.Module` method whose behaviour should
    follow the module's mode but does not: `F.dropout`/`dropout1d/2d/3d` (and `torch.dropout`)
    without `training=self.training`, or with `training=True` in a class whose other
    dropout follows the mode (`training=self.training`, an `nn.Dropout` layer), or
    `torch.dropout(x, p, True)`; `F.alpha_dropout`,
    `F.feature_alpha_dropout` and `F.rrelu` without `training=`; `F.batch_norm(...,
    training=True)`; and a dropout or batch-norm layer built and called on the spot
    (`nn.Dropout(p)(x)`), a new module in training mode on every call.

    ## Why is this bad?
    Unlike `nn.Dropout`, the functional form does not know the module's mode: `model.eval()`
    cannot reach it. `F.dropout`'s `training` defaults to True, so evaluation keeps dropping
    activations; `F.alpha_dropout`/`F.rrelu` default to False, so they never act at all, not
    even during training. A hard-coded `F.batch_norm(training=True)` uses batch statistics and
    overwrites the running ones during evaluation. A layer built inside `forward` is never a
    submodule, so `model.eval()` cannot reach it either: it is always in training mode.

    ## Example
    ```python
    class Head(nn.Module):
        def forward(self, x):
            return self.fc(F.dropout(x, p=0.3))
    ```

    ## Use instead
    ```python
    class Head(nn.Module):
        def forward(self, x):
            return self.fc(F.dropout(x, p=0.3, training=self.training))
    ```

    ## Known problems
    A literal `training=True` is taken as meant (Monte Carlo dropout, dropout kept at test
    time as noise) unless the same class's other dropout follows the mode. A rate that is a
    parameter of the method with no default or a default of 0 (`def forward(self, x,
    word_dropout)`, a sampler's `noise_dropout=0.0`) is chosen by every call, which passes 0
    to evaluate, so it is not reported; a parameter defaulting to a positive rate is.
    Only calls lexically inside a class that evallint sees subclassing `nn.Module` (directly
    or through classes of the same file) are checked; a helper function called from
    `forward` is not followed.

    ## Fix safety
    Adding `training=self.training` is safe: it is what `nn.Dropout` does.
    """

    code = "EVL004"
    name = "functional-mode-ignored"
    summary = "Functional dropout/batch norm in a module ignores the module's train/eval mode"
    VALID = (
        Example("""
            import torch.nn as nn
            import torch.nn.functional as F
            class Head(nn.Module):
                def forward(self, x):
                    return F.dropout(x, 0.3, training=self.training)
        """),
        Example("""
            import torch.nn.functional as F
            def augment(x):
                return F.dropout(x, 0.1)
        """),
        Example("""
            import torch.nn as nn
            class Head(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.drop = nn.Dropout(0.5)
                def forward(self, x):
                    x = nn.Dropout(0.0)(x)
                    return self.drop(x)
        """),
        Example("""
            import torch.nn as nn
            import torch.nn.functional as F
            class NoisyHead(nn.Module):
                def forward(self, x):
                    return F.dropout(x, 0.5, training=True)
        """),
    )
    INVALID = (
        Example(
            """
            import torch.nn as nn
            import torch.nn.functional as F
            class Head(nn.Module):
                def forward(self, x):
                    return F.dropout(x, 0.3)
        """,
            (5,),
        ),
        Example(
            """
            import torch.nn as nn
            from torch.nn import functional
            class Block(nn.Module):
                def forward(self, x):
                    x = functional.rrelu(x)
                    x = functional.dropout(x, p=0.1, training=True)
                    return functional.dropout(x, p=0.2, training=self.training)
        """,
            (5, 6),
        ),
        Example(
            """
            import torch.nn as nn
            class Head(nn.Module):
                def forward(self, x):
                    x = nn.Dropout(p=0.5)(x)
                    return nn.BatchNorm1d(8)(x)
        """,
            (4, 5),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        for found in facts.functional_mode_calls:
            problem = _problem(found)
            if problem is None:
                continue
            remedy = (
                f"build it once in `__init__` (`self.layer = nn.{found.function}(...)`)"
                if found.built_inline
                else "pass `training=self.training`"
            )
            message = f"`{found.function}` in a module method: {_CONSEQUENCE[problem]}; {remedy}"
            fix = self.fix(facts, found) if facts.want_fixes and not found.built_inline else None
            yield self.diagnostic(facts, found.call, (), message, [], found.function, fix=fix)

    @staticmethod
    def fix(facts: ModuleFacts, found: FunctionalModeCall) -> Optional[Fix]:
        description = "Pass `training=self.training`"
        argument = found.training_argument
        if argument is not None:
            line, column, end_line, end_column = facts.unit.locate(argument.value)
            return Fix(description, (Edit(line, column, end_line, end_column, "self.training"),))
        call = found.call.node
        arguments = getattr(call, "args", ())
        if not arguments:
            return None
        _, _, end_line, end_column = facts.unit.locate(arguments[-1])
        return Fix(
            description,
            (Edit(end_line, end_column, end_line, end_column, ", training=self.training"),),
        )
