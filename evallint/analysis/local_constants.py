"""Branches a function's own constant flag decides.

```python
def detect(weights):
    model = load(weights)
    classify = False
    if classify:
        second = load_classifier()
        preds = second(crops)        # never runs
```

A name of the function's own (not a parameter, not declared `global`/`nonlocal`) bound
exactly once in it, by `name = True` / `name = False`: wherever `if name:` (or `if not
name:`) reads it, the assignment has run (else reading it raises), so the test always has
that value and the other branch never runs. A flag of the module level or of a caller is
not read this way (another function may rebind it).
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.few_items import _single_assignments
from evallint.analysis.reuse import memo
from evallint.analysis.walk import iter_nodes


def constant_test(test: cst.BaseExpression, function: Optional[cst.FunctionDef]) -> Optional[bool]:
    """The value `test` always has in `function` (see the module docstring), else None."""
    negated = False
    while type(test) is cst.UnaryOperation and type(test.operator) is cst.Not:
        negated, test = not negated, test.expression
    if function is None or type(test) is not cst.Name:
        return None
    value = memo("local_constants.flags", function, _constant_flags).get(test.value)
    return None if value is None else value != negated


def _constant_flags(function: cst.FunctionDef) -> dict[str, bool]:
    params = function.params
    excluded = {
        p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)
    }
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            excluded.add(star.name.value)
    for node in iter_nodes(function.body, enter_scopes=False):
        if type(node) in (cst.Global, cst.Nonlocal):
            excluded.update(n.name.value for n in node.names)  # type: ignore[attr-defined]
        elif type(node) in (cst.NamedExpr, cst.AsName, cst.Del):
            excluded.update(n.value for n in iter_nodes(node) if type(n) is cst.Name)
    single = _single_assignments(function.body)
    return {
        name: value.value == "True"
        for name, value in single.items()
        if name not in excluded and type(value) is cst.Name and value.value in ("True", "False")
    }
