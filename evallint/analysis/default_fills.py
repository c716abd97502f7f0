"""A parameter filled in when the caller left it out, written as one expression.

`model = self.model if model is None else model` and `model = model or self.model` do what
`if model is None: model = self.model` does: on the path where the test holds the name is
bound to the other value, else it keeps its own. Read as that `if` statement, the flow
splits the paths the same way for all three spellings (so a switch of `model` on the
default path is a switch of `self.model`, and a caller that leaves the parameter out fixes
the branch). Only the shape where one side of the expression is the assigned name itself is
rewritten: anything else is an ordinary conditional value.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst


def _assign_line(target: cst.Name, value: cst.BaseExpression) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(target=target)], value=value)]
    )


def as_if_statement(line: cst.SimpleStatementLine) -> Optional[cst.If]:
    """The `if` statement a one-assignment line `x = A if test else x` / `x = x if test
    else A` / `x = x or A` stands for; None for any other line."""
    if len(line.body) != 1 or type(line.body[0]) is not cst.Assign:
        return None
    assign = line.body[0]
    if len(assign.targets) != 1 or type(assign.targets[0].target) is not cst.Name:
        return None
    target = assign.targets[0].target
    name, value = target.value, assign.value
    if type(value) is cst.IfExp:
        body, orelse = value.body, value.orelse
        if type(orelse) is cst.Name and orelse.value == name:
            test, fill = value.test, body  # `x = A if x is None else x`
        elif type(body) is cst.Name and body.value == name:
            # `x = x if x is not None else A`
            test, fill = cst.UnaryOperation(operator=cst.Not(), expression=value.test), orelse
        else:
            return None
    elif (
        type(value) is cst.BooleanOperation
        and type(value.operator) is cst.Or
        and type(value.left) is cst.Name
        and value.left.value == name
    ):
        test = cst.UnaryOperation(operator=cst.Not(), expression=value.left)  # `x = x or A`
        fill = value.right
    else:
        return None
    return cst.If(test=test, body=cst.IndentedBlock(body=[_assign_line(target, fill)]))
