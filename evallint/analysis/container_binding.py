"""Plain containers of modules and objects that hold the modules they are given, as the
interpreter binds them: `nets = [Net(), Net()]` (each element a module of its own, named
`nets[0]`), `for m in nets` over them, and `Query(gen, disc)` of a class whose `__init__`
stores its parameters (the built object holds those very modules: switching it switches them).
Moved out of `binding`."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.instances import imported_class
from evallint.analysis.lattice import PathState
from evallint.analysis.scope import ClassInfo
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_METHODS
from evallint.source.literals import literal_value


def _strip_same_module(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`x.to(device).cuda()` -> `x`: calls that return the module they are called on."""
    return chain_receiver(expr, SAME_MODULE_METHODS)


def _argument(
    positional: list[str], keyword_only: tuple[str, ...], param: str, call: cst.Call
) -> Optional[cst.BaseExpression]:
    """The expression `call` passes for parameter `param`."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == param:
            return arg.value
    if param in positional:
        index = positional.index(param)
        plain = [a for a in call.args if a.keyword is None and not a.star]
        if index < len(plain) and not any(a.star for a in call.args[: index + 1]):
            return plain[index].value
    return None


def _stored_arguments(
    inner: cst.Call, owner: ClassInfo, analysis, registered_only: bool = False
) -> list[tuple[str, cst.BaseExpression]]:
    """(attribute, argument of `inner`) for each `self.X = parameter` of the class's
    `__init__` (or its base's); (`X.i`, element) for each element of a list given to a
    parameter stored as `self.X = nn.ModuleList(parameter)` (`X.i`, as torch names the
    children it registers). `registered_only`: only those."""
    init = owner.methods.get("__init__") or analysis._inherited_method(owner, "__init__")
    if init is None:
        return []
    positional = [p for p in init.params if p not in ("self", "cls")]
    pairs: list[tuple[str, cst.BaseExpression]] = []
    inits = [init]
    base_init = analysis._inherited_method(owner, "__init__")
    if base_init is not None and base_init is not init:
        inits.append(base_init)  # `super().__init__(model)` stores it (same parameter name)
    stores = [s for i in inits for s in analysis.scope(i.node).attribute_assignments]
    for attribute, stored in stores:
        stored = _strip_same_module(stored)
        listed = _registered_list(stored)
        if listed is not None:
            # `self.nodes = nn.ModuleList(nodes)` given `[encoder, decoder]`: each element is
            # a registered child, switched with the object (`nn.Module.train()` recurses)
            argument = _argument(positional, init.keyword_only, listed.value, inner)
            if type(argument) in (cst.List, cst.Tuple):
                items = cast("cst.List | cst.Tuple", argument).elements
                if len(items) <= 8 and all(type(i) is cst.Element for i in items):
                    name = attribute[len("self.") :]
                    pairs.extend((f"{name}.{n}", i.value) for n, i in enumerate(items))
            continue
        if registered_only or type(stored) is not cst.Name:
            continue
        argument = _argument(positional, init.keyword_only, stored.value, inner)
        if argument is not None:
            pairs.append((attribute[len("self.") :], argument))
    return pairs


def _registered_list(stored: cst.BaseExpression) -> Optional[cst.Name]:
    """`nn.ModuleList(param)` or `nn.Sequential(*param)`: the parameter whose modules the
    torch container registers as its children, in order."""
    if type(stored) is not cst.Call or len(stored.args) != 1:
        return None
    name = (dotted_name(stored.func) or "").rpartition(".")[2]
    arg = stored.args[0]
    if arg.keyword is not None or type(arg.value) is not cst.Name:
        return None
    if (name == "ModuleList" and not arg.star) or (name == "Sequential" and arg.star == "*"):
        return arg.value
    return None


class ContainerBinding(InterpreterPart):
    """The interpreter part that binds containers of modules and holders of modules."""

    def held_attributes(self, value: cst.BaseExpression) -> list[tuple[str, cst.BaseExpression]]:
        """`Query(gen, disc).to(device)` with `Query` a class of this file whose `__init__`
        stores its parameters (`self.generator = generator`): (attribute, argument) pairs.
        The built object holds the very modules passed in: switching it switches them."""
        inner = _strip_same_module(value)
        if type(inner) is not cst.Call:
            return []
        owner, analysis = self._local_class(inner), self.file
        if owner is None and self.file.project is not None:
            found = imported_class(self.file, inner)  # `gcam = GradCAM(model=model)`
            if found is not None:
                analysis, owner = found
            else:
                # `problem = Problem([encoder, decoder])` of a module class of another file
                # that registers them (`self.nodes = nn.ModuleList(nodes)`), or `gan =
                # CycleGAN(g_ab, g_ba)` storing each (`self.g_ab = g_ab`): the object holds
                # the very modules passed in, so its `eval()`, `train()` and a method that
                # switches `self.g_ab` reach them, as a training helper given the object does
                found = imported_class(self.file, inner, module_class=True)
                return _stored_arguments(inner, found[1], found[0]) if found else []
        if owner is None:
            return []
        return _stored_arguments(inner, owner, analysis)

    def carried_attributes(self, value: cst.BaseExpression) -> list[tuple[str, cst.BaseExpression]]:
        """`Sampler(net, steps)` with `Sampler` a module class of another project file that
        only carries what it is given (kept_modules.py): (attribute, argument) pairs."""
        inner = _strip_same_module(value)
        if type(inner) is not cst.Call or self.file.project is None:
            return []
        if self._plain_imported(inner) is not True:
            return []
        found = imported_class(self.file, inner, module_class=True)
        return _stored_arguments(inner, found[1], found[0]) if found is not None else []

    def bind_container(self, name: str, value: cst.BaseExpression, states: States) -> States:
        """`nets = [Net(), Net()]`, `models = {"g": gen, "d": disc}`: a plain container of
        modules. Each element is a module of its own, named `nets[0]`, `models['g']` (or the
        module it already is); `nets` itself is none (nothing registers the elements, so no
        parent's eval() reaches them). Returns None-equivalent `()` when it holds none."""
        if not states:
            return ()
        elements: list[tuple[str, cst.BaseExpression]] = []
        if type(value) in (cst.List, cst.Tuple, cst.Set):
            items = cast("cst.List | cst.Tuple | cst.Set", value).elements
            for index, item in enumerate(items):
                if type(item) is cst.StarredElement:
                    return ()
                elements.append((f"{name}[{index}]", item.value))
        elif type(value) is cst.Dict:
            for index, entry in enumerate(value.elements):
                if type(entry) is not cst.DictElement:
                    return ()
                label = (
                    repr(literal_value(entry.key))
                    if type(entry.key) is cst.SimpleString
                    else str(index)
                )
                elements.append((f"{name}[{label}]", entry.value))
        elif type(value) in (cst.ListComp, cst.GeneratorExp):
            elements.append((f"{name}[*]", cast("cst.ListComp | cst.GeneratorExp", value).elt))
        if not elements or len(elements) > 8:
            return ()
        members: list[str] = []
        result = list(states)
        for member, member_value in elements:
            found = self.value_of(member_value, states[0])
            if found.key is not None:
                members.append(found.key)
            elif found.fresh is not None:
                members.append(member)
                result = [
                    state.forgetting(member)
                    .with_alias(member, member)
                    .with_mode(member, found.fresh)
                    for state in result
                ]
        if not members:
            return ()
        self.containers[name] = tuple(members)
        return tuple(result)

    def container_loop(
        self, iterable: cst.BaseExpression, target: cst.BaseExpression
    ) -> Optional[tuple[str, tuple[str, ...]]]:
        """`for m in nets`, `for m in models.values()`, `for k, m in models.items()`,
        `for i, m in enumerate(nets)`: (the name bound to each module, the modules)."""
        method = None
        if type(iterable) is cst.Call and type(iterable.func) is cst.Attribute:
            method = iterable.func.attr.value
            if method not in ("values", "items"):
                return None
            iterable = iterable.func.value
        elif (
            type(iterable) is cst.Call
            and type(iterable.func) is cst.Name
            and iterable.func.value == "enumerate"
            and iterable.args
        ):
            method, iterable = "items", iterable.args[0].value
        members = self.containers.get(dotted_name(iterable) or "")
        if not members:
            return None
        if method == "items":
            if type(target) is not cst.Tuple or len(target.elements) != 2:
                return None
            target = target.elements[1].value
        if type(target) is not cst.Name:
            return None
        return target.value, members

    def resolve_member(self, member: str, state: PathState) -> Optional[str]:
        """A container member's key on this path."""
        return state.key_of(member) or member
