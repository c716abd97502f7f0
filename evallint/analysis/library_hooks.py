"""Methods an outside library calls back and backpropagates what they return.

`class DDPM(experiment.Experiment): def evaluate(self, batch): ... return batch_loss`, with
`Experiment` a class of a package outside torch and the project (torchplate), and nothing in
the file calling `evaluate`: the method overrides a hook of the library's class, which calls
it. A hook that hands its caller a loss with the forward's autograd graph (not `.item()`, not
detached) hands it over to be backpropagated: the library's training loop runs it, whatever
the method is called (torchplate's `evaluate` is its training-loss hook, as Lightning's
`training_step` is). Its forwards are not an evaluation. The interpreter decides the graph
part after reading the body; this module says whether the method is such a hook.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

import libcst as cst

from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import FunctionInfo


def library_hook(file: FileAnalysis, info: FunctionInfo) -> bool:
    """Whether `info` is a method of a class of this file that derives from a class of an
    outside library (not torch, not the project) and no call in the file names it (`x.name(`
    or `name(`): the library calls it."""
    owner = info.owner
    if owner is None or info.parent is not None or owner.is_module or file.project is None:
        return False
    if not any(_outside_class(file, base) for base in owner.bases):
        return False
    return info.name not in file.called_names()[1]


def _outside_class(file: FileAnalysis, base: str) -> bool:
    """`trainkit.engine.Experiment` (a base as the class records it, qualified through the
    file's imports): a class a package outside torch and the project defines."""
    if base in file.classes:
        return False
    module = base.rpartition(".")[0]
    project = file.project
    return (
        bool(module)
        and not module.startswith(".")
        and module.split(".")[0] != "torch"
        and project is not None
        and not project.is_project_module(str(file.path), module)
    )


_LEAVES_AUTOGRAD = frozenset({"item", "detach", "numpy", "tolist", "cpu"})
"""Calls whose result keeps no graph for a caller to backpropagate (`.cpu()` keeps it, but a
hook that hands back a CPU tensor hands back a number to log, not a loss)."""


def returns_forward_result(function: cst.FunctionDef, forwards: Container[cst.Call]) -> bool:
    """Whether a `return` of `function` hands back a value computed, through the function's
    assignments and `.append(...)`s (`losses.append(loss)`, `torch.stack(losses).mean()`),
    from one of the `forwards` (forward calls), with no `.item()`/`.detach()`-like call on
    the way: the graph of the forward goes to the caller."""
    sources: dict[str, list[cst.BaseExpression]] = {}
    returned: list[cst.BaseExpression] = []
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign:
            for target in node.targets:
                if type(target.target) is cst.Name:
                    sources.setdefault(target.target.value, []).append(node.value)
        elif type(node) is cst.AugAssign and type(node.target) is cst.Name:
            sources.setdefault(node.target.value, []).append(node.value)
        elif (
            type(node) is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value == "append"
            and type(node.func.value) is cst.Name
            and node.args
        ):
            sources.setdefault(node.func.value.value, []).append(node.args[0].value)
        elif type(node) is cst.Return and node.value is not None:
            returned.append(node.value)
    seen: set[str] = set()
    pending = list(returned)
    while pending:
        expression = pending.pop()
        for inner in iter_nodes(expression):
            if type(inner) is cst.Call:
                func = inner.func
                if type(func) is cst.Attribute and func.attr.value in _LEAVES_AUTOGRAD:
                    return False
                if inner in forwards:
                    return True
            elif type(inner) is cst.Name and inner.value not in seen:
                seen.add(inner.value)
                pending.extend(sources.get(inner.value, ()))
    return False
