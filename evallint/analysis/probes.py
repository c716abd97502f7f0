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
training is still an evaluation.

A module class built around modules that are themselves just built (`LinearWithLoRA(layer,
rank=2)` of a bare `nn.Linear`, `nn.Sequential(block, head)`) is just built too: its
constructor keeps its parts, it trains and loads nothing. Handing a part to it does not touch
the part; the parts are touched with the wrapper (handed on, loaded, stepped), since what
trains the wrapper trains them. A wrapper built around a module loaded with its weights
(`Wrapped(resnet18(weights="DEFAULT"))`, `from_pretrained`, `torch.load`) is no untrained
module: its forwards evaluate those weights, whatever the inputs. The class must be a module: torch.nn's, or one the file
defines over a module base (a `Trainer(model)` may well train what it is given)."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.symbols import ImportTable, dotted_name
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import (
    MODULE_RETURNING_METHODS,
    RESHAPING_METHODS,
    SYNTHETIC_TENSOR_FACTORIES,
)

_ONLY_SHOWS = frozenset({"print", "repr", "str", "type", "id", "display"})
"""Calls that only show what they are given: handing a module to one changes nothing."""

PROBE_WORDS = ("rand", "zeros", "ones", "full(", "empty(", "normal(")
"""Text a file must hold for a probe to be looked for (the factories' names)."""

_STEPS = frozenset({"backward", "step", "load_state_dict"})


def probe_forwards(
    module: cst.Module, imports: ImportTable, module_classes: frozenset[str] = frozenset()
) -> frozenset[int]:
    """Ids of the calls at a script's top level that probe a module just built (see the
    module docstring); `module_classes` are the names of the module classes the file
    defines."""
    found: set[int] = set()
    _Scan(imports, module_classes, found).run(module)
    return frozenset(found)


def local_probe_forwards(
    module: cst.Module, imports: ImportTable, module_classes: frozenset[str] = frozenset()
) -> frozenset[int]:
    """Ids of the calls in a function body that probe a module the function itself just
    built, on tensors it made up itself (`def demo(): lstm = Net(); print(lstm(torch.randn(
    2, 5, 3))[0].shape)`): module and inputs are made anew on every call, so whichever
    caller runs the function (a `main()` that also trains and evaluates other models) runs
    the same probe, not an evaluation."""
    found: set[int] = set()
    for node in iter_nodes(module, enter_scopes=True):
        if type(node) is cst.FunctionDef:
            _Scan(imports, module_classes, found).run(node.body)
    return frozenset(found)


