"""Module attributes of a plain object that are in eval mode whenever they are bound.

`self.model_old = deepcopy(self.model)` followed at once by `self.model_old.eval()` (a
frozen teacher, the previous task's network in continual learning): when every binding of
`self.model_old` in the class is switched to eval mode in the same block, and no method of
the class switches it back with `train()`, every method that reads it (a distillation loss,
a validation loop) finds it in eval mode, whatever order a driver calls them in. A class
that is itself an `nn.Module` is left out: its own `train()` reaches the attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.lattice import Mode, ModeFact, Origin
from evallint.analysis.scope import ClassInfo
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def eval_at_every_binding(file: FileAnalysis, owner: ClassInfo) -> dict[str, frozenset]:
    """`self.X` -> the eval facts of the switches that follow its bindings (once per class)."""
    cache: dict[str, dict[str, frozenset]] = file.__dict__.setdefault("_eval_at_binding", {})
    found = cache.get(owner.name)
    if found is None:
        found = cache[owner.name] = {} if owner.is_module else _read(owner)
    return found


def _read(owner: ClassInfo) -> dict[str, frozenset]:
    switches: dict[str, set[cst.Call]] = {}
    unswitched: set[str] = set()
    trained: set[str] = set()
    for method in owner.methods.values():
        for node in iter_nodes(method.node):
            if type(node) is cst.Call and type(node.func) is cst.Attribute:
                if (
                    node.func.attr.value == "train"
                    and len(node.args) <= 1
                    and not _switches_off(node)
                ):
                    trained.add(dotted_name(node.func.value) or "")
            body = getattr(node, "body", None)
            if type(node) in (cst.IndentedBlock, cst.Module) and isinstance(body, tuple):
                _read_block(body, switches, unswitched)
    return {
        key: frozenset(ModeFact(Mode.EVAL, Origin.SWITCHED, call) for call in calls)
        for key, calls in switches.items()
        if key not in unswitched and key not in trained
    }


def _read_block(
    statements: tuple, switches: dict[str, set[cst.Call]], unswitched: set[str]
) -> None:
    """Each `self.X = value` of this block, and the `self.X.eval()` statement after it."""
    for index, statement in enumerate(statements):
        key = _bound_attribute(statement)
        if key is None:
            continue
        switch = next(
            (
                s
                for s in (_eval_switch(later) for later in statements[index + 1 :])
                if s and s[0] == key
            ),
            None,
        )
        if switch is None:
            unswitched.add(key)
        else:
            switches.setdefault(key, set()).add(switch[1])


def _bound_attribute(statement: cst.CSTNode) -> Optional[str]:
    """`self.X` of `self.X = value` (a value other than None)."""
    if type(statement) is not cst.SimpleStatementLine or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if type(small) is not cst.Assign or len(small.targets) != 1:
        return None
    target = dotted_name(small.targets[0].target)
    if target is None or not target.startswith("self.") or target.count(".") != 1:
        return None
    if type(small.value) is cst.Name and small.value.value == "None":
        return None
    return target


def _eval_switch(statement: cst.CSTNode) -> Optional[tuple[str, cst.Call]]:
    """(`self.X`, the call) of a statement `self.X.eval()` / `self.X.train(False)`."""
    if type(statement) is not cst.SimpleStatementLine:
        return None
    for small in statement.body:
        call = small.value if type(small) is cst.Expr else None
        if type(call) is cst.Call and type(call.func) is cst.Attribute:
            name = call.func.attr.value
            if (name == "eval" and not call.args) or (name == "train" and _switches_off(call)):
                receiver = dotted_name(call.func.value)
                if receiver is not None:
                    return receiver, call
    return None


def _switches_off(call: cst.Call) -> bool:
    return (
        len(call.args) == 1
        and type(call.args[0].value) is cst.Name
        and call.args[0].value.value == "False"
    )
