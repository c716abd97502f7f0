"""Module classes whose `forward` sets the module's own mode before computing anything.

Monte Carlo dropout and similar designs pick the mode inside the forward itself:

```python
class MCNet(nn.Module):
    def forward(self, x, sample=True):
        if sample:
            self.train()      # keep dropout on: a sample of the posterior
        else:
            self.eval()
        return self.fc(self.drop(x))
```

Whatever mode the caller leaves such a module in is overwritten on every path before the
first layer runs: an evaluation of it in training mode is no forgotten `eval()` (the forward
would undo the `eval()` anyway), and the forward itself, though it calls `eval()`, is the
computation its callers train or evaluate, not an evaluation of its own. What counts: the
`forward` method of a module class, whose top-level statements, before any other call on
`self` or its attributes, hold one that calls `self.train(...)` or `self.eval()` on every
path (directly, or in both branches of an `if`/`else`)."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from evallint.analysis.scope import ClassInfo, FunctionInfo
from evallint.analysis.walk import iter_nodes

_MODE_METHODS = frozenset({"train", "eval"})


def self_setting_forward(info: FunctionInfo) -> bool:
    """`info` is the `forward` of a module class that sets its own mode first (see the
    module docstring)."""
    owner = info.owner
    if info.name != "forward" or owner is None or not owner.is_module:
        return False
    if type(info.node.body) is not cst.IndentedBlock:
        return False
    return _sets_first(info.node.body.body)


def class_sets_own_mode(cls: ClassInfo) -> bool:
    """A module class whose `forward` sets its own mode first: the caller's mode does not
    reach its layers."""
    forward = cls.methods.get("forward")
    return forward is not None and self_setting_forward(forward)


def _sets_first(statements: Sequence[cst.BaseStatement]) -> bool:
    for statement in statements:
        if _sets_on_every_path(statement):
            return True
        if _calls_on_self(statement):
            return False  # a layer (or a helper) may run before the mode is set
    return False


def _sets_on_every_path(statement: cst.BaseStatement) -> bool:
    if type(statement) is cst.SimpleStatementLine:
        return any(
            type(small) is cst.Expr and _mode_switch_of_self(small.value)
            for small in statement.body
        )
    if type(statement) is cst.If:
        if statement.orelse is None:
            return False
        other = statement.orelse
        other_sets = (
            _sets_on_every_path(other) if type(other) is cst.If else _block_sets(other.body)
        )
        return _block_sets(statement.body) and other_sets
    return False


def _block_sets(block: cst.BaseSuite) -> bool:
    if type(block) is not cst.IndentedBlock:
        return False
    return _sets_first(block.body)


def _mode_switch_of_self(value: cst.BaseExpression) -> bool:
    """`self.train()`, `self.train(flag)`, `self.eval()`."""
    return (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value in _MODE_METHODS
        and type(value.func.value) is cst.Name
        and value.func.value.value == "self"
    )


def _calls_on_self(statement: cst.CSTNode) -> bool:
    """The statement calls `self`, a method of it or one of its attributes."""
    for node in iter_nodes(statement):
        if type(node) is not cst.Call:
            continue
        func = node.func
        while type(func) is cst.Attribute:
            func = func.value
        if type(func) is cst.Name and func.value == "self":
            return True
    return False