class _Scan:
    """One scope read in source order: which names hold a module just built, which a
    made-up tensor."""

    def __init__(
        self, imports: ImportTable, module_classes: frozenset[str], found: set[int]
    ) -> None:
        self.imports = imports
        self.module_classes = module_classes
        self.found = found
        self.fresh: set[str] = set()  # names holding a module built here and untouched since
        self.synthetic: set[str] = set()  # names holding a made-up tensor
        self.touched: set[str] = set()  # built here, then trained, loaded or handed on
        self.loaded: set[str] = set()  # names holding a module loaded with its weights
        self.parts: dict[str, set[str]] = {}  # a module built around fresh ones: its parts
        self.building: set[int] = set()  # module constructions whose result a name takes

    def run(self, body: cst.CSTNode) -> None:
        # bindings wait until the walk (pre-order, in source order) has left their value
        pending: list[tuple[set[int], cst.Assign]] = []
        for node in iter_nodes(body):
            while pending and id(node) not in pending[-1][0]:
                self._bind(pending.pop()[1])
            if type(node) in (cst.For, cst.While) and any(
                type(n) is cst.Call
                and type(n.func) is cst.Attribute
                and n.func.attr.value in _STEPS
                for n in iter_nodes(node)
            ):
                self._touch_all()  # a later iteration runs after this loop's own steps
            if type(node) is cst.For:
                self._loop_target(node)
            if type(node) is cst.Assign:
                pending.append(({id(n) for n in iter_nodes(node)}, node))
                built = self._module_construction(node)
                if built is not None:
                    self.building.add(id(built))
            elif type(node) is cst.Call:
                self._call(node)
        while pending:
            self._bind(pending.pop()[1])

    def _loop_target(self, loop: cst.For) -> None:
        """`for x in xs:` over a list of made-up tensors makes `x` one of them: a sequence
        stepped through element by element. A loop that unpacks its items (`for x, y in
        batches:`) reads batches of inputs and targets, the shape of a data set, made up or
        not (a test set stood in for by random tensors): what it runs is an evaluation."""
        made_up = type(loop.target) is cst.Name and _made_up(
            loop.iter, self.imports, self.synthetic
        )
        for node in iter_nodes(loop.target):
            if type(node) is cst.Name:
                self.fresh.discard(node.value)
                (self.synthetic.add if made_up else self.synthetic.discard)(node.value)

    def _touch(self, name: str) -> None:
        """`name` may be trained or loaded from here on, and so may the modules it holds."""
        if name in self.fresh:
            self.touched.add(name)
        self.fresh.discard(name)
        for part in self.parts.pop(name, ()):
            self._touch(part)

    def _touch_all(self) -> None:
        self.touched |= self.fresh
        self.fresh.clear()  # a training step may have reached any of them
        self.parts.clear()

    def _module_construction(self, assign: cst.Assign) -> cst.Call | None:
        """`name = Cls(...)` (possibly moved) where `Cls` is a module class: torch.nn's or
        one this file defines."""
        if len(assign.targets) != 1 or type(assign.targets[0].target) is not cst.Name:
            return None
        value = _strip_moves(assign.value)
        if type(value) is not cst.Call or not _constructs(value):
            return None
        qualified = self.imports.qualify(value.func) or ""
        if qualified.startswith("torch.nn.") or qualified in self.module_classes:
            return value
        return None

    def _bind(self, assign: cst.Assign) -> None:
        names = [t.target.value for t in assign.targets if type(t.target) is cst.Name]
        unpacked = [
            n.value
            for t in assign.targets
            if type(t.target) is not cst.Name
            for n in iter_nodes(t.target)
            if type(n) is cst.Name
        ]
        # `out, hidden = lstm(x, hidden)` of a probe: what a module just built makes of
        # made-up tensors is made up too
        probed = id(assign.value) in self.found
        for name in unpacked:
            self.fresh.discard(name)
            (self.synthetic.add if probed else self.synthetic.discard)(name)
        constructs = len(assign.targets) == 1 and _constructs(assign.value)
        # `Sampler(net, 10)`: a wrapper around a module trained (or loaded, or handed on)
        # since it was built holds that training; a fresh part (`init_layer=...`) does not
        held = [n for n in iter_nodes(assign.value) if type(n) is cst.Name]
        wraps = any(n.value in self.touched or n.value in self.loaded for n in held)
        made_up = len(assign.targets) == 1 and (
            probed or _made_up(assign.value, self.imports, self.synthetic)
        )
        parts: set[str] = set()
        if constructs:
            parts = {n.value for n in held if n.value in self.fresh}
        elif type(_strip_moves(assign.value)) is cst.Name:
            # `net = model.to(device)`, `net = model`: the same module under another name;
            # what trains it trains `model` and whatever `model` holds
            alias = cast(cst.Name, _strip_moves(assign.value)).value
            parts = ({alias} & self.fresh) | self.parts.get(alias, set())
        loads = len(assign.targets) == 1 and _loads(assign.value, self.imports)
        for name in names:
            (self.loaded.add if loads else self.loaded.discard)(name)
            dropped = self.parts.pop(name, set())
            if constructs and not wraps:
                self.fresh.add(name)
            else:
                self.fresh.discard(name)
            if parts - {name}:
                self.parts[name] = parts - {name}
            self.touched.discard(name)
            (self.synthetic.add if made_up else self.synthetic.discard)(name)
            for part in dropped - parts:
                self._touch(part)  # its wrapper lives on under no name this scope tracks

    def _call(self, call: cst.Call) -> None:
        func = call.func
        if type(func) is cst.Attribute and func.attr.value in _STEPS:
            if func.attr.value == "load_state_dict":
                self._touch(dotted_name(func.value) or "")
            else:
                self._touch_all()
            return
        target = _probed(func)
        if target is not None and target in self.fresh:
            inputs = [a.value for a in call.args if a.keyword is None]
            if inputs and all(_made_up(i, self.imports, self.synthetic) for i in inputs):
                self.found.add(id(call))
            return
        if dotted_name(func) in _ONLY_SHOWS or id(call) in self.building:
            return  # shown, or kept as a part of the module being built
        for arg in call.args:
            if type(arg.value) is cst.Name and (
                arg.value.value in self.fresh or arg.value.value in self.parts
            ):
                self._touch(arg.value.value)  # handed on: it may be trained or loaded there


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


