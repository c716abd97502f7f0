"""Recomputing BatchNorm statistics ("precise BN"): a function that sets its normalisation
layers' `momentum` or `running_mean`/`running_var`, or calls `reset_running_stats()`, and runs
the model over data so that train-mode BatchNorm collects the batch statistics. Its forwards
run in training mode on purpose: they compute statistics, they evaluate nothing."""

from __future__ import annotations

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

_STATISTICS = frozenset({"momentum", "running_mean", "running_var"})


def recomputes_norm_statistics(function: cst.FunctionDef) -> bool:
    """Whether the function's own body assigns a normalisation layer's statistics or momentum
    (`bn.momentum = 1.0`, `bn.running_mean = mean`) or resets them (`bn.reset_running_stats()`)."""
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign:
            targets = [t.target for t in node.targets]
        elif type(node) is cst.AugAssign:
            targets = [node.target]
        elif type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and func.attr.value == "reset_running_stats":
                return True
            continue
        else:
            continue
        if any(type(t) is cst.Attribute and t.attr.value in _STATISTICS for t in targets):
            return True
    return False


def statistics_passes(root: cst.CSTNode) -> set[int]:
    """The forwards under `root` whose result nothing keeps (`model(x)` as a statement of
    its own, `_ = model(x)`) of a module the code switches to eval() further down. A
    forward kept for nothing computes nothing but what it does to the model: in training
    mode, BatchNorm's running statistics, which the eval() after it then uses (AdaBN
    re-estimates them over the target data this way, under no_grad)."""
    discarded: list[tuple[int, str, int]] = []
    last_eval: dict[str, int] = {}
    for index, node in enumerate(iter_nodes(root)):
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and func.attr.value == "eval" and not node.args:
                name = dotted_name(func.value)
                if name is not None:
                    last_eval[name] = index
            continue
        if type(node) is cst.Expr:
            kept_for_nothing = True
        elif type(node) is cst.Assign:
            kept_for_nothing = all(
                type(t.target) is cst.Name and t.target.value == "_" for t in node.targets
            )
        else:
            continue
        value = node.value
        if kept_for_nothing and type(value) is cst.Call:
            name = dotted_name(value.func)
            if name is not None:
                discarded.append((id(value), name, index))
    return {call for call, name, index in discarded if last_eval.get(name, -1) > index}
