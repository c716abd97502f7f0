"""Evaluations bracketed by a module's own switches inside a training body (issue 16).

```python
for epoch in range(epochs):
    loss = criterion(net(x), y)
    net.eval()
    history.append(criterion(net(x_val), y_val).item())
    net.train()
    optimizer.zero_grad(); loss.backward(); optimizer.step()
```

The statements from `net.eval()` to the `net.train()` that switches the same module back, all
plain statements that train nothing, report something and feed nothing into training, are an
evaluation of their own wherever they stand in the body (here before the training step, so
neither the evaluation tail nor a run between training steps holds them). A `teacher.eval()`
followed by `student.train()` is no bracket: the two switches name different modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import libcst as cst

from evallint.analysis.dataflow import feeds_training
from evallint.analysis.symbols import dotted_name


def _switched(statement: cst.CSTNode, to_train: bool) -> Optional[str]:
    """The module a statement `X.eval()` (to_train False) or `X.train()` / `X.train(True)`
    (to_train True) switches, as written; None for any other statement."""
    if type(statement) is not cst.SimpleStatementLine or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if type(small) is not cst.Expr or type(small.value) is not cst.Call:
        return None
    call = small.value
    if type(call.func) is not cst.Attribute:
        return None
    name = call.func.attr.value
    if to_train:
        ok = name == "train" and (
            not call.args
            or (type(call.args[0].value) is cst.Name and call.args[0].value.value == "True")
        )
    else:
        ok = name == "eval" and not call.args
    return dotted_name(call.func.value) if ok else None


def bracketed_evaluations(
    statements: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
    reports: Callable[[Sequence[cst.CSTNode]], bool],
    after_of: Callable[[int, int], list[cst.CSTNode]],
) -> list[tuple[int, int]]:
    """(start, end) of each `X.eval(); ...; X.train()` run of plain statements in a body
    (end past the `train()`), where nothing between trains, something reports, and nothing
    bound feeds the training statements that run after it (`after_of(start, end)`)."""
    found: list[tuple[int, int]] = []
    index = 0
    while index < len(statements):
        module = _switched(statements[index], False)
        if module is None:
            index += 1
            continue
        end = None
        for later in range(index + 1, len(statements)):
            statement = statements[later]
            if type(statement) is not cst.SimpleStatementLine or trains(statement):
                break
            if _switched(statement, True) == module:
                end = later + 1
                break
        if end is None:
            index += 1
            continue
        block = statements[index:end]
        if reports(block) and not feeds_training(block, after_of(index, end), trains):
            found.append((index, end))
            index = end
        else:
            index += 1
    return found