_LOADERS = frozenset({"torch.load", "torch.hub.load", "torch.jit.load"})


def _loads(value: cst.BaseExpression, imports: ImportTable) -> bool:
    """`resnet18(weights="DEFAULT")`, `Cls.from_pretrained(...)`, `torch.load(path)`: a
    module that comes with trained weights; a module built around it is no untrained one."""
    value = _strip_moves(value)
    if type(value) is not cst.Call:
        return False
    func = value.func
    if type(func) is cst.Attribute and func.attr.value == "from_pretrained":
        return True
    if (imports.qualify(func) or "") in _LOADERS:
        return True
    return any(
        a.keyword is not None
        and a.keyword.value in ("pretrained", "weights")
        and not (type(a.value) is cst.Name and a.value.value in ("None", "False"))
        for a in value.args
    )


def _made_up(value: cst.BaseExpression, imports: ImportTable, synthetic: set[str]) -> bool:
    """`torch.randn(2, 3)`, `torch.rand(...).to(device)`, or a name last bound to one; and
    what is computed from made-up tensors alone: a tuple or list of them (`(h0, c0)`), a
    comprehension making one each time (`[torch.randn(1, 3) for _ in range(5)]`), an item
    of one (`xs[0]`), a torch function of them (`torch.cat(xs)`, `Variable(x)`), and a
    reshape, cast or move of one (`x.view(1, 1, -1)`)."""
    value = _strip_moves(value)
    value_type = type(value)
    if value_type is cst.Name:
        return cast(cst.Name, value).value in synthetic
    if value_type in (cst.Tuple, cst.List):
        elements = cast(cst.Tuple, value).elements
        return bool(elements) and all(
            type(e) is cst.Element and _made_up(e.value, imports, synthetic) for e in elements
        )
    if value_type in (cst.ListComp, cst.GeneratorExp):
        comp = cast(cst.ListComp, value)
        return _over_range(comp.for_in) and _made_up(comp.elt, imports, synthetic)
    if value_type is cst.Subscript:
        return _made_up(cast(cst.Subscript, value).value, imports, synthetic)
    if value_type is not cst.Call:
        return False
    call = cast(cst.Call, value)
    qualified = imports.qualify(call.func) or ""
    if qualified in SYNTHETIC_TENSOR_FACTORIES:
        return True
    tensors = [a.value for a in call.args if a.keyword is None]
    if qualified.startswith("torch.") and not qualified.startswith("torch.nn."):
        return bool(tensors) and all(_made_up(t, imports, synthetic) for t in tensors)
    func = call.func
    return (
        type(func) is cst.Attribute
        and func.attr.value in RESHAPING_METHODS
        and _made_up(func.value, imports, synthetic)
    )


def _over_range(comp: cst.CompFor | None) -> bool:
    """Every `for` of a comprehension runs over `range(...)` with no condition: it repeats,
    it reads no data."""
    while comp is not None:
        if comp.ifs or not (type(comp.iter) is cst.Call and dotted_name(comp.iter.func) == "range"):
            return False
        comp = comp.inner_for_in
    return True
