"""Functions handed to a function of this file that calls them (issue 16, item 3): a
prediction helper passed by name (`assess(detector)`) or wrapped in a lambda
(`plot_boundary(lambda x: predict(x), X)`) runs where the receiving function calls its
parameter, in the state the call leaves the modules in. Followed only when the receiving
function is one of this file that calls that parameter itself; a function given to a
library (a hook, a scheduler's lambda) may run at any other time."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.scope import FunctionInfo
from evallint.analysis.walk import iter_nodes


def _parameter_for(callee: FunctionInfo, index: int, arg: cst.Arg) -> Optional[str]:
    if arg.star:
        return None
    if arg.keyword is not None:
        return arg.keyword.value
    return callee.params[index] if index < len(callee.params) else None


def _calls_of(callee: FunctionInfo, parameter: str) -> Optional[cst.Call]:
    """The first call of `parameter` in the callee's body (`pred_func(grid)`)."""
    for node in iter_nodes(callee.node.body):
        if type(node) is cst.Call and type(node.func) is cst.Name and node.func.value == parameter:
            return node
    return None


def run_passed_functions(part: InterpreterPart, call: cst.Call, states: States) -> States:
    """After `call` of a function of this file: each function of this file it was handed
    and calls, run at the receiving function's call of it (a lambda's body at the lambda)."""
    func = call.func
    file = part.file
    callee = file.functions.get(func.value) if type(func) is cst.Name else None
    if callee is None or callee.owner is not None:
        return states
    for index, arg in enumerate(call.args):
        value = arg.value
        handed: Optional[FunctionInfo] = None
        if type(value) is cst.Name:
            handed = file.functions.get(value.value)
            if handed is None:
                continue
        elif type(value) is not cst.Lambda:
            continue
        parameter = _parameter_for(callee, index, arg)
        inner = _calls_of(callee, parameter) if parameter is not None else None
        if inner is None or not states:
            continue  # stored or handed on, not called here: it may run at any time
        if type(value) is cst.Lambda:
            # `lambda x: predict(x)`; `lambda x, y: None` (a body that is a bare name
            # calls nothing)
            states = part.expression(value.body, states)
            continue
        summary = file.summary_for(handed) if handed is not None else None
        if summary is not None:
            states = part.apply_call(summary, None, inner, states)
    return states


def _calls_own_function(part: InterpreterPart, body: cst.BaseExpression) -> bool:
    functions = part.file.functions
    return any(
        type(node) is cst.Call and type(node.func) is cst.Name and node.func.value in functions
        for node in iter_nodes(body)
    )


def run_lambdas_handed_out(part: InterpreterPart, call: cst.Call, states: States) -> None:
    """`df.apply(lambda row: score(row, model), axis=1)`: a lambda handed to a call this file
    does not define, whose body calls a function of this file. The lambda is made here, with
    the modules it reads in this state: its calls are read as calls from here (their
    callee's forwards take this mode and grad). What the body computes changes nothing here."""
    if not states:
        return
    for arg in call.args:
        value = arg.value
        if type(value) is cst.Lambda and _calls_own_function(part, value.body):
            part.expression(value.body, states)
