"""Reinforcement-learning acting: a forward whose result drives an environment step or is
stored as a transition, inside a loop that also trains, collects training data. It is part of
training, not an evaluation, whatever the helper that runs it reads like on its own."""

from __future__ import annotations

from typing import cast

import libcst as cst

from evallint.analysis.regions import is_optimizer_receiver
from evallint.analysis.vocabulary import NOT_ENVIRONMENT_WORDS, words
from evallint.analysis.walk import iter_nodes

_NOT_ENVIRONMENT = NOT_ENVIRONMENT_WORDS

_TRANSITION_METHODS = frozenset({"push", "append", "add", "store", "store_transition", "insert"})
"""Methods that store a transition when given several values (`memory.push(s, a, r, s2)`,
`mem.append(state, action, reward, done)`); a list's `append` takes one."""


def _mentions(node: cst.CSTNode, names: frozenset[str]) -> bool:
    return any(type(n) is cst.Name and n.value in names for n in iter_nodes(node))


def feeds_environment(loop: cst.CSTNode, names: frozenset[str]) -> bool:
    """Whether, in this loop, a value bound to one of `names` is passed to an environment's
    `step(...)` (any receiver but an optimizer, a scheduler or a gradient scaler) or stored
    as a transition in a replay memory."""
    if not names:
        return False
    for node in iter_nodes(loop):
        if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
            continue
        call = node
        func = cast(cst.Attribute, call.func)
        method = func.attr.value
        if method == "step":
            receiver = func.value
            if (
                is_optimizer_receiver(receiver)
                or words(code_name(receiver) or "") & _NOT_ENVIRONMENT
            ):
                continue
        elif method in _TRANSITION_METHODS:
            if sum(1 for a in call.args if a.keyword is None and not a.star) < 2:
                continue
        else:
            continue
        if any(_mentions(arg.value, names) for arg in call.args):
            return True
    return False


def code_name(expr: cst.BaseExpression) -> str | None:
    """The last identifier of a receiver (`self.env` -> `env`), if it is a name."""
    if type(expr) is cst.Name:
        return expr.value
    if type(expr) is cst.Attribute:
        return expr.attr.value
    return None


def object_method_calls(loop: cst.CSTNode) -> list[tuple[str, str]]:
    """(`agent`, `update`) for every `agent.update(...)` in the loop."""
    found = []
    for node in iter_nodes(loop):
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and type(func.value) is cst.Name:
                found.append((func.value.value, func.attr.value))
    return found


def forwards_act(function: cst.FunctionDef, forwards: list[cst.Call]) -> bool:
    """Whether a value computed by one of the function's forwards (`action =
    policy(state).numpy()`) drives an environment step or is stored as a transition in one of
    its loops: the function collects experience, for training or for an evaluation rollout as
    its caller decides, rather than evaluating by itself."""
    if not forwards:
        return False
    ids = {id(call) for call in forwards}
    names: set[str] = set()
    loops: list[cst.CSTNode] = []
    for node in iter_nodes(function.body):
        if type(node) in (cst.For, cst.While):
            loops.append(node)
        elif type(node) is cst.Assign and any(id(n) in ids for n in iter_nodes(node.value)):
            for target in node.targets:
                names.update(n.value for n in iter_nodes(target.target) if type(n) is cst.Name)
    found = frozenset(names)
    return any(feeds_environment(loop, found) for loop in loops)
