"""Calls: expressions containing calls, resolving the callee, and applying its summary at the
call site."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, cast

import libcst as cst

from evallint.analysis.acting import feeds_environment, object_method_calls
from evallint.analysis.annotated_dispatch import annotated_member_summaries
from evallint.analysis.arguments import submodule_argument
from evallint.analysis.conditions import condition_key
from evallint.analysis.context import InterpreterPart, States, code_of
from evallint.analysis.effects import as_built_parts, with_modes
from evallint.analysis.facts import (
    EvalForward,
    Place,
)
from evallint.analysis.few_items import _single_assignments
from evallint.analysis.filled_containers import filled_container
from evallint.analysis.global_grad import grad_after_call
from evallint.analysis.lattice import (
    ENTRY_MODE,
    Grad,
    GradFact,
    Mode,
    ModeFact,
    Origin,
    PathState,
    normalize,
)
from evallint.analysis.lifting import owned_elsewhere
from evallint.analysis.mode_overrides import (
    mode_method_override,
    own_method_of_plain_self,
    unbound_switch_receiver,
)
from evallint.analysis.module_backward import calls_own_backward
from evallint.analysis.overrides import dispatched_summaries
from evallint.analysis.own_methods import (
    forward_flag_switches,
    module_method_call,
    own_backward_module,
    own_method,
)
from evallint.analysis.passed_functions import run_lambdas_handed_out, run_passed_functions
from evallint.analysis.provenance import PARAMETER
from evallint.analysis.regions import (
    Region,
    RegionKind,
    is_loss_scaler,
    mentions_eval_data,
    training_call_kind,
)
from evallint.analysis.reuse import memo
from evallint.analysis.specialise import argument_modes
from evallint.analysis.statement_shapes import (
    calls_in_branches,
    held_list,
    may_hold_comprehension,
)
from evallint.analysis.summaries import ForwardRequirement, Summary, but_via
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_OR_MODE_METHODS


def _chosen_by_helper(req: ForwardRequirement, train: frozenset) -> bool:
    """The helper's forward runs in training mode only because the helper switched it so
    itself (none of it comes from the caller): its choice, with the graph it needs."""
    return (
        req.region.kind is RegionKind.NEUTRAL
        and not req.mode_from_entry
        and bool(train)
        and train == req.train_facts
        and all(f.origin is Origin.SWITCHED for f in train)
    )


def _argument_for(summary: Summary, param: str, call: cst.Call) -> Optional[cst.BaseExpression]:
    """The expression a call passes for a parameter of the callee, if any."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == param:
            return arg.value
    if param in summary.params:
        index = summary.params.index(param)
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if index < len(positional):
            return positional[index].value
    return None


_CONTAINER_METHODS = frozenset({"append", "extend", "insert", "add", "update", "setdefault"})
_SHOWING_METHODS = frozenset(
    {"info", "debug", "warning", "write", "imshow", "scatter", "hist", "set_data", "format"}
)


def _entry_grad_proven_on(call: cst.Call, states: States) -> States:
    """A backward pass on a path whose grad state is still the caller's proves that the
    caller ran this function with autograd on (under no_grad there would be no graph to
    backpropagate): what follows on that path runs with autograd on too, whatever the
    caller (`train(...)`, then an evaluation after `model.eval()`, in one function)."""
    if not any(g.grad is Grad.ENTRY for s in states for g in s.grad):
        return states
    on = GradFact(Grad.ON, call)
    return normalize(
        [
            s.with_grad(frozenset(g for g in s.grad if g.grad is not Grad.ENTRY) | {on})
            if any(g.grad is Grad.ENTRY for g in s.grad)
            else s
            for s in states
        ]
    )


def _switch_references(function: cst.FunctionDef) -> dict[str, cst.BaseExpression]:
    """Names the function binds once to a bound `train`/`eval` method (`set_mode =
    model.eval`) or to a choice of two (`model.train if train else model.eval`)."""

    def is_switch(expr: cst.BaseExpression) -> bool:
        return type(expr) is cst.Attribute and expr.attr.value in ("train", "eval")

    return {
        name: value
        for name, value in _single_assignments(function.body).items()
        if is_switch(value)
        or (type(value) is cst.IfExp and is_switch(value.body) and is_switch(value.orelse))
    }


