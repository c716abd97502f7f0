"""Forwards that demonstrate a single layer rather than evaluate a model.

Teaching code builds a bare layer and calls it on a toy tensor to show what it does, often
in both modes:

```python
dropout = nn.Dropout(p=0.5)
dropout.train()
print(dropout(torch.ones(1, 10)))   # half zeroed, the rest doubled
dropout.eval()
print(dropout(torch.ones(1, 10)))   # unchanged
```

Calling it in training mode, or with autograd on, is what is being shown, not a forgotten
`eval()` or `no_grad()`. What tells the layer's demonstration from a model's evaluation is
what the name holds and what the code does with it, across the whole file: every binding of
the name is a construction of one torch.nn layer (Dropout, BatchNorm, LayerNorm, ...; not a
container, nor a recurrent or transformer stack, which are models in their own right), and
every use of it is a call of it, a mode switch (`train()`/`eval()`), a device or dtype move,
a read of an attribute (`bn.running_mean`, `dropout.p`), or a display of it (a notebook
cell's bare `conv`, `print(conv)`: shown, handed to nothing). A layer that is given to
anything (an optimizer through `.parameters()`, a container, a function, another name,
`load_state_dict`) is part of a model, trained or loaded, and its forwards are judged as
usual. Computed once per file from the tree, only for files that build a torch.nn layer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import libcst as cst

from evallint.analysis.symbols import ImportTable, dotted_name
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import LAYERS, MODULE_RETURNING_METHODS

_MODEL_FAMILIES = frozenset({"container", "rnn", "transformer", "attention"})
"""torch.nn families whose instance is a model of its own, not a layer shown alone."""

DEMONSTRATED_LAYERS = frozenset(
    name
    for name, fact in LAYERS.items()
    if fact.module == "torch.nn" and fact.family not in _MODEL_FAMILIES
)
"""torch.nn classes an instance of which is one layer."""

_ALLOWED_METHODS = frozenset({"train", "eval", "extra_repr"}) | MODULE_RETURNING_METHODS


def demonstration_forwards(module: cst.Module, imports: ImportTable) -> frozenset[int]:
    """Ids of the calls `name(...)` of top-level names that hold a single layer shown alone
    (see the module docstring)."""
    return frozenset(_shown(module.body, module, imports, frozenset()))


def local_demonstration_forwards(module: cst.Module, imports: ImportTable) -> frozenset[int]:
    """Ids of the calls `name(...)` of names local to a function that hold a single layer
    shown alone (`def dropout_demo():` that builds its layer, shows it in both modes and
    hands it to nothing): built anew on every call, the same demonstration whoever calls."""
    shown: set[int] = set()
    for node in iter_nodes(module, enter_scopes=True):
        if type(node) is cst.FunctionDef and type(node.body) is cst.IndentedBlock:
            params = node.params
            outside = {
                p.name.value
                for p in (*params.posonly_params, *params.params, *params.kwonly_params)
            }
            outside.update(
                name.name.value
                for inner in iter_nodes(node, enter_scopes=True)
                if type(inner) in (cst.Global, cst.Nonlocal)
                for name in inner.names  # type: ignore[attr-defined]
            )
            shown |= _shown(node.body.body, node, imports, frozenset(outside))
    return frozenset(shown)


def _shown(
    statements: Sequence[cst.BaseStatement | cst.BaseCompoundStatement],
    scope: cst.CSTNode,
    imports: ImportTable,
    outside: frozenset[str],
) -> set[int]:
    """The demonstrations of the names bound by these statements (a module's or a function's
    top level) and used only within `scope`; `outside` names are bound elsewhere too (a
    function's parameters, its `global` names)."""
    bound: dict[str, bool] = {}
    allowed: set[int] = set()  # Name nodes that are no reference, or an allowed one
    for statement in statements:
        if type(statement) is not cst.SimpleStatementLine:
            continue
        for small in statement.body:
            if type(small) is cst.Assign:
                for target in small.targets:
                    if type(target.target) is cst.Name:
                        name = target.target.value
                        single = len(small.targets) == 1 and _single_layer(small.value, imports)
                        bound[name] = bound.get(name, True) and single
                        allowed.add(id(target.target))
    layers = {name for name, single in bound.items() if single} - outside
    if not layers:
        return set()
    calls: dict[str, list[int]] = defaultdict(list)
    methods: set[int] = set()  # Attribute nodes called as methods
    shadowed = _shadowed(scope, layers)
    allowed |= shadowed
    for node in iter_nodes(scope, enter_scopes=True):
        node_type = type(node)
        if node_type is cst.Call:
            func = node.func  # type: ignore[attr-defined]
            if type(func) is cst.Name and func.value in layers and id(func) not in shadowed:
                calls[func.value].append(id(node))
                allowed.add(id(func))
            elif type(func) is cst.Attribute:
                methods.add(id(func))  # `bn.eval()` allowed; `bn.load_state_dict(...)` not
                if func.attr.value in _ALLOWED_METHODS:
                    allowed.add(id(func.value))
            for arg in node.args:  # type: ignore[attr-defined]
                if arg.keyword is not None:
                    allowed.add(id(arg.keyword))
        elif node_type is cst.Attribute:
            allowed.add(id(node.attr))  # type: ignore[attr-defined]
            value = node.value  # type: ignore[attr-defined]
            if type(value) is cst.Name and id(node) not in methods:
                allowed.add(id(value))  # `bn.running_mean`, `dropout.p`: a read
        elif node_type in (cst.Param, cst.FunctionDef, cst.ClassDef):
            allowed.add(id(node.name))  # type: ignore[attr-defined]
        elif node_type is cst.Expr and type(node.value) is cst.Name:  # type: ignore[attr-defined]
            allowed.add(id(node.value))  # type: ignore[attr-defined]  # `conv`: a cell shows it
        if node_type is cst.Call and _only_shows(node):  # type: ignore[arg-type]
            allowed.update(id(arg.value) for arg in node.args)  # type: ignore[attr-defined]
    used_otherwise = {
        node.value
        for node in iter_nodes(scope, enter_scopes=True)
        if type(node) is cst.Name and node.value in layers and id(node) not in allowed
    }
    shown = {call for name in layers - used_otherwise for call in calls.get(name, ())}
    if shown:
        shown -= _calls_over_data(scope)
    return shown


_SHOWING = frozenset({"print", "repr", "str", "display"})
"""Calls that only show what they are given: a layer shown is handed to nothing."""


def _only_shows(call: cst.Call) -> bool:
    """`print(conv)`, `display(bn)`: a call that shows its arguments and keeps none."""
    return type(call.func) is cst.Name and call.func.value in _SHOWING


def _shadowed(scope: cst.CSTNode, names: set[str]) -> set[int]:
    """Ids of the Name nodes, inside the functions nested in `scope`, of a function's own
    local variable of one of `names` (`embeds = self.embeddings(x)` in a `forward`): Python
    binds an assigned name in the function that assigns it, so it is another variable than
    the one of the same name that holds the layer."""
    found: set[int] = set()
    for node in iter_nodes(scope, enter_scopes=True):
        if type(node) is not cst.FunctionDef or node is scope:
            continue
        local = _assigned_locally(node) & names
        if local:
            found.update(
                id(inner)
                for inner in iter_nodes(node, enter_scopes=True)
                if type(inner) is cst.Name and inner.value in local
            )
    return found


def _assigned_locally(function: cst.FunctionDef) -> set[str]:
    """The names a function binds as its own: its parameters and the plain names it assigns
    (`x = ...`, `x += ...`, `for x in ...`, `with ... as x`), less those it declares
    `global` or `nonlocal`."""
    params = function.params
    bound = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    for extra in (params.star_arg, params.star_kwarg):
        if type(extra) is cst.Param:
            bound.add(extra.name.value)
    declared: set[str] = set()
    for node in iter_nodes(function.body):
        node_type = type(node)
        if node_type in (cst.Global, cst.Nonlocal):
            declared.update(n.name.value for n in node.names)  # type: ignore[attr-defined]
            continue
        if node_type is cst.Assign:
            targets = [t.target for t in node.targets]  # type: ignore[attr-defined]
        elif node_type in (cst.AnnAssign, cst.AugAssign, cst.For):
            targets = [node.target]  # type: ignore[attr-defined]
        elif node_type is cst.AsName:
            targets = [node.name]  # type: ignore[attr-defined]
        else:
            continue
        for target in targets:
            bound.update(_plain_names(target))
    return bound - declared


def _plain_names(target: cst.BaseExpression) -> set[str]:
    """`x`, `(x, y)`, `[x, *rest]`: the names a target binds (not `self.x`, not `xs[0]`)."""
    if type(target) is cst.Name:
        return {target.value}
    if type(target) in (cst.Tuple, cst.List):
        found: set[str] = set()
        for element in target.elements:  # type: ignore[attr-defined]
            value = element.value
            found |= _plain_names(value)
        return found
    if type(target) is cst.StarredElement:
        return _plain_names(target.value)
    return set()


def _calls_over_data(module: cst.CSTNode) -> set[int]:
    """Ids of the calls inside a loop or comprehension over anything but `range(...)`: a
    layer run over a loader's batches is a model evaluated, not a layer shown."""
    found: set[int] = set()
    for node in iter_nodes(module, enter_scopes=True):
        if type(node) is cst.For:
            iterables = [node.iter]
        elif type(node) in _COMPREHENSIONS:
            iterables = []
            comp: cst.CompFor | None = node.for_in  # type: ignore[attr-defined]
            while comp is not None:
                iterables.append(comp.iter)
                comp = comp.inner_for_in
        else:
            continue
        if all(_is_range(iterable) for iterable in iterables):
            continue
        found.update(id(inner) for inner in iter_nodes(node) if type(inner) is cst.Call)
    return found


_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


def _is_range(iterable: cst.BaseExpression) -> bool:
    return type(iterable) is cst.Call and dotted_name(iterable.func) == "range"


def _single_layer(value: cst.BaseExpression, imports: ImportTable) -> bool:
    """`nn.Dropout(0.5)`, `torch.nn.BatchNorm1d(4).to(device)`: one torch.nn layer."""
    while (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value in MODULE_RETURNING_METHODS | {"train", "eval"}
    ):
        value = value.func.value
    if type(value) is not cst.Call:
        return False
    qualified = imports.qualify(value.func) or ""
    return (
        qualified.startswith("torch.nn.")
        and qualified.count(".") == 2
        and qualified.rsplit(".", 1)[-1] in DEMONSTRATED_LAYERS
    )
