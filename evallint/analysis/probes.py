"""Forwards that probe a module just built rather than evaluate a model.

Teaching code and scripts build a module and run it once on a tensor made up on the spot, to
show the output's shape or to set up data-dependent state before a checkpoint is loaded:

```python
block = ResidualBlock(1, 32)
x = torch.randn(1, 1, 28, 28)
print(block(x).shape)
```

Nothing has trained the module, and nothing has been loaded into it: its outputs mean
nothing yet, so its mode and autograd state are no mistake. What tells such a probe from an
evaluation, read in source order through one scope (a script's or notebook's top level, or a
function body): the name was last bound to a construction of a class (`Cls(...)`, possibly
moved with `.to(device)`; not a loader's result nor a `pretrained=` build); since then no
`backward()` or `step()` ran, no `load_state_dict` reached it and it was handed to no call
(any of which may have trained or loaded it; `print(model)` only shows it); and every input
of the call is a random or constant tensor made by torch (`torch.randn(...)`,
`torch.zeros(...)`, or a name last bound to one). A module evaluated on random inputs after
training is still an evaluation."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.symbols import ImportTable, dotted_name
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import MODULE_RETURNING_METHODS, SYNTHETIC_TENSOR_FACTORIES

_ONLY_SHOWS = frozenset({"print", "repr", "str", "type", "id", "display"})
"""Calls that only show what they are given: handing a module to one changes nothing."""

PROBE_WORDS = ("rand", "zeros", "ones", "full(", "empty(", "normal(")
"""Text a file must hold for a probe to be looked for (the factories' names)."""

_STEPS = frozenset({"backward", "step", "load_state_dict"})


def probe_forwards(module: cst.Module, imports: ImportTable) -> frozenset[int]:
    """Ids of the calls that probe a module just built (see the module docstring)."""
    found: set[int] = set()
    scopes: list[cst.CSTNode] = [module]
    scopes += [n for n in iter_nodes(module, enter_scopes=True) if type(n) is cst.FunctionDef]
    for scope in scopes:
        body = scope.body if type(scope) is cst.FunctionDef else scope
        _scan(body, imports, found)
    return frozenset(found)


def _scan(body: cst.CSTNode, imports: ImportTable, found: set[int]) -> None:
    fresh: set[str] = set()  # names holding a module built here and untouched since
    synthetic: set[str] = set()  # names holding a made-up tensor
    touched: set[str] = set()  # built here, then trained, loaded or handed on
    # bindings wait until the walk (pre-order, in source order) has left their value
    pending: list[tuple[set[int], cst.Assign]] = []
    for node in iter_nodes(body):
        while pending and id(node) not in pending[-1][0]:
            _bind(pending.pop()[1], imports, fresh, synthetic, touched)
        if type(node) in (cst.For, cst.While) and any(
            type(n) is cst.Call and type(n.func) is cst.Attribute and n.func.attr.value in _STEPS
            for n in iter_nodes(node)
        ):
            touched |= fresh
            fresh.clear()  # a later iteration runs after this loop's own steps
        if type(node) is cst.Assign:
            pending.append(({id(n) for n in iter_nodes(node)}, node))
        elif type(node) is cst.Call:
            _call(node, imports, fresh, synthetic, found, touched)
    while pending:
        _bind(pending.pop()[1], imports, fresh, synthetic, touched)


def _bind(
    assign: cst.Assign,
    imports: ImportTable,
    fresh: set[str],
    synthetic: set[str],
    touched: set[str],
):
    names = [t.target.value for t in assign.targets if type(t.target) is cst.Name]
    constructs = len(assign.targets) == 1 and _constructs(assign.value)
    # `Sampler(net, 10)`: a wrapper around a module trained (or loaded, or handed on) since
    # it was built holds that training; a fresh part (`init_layer=...`) does not
    wraps = any(type(n) is cst.Name and n.value in touched for n in iter_nodes(assign.value))
    made_up = len(assign.targets) == 1 and _made_up(assign.value, imports, synthetic)
    for name in names:
        (fresh.add if constructs and not wraps else fresh.discard)(name)
        touched.discard(name)
        (synthetic.add if made_up else synthetic.discard)(name)


def _call(
    call,
    imports: ImportTable,
    fresh: set[str],
    synthetic: set[str],
    found: set[int],
    touched: set[str],
):
    func = call.func
    if type(func) is cst.Attribute and func.attr.value in _STEPS:
        if func.attr.value == "load_state_dict":
            name = dotted_name(func.value) or ""
            if name in fresh:
                touched.add(name)
            fresh.discard(name)
        else:
            touched |= fresh
            fresh.clear()  # a training step may have reached any of them
        return
    target = _probed(func)
    if target is not None and target in fresh:
        inputs = [a.value for a in call.args if a.keyword is None]
        if inputs and all(_made_up(i, imports, synthetic) for i in inputs):
            found.add(id(call))
        return
    if dotted_name(func) in _ONLY_SHOWS:
        return
    for arg in call.args:
        if type(arg.value) is cst.Name and arg.value.value in fresh:
            touched.add(arg.value.value)
            fresh.discard(arg.value.value)  # handed on: it may be trained or loaded there


def _probed(func: cst.BaseExpression) -> Optional[str]:
    """`block` of `block(x)` or `block.forward(x)`."""
    if type(func) is cst.Name:
        return func.value
    if (
        type(func) is cst.Attribute
        and func.attr.value == "forward"
        and type(func.value) is cst.Name
    ):
        return func.value.value
    return None


def _strip_moves(value: cst.BaseExpression) -> cst.BaseExpression:
    while (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value in MODULE_RETURNING_METHODS
    ):
        value = value.func.value
    return value


def _constructs(value: cst.BaseExpression) -> bool:
    """`ResNet(num_classes=10)`, `Net().to(device)`: a class built afresh, not loaded."""
    value = _strip_moves(value)
    if type(value) is not cst.Call:
        return False
    name = dotted_name(value.func)
    if name is None or not name.split(".")[-1][:1].isupper():
        return False
    return not any(
        a.keyword is not None and a.keyword.value in ("pretrained", "weights") for a in value.args
    )


def _made_up(value: cst.BaseExpression, imports: ImportTable, synthetic: set[str]) -> bool:
    """`torch.randn(2, 3)`, `torch.rand(...).to(device)`, or a name last bound to one."""
    value = _strip_moves(value)
    if type(value) is cst.Name:
        return value.value in synthetic
    return type(value) is cst.Call and imports.qualify(value.func) in SYNTHETIC_TENSOR_FACTORIES
