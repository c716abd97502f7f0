"""Parameters updated by hand from their gradients: a training step without an optimizer.

Tutorials and small scripts write plain SGD themselves:

```python
loss.backward()
for p in net.parameters():
    p.data.add_(-learning_rate, p.grad.data)      # or p.data -= lr * p.grad, p -= ...
```

No `torch.optim` object exists, yet the backward trains `net` exactly as `optimizer.step()`
would. A file that does this steps parameters: its `backward()` calls are training, not a
saliency or Fisher pass. What counts: a loop over a module's `parameters()` (or
`named_parameters()`) whose body updates the loop's tensor in place (`add_`, `sub_`,
`copy_`, `addcdiv_`, `addcmul_`, `-=`/`+=`, or an assignment of its `.data`) with a value
that reads that same tensor's `.grad`. Read from the code's shape, never from names.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.walk import iter_nodes

_IN_PLACE = frozenset({"add_", "sub_", "copy_", "addcdiv_", "addcmul_", "mul_"})
_ITERATED = frozenset({"parameters", "named_parameters"})


def updates_parameters_by_hand(module: cst.Module) -> bool:
    """Whether some loop of the file updates module parameters from their own gradients."""
    for node in iter_nodes(module, enter_scopes=True):
        if type(node) is cst.For:
            name = _parameter_target(node)
            if name is not None and any(_updates(n, name) for n in iter_nodes(node.body)):
                return True
    return False


def _parameter_target(loop: cst.For) -> Optional[str]:
    """`p` of `for p in net.parameters()` / `for name, p in net.named_parameters()`."""
    if not any(
        type(n) is cst.Call and type(n.func) is cst.Attribute and n.func.attr.value in _ITERATED
        for n in iter_nodes(loop.iter)
    ):
        return None
    target: cst.BaseExpression = loop.target
    if type(target) is cst.Tuple and target.elements:
        target = target.elements[-1].value
    return target.value if type(target) is cst.Name else None


def _is_tensor(expr: cst.BaseExpression, name: str) -> bool:
    """`p` or `p.data`."""
    if type(expr) is cst.Attribute and expr.attr.value == "data":
        expr = expr.value
    return type(expr) is cst.Name and expr.value == name


def _reads_grad(expr: cst.CSTNode, name: str) -> bool:
    return any(
        type(n) is cst.Attribute
        and n.attr.value == "grad"
        and type(n.value) is cst.Name
        and n.value.value == name
        for n in iter_nodes(expr)
    )


def _updates(node: cst.CSTNode, name: str) -> bool:
    if type(node) is cst.Call and type(node.func) is cst.Attribute:
        return (
            node.func.attr.value in _IN_PLACE
            and _is_tensor(node.func.value, name)
            and any(_reads_grad(a.value, name) for a in node.args)
        )
    if type(node) is cst.AugAssign:
        return _is_tensor(node.target, name) and _reads_grad(node.value, name)
    if type(node) is cst.Assign:
        return any(
            type(t.target) is cst.Attribute
            and t.target.attr.value == "data"
            and _is_tensor(t.target, name)
            for t in node.targets
        ) and _reads_grad(node.value, name)
    return False
