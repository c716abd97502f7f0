"""Whether a function hands a forward's detached tensor back to its caller.

`return self.target_net(next_states).detach().max(1)[0]` (a TD target), `return
emb.detach()`: the result leaves autograd but not the computation. It is a tensor that the
caller goes on computing with (a loss target, features), so the caller, not this function,
says whether the forward was an evaluation. `.numpy()`, `.item()` and `.tolist()` after the
detach do leave the computation: such a function still only reports numbers.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.walk import iter_nodes, returns_of

_LEAVING = frozenset({"numpy", "item", "tolist"})


def _detached_chain(expr: cst.BaseExpression) -> bool:
    """`x.detach().max(1)[0]` is a detached tensor; `x.detach().cpu().numpy()` is not."""
    node: Optional[cst.BaseExpression] = expr
    while node is not None:
        node_type = type(node)
        if node_type is cst.Call:
            func = node.func  # type: ignore[attr-defined]
            if type(func) is cst.Attribute:
                if func.attr.value in _LEAVING:
                    return False
                if func.attr.value == "detach":
                    return True
            node = func
        elif node_type is cst.Attribute or node_type is cst.Subscript:
            node = node.value  # type: ignore[attr-defined]
        else:
            return False
    return False


def _returned(expr: Optional[cst.BaseExpression]) -> list[cst.BaseExpression]:
    """The values a return hands out: a tuple's elements, and the operands of arithmetic
    (`rewards + gamma * next_q` is a tensor computed from `next_q`)."""
    found: list[cst.BaseExpression] = []
    pending = [expr] if expr is not None else []
    while pending:
        value = pending.pop()
        if type(value) is cst.Tuple:
            pending.extend(element.value for element in value.elements)
        elif type(value) is cst.BinaryOperation:
            pending.extend((value.left, value.right))
        elif type(value) is cst.UnaryOperation:
            pending.append(value.expression)
        else:
            found.append(value)
    return found


def returns_detached_tensor(function: cst.FunctionDef) -> bool:
    """Whether some return value of `function` is a detached tensor, directly or through a
    local name assigned one (`q_next = net(s).detach().max(1)[0]; return q_next`)."""
    names: set[str] = set()
    for statement in returns_of(function):
        for value in _returned(statement.value):
            if _detached_chain(value):
                return True
            if type(value) is cst.Name:
                names.add(value.value)
    if not names:
        return False
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign and _detached_chain(node.value):
            for target in node.targets:
                if type(target.target) is cst.Name and target.target.value in names:
                    return True
    return False
