"""Whether a module's train/eval mode changes what it computes, read from how it is built:
the layers a class's methods build, a torch container's contents, a layer's literal
constructor arguments (`nn.InstanceNorm2d(64)` keeps no running statistics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, cast

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.listed_layers import listed_layers, scope_nodes
from evallint.analysis.plain_modules import mode_free_module_class, plain_module_class
from evallint.analysis.scope import ClassInfo
from evallint.analysis.self_setting_forwards import class_sets_own_mode
from evallint.analysis.vocabulary import CONTAINER_LAYERS, FUNCTIONAL_MODE, STATELESS_LAYERS
from evallint.analysis.walk import iter_nodes
from evallint.source.literals import literal_value
from evallint.torch_facts import (
    LAYERS,
    MODE_INDEPENDENT_SUFFIXES,
    TENSOR_ONLY_METHODS,
    mode_sensitive,
)

if TYPE_CHECKING:
    from evallint.analysis.lattice import PathState


class ModeMatters(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    _listed_scope: Optional[list[cst.CSTNode]] = None
    """Every node of the scope being interpreted, for `listed_layers` (see `_scope_nodes`)."""

    _reading_class = False
    """While a class's methods are read for mode-dependent layers: their names are not the
    names of the scope being interpreted."""

    def _class_mode_matters(self, cls: ClassInfo) -> bool:
        """Whether a module class of this file may behave differently in train and eval
        mode: it derives from another class than nn.Module, builds a submodule that is not
        a mode-independent torch.nn layer, or calls a functional form that takes a
        `training` flag. Read from its body, once per class."""
        cache = self.file.class_mode_matters
        if cls.name in cache:
            return cache[cls.name]
        cache[cls.name] = True  # while in progress (a class that builds itself)
        matters = not cls.bases or any(self._base_mode_matters(cls, base) for base in cls.bases)
        if class_sets_own_mode(cls):
            # its forward overwrites whatever mode the caller leaves (MC dropout)
            cache[cls.name] = False
            return False
        nodes = (
            [] if matters else [n for m in cls.methods.values() for n in iter_nodes(m.node.body)]
        )
        self._reading_class, reading = True, self._reading_class
        try:
            matters = matters or self._builds_mode_dependent(nodes)
        finally:
            self._reading_class = reading
        cache[cls.name] = matters
        return matters

    def _base_mode_matters(self, cls: ClassInfo, base: str) -> bool:
        """Whether a base class may make `cls` mode-dependent: nn.Module does not; a module
        class of this file (`class Net(ClassifierBase)`, the base holding the training
        and validation steps) is judged by reading it the same way; anything else may."""
        if (self.imports.qualify_name(base) or base) in ("torch.nn.Module", "Module"):
            return False
        own = self.file.classes.get(base)
        if own is None or own is cls or not own.is_module:
            return True
        return self._class_mode_matters(own)

    def _returns_mode_free(self) -> bool:
        """Whether every `return` of the function hands out a module whose mode changes
        nothing (`cell = nn.GRUCell(...)` filled with another module's weights, then
        `return cell`): what a caller builds with it is as mode-free."""
        values = self.return_values
        return bool(values) and all(
            (value.fresh is not None and not value.mode_matters)
            or (value.key is not None and self._key_id(value.key) in self.file.mode_independent)
            for value in values
        )

    def _plain_imported(self, call: cst.Call) -> Optional[bool]:
        """`Decoder()` of a module class of another project file that computes like a
        function (see plain_modules.py): whether it keeps constructor arguments. None for
        any other call."""
        project, found = self.file.project, self._imported_class_of(call)
        if project is None or found is None:
            return None
        return plain_module_class(project, self.file.path, *found)

    def _imported_class_of(self, call: cst.Call) -> Optional[tuple[str, str]]:
        """(module, class name) of `Cls(...)` after `from module import Cls` or of
        `mod.Cls(...)` after `import mod` / `from pkg import mod`; None for other calls."""
        func = call.func
        if type(func) is cst.Name:
            module = self.imports.modules_from.get(func.value)
            qualified = self.imports.qualify(func) or func.value
            return None if module is None else (module, qualified.split(".")[-1])
        if (
            type(func) is cst.Attribute
            and type(func.value) is cst.Name
            and self.imports.is_imported(func.value.value)
            and not (self.imports.qualify(func) or "").startswith(_LIBRARY_ROOTS)
        ):
            return self.imports.module_path(func.value.value), func.attr.value
        return None

    def _mode_free_imported(self, call: cst.Call) -> bool:
        """`models.SimpleFFDQN(n, k)`: a module class of another project file built only of
        mode-independent torch.nn layers (see `mode_free_module_class`)."""
        project, found = self.file.project, self._imported_class_of(call)
        return (
            project is not None
            and found is not None
            and mode_free_module_class(project, self.file.path, *found)
        )

    def _builds_graph_free(self, call: cst.Call, state: PathState) -> bool:
        """A module with no parameters and no mode-dependent layer, a function for EVL001 and
        EVL002: of a class `_plain_imported` accepts, given no module to keep."""
        keeps = self._plain_imported(call)
        if keeps is None:
            cls = self._local_class(call)
            if cls is not None and cls.is_module:
                keeps = self._local_parameter_free(cls)
        return keeps is False or (
            keeps is True and all(self._holds_no_module(arg.value, state) for arg in call.args)
        )

    def _local_parameter_free(self, cls: ClassInfo) -> Optional[bool]:
        """A module class of this file deriving from nn.Module only that builds no layer but
        parameter-free torch.nn ones (losses, activations: `self.loss = nn.NLLLoss(w)`),
        keeps no computed value and reads no `training` flag, as `plain_module_class` for one
        of another file: None when it is no such class, else whether it keeps a constructor
        argument as it is (`self.loss = loss`: a module passed in would bring parameters)."""
        cache = self.file.class_parameter_free
        if cls.name not in cache:
            cache[cls.name] = self._read_parameter_free(cls)
        return cache[cls.name]

    def _read_parameter_free(self, cls: ClassInfo) -> Optional[bool]:
        if not cls.bases or any(
            (self.imports.qualify_name(base) or base) not in ("torch.nn.Module", "Module")
            for base in cls.bases
        ):
            return None
        keeps = False
        for node in iter_nodes(cls.node, enter_scopes=True):
            if type(node) is cst.Attribute and node.attr.value == "training":
                return None
            if type(node) is cst.Call:
                qualified = self.imports.qualify(node.func) or ""
                last = qualified.split(".")[-1]
                if (
                    qualified in FUNCTIONAL_MODE
                    or "dropout" in last.lower()
                    or any(
                        a.keyword is not None and a.keyword.value == "training" for a in node.args
                    )
                    or last in _REGISTERING
                    or (last[:1].isupper() and not _parameter_free_layer(qualified))
                ):
                    return None
            if type(node) is cst.Assign and not all(_names_only(t.target) for t in node.targets):
                value = node.value
                if type(value) is cst.Name:
                    keeps = True  # `self.weight = weight`: the caller's arguments decide
                elif not (
                    type(value) in _LITERALS
                    or (
                        type(value) is cst.Call
                        and _parameter_free_layer(self.imports.qualify(value.func) or "")
                    )
                    or _plain_tensor(value)  # `one_hot(y).unsqueeze(0)`: a tensor
                ):
                    return None  # `self.net = build(cfg)`: may be a module with parameters
            elif (
                type(node) in (cst.AugAssign, cst.AnnAssign)
                and type(getattr(node, "target", None)) is not cst.Name
            ):
                return None
        return keeps

    def _holds_no_module(self, value: cst.BaseExpression, state: PathState) -> bool:
        if type(value) in (cst.Name, cst.Attribute):
            return self.resolve(value, state) is None
        return type(value) in _LITERALS

    def _builds_mode_dependent(self, nodes) -> bool:
        """Whether these nodes (a class's method bodies) build a submodule whose mode matters.
        A torch container filled with built layers (`nn.ModuleList()` appended to in a loop,
        `nn.Sequential(*layers)`, `nn.ModuleList([nn.Linear(d, d) for _ in range(n)])`) is
        judged by the layers, which are calls of the same bodies."""
        unknown: set[str] = set()  # `block = ResBlock(d)`, `blocks = [ResBlock(d)]`
        put_in: set[str] = set()  # `layers.append(block)`, `nn.Sequential(*blocks)`
        called_on_the_spot: set[int] = set()
        # `spline = Spline(coeffs)` in a method: a local, a submodule only when it is put in
        # (`self.x = spline`, appended, returned); one that is only used there is built in
        # training mode on every call whatever the module's mode: eval() changes nothing
        local: set[int] = set()
        nodes = list(nodes)
        for node in nodes:
            if type(node) is cst.Call and type(node.func) is cst.Call:
                # `nn.Dropout(p)(x)`: a new layer on every call, in training mode whatever
                # the module's mode, never a submodule: eval() changes nothing about it
                # (EVL004 reports it); the module's own mode matters no more for it
                called_on_the_spot.add(id(node.func))
                continue
            if id(node) in called_on_the_spot:
                continue
            if type(node) is cst.Return and type(node.value) is cst.Name:
                put_in.add(node.value.value)
            if type(node) is cst.Assign:
                value = node.value
                if all(type(t.target) is cst.Name for t in node.targets):
                    local.add(id(value))
                elif type(value) is cst.Name:
                    put_in.add(value.value)  # `self.drop = drop`
                if (
                    type(value) is cst.Call
                    and any(
                        type(t.target) is cst.Attribute and t.target.attr.value != "training"
                        for t in node.targets
                    )
                    and not self._filled_container(value)
                    and not self._filled_from_lists(value, nodes)
                    and self._unknown_or_mode_dependent(value)
                ):
                    return True
                if any(self._unknown_or_mode_dependent(v) for v in _built_elements(value) or ()):
                    unknown.update(
                        t.target.value for t in node.targets if type(t.target) is cst.Name
                    )
            elif type(node) is cst.Call:
                qualified = self.imports.qualify(node.func) or ""
                if id(node) in local and not (
                    qualified in FUNCTIONAL_MODE or "dropout" in qualified.lower()
                ):
                    continue  # judged with its name (`unknown`), above
                if qualified in FUNCTIONAL_MODE or "dropout" in qualified.lower():
                    return True
                facts = self._constructor_facts(node)
                if (
                    facts is not None
                    and facts[1]
                    and not self._filled_container(node)
                    and not self._filled_from_lists(node, nodes)
                ):
                    return True  # `layers.append(nn.Dropout(p))`
                func = node.func
                filled = type(func) is cst.Attribute and func.attr.value in _FILLING_METHODS
                if filled or self._filled_container(node):
                    for arg in node.args:
                        if type(arg.value) is cst.Name:
                            put_in.add(arg.value.value)
                        for value in _built_elements(arg.value) or ():
                            if self._unknown_or_mode_dependent(value):
                                return True
        return bool(unknown & put_in)

    def _filled_from_lists(self, call: cst.Call, nodes: Sequence[cst.CSTNode]) -> bool:
        """`nn.ModuleList(layers)`, `nn.Sequential(*layers)` of lists these bodies fill
        (see listed_layers.py) with layers none of which is unknown or mode-dependent."""
        qualified = self.imports.qualify(call.func) or ""
        if not (qualified.startswith("torch.nn.") and qualified.split(".")[-1] in CONTAINER_LAYERS):
            return False
        if not call.args:
            return False
        for arg in call.args:
            if arg.keyword is not None or type(arg.value) is not cst.Name:
                return False
            held = listed_layers(nodes, arg.value.value)
            if held is None or any(self._unknown_or_mode_dependent(c) for c in held):
                return False
            if any(self._called_functional_mode(c) for c in held):
                return False
        return True

    def _called_functional_mode(self, call: cst.Call) -> bool:
        qualified = self.imports.qualify(call.func) or ""
        return qualified in FUNCTIONAL_MODE or "dropout" in qualified.lower()

    def _filled_container(self, call: cst.Call) -> bool:
        qualified = self.imports.qualify(call.func) or ""
        return (
            qualified.startswith("torch.nn.")
            and qualified.split(".")[-1] in CONTAINER_LAYERS
            and all(
                arg.keyword is None
                and (
                    _built_elements(arg.value) is not None
                    or (arg.star and type(arg.value) is cst.Name)
                )
                for arg in call.args
            )
        )

    def _unknown_or_mode_dependent(self, value: cst.BaseExpression) -> bool:
        if type(value) is not cst.Call:
            return False
        qualified = self.imports.qualify(value.func) or ""
        facts = self._constructor_facts(value)
        return (facts is not None and facts[1]) or (
            facts is None
            and not qualified.startswith("torch.")
            and qualified.split(".")[-1][:1].isupper()
        )

    def _scope_nodes(self) -> list[cst.CSTNode]:
        """Every node of the scope being interpreted (read once per scope)."""
        cached = self._listed_scope
        if cached is None:
            root = self.info.node.body if self.info is not None else self.file.module
            body = root.body if isinstance(root.body, (list, tuple)) else [root]
            cached = self._listed_scope = scope_nodes(body)
        return cached

    def _holds_only_mode_independent(self, call: cst.Call) -> bool:
        """`nn.Sequential(nn.Linear(1, 10), nn.ReLU(), nn.Linear(10, 1))`: a container built
        here of layers that behave alike in both modes (no Dropout, no BatchNorm)."""
        if not call.args:
            return False
        if not self._reading_class and self._filled_from_lists(call, self._scope_nodes()):
            return True  # `layers = [nn.Flatten()]; layers.append(...)`; `nn.Sequential(*layers)`
        named = self._named_layers(call)
        if named is not None:
            return all(self._mode_independent_layer(layer) for layer in named)
        for arg in call.args:
            value = arg.value
            if type(value) is cst.Name and not self._reading_class and not arg.star:
                # `nn.Sequential(linear1, relu, linear2)` of names bound before (`relu` to a
                # stateless layer, which holds no module)
                if self._key_id(value.value) in self.file.mode_independent:
                    continue
                bound = getattr(self, "bound_at", {})  # none yet while scope keys are read
                value = cast(cst.BaseExpression, bound.get(value.value, value))
            if arg.keyword is not None or arg.star or not self._mode_independent_layer(value):
                return False
        return True

    def _mode_independent_layer(self, value: cst.BaseExpression) -> bool:
        """A layer built in place that behaves alike in both modes: a torch.nn layer or a
        module whose construction says its mode changes nothing."""
        if type(value) is not cst.Call:
            return False
        facts = self._constructor_facts(value)
        if facts is not None:
            return not facts[1]
        return (self.imports.qualify(value.func) or "").startswith("torch.nn.")

    def _named_layers(self, call: cst.Call) -> Optional[list[cst.BaseExpression]]:
        """The layers of a container given one mapping of names to layers built in place:
        `nn.Sequential(OrderedDict([("fc", nn.Linear(1, 8)), ("act", nn.Tanh())]))`,
        `nn.ModuleDict({"fc": nn.Linear(1, 8)})`. The container holds exactly those layers
        (the names only label them), so its mode matters as theirs does. None when the
        argument is no such mapping."""
        if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
            return None
        value = call.args[0].value
        if type(value) is cst.Dict:
            layers: list[cst.BaseExpression] = []
            for element in value.elements:
                if type(element) is not cst.DictElement:
                    return None
                layers.append(element.value)
            return layers
        if (
            type(value) is not cst.Call
            or (self.imports.qualify(value.func) or "").split(".")[-1] != "OrderedDict"
            or len(value.args) != 1
            or type(value.args[0].value) not in (cst.List, cst.Tuple)
        ):
            return None
        layers = []
        for pair in cast("cst.List | cst.Tuple", value.args[0].value).elements:
            if type(pair.value) is not cst.Tuple or len(pair.value.elements) != 2:
                return None
            layers.append(pair.value.elements[1].value)
        return layers


def built_mode_sensitive(kind: str, call: cst.Call) -> bool:
    """Whether a mode-dependent torch.nn layer built with these literal arguments differs
    between train and eval (`nn.InstanceNorm2d(64)` keeps no running statistics and
    `nn.Dropout(0.0)` drops nothing: they do not). An argument that is not a literal leaves
    it open, and open counts as sensitive."""
    fact = LAYERS.get(kind)
    if fact is None:
        return True
    read: dict[str, object] = {}
    for index, arg in enumerate(call.args):
        if arg.star:
            return True
        name = arg.keyword.value if arg.keyword is not None else None
        if name is None and index < len(fact.positional):
            name = fact.positional[index]
        if name is None:
            continue
        value = arg.value
        if type(value) is cst.Name and value.value in ("True", "False"):
            read[name] = value.value == "True"
        elif type(value) in (cst.Integer, cst.Float):
            read[name] = literal_value(value)
        else:
            read[name] = "?"  # not a literal: undecided
    return mode_sensitive(kind, read) is not False


def _names_only(target: cst.BaseExpression) -> bool:
    """`loss`, `a, (b, c)`: local names only, no attribute or item of anything."""
    if type(target) in (cst.Tuple, cst.List):
        return all(_names_only(e.value) for e in target.elements)  # type: ignore[attr-defined]
    return type(target) is cst.Name


def _parameter_free_layer(qualified: str) -> bool:
    """`torch.nn.NLLLoss`, `torch.nn.ReLU`: a torch.nn class that holds no parameter."""
    last = qualified.split(".")[-1]
    return (
        qualified.startswith("torch.nn.")
        and qualified.count(".") == 2
        and (last in STATELESS_LAYERS or last.endswith(MODE_INDEPENDENT_SUFFIXES))
    )


_REGISTERING = frozenset(
    {"add_module", "register_module", "register_parameter", "setattr", "__setattr__", "Parameter"}
)
_LIBRARY_ROOTS = ("torch.", "torchvision.", "numpy.", "transformers.", "timm.")
"""Heads of `mod.Cls(...)` that are never project files (no source to read there)."""

_LITERALS = (
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.FormattedString,
    cst.Integer,
    cst.Float,
    cst.Lambda,
)

_FILLING_METHODS = frozenset({"append", "extend", "insert", "add_module"})
"""Methods that put a built layer into a list or container (`layers.append(nn.Linear(...))`)."""


def _built_elements(value: cst.BaseExpression) -> Optional[list[cst.BaseExpression]]:
    """What an argument of a container or of `append` puts in: the call itself, a list's
    elements, a comprehension's element. None for anything else (a name: what it holds was
    built elsewhere in the same bodies)."""
    if type(value) is cst.Call:
        return [value]
    if type(value) in (cst.List, cst.Tuple):
        return [e.value for e in cast("cst.List | cst.Tuple", value).elements]
    if type(value) in (cst.ListComp, cst.GeneratorExp):
        return [cast("cst.ListComp | cst.GeneratorExp", value).elt]
    if type(value) is cst.SimpleString:
        return []  # the name given to `add_module`
    return None


def _plain_tensor(value: cst.BaseExpression) -> bool:
    """A value a tensor-only method returns (`one_hot(y).permute(2, 0, 1)`: torch_facts.
    TENSOR_ONLY_METHODS), not asked to require grad: a tensor, never a module with
    parameters (as plain_modules reads it for a class of another file)."""
    return (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value in TENSOR_ONLY_METHODS
        and not any(
            (type(n) is cst.Arg and n.keyword is not None and n.keyword.value == "requires_grad")
            or (type(n) is cst.Attribute and n.attr.value in ("requires_grad_", "Parameter"))
            for n in iter_nodes(value)
        )
    )
