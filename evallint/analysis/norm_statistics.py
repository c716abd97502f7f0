"""Recomputing BatchNorm statistics ("precise BN"): a function that sets its normalisation
layers' `momentum` or `running_mean`/`running_var`, or calls `reset_running_stats()`, and runs
the model over data so that train-mode BatchNorm collects the batch statistics. Its forwards
run in training mode on purpose: they compute statistics, they evaluate nothing."""

from __future__ import annotations

import libcst as cst

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
