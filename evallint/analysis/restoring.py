"""A function that switches to eval mode, evaluates, then switches back to train mode:
`def predict(self, x): self.eval(); out = self(x); self.train(); return out.argmax(1)`.

The `train()` there restores the mode for the caller's later training; it trains nothing.
Such a function is still a whole evaluation (see Summary.whole_evaluation). It is told
apart from a training function that also evaluates (`fit()`: `train()` at the top of each
epoch, `eval()` before validating) by where the switches stand: every `train()` switch is
in a statement of the body after every statement that switches to eval or runs a forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from evallint.analysis.walk import iter_nodes


def restores_train_last(body: Sequence[cst.CSTNode], forwards: Sequence[cst.CSTNode]) -> bool:
    """Whether the body's `train()` switches all come after its `eval()` switches and the
    forwards given (their sites, or the calls that lead to them), statement by statement."""
    if not forwards:
        return False
    wanted = {id(node) for node in forwards}
    last_evaluating = -1
    first_restore = None
    for index, statement in enumerate(body):
        for node in iter_nodes(statement):
            if id(node) in wanted:
                last_evaluating = index
            if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
                continue
            attr = node.func.attr.value
            if attr == "eval" and not node.args:
                last_evaluating = index
            elif attr == "train" and not _false_argument(node):
                if first_restore is None:
                    first_restore = index
    if first_restore is None or last_evaluating < 0:
        return False
    return first_restore > last_evaluating


def _false_argument(call: cst.Call) -> bool:
    if not call.args:
        return False
    value = call.args[0].value
    return type(value) is cst.Name and value.value == "False"
