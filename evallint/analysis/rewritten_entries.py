"""Loops that replace every entry of a dict or list with a value free of autograd graphs.

```python
results = {"x": x, "pred": model(x)}
for name, tensor in results.items():
    results[name] = tensor[:8].cpu().detach().numpy()
keep.append(Result(pred=results["pred"][0]))
```

The loop runs over the container's own entries (`d.items()`, `d.keys()`, `d`,
`enumerate(xs)`, `range(len(xs))`) and its body, on every pass, assigns the entry it is at
(`d[k] = ...`, `xs[i] = ...`) a value that carries no graph (`.detach()`, `.item()`,
`.numpy()`). After it, no entry holds the graph the container was built with: what is read
from it afterwards is detached. Decided from the loop's shape and the assigned value's
syntax (`graph_free`, given by the caller), not from any name.
"""

from __future__ import annotations

from typing import Callable, Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name

_VIEWS = frozenset({"items", "keys"})


def detached_container(
    loop: cst.For, graph_free: Callable[[cst.BaseExpression], bool]
) -> Optional[str]:
    """The container whose every entry `loop` replaces with a graph-free value, or None."""
    container, index = _container_and_index(loop)
    if container is None or index is None or type(loop.body) is not cst.IndentedBlock:
        return None
    for statement in loop.body.body:  # unconditional statements of the body only
        if type(statement) is not cst.SimpleStatementLine:
            continue
        for small in statement.body:
            if type(small) is not cst.Assign or len(small.targets) != 1:
                continue
            target = small.targets[0].target
            if (
                type(target) is cst.Subscript
                and dotted_name(target.value) == container
                and len(target.slice) == 1
                and type(target.slice[0].slice) is cst.Index
                and type(target.slice[0].slice.value) is cst.Name
                and target.slice[0].slice.value.value == index
                and graph_free(small.value)
            ):
                return container
    return None


def _container_and_index(loop: cst.For) -> tuple[Optional[str], Optional[str]]:
    """(`d`, `k`) of `for k, v in d.items()` / `for k in d.keys()` / `for k in d`, and of
    `for i, v in enumerate(xs)` / `for i in range(len(xs))`."""
    iterable, target = loop.iter, loop.target
    first = target.elements[0].value if type(target) is cst.Tuple and target.elements else target
    if type(first) is not cst.Name:
        return None, None
    if type(iterable) is cst.Call and type(iterable.func) is cst.Attribute:
        if iterable.func.attr.value in _VIEWS and not iterable.args:
            return dotted_name(iterable.func.value), first.value
        return None, None
    if type(iterable) is cst.Call and type(iterable.func) is cst.Name and iterable.args:
        inner = iterable.args[0].value
        if iterable.func.value == "enumerate" and type(target) is cst.Tuple:
            return dotted_name(inner), first.value
        if (
            iterable.func.value == "range"
            and len(iterable.args) == 1
            and type(inner) is cst.Call
            and type(inner.func) is cst.Name
            and inner.func.value == "len"
            and inner.args
        ):
            return dotted_name(inner.args[0].value), first.value
        return None, None
    if type(iterable) in (cst.Name, cst.Attribute) and type(target) is cst.Name:
        return dotted_name(iterable), first.value
    return None, None
