"""Part of the interpreter (see interpreter.py): what a class's attributes hold, read once per
class from the assignments of all its methods: which `self.x` may hold modules (and which of
them only mode-independent layers), plain lists of modules, objects of plain classes of the
file, and attributes of those objects that alias this one's (`self.extractor.model`)."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.constructor_arguments import parameters_given_modules
from evallint.analysis.context import InterpreterPart
from evallint.analysis.instances import imported_class
from evallint.analysis.keyed_members import keyed_module_dicts
from evallint.analysis.plain_objects import assigns_plain_parameter
from evallint.analysis.scope import ClassInfo, looks_like_module_name
from evallint.analysis.stored_fields import field_holds_mode_free, read_field
from evallint.analysis.symbols import dotted_name
from evallint.analysis.type_checked import plain_checked_attributes


class ClassMembers(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    def _class_module_attributes(self, owner: ClassInfo) -> set[str]:
        if owner.module_attributes:
            return owner.module_attributes
        attributes: set[str] = set()
        mode_dependent: set[str] = set()
        plain: dict[str, bool] = {}
        """Attribute -> whether every assignment of it builds a plain object."""
        evidenced: set[str] = set()
        for method in owner.methods.values():
            for name, value in self.file.scope(method.node).attribute_assignments:
                facts = (
                    self._constructor_facts(value, method.node) if type(value) is cst.Call else None
                )
                built_plain = self._builds_plain_object(value) or assigns_plain_parameter(
                    self.file, method.node, value
                )
                if not (type(value) is cst.Name and value.value == "None"):
                    # `self.se = None` until a method builds it: no say in what it holds
                    plain[name] = plain.get(name, True) and facts is None and built_plain
                if (facts is None or self._weakly_loaded(value)) and (
                    self._non_module(name) or built_plain
                ):
                    continue  # used only as a tokenizer is, or holds a plain object: its
                    # name (`self.encoder_tokenizer`, `self.encoder = get_encoder()`) is no test
                if facts is not None or (
                    looks_like_module_name(name)
                    and type(value) in (cst.Call, cst.Name, cst.Attribute, cst.Subscript)
                ):
                    attributes.add(name)  # `self.model = kwargs["model"]` too
                elif (
                    type(value) is cst.Name
                    and method is owner.methods.get("__init__")
                    and value.value in parameters_given_modules(self.file, owner.name)
                ):
                    attributes.add(name)  # `self.G = generator`, every `Trainer(...)` a module's
                if (facts is None or facts[1]) and not self._stored_mode_free(value):
                    mode_dependent.add(name)
            for name in self.file.scope(method.node).evidence:
                if name.startswith("self.") and name.count(".") == 1:
                    attributes.add(name)
                    evidenced.add(name)
            for name in self.file.scope(method.node).called_attributes:
                if (
                    looks_like_module_name(name)
                    and not self._is_method(owner, name[5:])
                    and not self._non_module(name)
                    and self.file.binds_attribute(name[5:])
                ):
                    # `self.model(x)`, set by a base class or a caller; not a method of the
                    # class named like one (`self._save_model_if_needed()`), nor one of a
                    # base outside the project that nothing here binds (`self.add_module(...)`)
                    attributes.add(name)
                    mode_dependent.add(name)
        # `self.detector = build_detector(cfg)` (a factory of plain objects), then
        # `self.detector(im)`: calling the object is no evidence of a module
        attributes -= {name for name, holds in plain.items() if holds}
        # `isinstance(self.feed_def, FeedDefinition)` against plain classes only: no module
        attributes -= plain_checked_attributes(self.file, owner) - evidenced
        # `self.model.eval()` on a module no method assigns (a dataclass field, a base
        # class's or a caller's): its layers are unknown, so its mode may matter
        mode_dependent |= evidenced - plain.keys()
        for name in attributes - mode_dependent:
            self.file.mode_independent.add(f"{owner.name}::{name}")  # only bare nn.Linear & co.
        owner.module_attributes = attributes or {"<none>"}
        return owner.module_attributes

    def _stored_mode_free(self, value: cst.BaseExpression) -> bool:
        """`self.cov = copy.deepcopy(args.cov)`: a field of another object whose every store
        in the project builds a mode-free module (see stored_fields.py)."""
        field = read_field(self.file, value)
        return field is not None and field_holds_mode_free(self.file, field)

    def _class_containers(self, owner: ClassInfo) -> dict[str, tuple[str, ...]]:
        """`self.heads = [nn.Linear(...) for _ in range(k)]`: a plain list attribute of
        modules, which the class's own eval() does not reach (they are not registered)."""
        if owner.held_containers is None:
            found: dict[str, tuple[str, ...]] = {}
            for method in owner.methods.values():
                for name, value in self.file.scope(method.node).attribute_assignments:
                    elements: list[cst.BaseExpression] = []
                    if type(value) in (cst.List, cst.Tuple):
                        elements = [
                            e.value
                            for e in cast("cst.List | cst.Tuple", value).elements
                            if type(e) is not cst.StarredElement
                        ]
                    elif type(value) in (cst.ListComp, cst.GeneratorExp):
                        elements = [cast("cst.ListComp | cst.GeneratorExp", value).elt]
                    if elements and all(
                        type(e) is cst.Call and self._constructor_facts(e) is not None
                        for e in elements
                    ):
                        found[name] = (
                            (f"{name}[*]",)
                            if type(value) in (cst.ListComp, cst.GeneratorExp)
                            else tuple(f"{name}[{i}]" for i in range(len(elements)))
                        )
            for name, members in keyed_module_dicts(
                (method.node for method in owner.methods.values()),
                lambda value: (
                    type(value) is cst.Call and self._constructor_facts(value) is not None
                ),
            ).items():
                found.setdefault(name, members)  # `self.nets = {}; self.nets[k] = Net()`
            owner.held_containers = found
        return owner.held_containers

    def _held_instances(self, owner: ClassInfo) -> dict[str, ClassInfo]:
        """`self.extractor = CamExtractor(self.model)`: attributes holding an object of a
        plain class of this file, whose methods (`self.extractor.forward_pass(x)`) run
        with its attributes mapped onto this object's (`self.extractor.model`). Read once
        per class (the file's classes and the methods' assignments do not change while it is
        analysed); the caller copies it."""
        if owner.held_instances is not None:
            return owner.held_instances
        found: dict[str, ClassInfo] = {}
        for method in owner.methods.values():
            for name, value in self.file.scope(method.node).attribute_assignments:
                if type(value) is cst.Call and name.startswith("self."):
                    held = self._local_class(value)
                    if held is not None and not held.is_module and held is not owner:
                        found[name] = held
        owner.held_instances = found
        return found

    def _held_imported_instances(self, owner: ClassInfo) -> dict[str, list]:
        """`self.kid = KernelDistance(device)` with a plain class of another project file:
        its methods (`self.kid.update(real, fake)`) run with its attributes mapped onto this
        object's (`self.kid.backbone`), as for a local variable holding one (binding.py).
        Read once per class."""
        cached = self.file.held_imported.get(id(owner))
        if cached is not None and cached[0] is owner:
            return cached[1]
        found: dict[str, list] = {}
        if self.file.project is not None:
            for method in owner.methods.values():
                for name, value in self.file.scope(method.node).attribute_assignments:
                    if type(value) is not cst.Call or not name.startswith("self."):
                        continue
                    if self._local_class(value) is not None:
                        continue
                    held = imported_class(self.file, value)
                    if held is not None:
                        classes = found.setdefault(name, [])
                        if all(held[1] is not other for _, other in classes):
                            classes.append(held)
        self.file.held_imported[id(owner)] = (owner, found)
        return found

    def _held_aliases(self, owner: ClassInfo) -> tuple[tuple[str, str], ...]:
        if owner.held_aliases is None:
            pairs = []
            for method in owner.methods.values():
                for name, value in self.file.scope(method.node).attribute_assignments:
                    if type(value) is not cst.Call:
                        continue
                    for attribute, argument in self.held_attributes(value):
                        target = dotted_name(argument)
                        if target is not None and target.startswith("self."):
                            pairs.append((f"{name}.{attribute}", target))
            owner.held_aliases = tuple(pairs)
        return owner.held_aliases

    def _copied_attributes(self, owner: ClassInfo) -> tuple[tuple[str, str], ...]:
        """(`self._original_model`, `self.state.model`): an attribute every assignment of the
        class sets to the same other attribute path of the object. Assignment copies the
        reference, so the two paths name one module: switching one switches the other (a
        later `self.state.model = DDP(self.state.model)` keeps that, a wrapper's train()/eval()
        reaching the module inside). Read once per class: it depends on the methods'
        assignments only."""
        if owner.copied_attributes is not None:
            return owner.copied_attributes
        copies: dict[str, Optional[str]] = {}
        for method in owner.methods.values():
            for name, value in self.file.scope(method.node).attribute_assignments:
                target = dotted_name(value) if type(value) is cst.Attribute else None
                if target is None or not target.startswith("self.") or target == name:
                    copies[name] = None  # built, computed or given: its own object
                elif copies.setdefault(name, target) != target:
                    copies[name] = None  # copied from two places: neither is surely it
        owner.copied_attributes = tuple(
            (name, target)
            for name, target in sorted(copies.items())
            if target is not None
            and copies.get(target) != name  # `self.a = self.b` and `self.b = self.a`
            and not target.startswith(name + ".")
        )
        return owner.copied_attributes

    def _is_method(self, owner: ClassInfo, name: str) -> bool:
        return (
            name in owner.methods
            or self.file._inherited_method(owner, name) is not None
            or self.file.base_defines_method(owner, name)
        )
