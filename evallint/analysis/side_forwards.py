"""Forwards beside a training step whose results only leave autograd (issue 16, real code).

`y_train = net(x_train); y_test = net(x_test); loss_train = f(y_train, t); loss_test =
f(y_test, t_test); losses.append(loss_test.item()); loss_train.backward()`: the test-set
forward sits among the training statements of the loop body, yet nothing it computes reaches
the backward pass or leaves the loop as a tensor: its loss is turned into a number and logged.
It is an evaluation of its own inside the training loop, with the graph it builds thrown away
each pass.

Read syntactically from the loop body: the statement binds names only; what flows from them
through the later statements of the body goes only into Python numbers (`.item()`,
`.tolist()`, `float(...)`), reports (`print`), or plain names that do the same; nothing of it
is read again before the statement runs anew on the next pass, and every use is a plain
statement (an `if` or a call that does anything else with it keeps the value in play).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import libcst as cst

from evallint.analysis.dataflow import assigned_names
from evallint.analysis.walk import iter_nodes

_NUMBERS = frozenset({"item", "tolist"})
"""Methods that turn a tensor into Python numbers: what they return carries no graph."""

_NUMBER_FUNCTIONS = frozenset({"float", "int", "print", "str", "round", "bool"})
"""Builtins that take a tensor's value out of autograd (or print it)."""

_GROWING = frozenset({"append", "extend", "add"})


def reported_only(statements: Sequence[cst.CSTNode], index: int) -> bool:
    """Whether `statements[index]` (a plain assignment of names in a loop body) computes
    values that only leave autograd in the statements after it, and that nothing before it
    in the body reads (so the next pass does not carry them back)."""
    statement = statements[index]
    bound = _assigned_plain_names(statement)
    if not bound:
        return False
    through = _through(statements[index + 1 :], set(bound))
    if through is None or not through[1]:
        return False
    # a value still live is carried around the loop: the next pass must not read it first
    return not any(_names(s) & bound for s in statements[:index])


def _through(statements: Sequence[cst.CSTNode], live: set[str]) -> Optional[tuple[set[str], bool]]:
    """The live names after these statements and whether they take a live value out of
    autograd; None when one does anything else with it. An `if` whose test reads no live
    value is followed into both branches (a periodic `print(loss_test.item())`)."""
    left = False
    for statement in statements:
        if not live:
            break
        if not _names(statement) & live:
            continue
        if type(statement) is cst.SimpleStatementLine:
            for small in statement.body:
                step = _flow(small, live)
                if step is None:
                    return None
                live, leaves = step
                left = left or leaves
            continue
        if type(statement) is not cst.If or _names(statement.test) & live:
            return None
        branches: list[Sequence[cst.CSTNode]] = [statement.body.body]
        orelse = statement.orelse
        if type(orelse) is cst.Else:
            branches.append(orelse.body.body)
        elif orelse is not None:
            branches.append([orelse])
        joined: set[str] = set(live)
        for branch in branches:
            inner = _through(branch, set(live))
            if inner is None:
                return None
            joined |= inner[0]
            left = left or inner[1]
        live = joined
    return live, left


def _flow(small: cst.BaseSmallStatement, live: set[str]) -> Optional[tuple[set[str], bool]]:
    """The live names after `small` and whether it takes a live value out of autograd;
    None when it does something else with one (passes it on, stores it on an object)."""
    mentioned = _names(small) & live
    if type(small) is cst.Assign and not _names(small.value) & live:
        # a rebinding that reads no live value ends it: nothing was taken out of autograd
        # (`out = net(x)` twice, the first result never used, is no report)
        return live - _assigned_plain_names(small), False
    if not mentioned:
        return live, False
    if type(small) is cst.Assign:
        if not all(type(t.target) is cst.Name for t in small.targets):
            return None  # `self.x = ...`, `d[k] = ...`: kept on an object
        targets = {t.target.value for t in small.targets}  # type: ignore[attr-defined]
        if _only_numbers(small.value, live):
            return live - targets, True
        if _plain_arithmetic(small.value):
            return live | targets, False  # `loss_test = criterion(y_test, t)` and the like
        return None
    if type(small) is cst.Expr and type(small.value) is cst.Call:
        call = small.value
        func = call.func
        if type(func) is cst.Attribute and func.attr.value in _GROWING:
            if type(func.value) is cst.Name and func.value.value in live:
                return None
            return (live, True) if all(_only_numbers(a.value, live) for a in call.args) else None
        if type(func) is cst.Name and func.value in _NUMBER_FUNCTIONS:
            return live, True
    return None


def _only_numbers(node: cst.CSTNode, live: set[str]) -> bool:
    """Every mention of a live name in `node` sits inside a call that returns numbers."""
    covered: set[int] = set()
    for inner in iter_nodes(node):
        if type(inner) is not cst.Call:
            continue
        func = inner.func
        if (type(func) is cst.Attribute and func.attr.value in _NUMBERS) or (
            type(func) is cst.Name and func.value in _NUMBER_FUNCTIONS
        ):
            covered |= {id(n) for n in iter_nodes(inner) if type(n) is cst.Name}
    return all(
        id(n) in covered
        for n in iter_nodes(node)
        if type(n) is cst.Name and n.value in live and n.value in _names(node)
    )


def _plain_arithmetic(node: cst.BaseExpression) -> bool:
    """A value computed from its operands without handing them anywhere they are kept: a
    call of a name (a loss function), a method, arithmetic, an index."""
    return type(node) in (cst.Call, cst.BinaryOperation, cst.Subscript, cst.Attribute)


def _assigned_plain_names(node: cst.CSTNode) -> set[str]:
    if type(node) is cst.SimpleStatementLine:
        if len(node.body) != 1 or type(node.body[0]) is not cst.Assign:
            return set()
        node = node.body[0]
    if type(node) is not cst.Assign:
        return set()
    if not all(type(t.target) is cst.Name for t in node.targets):
        return set()
    return assigned_names([node])


def _names(node: cst.CSTNode) -> set[str]:
    """The variables a node mentions (attribute and keyword names left out)."""
    found: set[str] = set()
    skipped: set[int] = set()
    for n in iter_nodes(node):  # parents come before their children
        if type(n) is cst.Name:
            if id(n) not in skipped:
                found.add(n.value)
        elif type(n) is cst.Attribute:
            skipped.add(id(n.attr))
        elif type(n) is cst.Arg and n.keyword is not None:
            skipped.add(id(n.keyword))
    return found
