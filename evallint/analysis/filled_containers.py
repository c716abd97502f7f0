"""Module containers built empty and filled with modules: their mode is their members'.

```python
def load_all(paths):
    ensemble = Ensemble()            # class Ensemble(nn.ModuleList): builds no layer itself
    for path in paths:
        ensemble.append(load(path).eval())
    return ensemble if len(ensemble) > 1 else ensemble[-1]
```

A new `nn.ModuleList()` / `nn.ModuleDict()` / `nn.Sequential()` given nothing, or a project
class of this file deriving from one of them whose `__init__` builds nothing (only calls the
base's), holds no layer of its own: its own training flag changes no output, and its forward
runs its members, each in its own mode. When `container.append(module)` puts a module in a
known mode into it, the container's mode facts become that module's (the union over every
module appended); a later `eval()`/`train()` on the container switches them all, as before.
"""

from __future__ import annotations

from typing import Any, Optional

import libcst as cst

from evallint.analysis.lattice import ENTRY_MODE, Mode, ModeFact, Origin, normalize
from evallint.analysis.symbols import dotted_name

CONTAINER_CLASSES = frozenset({"ModuleList", "ModuleDict", "Sequential"})


def filled_container(
    interpreter: Any, container: cst.BaseExpression, value: cst.BaseExpression, states: tuple
) -> tuple:
    """`states` after `container.append(value)` (see the module docstring)."""
    result = []
    changed = False
    for state in states:
        key = interpreter.resolve(container, state)
        facts = state.mode_of(key) if key is not None else None
        if key is None or not facts:
            result.append(state)
            continue
        built_empty = all(
            f.origin is Origin.CONSTRUCTED and _empty_container(interpreter, f.site) for f in facts
        )
        if not built_empty and key not in interpreter.filled_containers:
            result.append(state)
            continue
        added = _member_facts(interpreter, value, state)
        if added is None:
            result.append(state)
            continue
        interpreter.filled_containers.add(key)
        result.append(state.with_mode(key, added if built_empty else facts | added))
        changed = True
    return normalize(result) if changed else states


def _member_facts(interpreter: Any, value: cst.BaseExpression, state: Any) -> Optional[frozenset]:
    """The mode facts of the module `value` holds, when known: the facts of the module it
    names, or of the module it builds, or eval mode for `<anything>.eval()` (the container
    takes modules only); None for anything else."""
    if (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value == "eval"
        and not value.args
    ):
        return frozenset({ModeFact(Mode.EVAL, Origin.SWITCHED, value)})
    found = interpreter.value_of(value, state)
    if found.key is not None:
        facts = state.mode_in_tree(found.key) or ENTRY_MODE
    elif found.fresh is not None:
        facts = found.fresh
    else:
        return None
    if any(f.mode is Mode.ENTRY for f in facts):
        return None
    return frozenset(facts)


def _empty_container(interpreter: Any, site: Optional[cst.CSTNode]) -> bool:
    """`site` builds a module container with nothing in it (see the module docstring)."""
    if type(site) is not cst.Call or site.args:
        return False
    qualified = interpreter.imports.qualify(site.func) or ""
    if qualified.startswith("torch.nn.") and qualified.rsplit(".", 1)[-1] in CONTAINER_CLASSES:
        return True
    cls = interpreter._local_class(site)
    if cls is None or not any(b.rsplit(".", 1)[-1] in CONTAINER_CLASSES for b in cls.bases):
        return False
    init = cls.methods.get("__init__")
    return init is None or _only_base_init(init.node)


def _only_base_init(node: cst.FunctionDef) -> bool:
    """`__init__` whose body only calls the base class's (`super().__init__()`)."""
    body = node.body
    if type(body) is not cst.IndentedBlock:
        return False
    for statement in body.body:
        if type(statement) is not cst.SimpleStatementLine:
            return False
        for small in statement.body:
            if type(small) is cst.Pass:
                continue
            if type(small) is not cst.Expr:
                return False
            value = small.value
            if type(value) is cst.SimpleString:
                continue
            if (
                type(value) is not cst.Call
                or value.args
                or type(value.func) is not cst.Attribute
                or value.func.attr.value != "__init__"
                or type(value.func.value) is not cst.Call
                or dotted_name(value.func.value.func) != "super"
            ):
                return False
    return True


def members_mode(interpreter: Any, key: str, facts: frozenset) -> frozenset:
    """The mode facts of `key` without the empty build of a container filled here: on a
    path where nothing was appended it holds no module, so its own training flag is none of
    its members' (`facts` unchanged for any other key)."""
    if key not in interpreter.filled_containers:
        return facts
    kept = frozenset(
        f
        for f in facts
        if not (f.origin is Origin.CONSTRUCTED and _empty_container(interpreter, f.site))
    )
    return kept or facts
