"""Context managers that set the mode of the modules they are given for their body.

```python
with TrainingModeManager([encoder, classifier], train=False), torch.no_grad():
    for x, y in test_loader:
        ...
```

Two readings, both of a `with` item that is a call given modules (as arguments, or in a list
or tuple literal) and that is no function the analysis follows (a `@contextmanager` of the
project is read through its summary instead):

- A class of this file with an `__enter__` method that calls `.eval()` or `.train(...)`: the
  mode is that call's (`.eval()`, `.train(False)`, `.train(True)`, or `.train(self.flag)`
  with `self.flag` stored from a parameter of `__init__`: the value this call passes for it,
  else its default).
- Anything else (an outside library's manager, easydl's `TrainingModeManager(nets,
  train=False)`, whose `__enter__` calls `net.train(self.train)` on each): a constant
  `train=`/`training=`/`mode=` flag passed to it is the mode it sets.

Inside the body the modules are in that mode; after it they are back in the mode they had
before (what such managers' `__exit__` does). A manager that switches without restoring is
read as restoring.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import libcst as cst

from evallint.analysis.instances import imported_class
from evallint.analysis.lattice import ENTRY_MODE, Mode, ModeFact, Origin, normalize
from evallint.analysis.scope import ClassInfo
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

States = tuple

FLAG_KEYWORDS = frozenset({"train", "training", "mode"})
"""Keywords of an outside manager's mode flag (`train=False`)."""


def managed_mode(call: cst.Call, cls: Optional[ClassInfo]) -> Optional[Mode]:
    """The mode the manager `call` sets for the modules it is given (see the module
    docstring); None when it is not read as one. `cls`: the class of this file it builds."""
    if cls is not None:
        return _class_mode(call, cls)
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in FLAG_KEYWORDS:
            return _constant_mode(arg.value)
    return None


def managed_modules(call: cst.Call) -> Iterator[cst.BaseExpression]:
    """The module expressions a manager is given: names and attributes passed as arguments
    or in a list or tuple literal."""
    for arg in call.args:
        value = arg.value
        items = (
            [e.value for e in value.elements]
            if isinstance(value, (cst.List, cst.Tuple))
            else [value]
        )
        for item in items:
            if type(item) in (cst.Name, cst.Attribute) and dotted_name(item) is not None:
                yield item


def _constant_mode(value: cst.BaseExpression) -> Optional[Mode]:
    if type(value) is cst.Name and value.value in ("True", "False"):
        return Mode.TRAIN if value.value == "True" else Mode.EVAL
    return None


def _class_mode(call: cst.Call, cls: ClassInfo) -> Optional[Mode]:
    enter = cls.methods.get("__enter__")
    if enter is None:
        return None
    for node in iter_nodes(enter.node.body):
        if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
            continue
        attr = node.func.attr.value
        if attr == "eval" and not node.args:
            return Mode.EVAL
        if attr == "train":
            if not node.args:
                return Mode.TRAIN
            value = node.args[0].value
            constant = _constant_mode(value)
            if constant is not None:
                return constant
            flag = dotted_name(value)
            if flag is not None and flag.startswith("self."):
                return _stored_flag(call, cls, flag[len("self.") :])
    return None


def _stored_flag(call: cst.Call, cls: ClassInfo, attribute: str) -> Optional[Mode]:
    """`self.<attribute>` stored from a parameter of `__init__`: the constant `call` passes
    for that parameter, else the parameter's default."""
    init = cls.methods.get("__init__")
    if init is None:
        return None
    parameter = None
    for node in iter_nodes(init.node.body):
        if (
            type(node) is cst.Assign
            and len(node.targets) == 1
            and dotted_name(node.targets[0].target) == f"self.{attribute}"
            and type(node.value) is cst.Name
        ):
            parameter = node.value.value
    if parameter is None:
        return None
    params = [p for p in init.node.params.params if p.name.value != "self"]
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == parameter:
            return _constant_mode(arg.value)
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    for index, param in enumerate(params):
        if param.name.value == parameter:
            if index < len(positional):
                return _constant_mode(positional[index].value)
            return _constant_mode(param.default) if param.default is not None else None
    for param in init.node.params.kwonly_params:
        if param.name.value == parameter and param.default is not None:
            return _constant_mode(param.default)
    return None


def enter_manager(interpreter: Any, call: cst.Call, states: States) -> tuple[States, list[str]]:
    """The states inside `with call:` when `call` is a mode manager (see the module
    docstring), and the keys it switched (restored by `leave_manager`)."""
    cls = interpreter._local_class(call)
    if cls is None and interpreter.file.project is not None:
        found = imported_class(interpreter.file, call)
        cls = found[1] if found is not None else None
    mode = managed_mode(call, cls)
    if mode is None:
        return states, []
    expressions = list(managed_modules(call))
    switched: list[str] = []
    result = []
    for state in states:
        for expr in expressions:
            key = interpreter.resolve(expr, state)
            if key is not None:
                state = state.with_mode_tree(key, {ModeFact(mode, Origin.SWITCHED, call)})
                if key not in switched:
                    switched.append(key)
        result.append(state)
    return normalize(result), switched


def leave_manager(keys: list[str], before: States, out: States) -> States:
    """`out` with the keys a manager switched back in the modes they had before it."""
    if not keys:
        return out
    modes = {
        key: frozenset().union(*(s.mode_in_tree(key) or ENTRY_MODE for s in before)) for key in keys
    }
    result = []
    for state in out:
        for key, facts in modes.items():
            state = state.with_mode_tree(key, facts)
        result.append(state)
    return normalize(result)
