"""Assignment: binding names, aliasing modules, unpacking, `self.training = ...`. Containers
of modules and holders of modules are bound by `container_binding`; constructions and calls
of unknown modules are noted by `constructions`."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, cast

import libcst as cst

from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.factory_objects import Made, factory_product
from evallint.analysis.instances import imported_class
from evallint.analysis.kept_modules import fresh_key, kept_members
from evallint.analysis.lattice import (
    Grad,
    Mode,
    ModeFact,
    Origin,
    PathState,
)
from evallint.analysis.mode_free_members import mode_free_members
from evallint.analysis.mode_tests import training_attribute
from evallint.analysis.own_methods import note_module_class
from evallint.analysis.returned_arguments import argument_for, returned_parameters
from evallint.analysis.scope import ClassInfo, collect_local_class
from evallint.analysis.specialise import copied_condition
from evallint.analysis.stored_fields import field_holds_mode_free, read_field
from evallint.analysis.symbols import dotted_name
from evallint.analysis.vocabulary import GRAD_DISABLERS, GRAD_ENABLERS, SAME_MODULE_METHODS
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import MODE_METHODS, TUPLE_WRAPPERS


def _mode_chain(expr: cst.BaseExpression) -> tuple[cst.BaseExpression, bool, Optional[Mode]]:
    """`model.to(device).eval()` -> (`model`, True, EVAL): the module a chain of
    module-returning calls is called on, whether the chain switches its mode, and the mode
    its last `eval()` / `train(...)` leaves it in (None for a `train(flag)` whose mode is
    not written down)."""
    mode: Optional[Mode] = None
    switches = False
    while type(expr) is cst.Call and type(expr.func) is cst.Attribute:
        method = expr.func.attr.value
        if method in MODE_METHODS and not switches:
            switches = True
            flag = expr.args[0].value if len(expr.args) == 1 else None
            if not expr.args:
                mode = Mode.EVAL if method == "eval" else Mode.TRAIN
            elif method == "train" and type(flag) is cst.Name and flag.value in ("True", "False"):
                mode = Mode.TRAIN if flag.value == "True" else Mode.EVAL
        elif method not in SAME_MODULE_METHODS and method not in MODE_METHODS:
            break
        expr = expr.func.value
    return expr, switches, mode


def _forget_touched(node: cst.CSTNode, switched: dict[str, Optional[Mode]]) -> None:
    """Forget the switch of each module that `node` might switch again: a `train()` /
    `eval()` on it or a part of it, a call it is handed to, or a new binding."""
    for inner in iter_nodes(node):
        names: list[Optional[str]] = []
        if type(inner) is cst.Call:
            names.extend(dotted_name(arg.value) for arg in inner.args)
            if type(inner.func) is cst.Attribute and inner.func.attr.value in MODE_METHODS:
                names.append(dotted_name(inner.func.value))
        elif type(inner) is cst.Assign:
            names.extend(dotted_name(t.target) for t in inner.targets)
        elif type(inner) in (cst.AugAssign, cst.AnnAssign, cst.For):
            names.append(dotted_name(cast("cst.AugAssign | cst.AnnAssign | cst.For", inner).target))
        for name in names:
            root = (name or "").split(".")[0]
            if switched.get(root) is not None:
                switched[root] = None


def _switched_roots(node: cst.CSTNode) -> set[str]:
    """The names whose module (or a part of it) a `train()`/`eval()` call in `node` switches."""
    roots: set[str] = set()
    for inner in iter_nodes(node):
        if (
            type(inner) is cst.Call
            and type(inner.func) is cst.Attribute
            and inner.func.attr.value in MODE_METHODS
        ):
            name = dotted_name(inner.func.value)
            if name:
                roots.add(name.split(".")[0])
    return roots


class Binding(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    # -- assignment ----------------------------------------------------------------------------
    def _forget(self, target: cst.BaseExpression, state: PathState) -> PathState:
        for name in self._target_names(target):
            state = state.forgetting(name)
        return state

    def _target_names(self, target: cst.BaseExpression) -> list[str]:
        if type(target) in (cst.Tuple, cst.List):
            names: list[str] = []
            for element in cast("cst.Tuple | cst.List", target).elements:
                names.extend(self._target_names(element.value))
            return names
        if type(target) is cst.StarredElement:
            return self._target_names(target.value)
        name = dotted_name(target)
        return [name] if name else []

    def _bind_target(self, target: cst.BaseExpression, state: PathState) -> PathState:
        for name in self._target_names(target):
            state = state.forgetting(name)
            if state.key_of(name) is not None and name not in self.scope_keys:
                state = state.with_alias(name, None)
        return state

    def _handed_back(
        self, value: cst.BaseExpression, elements: list, states: States
    ) -> Optional[list[dict[str, str]]]:
        """Per state, element name -> the caller's module key, for the elements of a tuple
        that a function of this file returns as the module its caller passed (see
        returned_arguments); None when there is none."""
        if type(value) is not cst.Call or type(value.func) is not cst.Name:
            return None
        if value.func.value not in self.file.functions:
            return None
        function = self.file._in_effect(value.func.value, self.info).node
        positions = returned_parameters(function, len(elements))
        if not any(positions):
            return None
        handed: list[dict[str, str]] = []
        for state in states:
            keys: dict[str, str] = {}
            for element, param in zip(elements, positions):
                argument = argument_for(function, value, param) if param else None
                if argument is None or type(element) is not cst.Name:
                    continue
                key = self.resolve(argument, state)
                if key is not None:
                    keys[element.value] = key
            handed.append(keys)
        return handed if any(handed) else None

    def _tuple_wrapped(
        self, value: cst.BaseExpression, count: int
    ) -> Optional[tuple[int, cst.BaseExpression]]:
        """For a call of TUPLE_WRAPPERS unpacked into `count` targets: the index of the item
        that wraps the module and the module's expression among the call's arguments."""
        if type(value) is not cst.Call:
            return None
        fact = TUPLE_WRAPPERS.get(self.imports.qualify(value.func) or "")
        if fact is None or fact[0] >= count:
            return None
        index, keyword, position = fact
        for at, arg in enumerate(value.args):
            if arg.star:
                return None
            if (arg.keyword is not None and arg.keyword.value == keyword) or (
                arg.keyword is None and at == position
            ):
                return index, arg.value
        return None

    def _built_elements(
        self, value: cst.BaseExpression, count: int
    ) -> Optional[list[Optional[tuple[cst.Call, Optional[ClassInfo], Optional[Mode]]]]]:
        """For a call of a function of this file whose one `return` (in its body's top level)
        gives a tuple of `count` items: the module construction each item is (`model =
        nn.Sequential(...).to(device)` in the function, then `return model, loss_fn, opt`),
        with the module class when the function defines it itself and the mode the function's
        own top-level `eval()`/`train()` calls leave it in (`model.eval()` before `return
        model, embeddings`); None for an item that is none. None when no item is a module
        construction. None too when a returned module is switched inside a compound statement
        (`model.train()` and `model.eval()` in the epoch loop of `train_model()`): its mode at
        the return is the flow's (the summary's per-position facts), not its construction's."""
        if type(value) is not cst.Call or type(value.func) is not cst.Name:
            return None
        if value.func.value not in self.file.functions:
            return None
        info = self.file._in_effect(value.func.value, self.info)
        function = info.node
        bound: dict[str, cst.BaseExpression] = {}
        returned: list[cst.BaseExpression] = []
        local_classes: dict[str, ClassInfo] = {}
        switched: dict[str, Optional[Mode]] = {}
        switched_within: set[str] = set()
        for line in function.body.body if type(function.body) is cst.IndentedBlock else ():
            if type(line) is cst.ClassDef:  # `class Net(nn.Module):` inside `get_model()`
                local_classes[line.name.value] = collect_local_class(line, info, self.imports)
            simple = line.body if type(line) is cst.SimpleStatementLine else ()
            if not simple:
                _forget_touched(line, switched)
                if type(line) is not cst.ClassDef:
                    switched_within |= _switched_roots(line)
            for small in simple:
                if type(small) is cst.Assign and type(small.targets[0].target) is cst.Name:
                    name = small.targets[0].target.value
                    root, switches, mode = _mode_chain(small.value)
                    if type(root) is cst.Name and root.value == name:
                        # `model = model.eval()`
                        switched[name] = mode if switches else switched.get(name)
                        continue
                    _forget_touched(small.value, switched)
                    bound[name], switched[name] = small.value, mode
                elif type(small) is cst.Expr and type(small.value) is cst.Call:
                    root, switches, mode = _mode_chain(small.value)
                    if type(root) is cst.Name and root.value in switched:
                        switched[root.value] = mode if switches else switched[root.value]
                    else:
                        _forget_touched(small, switched)
                elif type(small) is cst.Return and small.value is not None:
                    returned.append(small.value)
                else:
                    _forget_touched(small, switched)
        if len(returned) != 1 or type(returned[0]) is not cst.Tuple:
            return None
        items = [e.value for e in returned[0].elements]
        if len(items) != count or any(type(e) is cst.StarredElement for e in items):
            return None
        if any((dotted_name(item) or "").split(".")[0] in switched_within for item in items):
            return None
        built: list[Optional[tuple[cst.Call, Optional[ClassInfo], Optional[Mode]]]] = []
        for item in items:
            construction = bound.get(item.value) if type(item) is cst.Name else item
            root, chain_switches, chain_mode = _mode_chain(item)
            if type(item) is not cst.Name and type(root) is cst.Name and root.value in bound:
                construction = bound[root.value]  # `return model.to(device), loss_fn, opt`
            inner, _, mode = (
                _mode_chain(construction) if construction is not None else (None, False, None)
            )
            if type(inner) is not cst.Call:
                built.append(None)
                continue
            if type(item) is cst.Name:
                mode = switched.get(item.value)
            elif construction is not item and type(root) is cst.Name:
                mode = chain_mode if chain_switches else switched.get(root.value)
            local = local_classes.get(dotted_name(inner.func) or "")
            if local is not None and local.is_module:
                built.append((inner, local, mode))
            elif local is None and self._constructor_facts(inner) is not None:
                built.append((cast(cst.Call, construction), None, mode))
            else:
                built.append(None)
        return built if any(b is not None for b in built) else None

    def _bind_built(
        self,
        target: cst.BaseExpression,
        call: cst.Call,
        owner: Optional[ClassInfo],
        mode: Optional[Mode],
        states: States,
    ) -> States:
        """Bind a name to a new instance of a module class defined in a factory function,
        in the mode the factory switched it to (training when it did not)."""
        if type(target) is not cst.Name:
            return tuple(self._bind_target(target, s) for s in states)
        name = target.value
        matters = owner is None or self._class_mode_matters(owner)
        key_id = self._key_id(name)
        if matters:
            self.file.mode_independent.discard(key_id)
        else:
            self.file.mode_independent.add(key_id)
        fresh = frozenset(
            {
                ModeFact(Mode.TRAIN, Origin.CONSTRUCTED, call)
                if mode is None
                else ModeFact(mode, Origin.SWITCHED, call)
            }
        )
        return tuple(
            self._bind_target(target, s).with_alias(name, name).with_mode(name, fresh)
            for s in states
        )

    def _grad_manager_of(self, value: cst.BaseExpression) -> Optional[str]:
        """The grad manager class a name is bound to (`torch.no_grad`, uncalled), or one of
        the same kind on both sides of a conditional expression."""
        if type(value) is cst.IfExp:
            body, orelse = self._grad_manager_of(value.body), self._grad_manager_of(value.orelse)
            same = body is not None and orelse is not None
            return body if same and (body in GRAD_DISABLERS) == (orelse in GRAD_DISABLERS) else None
        qualified = (
            self.imports.qualify(value) if type(value) in (cst.Name, cst.Attribute) else None
        )
        return qualified if qualified in GRAD_DISABLERS or qualified in GRAD_ENABLERS else None

    def assign(
        self, target: cst.BaseExpression, value: cst.BaseExpression, states: States
    ) -> States:
        self.assigning = frozenset()
        if type(target) is cst.Name:
            manager = self._grad_manager_of(value)
            if manager is not None:  # `ctx = torch.inference_mode if new else torch.no_grad`
                self.grad_manager_names[target.value] = manager
            self.grad_chosen_names.pop(target.value, None)
            if manager is None and type(value) is cst.IfExp:
                body = self._grad_manager_of(value.body)
                orelse = self._grad_manager_of(value.orelse)
                if body is not None and orelse is not None:
                    # `ctx = torch.enable_grad if training else torch.no_grad`: the test
                    # decides, as for `torch.set_grad_enabled(training)`
                    test = value.test
                    if body in GRAD_DISABLERS:
                        test = cst.UnaryOperation(operator=cst.Not(), expression=test)
                    self.grad_chosen_names[target.value] = test
        if type(target) in (cst.Tuple, cst.List):
            elements = [e.value for e in cast("cst.Tuple | cst.List", target).elements]
            if type(value) in (cst.Tuple, cst.List):
                values = cast("cst.Tuple | cst.List", value).elements
                if len(values) == len(elements):
                    for element, item in zip(elements, values):
                        states = self.assign(element, item.value, states)
                    return states
            if (
                type(value) is cst.Call
                and type(value.func) is cst.Attribute
                and value.func.attr.value == "prepare"
            ):
                # accelerate: `model, opt, loader = accelerator.prepare(model, opt, loader)`
                for element, arg in zip(elements, value.args):
                    states = self.assign(element, arg.value, states)
                return states
            engine = self._tuple_wrapped(value, len(elements))
            if engine is not None:
                # `engine, opt, _, _ = deepspeed.initialize(model=model, ...)`: the engine is
                # the module for mode purposes; the other items are something else
                for index, element in enumerate(elements):
                    if index == engine[0]:
                        states = self.assign(element, engine[1], states)
                    else:
                        states = tuple(self._bind_target(element, s) for s in states)
                return states
            built = self._built_elements(value, len(elements))
            if built is not None:  # `model, loss_fn, opt = get_model()`
                for element, construction in zip(elements, built):
                    if construction is None:
                        states = tuple(self._bind_target(element, s) for s in states)
                    elif construction[1] is not None or construction[2] is not None:
                        states = self._bind_built(element, *construction, states)
                    else:
                        states = self.assign(element, construction[0], states)
                return states
            handed = self._handed_back(value, elements, states)
            if not handed:
                unpacked = self.bind_returned_elements(elements, value, states)
                if unpacked is not None:  # `plm, tok = load_plm(path)` of another file
                    return unpacked
            element_names = [n for e in elements for n in self._target_names(e)]
            self.note_graph_elements([self._target_names(e) for e in elements], value, states)
            for element_name in element_names:
                self.note_reads(element_name, value)  # `out, h = cell(x, h)`: both read h
            self.note_recurrence(element_names, value)
            if states and any(g.grad is not Grad.OFF for st in states for g in st.grad):
                sources = self.taint_of(
                    value, states[0]
                )  # `logits, aux = model(x)`: both carry the graph
                for index, element in enumerate(elements):
                    for element_name in self._target_names(element):
                        free = self.element_graph_free(value, index, len(elements))
                        self.taint[element_name] = frozenset() if free else sources
            states = tuple(self._bind_target(target, s) for s in states)
            if handed:  # `model, history = train_model(model, ...)`: the module passed in
                rebound = []
                for state, keys in zip(states, handed):
                    for element_name, key in keys.items():
                        state = state.with_alias(element_name, key)
                    rebound.append(state)
                states = tuple(rebound)
            return states
        name = dotted_name(target)
        if name is None:
            return states
        listed = _repeated(value)  # `[g_ab, g_ba] * n`: the same modules, n times over
        if type(listed) in (cst.List, cst.Tuple, cst.Set, cst.Dict, cst.ListComp, cst.GeneratorExp):
            held = self.bind_container(name, listed, tuple(s.forgetting(name) for s in states))
            if held:
                return tuple(s.with_alias(name, None) for s in held)
            self.containers.pop(name, None)
        if name == "self.training" and self._has_training_property():
            return self._training_setter(value, states)
        if (
            type(value) is cst.Call
            and type(value.func) is cst.Name
            and value.func.value == "getattr"
        ):
            self.opaque_variables.add(name)
        else:
            self.opaque_variables.discard(name)
        if states and any(g.grad is not Grad.OFF for s in states for g in s.grad):
            self.taint[name] = self.taint_of(value, states[0])
        else:
            self.taint.pop(name, None)
        self.observe_assignment_grad(name, value, states)
        self.note_graph(name, value, states)
        self.note_reads(name, value)
        self.note_recurrence([name], value)
        result = []
        stored = self.held_attributes(value) if type(value) is cst.Call else []
        carried = self.carried_attributes(value) if type(value) is cst.Call and not stored else []
        made = factory_product(self, value) if not stored and not carried else None
        if made is not None:  # `pred = model.predictor()`: an object holding `model`
            stored = made[2]
        kept: list[tuple[str, str]] = []
        self.file.kept_members.pop(self._key_id(name), None)
        for state in states:
            state = state.forgetting(name)
            copied = copied_condition(value, state)
            if copied is not None:  # `update = optimizer is not None` on a path that decided it
                state = state.assuming(name, copied)
            for attribute, argument in stored:
                held_key = self.resolve(argument, state)
                if held_key is not None:
                    state = state.with_alias(f"{name}.{attribute}", held_key)
            for attribute, argument in carried:
                held_key = self.resolve(argument, state)
                if held_key is not None:
                    state = state.with_alias(f"{name}.{attribute}", held_key)
                    kept.append((attribute, held_key))
            snapshot = self._training_snapshot(value, state)
            if snapshot is not None:
                self.snapshot_receivers[name] = training_attribute(value)  # type: ignore[assignment]
                result.append(state.with_snapshot(name, snapshot))
                continue
            module_value = self.value_of(value, state, name)
            held_key = self.held_path(value, state) if module_value.key is None else None
            if held_key is not None and (dotted_name(value) or "").split(".")[0] == name:
                # `policy = policy.base_model`: the name moves down to the held module
                module_value = replace(module_value, key=held_key)
            elif held_key is not None and name in self.scope_keys:
                # `model = context.model`: one module; what a callee given `context` does to
                # `context.model` reaches `model`
                state = state.with_alias(held_key, name)
            if module_value.key is not None:
                state = state.with_alias(name, module_value.key)
            elif module_value.fresh is not None:
                key = fresh_key(self.info, name, state)
                note_module_class(self, name, value)
                if kept:
                    self.file.kept_members[self._key_id(key)] = kept_members(kept)
                loaded = self.loaded_parts(value, state)
                wrapped = self.wrapped_modes(value, state)
                fresh: frozenset = module_value.fresh
                if wrapped is not None:  # `Search(encoder, decoder)`: computes in their modes
                    fresh = wrapped
                    module_value = replace(module_value, fresh=fresh)
                elif loaded is not None:  # `Wrapper(plm)`: the pretrained part stays in eval
                    fresh = fresh | loaded
                    module_value = replace(module_value, fresh=fresh, mode_matters=True)
                state = state.with_alias(name, key).with_mode(key, fresh)
                graph_free = type(value) is cst.Call and self._builds_graph_free(value, state)
                for facts, holds in (
                    (self.file.mode_independent, graph_free or not module_value.mode_matters),
                    (self.file.graph_free, graph_free),
                ):
                    (facts.add if holds else facts.discard)(self._key_id(key))
                for member in mode_free_members(self.file, value):
                    # `lw = LossWrapper(model)` whose `self.crit = nn.KLDivLoss()`
                    self.file.mode_independent.add(self._key_id(f"{key}.{member}"))
            elif type(value) is cst.Call and self._unknown_module_source(name, value, state):
                switched = self._chained_switch(value)
                state = state.with_alias(name, name).with_mode(
                    name,
                    {ModeFact(switched[0], Origin.SWITCHED, switched[1])}
                    if switched is not None
                    else {
                        ModeFact(Mode.TRAIN, Origin.LOADED, value),
                        ModeFact(Mode.EVAL, Origin.LOADED, value),
                    },
                )
                field = read_field(self.file, value)
                if field is not None and field_holds_mode_free(self.file, field):
                    # `head = copy.deepcopy(args.head)`: every store of the field is mode-free
                    self.file.mode_independent.add(self._key_id(name))
            elif state.key_of(name) is not None:
                state = state.with_alias(name, None)
            result.append(state)
            if type(value) is cst.Call:
                owner = self._local_class(value)
                if owner is None and self.file.project is not None:
                    # `gan = GAN(args)` with GAN a plain class of another project file (one
                    # of several, assigned on different branches)
                    found = imported_class(self.file, value)
                    if found is not None:
                        classes = self.imported_instances.setdefault(name, [])
                        scope = self.info.qualname if self.info is not None else None
                        self.file.imported_objects[(scope, name)] = classes
                        if all(found[1] is not other for _, other in classes):
                            classes.append(found)
                        init = found[1].methods.get("__init__")
                        summary = found[0].summary_for(init) if init is not None else None
                        if init is not None and summary is not None:
                            summary = found[0].specialised(init, value) or summary
                        if summary is not None:
                            return self.apply_call(summary, name, value, tuple(result))
                if owner is None and made is not None:
                    self._note_factory_product(name, made)
                if owner is not None and not owner.is_module:
                    self.instances[name] = owner
                    init = owner.methods.get("__init__")
                    summary = self.file._summary_counted(init) if init is not None else None
                    if init is not None and summary is not None:
                        # `Agent(env)` leaving `train_mode=True` at its default: `__init__`
                        # read with that flag fixed (its `if self.train_mode:` decided)
                        summary = self.file.specialised(init, value) or summary
                    if summary is not None:
                        return self.apply_call(summary, name, value, tuple(result))
        return tuple(result)

    def _note_factory_product(self, name: str, made: Made) -> None:
        """`pred = model.predictor()` (factory_objects.py): `pred` is an object of that plain
        class, so `pred(x)` runs its `__call__` (its stores were aliased above)."""
        analysis, owner = made[0], made[1]
        if analysis is self.file:
            self.instances[name] = owner
            return
        classes = self.imported_instances.setdefault(name, [])
        scope = self.info.qualname if self.info is not None else None
        self.file.imported_objects[(scope, name)] = classes
        if all(owner is not other for _, other in classes):
            classes.append((analysis, owner))

    def _chained_switch(self, value: cst.Call) -> Optional[tuple[Mode, cst.Call]]:
        """`get_model(cfg).eval().to(device)`: whatever the call we cannot follow returns,
        the last `eval()`/`train(constant)` chained onto it (through calls that return the
        module they are called on) decides its mode."""
        expr: cst.BaseExpression = value
        while type(expr) is cst.Call and type(expr.func) is cst.Attribute:
            attr = expr.func.attr.value
            if attr in ("eval", "train"):
                mode = self._mode_argument(expr) if attr == "train" else Mode.EVAL
                if mode is None or (attr == "eval" and expr.args):
                    return None
                return mode, expr
            if attr not in SAME_MODULE_METHODS:
                return None
            expr = expr.func.value
        return None

    def _has_training_property(self) -> bool:
        owner = self._owner()
        return owner is not None and not owner.is_module and "training" in owner.methods

    def _training_setter(self, value: cst.BaseExpression, states: States) -> States:
        """`self.training = False` on a wrapper whose `training` property setter switches
        its modules: the same as eval()/train() on every module attribute."""
        constant = self._mode_argument(cst.Call(cst.Name("train"), [cst.Arg(value)]))
        facts = (
            {ModeFact(constant, Origin.SWITCHED, value)}
            if constant
            else {ModeFact(Mode.TRAIN, Origin.FLAG, value), ModeFact(Mode.EVAL, Origin.FLAG, value)}
        )
        result = []
        for state in states:
            for key in self.scope_keys:
                if key.startswith("self."):
                    state = state.with_mode(key, facts)
            result.append(state)
        return tuple(result)


def _repeated(value: cst.BaseExpression) -> cst.BaseExpression:
    """The list or tuple a repetition (`[a, b] * n`, `n * (a,)`) repeats, else `value`."""
    if type(value) is not cst.BinaryOperation or type(value.operator) is not cst.Multiply:
        return value
    for side in (value.left, value.right):
        if type(side) in (cst.List, cst.Tuple):
            return side
    return value
