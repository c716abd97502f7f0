"""`eval()` calls that set up a second module next to one put in training mode.

```python
student.train()
if teacher is not None:
    teacher.eval()
for x, y in loader:
    loss = kd_loss(student(x), teacher(x), y)
    ...
```

The code switches two modules in opposite directions in one straight run of statements (no
loop, `with` or function boundary between the two switches; `if` blocks are part of the run):
the one put in eval mode is kept there on purpose (a teacher, a frozen feature extractor, a
target network) while the other trains. It is no evaluation that training must switch back
from, so training steps after it are not reported for it by EVL003. The eval() of a module
that the same run also switches to training mode is not such a pairing, nor that of a module
whose parameters the same function (or top level) hands to something (`.parameters()`: to
an optimizer, which trains it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

_Switch = tuple[str, bool, cst.Call]
"""(module text, whether it switches to training mode, the call)."""


def paired_eval_switches(module: cst.Module, source: Optional[str]) -> frozenset[int]:
    """Ids of the `X.eval()` / `X.train(False)` calls paired with a `Y.train()` (Y not X)
    in the same straight run of statements (see the module docstring)."""
    if source and (".train(" not in source or (".eval(" not in source and "(False" not in source)):
        return frozenset()  # text first: most files pay nothing
    found: set[int] = set()
    scopes = [module] + [
        n for n in iter_nodes(module, enter_scopes=True) if type(n) is cst.FunctionDef
    ]
    for scope in scopes:
        inner = list(iter_nodes(scope.body if type(scope) is cst.FunctionDef else scope))
        handed = {  # `optimizer = SGD(student.parameters())`: the scope trains it
            name
            for n in inner
            if type(n) is cst.Call
            and type(n.func) is cst.Attribute
            and n.func.attr.value in ("parameters", "named_parameters")
            and (name := dotted_name(n.func.value)) is not None
        }
        for node in [scope, *inner] if type(scope) is cst.FunctionDef else inner:
            body = _statements(node)
            if body is None:
                continue
            for run in _runs(body):
                switches = [s for statement in run for s in _switches(statement)]
                trained = {name for name, to_train, _ in switches if to_train}
                for name, to_train, call in switches:
                    if not to_train and trained and name not in trained | handed:
                        found.add(id(call))
    return frozenset(found)


def _statements(node: cst.CSTNode) -> Sequence[cst.BaseStatement] | None:
    """The statement list of a module, or of a block that is not an `if` branch (those are
    read as part of the run holding the `if`)."""
    if type(node) is cst.Module:
        return node.body
    if type(node) in (cst.FunctionDef, cst.For, cst.While, cst.With, cst.Try):
        body = node.body  # type: ignore[attr-defined]
        if type(body) is cst.IndentedBlock:
            return body.body
    return None


def _runs(body: Sequence[cst.BaseStatement]) -> Iterator[list[cst.BaseStatement]]:
    """Maximal runs of simple statements and `if` blocks."""
    run: list[cst.BaseStatement] = []
    for statement in body:
        if type(statement) in (cst.SimpleStatementLine, cst.If):
            run.append(statement)
        else:
            if run:
                yield run
            run = []
    if run:
        yield run


def _switches(statement: cst.BaseStatement) -> Iterator[_Switch]:
    """The mode switches a statement of a run makes, inside its `if` branches too."""
    if type(statement) is cst.SimpleStatementLine:
        for small in statement.body:
            if type(small) is cst.Expr and type(small.value) is cst.Call:
                switch = _switch(small.value)
                if switch is not None:
                    yield switch
        return
    if type(statement) is cst.If:
        branches: list[cst.BaseSuite] = [statement.body]
        orelse = statement.orelse
        while orelse is not None:
            branches.append(orelse.body)
            orelse = orelse.orelse if type(orelse) is cst.If else None
        for branch in branches:
            if type(branch) is cst.IndentedBlock:
                for inner in branch.body:
                    if type(inner) in (cst.SimpleStatementLine, cst.If):
                        yield from _switches(inner)


def _switch(call: cst.Call) -> _Switch | None:
    func = call.func
    if type(func) is not cst.Attribute or func.attr.value not in ("eval", "train"):
        return None
    name = dotted_name(func.value)
    if name is None:
        return None
    if func.attr.value == "eval":
        return (name, False, call) if not call.args else None
    if not call.args:
        return name, True, call
    value = call.args[0].value
    if type(value) is cst.Name and value.value in ("True", "False"):
        return name, value.value == "True", call
    return None
