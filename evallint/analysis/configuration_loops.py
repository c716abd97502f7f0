"""Loops over training configurations, not over data (issue 16).

```python
schedulers_to_test = {"step": StepLR(optimizer, 5), "cosine": CosineAnnealingLR(optimizer, 15)}
for name, scheduler in schedulers_to_test.items():
    for epoch in range(n):
        train_one_epoch(model, optimizer); scheduler.step()
```

The loop runs over objects the code itself builds from `torch.optim` (optimizers, learning
rate schedulers), held in a literal list, tuple or dict (directly, or in a name the enclosing
scope binds once to one). Its items are what the training uses, not data it measures: a word
of the container's name (`_to_test`, `valid_`) says nothing about evaluation data there.
Decided from what the items are (calls of `torch.optim` classes, read through the imports),
not from any name.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.symbols import ImportTable
from evallint.analysis.walk import iter_nodes

_CONTAINER_VIEWS = frozenset({"items", "values", "keys"})
_DISPLAYS = (cst.List, cst.Tuple, cst.Set, cst.Dict)


def iterates_configurations(
    iterable: cst.BaseExpression, scope: cst.CSTNode, imports: ImportTable
) -> bool:
    """The loop iterable is a literal container of `torch.optim` objects (see the module)."""
    if (
        type(iterable) is cst.Call
        and type(iterable.func) is cst.Attribute
        and iterable.func.attr.value in _CONTAINER_VIEWS
        and not iterable.args
    ):
        iterable = iterable.func.value
    display = _display_of(iterable, scope)
    if display is None:
        return False
    values = _element_values(display)
    return bool(values) and all(_builds_optim_object(v, imports) for v in values)


def _display_of(expr: cst.BaseExpression, scope: cst.CSTNode) -> Optional[cst.BaseExpression]:
    if isinstance(expr, _DISPLAYS):
        return expr
    if type(expr) is not cst.Name:
        return None
    bound: list[cst.BaseExpression] = []
    for node in iter_nodes(scope):
        if type(node) is cst.Assign:
            for target in node.targets:
                if type(target.target) is cst.Name and target.target.value == expr.value:
                    bound.append(node.value)
        elif type(node) in (cst.AugAssign, cst.AnnAssign):
            target = node.target  # type: ignore[attr-defined]
            if type(target) is cst.Name and target.value == expr.value:
                return None
        elif type(node) is cst.For and any(
            type(n) is cst.Name and n.value == expr.value for n in iter_nodes(node.target)
        ):
            return None
    if len(bound) != 1 or not isinstance(bound[0], _DISPLAYS):
        return None
    return bound[0]


def _element_values(display: cst.BaseExpression) -> list[cst.BaseExpression]:
    if type(display) is cst.Dict:
        values = []
        for element in display.elements:
            if type(element) is not cst.DictElement:
                return []  # `**other`: items not read here
            values.append(element.value)
        return values
    values = []
    for element in getattr(display, "elements", ()):
        if type(element) is not cst.Element:
            return []  # `*others`
        values.append(element.value)
    return values


def _builds_optim_object(value: cst.BaseExpression, imports: ImportTable) -> bool:
    if type(value) is not cst.Call:
        return False
    qualified = imports.qualify(value.func) or ""
    return qualified.startswith("torch.optim.")