class Calls(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    # -- expressions -------------------------------------------------------------------------
    def expression(self, expr: cst.BaseExpression, states: States) -> States:
        from evallint.analysis.walk import calls_in_evaluation_order

        if type(expr) is cst.IfExp and calls_in_branches(expr):
            return self._conditional_expression(expr, states)
        regions = self._comprehension_regions(expr)
        held = self._comprehension_members(expr) if self.containers else {}
        for call in calls_in_evaluation_order(expr):
            region = regions.get(call)
            if region is not None:
                # known EVL006 false alarm on plain Python (a dict lookup inside a loop over
                # calls taken for a graph-carrying value); see the session notes
                self.regions.append(region)  # evallint: ignore[EVL006]
            if call in held:
                states = self._call_per_member(call, *held[call], states)
            else:
                states = self.call(call, states)
            if region is not None:
                self.regions.pop()
            if not states:
                break
        return states

    def _conditional_expression(self, expr: cst.IfExp, states: States) -> States:
        """`model.train() if is_train else model.eval()`: the two branches are two paths
        (each assuming its side of the test, as an `if` statement does), not one after
        the other."""
        states = self.expression(expr.test, states)
        key = condition_key(expr.test)
        then_states: list[PathState] = []
        else_states: list[PathState] = []
        for state in states:
            known = state.assumed(key[0]) if key is not None else None
            if key is None:
                then_states.append(state)
                else_states.append(state)
            elif known is None:
                then_states.append(state.assuming(key[0], key[1]))
                else_states.append(state.assuming(key[0], not key[1]))
            elif known == key[1]:
                then_states.append(state)
            else:
                else_states.append(state)
        out: States = ()
        if then_states:
            out += self.expression(expr.body, normalize(then_states))
        if else_states:
            out += self.expression(expr.orelse, normalize(else_states))
        return normalize(out)

    def _comprehension_members(
        self, expr: cst.BaseExpression
    ) -> dict[cst.Call, tuple[str, tuple[str, ...]]]:
        """Calls inside `[net(x) for net in nets]` over a container of modules: call ->
        (the comprehension's target, the modules it takes in turn)."""
        if not isinstance(expr, cst.BaseExpression) or not may_hold_comprehension(expr):
            return {}
        from evallint.analysis.walk import iter_nodes

        found: dict[cst.Call, tuple[str, tuple[str, ...]]] = {}
        for node in iter_nodes(expr):
            if type(node) in (cst.ListComp, cst.SetComp, cst.GeneratorExp):
                comprehension = cast("cst.ListComp | cst.SetComp | cst.GeneratorExp", node)
                held = self.container_loop(comprehension.for_in.iter, comprehension.for_in.target)
                if held is not None:
                    for inner in iter_nodes(comprehension.elt):
                        if type(inner) is cst.Call:
                            found.setdefault(inner, held)
        return found

    def _call_per_member(
        self, call: cst.Call, name: str, members: tuple[str, ...], states: States
    ) -> States:
        """The call once with `name` bound to each module in turn."""
        for member in members:
            bound = tuple(s.with_alias(name, self.resolve_member(member, s)) for s in states)
            states = tuple(s.with_alias(name, None) for s in self.call(call, bound))
            if not states:
                break
        return states

    def _comprehension_regions(self, expr: cst.BaseExpression) -> dict[cst.Call, Region]:
        """`[model(x) for x, _ in val_loader]` evaluates like the loop it abbreviates: calls
        in a comprehension over evaluation data are in an evaluation region."""
        if not isinstance(expr, cst.BaseExpression) or not may_hold_comprehension(expr):
            return {}
        from evallint.analysis.walk import iter_nodes

        regions: dict[cst.Call, Region] = {}
        for node in iter_nodes(expr):
            if type(node) in (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp):
                loop = cast(
                    "cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp", node
                ).for_in
                if mentions_eval_data(loop.iter, self.file.options.eval_words):
                    region = Region(
                        node,
                        RegionKind.EVAL,
                        f"comprehension over {code_of(loop.iter)}",
                        has_data_loop=True,
                    )
                    for inner in iter_nodes(node):
                        if type(inner) is cst.Call:
                            regions.setdefault(inner, region)
        return regions

    def _frozen_here(self, key: Optional[str]) -> bool:
        """Whether every parameter of module `key` was frozen (`requires_grad_(False)`, or
        `p.requires_grad = False` over its parameters) here or at the file's top level."""
        if key is None:
            return False
        return key in self.frozen or (
            key in self.file.frozen_globals and key not in self.scope_locals
        )

    def call(self, call: cst.Call, states: States) -> States:
        func = call.func
        self.observe_functional(call)
        self.note_array_arguments(call)
        if (
            type(func) is cst.Attribute
            and func.attr.value in ("append", "extend")
            and call.args
            and not self._own_container_method(func)
        ):
            accumulator = dotted_name(func.value)
            held = held_list(func.value)
            if accumulator is None and held is not None and func.attr.value == "append":
                # `history["train"].append(loss)`: a list held in a dict or a list of lists
                self.observe_store(call, held, call.args[0].value, "append", states)
                self.note_stored(held, call.args[0].value)
            if accumulator is not None:
                if func.attr.value == "append":
                    self.observe_store(call, accumulator, call.args[0].value, "append", states)
                    self.note_module_appended(accumulator, call.args[0].value, states)
                    states = filled_container(self, func.value, call.args[0].value, states)
                self.note_graph_appended(accumulator, call.args[0].value, states)
        if type(func) is cst.Attribute:
            attr = func.attr.value
            if attr in ("eval", "train"):
                if unbound_switch_receiver(call, self.imports) is not None:
                    return self.switch_mode(call, attr, states)  # `nn.Module.eval(model)`
                override = mode_method_override(self, call, states)
                if override is not None:  # the class's own `eval()`: a method, no switch
                    if override[0] is None:
                        return states
                    return self.apply_call(override[0], override[1], call, states)
                plain = own_method_of_plain_self(self, call)
                if plain is not None:  # `self.eval(loader)` of an evaluator object: its method
                    summary = self.file._summary_counted(plain)
                    return (
                        states
                        if summary is None
                        else self.apply_call(summary, "self", call, states)
                    )
                # `agent.train()` on a plain object whose class defines `train`: its method
                instance_call = self._instance_method(call)
                if instance_call is not None:
                    return self.apply_call(instance_call[0], instance_call[1], call, states)
                imported = self._imported_instance_call(call, states)
                return imported if imported is not None else self.switch_mode(call, attr, states)
            if (
                attr == "requires_grad_"
                and call.args
                and type(call.args[0].value) is cst.Name
                and call.args[0].value.value == "False"
            ):
                # `sampler.eval().requires_grad_(False)`: the chain's module
                receiver = chain_receiver(func.value, SAME_MODULE_OR_MODE_METHODS)
                key = self.resolve(receiver, states[0])
                if key is not None:
                    self.frozen.add(key)
                    self.frozen_so_far.add(key)
                return states
        kind = training_call_kind(call, self.imports)
        if kind == "backward" and (
            own_backward_module(self, call, states) or calls_own_backward(self.file, call)
        ):
            kind = None  # `flow.backward(z)`: the module's own method (an inverse), a forward
        if kind == "step" and self._own_training_function(call):
            kind = None  # `train_batch(x, y, model, optimizer, loss_fn)`: read, not guessed
        if kind == "backward":
            self.observe_backward(call, states)
            states = _entry_grad_proven_on(call, states)
        if self.file.steps_input(call) or (kind == "backward" and self._input_gradient()):
            self.evaluates = True  # an attack or style transfer: the model is only used
            return states
        if kind == "step" or (kind == "backward" and self.file.backward_trains(call)):
            self.trains = True
            return self.training_step(call, kind, states)
        dispatched = annotated_member_summaries(self.file, self._owner(), call)
        if dispatched is not None:  # `self.loss.forward(x, self.model)`, `loss: PairLoss`
            outcomes: list = []
            for summary in dispatched[0]:
                outcomes.extend(self.apply_call(summary, dispatched[1], call, states))
            return normalize(outcomes)
        if type(func) is cst.Attribute and func.attr.value == "forward":
            # `self.forward(x)`, `model.forward(x)`: a forward of the module at this call
            key = self.resolve(func.value, states[0])
            if key is not None:
                self.forward(call, *self._own_forward(key, code_of(func.value), states[0]), states)
                return states
        if call in self.constructor_calls:
            return states
        instance_call = self._instance_method(call) or module_method_call(self, call, states)
        if instance_call is not None:
            return self.apply_call(instance_call[0], instance_call[1], call, states)
        imported = self._imported_instance_call(call, states)
        if imported is not None:
            return imported
        if type(func) is cst.Name and self.info is not None:
            taken = memo("calls.switch_references", self.info.node, _switch_references)
            if (
                func.value in taken
            ):  # `set_mode()` after `set_mode = model.train if t else model.eval`
                return self._switch_by_reference(call, taken[func.value], states)
        # A known false alarm of evallint on itself: a method of a sibling mixin named like a
        # module (`passes_module`) is taken for a module attribute by its name.
        passes_module = self.passes_module(call, states[0])  # evallint: ignore[EVL001,EVL002]
        named = type(func) in (cst.Name, cst.Attribute)
        flags = self.flags + argument_modes(self.resolve, call, states) if named else ()
        resolved = (
            self.file.resolve_function(call, self.info, passes_module=passes_module, flags=flags)
            if named
            else None
        )
        if resolved is not None and resolved[0] is not None:
            overrides = dispatched_summaries(self.file, self.info, call) if resolved[1] else []
            if overrides:  # an abstract `self._inference(batch)`: any subclass's may run
                joined: list = []
                for summary in overrides:
                    joined.extend(self.apply_call(summary, "self", call, states))
                states = normalize(joined)
            else:
                states = self.apply_call(resolved[0], "self" if resolved[1] else None, call, states)
            return run_passed_functions(self, call, states) if call.args else states
        forward = self._forward_target(call, states[0])
        if forward is not None:
            self.forward(call, *self._own_forward(forward[0], forward[1], states[0]), states)
            switched = forward_flag_switches(self, call, states)
            if switched is not None:  # `wrapper(x, backward=True)` under `if backward: ...train()`
                states = self.apply_modes(switched[1], switched[0], call, switched[2], states)
        elif type(func) is cst.Attribute and call.args and states:
            self._note_graph_handed(func, call, states[0])  # a method nothing here resolves
        if call.args:
            run_lambdas_handed_out(self, call, states)
        return states

    def _switch_by_reference(
        self, call: cst.Call, taken: cst.BaseExpression, states: States
    ) -> States:
        """A call of a bound `train`/`eval` method taken earlier: the switch it names, or for
        `model.train if flag else model.eval` the one each side of the test names (the test
        read where the call is, as `model.train(flag)` would)."""
        if type(taken) is cst.Attribute:
            return self.switch_mode(call, taken.attr.value, states, receiver=taken.value)
        choice = cast(cst.IfExp, taken)
        key = condition_key(choice.test)
        sides: tuple[list[PathState], list[PathState]] = ([], [])
        for state in states:
            known = state.assumed(key[0]) if key is not None else None
            if key is None:
                sides[0].append(state)
                sides[1].append(state)
            elif known is None:
                sides[0].append(state.assuming(key[0], key[1]))
                sides[1].append(state.assuming(key[0], not key[1]))
            else:
                sides[0 if known == key[1] else 1].append(state)
        out: States = ()
        for side, branch in zip(sides, (choice.body, choice.orelse)):
            if side:
                method = cast(cst.Attribute, branch)
                out += self.switch_mode(call, method.attr.value, normalize(side), method.value)
        return normalize(out)

    def _note_graph_handed(self, func: cst.Attribute, call: cst.Call, state: PathState) -> None:
        """`outputs.append(model(x))` puts a graph in a local container (a `return outputs`
        then hands it to the caller); `buffer.push(prob)`, `self.cache.update(h)` hand it
        to an object that may backpropagate it later. A logger or plot only shows it."""
        method = func.attr.value
        if method in _SHOWING_METHODS or method.startswith(("log", "add_", "print", "plot")):
            return
        root = func.value
        while type(root) is cst.Attribute:
            root = root.value
        if type(root) is cst.Name and self.imports.is_imported(root.value):
            return  # `torch.sigmoid(out)`, `np.asarray(x)`: a library function, no object
        if not any(self.carries_known_graph(arg.value, state) for arg in call.args):
            return
        receiver = self.resolve(func.value, state)
        if receiver is not None and all(
            receiver in self.taint_of(arg.value, state) or not self.taint_of(arg.value, state)
            for arg in call.args
        ):
            return  # `y = model.unpatchify(y)`: the module post-processes its own output
        holder = dotted_name(func.value)
        if holder is not None and "." not in holder and method in _CONTAINER_METHODS:
            self.graph_holders.add(holder)
        else:
            self.graph_handed_out = True

    def _input_gradient(self) -> bool:
        """Whether the innermost loop (or else the function) steps no parameter optimizer
        and steps an input or reads an input's gradient: its backward computes an input's
        gradient (an attack, saliency), not a training step."""
        for region in reversed(self.regions):
            if type(region.node) in (cst.For, cst.While):
                evidence = self.file.statement_evidence(region.node, self.info)
                return bool(evidence.input_steps or evidence.input_grads) and not evidence.steps
        if self.info is None:
            return False
        evidence = self.file.block_evidence(self.body, self.info)
        return bool(evidence.input_steps or evidence.input_grads) and not evidence.steps

    def _instance_method(self, call: cst.Call) -> Optional[tuple[Summary, str]]:
        """`trainer.predict(batch)` on an instance of a class of this file: the method's
        summary, with its `self.X` modules mapped onto `trainer.X`."""
        func = call.func
        if type(func) is cst.Name and func.value in self.instances:
            # `runner(x)`: the instance's `__call__`
            receiver: Optional[str] = func.value
            name = "__call__"
        elif type(func) is cst.Attribute:
            receiver, name = dotted_name(func.value), func.attr.value
        else:
            return None
        owner = self.instances.get(receiver or "")
        if owner is None:
            return None
        method = owner.methods.get(name) or self.file._inherited_method(owner, name)
        if method is None:
            return None
        summary = self.file._summary_counted(method)
        # `worker.score(loader)` leaving `model=None` at its default: the method as this call
        # runs it (its `if model is None: model = self.model` path), as for a plain function
        summary = self.file.specialised(method, call) or summary
        return (summary, receiver) if summary is not None and receiver is not None else None

    def _own_container_method(self, func: cst.Attribute) -> bool:
        """`meter.append(loss)` on an object of a project class that defines `append`
        itself (`LossAverage.append` keeping `loss.cpu().numpy()`): its method, not a list's;
        what it keeps is that method's business, not a store of the argument."""
        receiver = dotted_name(func.value)
        if receiver is None:
            return False
        name = func.attr.value
        owner = self.instances.get(receiver)
        if owner is not None:
            return (owner.methods.get(name) or self.file._inherited_method(owner, name)) is not None
        return any(
            (cls.methods.get(name) or analysis._inherited_method(cls, name)) is not None
            for analysis, cls in self.imported_instances.get(receiver, ())
        )

    def _imported_instance_call(self, call: cst.Call, states: States) -> Optional[States]:
        """`gan.visualize_results(e)` on an object of a plain class of another project file
        (or of one of several): each class's method applied to the same paths, joined."""
        func = call.func
        if not self.imported_instances:
            return None
        if type(func) is cst.Name:  # `step(x)`: the instance's `__call__`
            receiver: Optional[str] = func.value
            name = "__call__"
        elif type(func) is cst.Attribute:
            receiver, name = dotted_name(func.value), func.attr.value
        else:
            return None
        held = self.imported_instances.get(receiver or "")
        if not held or receiver is None:
            return None
        outcomes: list = []
        for analysis, owner in held:
            method = owner.methods.get(name) or analysis._inherited_method(owner, name)
            summary = analysis.summary_for(method) if method is not None else None
            if method is not None:
                summary = analysis.specialised(method, call) or summary
            if summary is not None:
                outcomes.extend(self.apply_call(summary, receiver, call, states))
        return normalize(outcomes) if outcomes else None

    # -- calls to summarised functions ---------------------------------------------------------------
    def _map_argument(
        self,
        summary: Summary,
        callee_key: str,
        call: cst.Call,
        receiver: Optional[str],
        state: PathState,
        held: bool = False,
    ) -> Optional[str]:
        """The caller's module key for a key of the callee (a parameter, `self.X`, or a global).
        With `held`, an argument `context.model` (a parameter object's attribute) maps too: a
        callee's mode switches reach it (its forwards and training are the caller's own)."""
        if callee_key == "self" or callee_key.startswith("self."):
            if receiver is None:
                return None
            path = receiver + callee_key[len("self") :]
            return (
                self.resolve_path(path, state)
                if receiver == "self"
                else (state.key_of(path) or path)
            )
        if callee_key in summary.params or callee_key in summary.keyword_only:
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == callee_key:
                    return self.resolve(arg.value, state) or submodule_argument(
                        self.resolve, arg.value, state
                    )
            if callee_key in summary.params:
                index = summary.params.index(callee_key)
                positional = [a for a in call.args if a.keyword is None and not a.star]
                if index < len(positional):
                    argument = positional[index].value
                    key = self.resolve(argument, state) or submodule_argument(
                        self.resolve, argument, state
                    )
                    return key if key is not None or not held else self.held_path(argument, state)
            return None
        root, dot, rest = callee_key.partition(".")
        if dot and root != "self" and (root in summary.params or root in summary.keyword_only):
            mapped = self._map_argument(summary, root, call, receiver, state, held)
            if mapped is None:
                return None
            return state.key_of(f"{mapped}.{rest}") or f"{mapped}.{rest}"
        made = self.file.closure_calls.get(id(call))
        if made is not None and (root in made[0].params or root in made[0].keyword_only):
            # a parameter of the factory the called closure captured: the factory call's
            # argument (`make_loop(model, ...)`)
            factory = cast(Summary, made[0])  # only its `params` and `keyword_only` are read
            return self._map_argument(factory, callee_key, made[1], None, state, held)
        key = self.resolve_path(callee_key, state)
        if (
            key is None
            and callee_key in self.file._module_keys
            and callee_key not in self.scope_locals
        ):
            return callee_key  # a module global the callee uses: the same one here
        return key

    def resolve_path(self, path: str, state: PathState) -> Optional[str]:
        key = state.key_of(path)
        if key is not None:
            return key
        if path in self.scope_keys:
            return path
        # `self.policy.base` of a method that reached below a module this scope knows: the
        # submodule under that module's key
        head, dot, _ = path.rpartition(".")
        while dot and head != "self":
            known = state.key_of(head) or (head if head in self.scope_keys else None)
            if known is not None:
                return f"{known}.{path[len(head) + 1 :]}"
            head, dot, _ = head.rpartition(".")
        return None

    def _own_training_function(self, call: cst.Call) -> bool:
        """A call given a loss and an optimizer that is a function of this project (not a
        library's loss scaler): its summary says what it trains, in its caller's mode."""
        if type(call.func) is not cst.Name or not is_loss_scaler(call):
            return False
        return self.file.resolve_function_quietly(call, self.info) is not None

    def apply_call(
        self, summary: Summary, receiver: Optional[str], call: cst.Call, states: States
    ) -> States:
        here = Place(call, self.file.unit)
        if summary.trains:
            self.trains = True
            states = _entry_grad_proven_on(call, states)  # the callee's training needed it
        known = any(not t.key.startswith(PARAMETER) for t in summary.trainings)
        for state in states:
            region = self._evaluating(state)
            mapped: dict[str, Optional[str]] = {}  # callee key -> caller key, at this call
            for req in summary.forwards:
                self._apply_forward(req, summary, receiver, call, here, state, region, mapped)
            for training in summary.trainings:
                if training.key.startswith(PARAMETER):
                    if not known:  # the helper's optimizer names the module it trains
                        self.apply_loss_training(summary, training.key, call, state)
                    continue
                key = self._map_argument(summary, training.key, call, receiver, state)
                if key is not None:
                    region_here = next(
                        (r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL),
                        None,
                    )
                    # reported at the helper's training site, reached through this call
                    # (as an evaluation helper's forward is); the fix goes at this call
                    self._record_training(
                        call,
                        key,
                        training.subject if training.place.unit is self.file.unit else key,
                        region_here,
                        (state,),
                        training.place,
                        (here, *training.via),
                    )
        states = self.apply_modes(summary.exit_modes, summary, call, receiver, states)
        if summary.grad_on_exit is not None:  # `torch.set_grad_enabled(False)` left set
            states = tuple(grad_after_call(summary.grad_on_exit, s) for s in states)
        if summary.opaque_switch and receiver is not None:
            facts = frozenset(ModeFact(f.mode, f.origin, call) for f in summary.opaque_switch)
            prefix = receiver + "."
            states = tuple(
                with_modes(
                    state,
                    [
                        k
                        for k in {*self.scope_keys, *(m for m, _ in state.modes)}
                        if k.startswith(prefix)
                    ],
                    facts,
                )
                for state in states
            )
        return states

    def _apply_forward(
        self,
        req: ForwardRequirement,
        summary: Summary,
        receiver: Optional[str],
        call: cst.Call,
        here: Place,
        state: PathState,
        caller_region: Optional[Region],
        mapped: dict[str, Optional[str]],
    ) -> None:
        region, region_unit = (
            (req.region, req.region_unit)
            if req.region.kind is RegionKind.EVAL
            else (caller_region, self.file.unit)
        )
        training_here = next(
            (r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL), None
        )
        if (
            training_here is not None
            and training_here.kind is RegionKind.TRAIN
            and req.region.kind is RegionKind.EVAL
            and (not req.region.has_data_loop or req.region.needs_grad)
            and not req.region.after_training
            and self.assigning
            & (
                self.file.backpropagated(training_here.node)
                | self.loss_trained_names(training_here.node)
            )
        ):
            # `self._get_negative_prediction(batch)` called inside a training step: a helper
            # named like an evaluation whose output the training uses; the caller decides.
            # So for one whose forwards need gradients, loops and all: `delta = attack(model,
            # x, y)` of adversarial training, trained on right after (issue 16, item 6)
            region, region_unit = caller_region, self.file.unit
            if own_method(self.file, summary) is not None:
                # a model's own method trained through: it is the model's forward, so where
                # another call evaluates with it, that call is the evaluation (rules/base.py)
                self.file.facts.trained_forwards.add(req.place)
        if req.region.by_results and self._acts_for_training():
            # `action = agent.select_action(state)` then `env.step(action)` in a loop that
            # trains: acting collects training data, in the mode training left; no evaluation
            self.file.decided_forwards.add(req.place)
            return
        if (
            caller_region is not None
            and caller_region.kind is RegionKind.EVAL
            and caller_region.has_data_loop
            and not req.region.has_data_loop
        ):
            region, region_unit = (
                caller_region,
                self.file.unit,
            )  # the data loop driving a per-batch helper is the evaluation
        if caller_region is None and req.region.kind is RegionKind.NEUTRAL and training_here:
            if training_here.kind is RegionKind.TRAIN:  # a helper shared with training
                self.file.facts.trained_forwards.add(req.place)
        if req.key in mapped:
            key = mapped[req.key]
        else:
            key = mapped[req.key] = self._map_argument(summary, req.key, call, receiver, state)
        if key is None and req.conditional and self._passes_no_module(summary, req, call):
            return  # the parameter holds a module only if this caller passed one
        if key is not None and state.holds_none(key):
            return  # `if aux is not None: aux.eval()`, then `helper(aux)`: None on this path
        conditional = self.candidate_keys.get(key, 0) if key is not None else req.conditional
        # What decides this forward's outcome here; met again equal but for `via` (another call)
        # it would pass up only what `distinct_requirements` drops (n**3 of them for n helpers
        # calling each other). An outcome recording an evaluation forward is never skipped.
        matters = req.mode_matters and self._key_id(key or "") not in self.file.mode_independent
        affects = (
            req.affects_grad
            and self._key_id(key or "") not in self.file.graph_free
            and not self._frozen_here(key)
        )  # `v.requires_grad = False` on every parameter of the caller's module: no graph
        decides = (
            but_via(req),
            key,
            conditional,
            state.mode_in_tree(key) if req.mode_from_entry and key is not None else None,
            state.grad if req.grad_from_entry else None,
            region,
            region_unit,
            region is caller_region,
            all(r.kind is RegionKind.NEUTRAL for r in self.regions) if region is None else None,
        )
        if decides in self.passed_up:
            return
        self.passed_up.add(decides)
        train = req.train_facts
        entry_mode = False
        # `self.train(mode=train)` then, in the epoch loop that trains when the flag says so,
        # `self.evaluate(loader)`: the flag chose training for the loop, not for the
        # evaluation the helper runs, which inherits the training mode and autograd
        flag_trains = (
            region is req.region
            and req.region.kind is RegionKind.EVAL
            and training_here is not None
            and training_here.kind is RegionKind.MIXED
        )
        if req.mode_from_entry and key is not None:
            facts = state.mode_in_tree(key) or ENTRY_MODE
            if req.parts_as_built:
                facts = as_built_parts(facts, call)
            train = train | frozenset(
                f
                for f in facts
                if f.mode is Mode.TRAIN and (flag_trains or f.origin is not Origin.FLAG)
            )
            entry_mode = any(f.mode is Mode.ENTRY for f in facts)
        grad = req.grad_facts
        entry_grad = False
        if req.grad_from_entry:
            grad = grad | frozenset(
                g for g in state.grad if g.grad is Grad.ON and (flag_trains or not g.by_flag)
            )
            entry_grad = any(g.grad is Grad.ENTRY for g in state.grad)
        self.evaluates = self.evaluates or region is not None
        if region is None:
            if (
                self.info is not None
                and (entry_mode or entry_grad or train or grad)
                and all(r.kind is RegionKind.NEUTRAL for r in self.regions)
            ):
                self.requirements.append(
                    replace(
                        req,
                        key=key or req.key,
                        mode_from_entry=entry_mode,
                        grad_from_entry=entry_grad,
                        train_facts=train,
                        grad_facts=grad,
                        via=(here,) + req.via,
                        conditional=conditional,
                    )
                )
            return
        if (key is not None or not req.mode_from_entry) and not (
            self.info is not None and (entry_mode or entry_grad)
        ):
            self.file.decided_forwards.add(req.place)  # this call decides the forward's state
        if region.needs_grad or req.region.needs_grad:
            grad, entry_grad = frozenset(), False
        if region is caller_region and req.region.needs_grad and _chosen_by_helper(req, train):
            # `fisher_matrix_diag(model)`: a helper that calls `model.train()` itself and
            # backpropagates to read gradients, not an evaluation in training mode by mistake
            train = frozenset()
        if not affects:
            grad, entry_grad = frozenset(), False
        at_call = req.report_at_call or region is caller_region
        if (train or grad) and conditional != 2:
            self.passed_up.discard(decides)  # each such forward is a fact: never skipped
            self.file.facts.eval_forwards.append(
                EvalForward(
                    req.place,
                    req.subject,
                    region,
                    train,
                    grad,
                    affects,
                    matters,
                    (here,) + req.via,
                    self.file.next_order(),
                    at_call,
                    region_unit,
                    owned_elsewhere(
                        self.file, req, summary.trains, region, region_unit, summary, key
                    ),
                )
            )
        if self.info is not None and (entry_mode or entry_grad):
            self.requirements.append(
                ForwardRequirement(
                    req.place,
                    key or req.key,
                    req.subject,
                    region,
                    entry_mode,
                    entry_grad,
                    frozenset(),
                    frozenset(),
                    affects,
                    matters,
                    (here,) + req.via,
                    at_call,
                    region_unit,
                    conditional,
                    req.whole,
                )
            )

    def _acts_for_training(self) -> bool:
        """Whether the value being assigned drives an environment step or is stored as a
        transition in an enclosing loop that also trains (see acting.py)."""
        for region in reversed(self.regions):
            if type(region.node) in (cst.For, cst.While) and feeds_environment(
                region.node, self.assigning
            ):
                if self._loop_trains(region.node):
                    return True
        return False

    def _loop_trains(self, loop: cst.CSTNode) -> bool:
        """A training step in the loop, or a call of a method of an object of this file's
        plain class that trains (`agent.update(memory)`)."""
        evidence = self.file.statement_evidence(loop, self.info)
        if evidence.training_sites or evidence.steps:
            return True
        for receiver, name in object_method_calls(loop):
            owner = self.instances.get(receiver)
            method = owner.methods.get(name) if owner is not None else None
            summary = self.file.summary_for(method) if method is not None else None
            if summary is not None and summary.trains:
                return True
        return False

    def _passes_no_module(self, summary: Summary, req: ForwardRequirement, call: cst.Call) -> bool:
        """Whether this call gives a conditional parameter no module: nothing at all, or (for
        a parameter whose name alone hinted at a module) a plain variable that holds none."""
        if req.conditional == 2:
            return True
        argument = _argument_for(summary, req.key, call)
        return argument is None or dotted_name(argument) is not None

    def apply_modes(
        self,
        modes: Optional[dict[str, frozenset]],
        summary: Summary,
        call: cst.Call,
        receiver: Optional[str],
        states: States,
        base: Optional[States] = None,
    ) -> States:
        if not modes:
            return states
        result = []
        for _index, state in enumerate(states):
            # parents first: a callee's `model.eval()` reaches the caller's `model.X` keys,
            # then what the callee left `model.X` in on its own overrides that
            for callee_key, facts in sorted(modes.items(), key=lambda item: item[0].count(".")):
                key = self._map_argument(summary, callee_key, call, receiver, state, held=True)
                if key is None:
                    continue
                if all(f.mode is Mode.ENTRY for f in facts):
                    if base is None:
                        continue
                before: frozenset = frozenset()
                if any(f.mode is Mode.ENTRY for f in facts):
                    source = base if base is not None else (state,)
                    for s in source:
                        before |= s.mode_in_tree(key) or ENTRY_MODE
                new = (
                    frozenset(
                        ModeFact(f.mode, _called_origin(f), call)
                        for f in facts
                        if f.mode is not Mode.ENTRY
                    )
                    | before
                )
                state = state.with_mode_tree(key, new)
            result.append(state)
        return normalize(result)


def _called_origin(fact: ModeFact) -> Origin:
    """The origin a callee's exit mode has at the call: the call left the module in it,
    except a mode an unknown loader decided (Origin.LOADED), which stays the loader's: a
    helper that builds a model with a library factory and returns it has not evaluated it."""
    return Origin.LOADED if fact.origin is Origin.LOADED else Origin.CALLED
