"""Facts about single statements that the interpreter notes as it passes: mode-taking
functional calls inside modules, expression statements whose value is thrown away, grad
managers named in a `with` without a call, values stored into containers once per iteration,
and backward passes with the grad state of what they run through. They use the interpreter's
state (grad on each path, which names hold modules, which values carry a graph); none needs a
walk of its own. What is a mistake is for the rules to decide. Assignments to a module's
`training` flag are noted by `flag_assignments`; gradient-clearing helpers are found by
`gradient_clearers`."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.batch_parts import iterates_parts_of_item
from evallint.analysis.context import InterpreterPart, code_of
from evallint.analysis.facts import (
    BackwardCall,
    DiscardedValue,
    Place,
    TensorStore,
    UncalledGradManager,
)
from evallint.analysis.few_items import runs_few_times
from evallint.analysis.lattice import Grad, PathState
from evallint.analysis.mode_calls import mode_call
from evallint.analysis.pictured import only_pictured
from evallint.analysis.plain_objects import held_from_constructor, own_backward_object
from evallint.analysis.regions import RegionKind
from evallint.analysis.repeated_input import (
    computes_on_earlier_graphs,
    repeats_one_input,
    repeats_outer_item,
    stores_item_of_held_values,
)
from evallint.analysis.requested_grad import grad_requested_by_caller
from evallint.analysis.returned_for_backward import every_caller_backpropagates
from evallint.analysis.statement_shapes import (
    CONSTANT_KEYS,
    LAYER_CONTAINERS,
    NO_GRAD_HOOKS,
    PART_METHODS,
    PER_BATCH_HOOKS,
    SEPARATE_RECEIVERS,
    SUBMODULE_ITERATORS,
    backpropagated_name,
    literal_iterable,
    loop_rebinds,
)
from evallint.analysis.store_scope import (
    class_is_module,
    first_assignments,
    forward_helpers,
    handed_to_training,
    numeric_array,
    preallocated_tensor,
    read_by_training_callee,
    rebinds,
    run_only_from,
    structural_iterable,
)
from evallint.analysis.symbols import chain_receiver, dotted_name, unwrap_enumerate
from evallint.analysis.vocabulary import SAME_MODULE_OR_MODE_METHODS


class Observations(InterpreterPart):
    """Mixed into the interpreter; `self` is an `_Interpreter`."""

    def _init_observations(self) -> None:
        self.stores: list[tuple] = []
        self.module_lists: dict[str, bool] = {}
        """Container -> whether every value appended to it so far held a module
        (`style_losses.append(StyleLoss(target))`): a loop over it runs once per module."""
        self.filled_containers: set[str] = set()
        """Keys of module containers built empty and filled here (filled_containers.py)."""
        self.backward_roots: set[str] = set()
        self.backward_reached: set[str] = set()
        """Names the backpropagated values were computed from, as bound when each
        `backward()` ran (a later `loss = [q for _, q in history]` is another value)."""
        self.bound_without_grad: dict[str, cst.CSTNode] = {}
        """Name -> the value expression of its latest binding, when autograd was off on every
        path there."""
        self.bound_at: dict[str, cst.CSTNode] = {}
        """Name -> the value expression of its latest binding (a graph proven by `backward()`
        belongs to one binding: `loss` rebound in a later no_grad loop is another value)."""
        self.backward_bindings: set[tuple[str, int]] = set()
        self.backward_sources: set[int] = set()
        self.reads: dict[str, set[str]] = {}
        """Assigned name -> names its value was computed from (for gradient accumulation)."""
        self.recurrent: dict[str, int] = {}
        """Name -> id of the loop whose body rebinds it from a call given its own value (`h =
        cell(x, h)`): a recurrent state, whose graph links every earlier iteration's."""
        self.loop_depth = 0

    def _place(self, node: cst.CSTNode) -> Place:
        return Place(node, self.file.unit)

    # -- mode-taking functional calls in module methods -------------------------------------
    def observe_functional(self, call: cst.Call) -> None:
        owner = self._owner()
        if owner is None or not owner.is_module or self.info is None:
            return
        found = mode_call(call, owner.node, self.info.node, self.imports, self._place(call))
        if found is not None:
            self.file.facts.functional_mode_calls.append(found)

    # -- expression statements, `with` items and `.training` assignments ---------------------
    def observe_expression_statement(self, value: cst.BaseExpression, states: tuple) -> None:
        """An expression whose value is thrown away: an attribute read, or a call of a
        function the imports name."""
        if type(value) is cst.Attribute:
            self.file.facts.discarded_values.append(
                DiscardedValue(
                    self._place(value),
                    value,
                    receiver_holds_module=self._is_module_expression(value.value, states),
                )
            )
        elif type(value) is cst.Call:
            callee = self.imports.qualify(value.func)
            if callee:
                self.file.facts.discarded_values.append(
                    DiscardedValue(self._place(value), value, callee=callee)
                )

    def observe_uncalled_manager(self, expr: cst.BaseExpression, qualified: str) -> None:
        self.file.facts.uncalled_grad_managers.append(
            UncalledGradManager(self._place(expr), qualified)
        )

    def _is_module_expression(self, node: cst.BaseExpression, states: tuple) -> bool:
        if states and self.resolve(node, states[0]) is not None:
            return True
        owner = self._owner()
        return (
            type(node) is cst.Name
            and node.value == "self"
            and owner is not None
            and owner.is_module
        )

    # -- stores of values into containers, once per iteration (EVL006 queries them) ---------
    def observe_store(
        self,
        node: cst.CSTNode,
        container: str,
        value: cst.BaseExpression,
        kind: str,
        states: tuple,
    ) -> None:
        """`total += v`, `xs.append(v)`, `cache[key] = v` in a loop body or a per-batch hook,
        with what is known of `v`'s graph (decided at the end of the function, when every
        `backward()` of the function has been seen)."""
        if not states:
            return
        hook: Optional[str] = None
        if self.loop_depth == 0:
            hook = self._per_batch_hook()
            if hook is None or not container.startswith("self."):
                return  # a local container of a hook is rebuilt on every call
        part = self._call_part(container)
        if part == "call":
            return  # a module's forward builds its output from parts: one call's container
        if (
            self.info is not None
            and self._lightning_hook()
            and not self._grad_on(states)
            and (self.info.name in NO_GRAD_HOOKS or self._run_by_evaluation_steps())
        ):
            return  # Lightning runs its evaluation steps under inference_mode: no graph
        if hook is None and stores_item_of_held_values(self._innermost_loop(), value):
            return  # `for aux in aux_list: total += aux`: the list already holds each graph
        names = self.graph_names(value, self._returns_plain)
        sources = self.stored_graph(value, states)
        if hook is None and self._graph_built_before_loop(value):
            return  # `kept[i] = out[i]`: parts of one graph built before the loop
        outlives = hook is not None or not self._rebuilt_in_loop(container, states[0])
        bindings = frozenset(self._binding(name) for name in names)
        grad_off = self.grad_off_everywhere(states)
        evaluation = any(r.kind is RegionKind.EVAL for r in self.regions)
        recurrent = hook is None and self._reads_recurrent_state(names)
        requested = (
            self.info is not None
            and type(self.info.node) is cst.FunctionDef
            and grad_requested_by_caller(
                self.info.node,
                set(self.info.params) | set(self.info.keyword_only),
                node,
                self.imports.qualify,
            )
        )
        self.stores.append(
            (node, container, value, kind, frozenset(sources), bindings, outlives, hook)
            + (grad_off, evaluation, recurrent, part == "returned", requested)
            # `preds[i] = model(x)` for `i in range(n)`: n samples of one input
            + (
                hook is None
                and "." not in container  # a local: `self.history` outlives the call
                and container in self.bound_at
                and self._samples_one_input(value, states),
            )
            # `running = 0` somewhere in the innermost loop (after the optimizer step)
            + (hook is None and self._reset_in_loop(container),)
        )

    def _reset_in_loop(self, container: str) -> bool:
        from evallint.analysis.statement_shapes import loop_resets

        loop = self._innermost_loop()
        return loop is not None and loop_resets(loop, container)

    def observe_subscript_store(
        self,
        statement: cst.Assign,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        states: tuple,
    ) -> None:
        """`cache[i] = v`: a new entry per iteration when the key changes (a constant key
        only replaces the previous value, so nothing piles up)."""
        if type(target) is not cst.Subscript or len(target.slice) != 1:
            return
        index = target.slice[0].slice
        if type(index) is not cst.Index or type(index.value) in CONSTANT_KEYS:
            return
        container = dotted_name(target.value)
        if container is None:
            return
        if self.grad_off_everywhere(states) and preallocated_tensor(
            self.bound_at.get(container), self.imports
        ):
            return  # `losses[i] = loss` under no_grad into `torch.zeros(n)`: numbers copied
        if numeric_array(self.bound_at.get(container), self.imports):
            return  # `losses[i] = loss` into `np.zeros(n)`: NumPy stores `float(loss)`
        kind = "add" if _reads_entry(value, target) else "index"
        # `masks[i] = torch.max(masks[i], m)`: the entry is updated from itself, a running
        # accumulation per key (no new entry), as `total += v`
        self.observe_store(statement, container, value, kind, states)

    def _returns_plain(self, call: cst.Call) -> bool:
        """`utils.to_scalar(loss)`: a function of the file or project whose returns carry no
        graph (`var.data.tolist()[0]`), so the value stored does not keep `loss`'s."""
        func = call.func
        if not (
            type(func) is cst.Name or (type(func) is cst.Attribute and type(func.value) is cst.Name)
        ):
            return False
        resolved = self.file.resolve_function(call, self.info, count=False)
        if resolved is None and self.file.project is not None:
            head = func.value if type(func) is cst.Name else cast(cst.Name, func.value).value
            if head in self.imports.modules_from or self.imports.is_imported(head):
                resolved = self.file.resolve_function(
                    call, self.info, count=False, passes_module=True
                )
        summary = resolved[0] if resolved is not None else None
        return summary is not None and summary.return_graph == frozenset()

    def _samples_one_input(self, value: cst.BaseExpression, states: tuple) -> bool:
        """The innermost loop trains nothing and either feeds its forwards the same input on
        every iteration or runs none for the value, computing it from graphs built before
        the loop (see repeated_input.py)."""
        loop = self._innermost_loop()
        if loop is None:
            return False
        from evallint.analysis.regions import training_call_kind
        from evallint.analysis.walk import iter_nodes

        # asked once per store in the loop: the answer is kept per loop node for the file
        trains = self.file.__dict__.setdefault("_training_loops", {})
        known = trains.get(id(loop))
        if known is None or known[0] is not loop:
            known = trains[id(loop)] = (
                loop,
                any(
                    type(node) is cst.Call and training_call_kind(node, self.imports) is not None
                    for node in iter_nodes(loop)
                ),
            )
        if known[1]:
            return False  # a backward or a step in the loop: its values are training's
        state = states[0]

        def is_forward(call: cst.Call) -> bool:
            func = call.func
            return (type(func) is cst.Attribute and func.attr.value == "forward") or (
                self._forward_target(call, state) is not None
            )

        def adds_graph(call: cst.Call) -> bool:
            if is_forward(call):
                return True
            given = frozenset().union(*(self.graph_of(a.value, state, True) for a in call.args))
            if type(call.func) is cst.Attribute:
                given |= self.graph_of(call.func.value, state, True)
            return bool(self.graph_of(call, state, True) - given)

        loops = [r.node for r in reversed(self.regions) if type(r.node) in (cst.For, cst.While)]
        return repeats_one_input(loops, value, is_forward) or computes_on_earlier_graphs(
            loops, value, adds_graph
        )

    def _call_part(self, container: str) -> str:
        """'call' for a container of one call of a module's computation: a local of its
        `forward` (or an attribute the call rebuilds), which builds that batch's output from
        parts (`features.append(x)`, `outputs[t] = out` over time steps), or one of another
        method of the module whose loop runs over the module's own structure (`for i in
        range(self.n_hop)`, `for mask in self.group`); 'returned' for one of a method that
        is no evaluation, which is such a part when the method returns it (a helper of the
        forward mapping each scale of one input); '' otherwise. The caller decides what is
        kept. `self.cache.append(x)` outlives the call."""
        from evallint.analysis.walk import iter_nodes

        info = self.info
        if info is None:
            return ""
        if container.startswith("self.") and not rebinds(info.node, container):
            return ""
        if info.name == "__init__" and self._owner() is not None:
            return "call"  # a constructor fills the new object's containers once
        owner = self._owner()
        if info.name == "forward" and owner is not None and owner.node.bases:
            # the forward of a class built on a base (an nn.Module, or a library's module
            # class such as a graph layer's, not known as one here): one call's output
            return "call"
        if "." not in container and self._loops_over_argument_parts(info):
            return "returned"  # `for mesh in gt.mesh_ids.unique(): losses[mesh] = ...`
        if not class_is_module(owner, self.imports, self.file, self.file.project):
            return ""
        loop = self._innermost_loop()
        if loop is None:
            return ""
        loop_names = {
            n.value
            for r in self.regions
            if type(r.node) is cst.For
            for n in iter_nodes(r.node.target)
            if type(n) is cst.Name
        }
        if type(loop) is cst.For and structural_iterable(loop.iter, loop_names):
            return "call"
        if owner is not None and info.name in forward_helpers(owner):
            return "returned"  # a step of the module's own forward (its loss parts), even
            # where it also counts an accuracy
        return "" if any(r.kind is RegionKind.EVAL for r in self.regions) else "returned"

    def _loops_over_argument_parts(self, info) -> bool:
        """The innermost loop runs over the parts of one argument of the call
        (`packed.mesh_ids.unique()`, `outputs.items()`, `x.split(64)` with `packed`,
        `outputs`, `x` parameters) and trains nothing: a container the function returns
        then holds one call's parts (per-mesh losses for the caller's loss), not one entry
        per batch. A loader given in is iterated as it is (`for b in loader:`), not so."""
        from evallint.analysis.regions import training_call_kind
        from evallint.analysis.walk import iter_nodes

        loops = [r.node for r in self.regions if type(r.node) in (cst.For, cst.While)]
        if len(loops) != 1 or type(loops[0]) is not cst.For:
            return False  # inside a loop over batches, the parts of every batch pile up
        loop = loops[0]
        iterable = loop.iter
        if not (
            type(iterable) is cst.Call
            and type(iterable.func) is cst.Attribute
            and iterable.func.attr.value in PART_METHODS
        ):
            return False
        root = (dotted_name(iterable.func.value) or "").split(".")[0]
        if root in ("", "self", "cls") or root not in (*info.params, *info.keyword_only):
            return False
        return not any(
            type(node) is cst.Call and training_call_kind(node, self.imports) is not None
            for node in iter_nodes(loop)
        )

    def _run_by_evaluation_steps(self) -> bool:
        """This method runs only from Lightning's evaluation steps (`predict_step` calling
        `self._predict_direct(batch)`), so under their inference_mode too."""
        owner, info = self._owner(), self.info
        if owner is None or info is None:
            return False
        cache: dict[int, frozenset[str]] = self.file.__dict__.setdefault("_evaluation_run", {})
        found = cache.get(id(owner.node))
        if found is None:
            found = cache[id(owner.node)] = run_only_from(owner, self.file.module, NO_GRAD_HOOKS)
        return info.name in found

    def _lightning_hook(self) -> bool:
        owner = self._owner()
        return owner is not None and owner.self_managed

    @staticmethod
    def _grad_on(states: tuple) -> bool:
        """Autograd is switched on explicitly (`torch.enable_grad()`) on some path."""
        return any(g.grad is Grad.ON for s in states for g in s.grad)

    def _returned_names(self) -> set[str]:
        """Names the function's `return` statements read (`return loss`, `return {"loss":
        loss}`)."""
        from evallint.analysis.taint import _returns_of

        if self.info is None:
            return set()
        found: set[str] = set()
        for statement in _returns_of(self.info.node):
            if statement.value is not None:
                found |= set(self.graph_names(statement.value))
        return found

    def _binding(self, name: str) -> tuple[str, int]:
        """`name` as bound now: `out.loss` belongs to the latest binding of `out`."""
        return name, id(self.bound_at.get(name.split(".")[0]))

    def _per_batch_hook(self) -> Optional[str]:
        """The framework hook this function is, when the framework calls it once per batch:
        Lightning `training_step` & co. and HF `compute_loss` (methods), Ignite process
        functions (`def step(engine, batch)`)."""
        info = self.info
        if info is None:
            return None
        if info.name in PER_BATCH_HOOKS and self._owner() is not None:
            return info.name
        if info.params[:2] == ("engine", "batch"):
            return info.name
        return None

    def _rebuilt_in_loop(self, container: str, state) -> bool:
        """The innermost enclosing loop rebinds the container on every iteration: an
        assignment (`parts = []`) among its body's own statements; or an outer loop does and
        every loop in between runs over modules (`for net in nets:`, a few items, not data)
        or over the parts of that loop's item (`for chunk in data.chunk(4):` in `for data in
        loader:`: one batch's parts).
        A reset under a condition (`if i % 100 == 99: running = 0.0`) lets the values pile
        up until it runs. A local container filled only in loops over a fixed few items (a
        literal `for size in (3, 64):`, a module's own blocks `for block in model.blocks:`)
        holds those few values, not one per batch of data."""
        bounded = True
        parts: list[cst.CSTNode] = []  # loops that may run over one outer item's parts
        for region in reversed(self.regions):
            loop = region.node
            if type(loop) not in (cst.For, cst.While):
                continue
            if loop_rebinds(loop, container):
                # `outputs = []` per batch, filled over `for chunk in data.chunk(4):` or
                # over `for _ in range(k):` repeating work on that batch
                return all(
                    iterates_parts_of_item(inner, loop)
                    or repeats_outer_item(
                        inner, loop, lambda c: self._forward_target(c, state) is not None
                    )
                    for inner in parts
                )
            if type(loop) is cst.For and (
                literal_iterable(loop.iter)
                or self._iterates_submodules(loop.iter, state)
                or self._few_untrained_items(loop)
            ):
                continue
            if type(loop) is cst.For and self._iterates_modules(loop, state):
                bounded = False
                continue
            if type(loop) is not cst.For:
                return False
            parts.append(loop)
        return not parts and bounded and "." not in container and container in self.bound_at

    def _few_untrained_items(self, loop: cst.For) -> bool:
        """`for deg in np.linspace(0, 180, 19):` with no backward or step in it: a fixed few
        items counted from constants (see few_items.py), not batches of training."""
        from evallint.analysis.regions import training_call_kind
        from evallint.analysis.walk import iter_nodes

        function = self.info.node if self.info is not None else self.file.module
        return runs_few_times(loop.iter, function) and not any(
            type(node) is cst.Call and training_call_kind(node, self.imports) is not None
            for node in iter_nodes(loop)
        )

    def _iterates_submodules(self, iterable: cst.BaseExpression, state) -> bool:
        """`model.blocks`, `self.layers`, `net.children()`: a module's own submodules, as
        many as the model has, whatever data it sees; also `enumerate(embeds)` with
        `embeds = nn.ModuleList(...)` (or `nn.Sequential`, `nn.ModuleDict`): one item per
        layer."""
        iterable = unwrap_enumerate(iterable)
        if type(iterable) is cst.Name:
            built = self.bound_at.get(iterable.value)
            if isinstance(built, cst.BaseExpression):
                built = chain_receiver(built, SAME_MODULE_OR_MODE_METHODS)
            return (
                type(built) is cst.Call
                and (self.imports.qualify(built.func) or "") in LAYER_CONTAINERS
            )
        if (
            type(iterable) is cst.Call
            and type(iterable.func) is cst.Attribute
            and iterable.func.attr.value in SUBMODULE_ITERATORS
        ):
            iterable = iterable.func.value
        if type(iterable) is not cst.Attribute:
            return False
        if self.resolve(iterable, state) is not None:
            return True  # `self.blocks`, an nn.ModuleList the class builds
        owner = iterable.value  # `model.blocks` of a model: not `self.data` of a module
        return not (type(owner) is cst.Name and owner.value == "self") and (
            self.resolve(owner, state) is not None
        )

    def _graph_built_before_loop(self, value: cst.BaseExpression) -> bool:
        """The stored value only reads, without calling anything, names that carry a graph
        and that the innermost loop never assigns (`results[name] = {"img": images[i]}`
        after one forward): each iteration keeps a part of the same graph, so nothing piles
        up per iteration. So does applying the loop's own function to such names (`logs[name]
        = metric(y_hat, y)` over `metrics.items()`) when no enclosing loop assigns them."""
        from evallint.analysis.walk import iter_nodes

        loop = next(
            (r.node for r in reversed(self.regions) if type(r.node) in (cst.For, cst.While)),
            None,
        )
        if loop is None:
            return False
        nodes = list(iter_nodes(value))
        loops = [loop]
        if self._applies_loop_function(loop, value):
            # each of a few functions applied to one graph built before every loop
            nodes = [n for a in cast(cst.Call, value).args for n in iter_nodes(a.value)]
            loops = [r.node for r in self.regions if type(r.node) in (cst.For, cst.While)]
        if any(type(n) in (cst.Call, cst.Lambda, cst.ListComp, cst.GeneratorExp) for n in nodes):
            return False
        carried = {
            n.value for n in nodes if type(n) is cst.Name and self.graph.get(n.value, frozenset())
        }
        if not carried:
            return False
        assigned: set[str] = set()
        for node in (n for enclosing in loops for n in iter_nodes(enclosing, enter_scopes=False)):
            targets: list[cst.BaseExpression] = []
            if type(node) is cst.Assign:
                targets = [t.target for t in node.targets]
            elif type(node) in (cst.AugAssign, cst.AnnAssign):
                targets = [node.target]  # type: ignore[attr-defined]
            elif type(node) is cst.For:
                targets = [node.target]
            elif type(node) is cst.WithItem and node.asname is not None:
                targets = [node.asname.name]
            for target in targets:
                assigned |= {n.value for n in iter_nodes(target) if type(n) is cst.Name}
        return not (carried & assigned)

    @staticmethod
    def _applies_loop_function(loop: cst.CSTNode, value: cst.BaseExpression) -> bool:
        """`metric(y_hat, y)` in `for name, metric in metrics.items():`: the callee is the
        loop's own variable (one of the functions the loop runs over)."""
        from evallint.analysis.walk import iter_nodes

        return (
            type(loop) is cst.For
            and type(value) is cst.Call
            and type(value.func) is cst.Name
            and value.func.value
            in {n.value for n in iter_nodes(loop.target) if type(n) is cst.Name}
        )

    def note_module_appended(self, container: str, value: cst.BaseExpression, states) -> None:
        built = self.bound_at.get(value.value) if type(value) is cst.Name else value
        held = bool(states) and (
            self.resolve(value, states[0]) is not None
            or (type(built) is cst.Call and self._builds_module_object(built))
        )
        self.module_lists[container] = self.module_lists.get(container, True) and held

    def _builds_module_object(self, call: cst.Call) -> bool:
        """`StyleLoss(target)` with `StyleLoss` an nn.Module class of this file, or a torch.nn
        class: an nn.Module object, whatever its mode does."""
        qualified = self.imports.qualify(call.func) or ""
        found = self.file.classes.get(qualified)
        if found is not None:
            return found.is_module
        return qualified.startswith("torch.nn.") and qualified.rsplit(".", 1)[-1][:1].isupper()

    def _iterates_modules(self, loop: cst.For, state) -> bool:
        """`for net in nets:`, `for net, opt in zip(nets, opts):`: the loop variable (or one
        of them) holds a module, so the loop runs once per model; or the loop runs over a
        list that only modules were appended to (`for sl in style_losses:`)."""
        if type(loop.iter) is cst.Name and self.module_lists.get(loop.iter.value):
            return True
        target = loop.target
        names = (
            [e.value for e in cast("cst.Tuple | cst.List", target).elements]
            if type(target) in (cst.Tuple, cst.List)
            else [target]
        )
        return any(type(n) is cst.Name and self.resolve(n, state) is not None for n in names)

    def note_reads(self, name: str, value: cst.BaseExpression) -> None:
        from evallint.analysis.walk import iter_nodes

        self.bound_at[name] = value
        self.reads.setdefault(name, set()).update(
            n.value for n in iter_nodes(value) if type(n) is cst.Name
        )

    def note_recurrence(self, names: list[str], value: cst.BaseExpression) -> None:
        """`h = cell(x, h)` (or `out, h = rnn(x, h)`) in a loop body: `h` is a recurrent
        state of that loop."""
        loop = self._innermost_loop()
        read: set[str] = set()
        if loop is not None and type(value) is cst.Call:
            read = {n.split(".")[0] for n in self.graph_names(value)}
            if read & set(names):
                first = self.file.__dict__.setdefault("_first_assignments", {})
                if id(loop) not in first:
                    first[id(loop)] = first_assignments(loop)
                read = {n for n in read if first[id(loop)].get(n) is value}
        for name in names:
            if name in read and self.graph.get(name):
                # carries a graph from one iteration to the next (not `x = x.cuda()` of data)
                self.recurrent[name] = id(loop)
            else:
                self.recurrent.pop(name, None)

    def _innermost_loop(self) -> Optional[cst.CSTNode]:
        return next(
            (r.node for r in reversed(self.regions) if type(r.node) in (cst.For, cst.While)),
            None,
        )

    def _reads_recurrent_state(self, names: frozenset) -> bool:
        """The value reads (itself or through the names it was computed from) a recurrent
        state of the innermost loop (`outputs.append(h)`, `kept[t] = out` after `out, h =
        rnn(x, h)`): its graph already links every earlier step through that state."""
        loop = self._innermost_loop()
        if loop is None or not self.recurrent:
            return False
        bases = {n.split(".")[0] for n in names}
        for name in list(bases):
            bases |= self.reads.get(name, set())
        return any(self.recurrent.get(name) == id(loop) for name in bases)

    def _backpropagated(self) -> set[str]:
        """Names a backward() result was computed from, transitively, through what each
        name had read when the `backward()` ran."""
        return self.backward_reached

    def _sources_closure(self, found: set[str]) -> set[str]:
        pending = list(found)
        while pending:
            for source in self.reads.get(pending.pop(), ()):
                if source not in found:
                    found.add(source)
                    pending.append(source)
        return found

    def _feeds_returned_tensor(self) -> set[str]:
        """Names a returned tensor is computed from, transitively (`return torch.cat(xs)`:
        the caller gets one differentiable tensor built from `xs`). A returned container is
        not followed: `return losses` (or `return kept, losses`) hands the list itself back."""
        from evallint.analysis.statement_shapes import rebound_from_itself
        from evallint.analysis.taint import _returns_of

        if self.info is None:
            return set()
        containers = {store[1] for store in self.stores}
        found: set[str] = set()
        for statement in _returns_of(self.info.node):
            value = statement.value
            parts = (
                [e.value for e in value.elements]
                if type(value) is cst.Tuple
                else ([value] if value is not None else [])
            )  # `return kept, losses` hands both lists back
            for part in parts:
                if not (type(part) is cst.Name and part.value in containers):
                    found |= self.graph_names(part)
                    continue
                # `jac = torch.cat(jac, 1)` after the loop, then `return jac`: one tensor
                if type(self.info.node) is not cst.FunctionDef:
                    continue
                for rebound in rebound_from_itself(self.info.node, part.value):
                    found |= self.graph_names(rebound)
        return self._sources_closure(found)

    def _called_in_file(self) -> bool:
        """This function is called by name somewhere in its file (its callers then say what
        its parameters hold)."""
        return self.info is not None and self.info.name in self.file.called_names()[1]

    def finish_accumulations(self) -> None:
        """Record this function's stores with what its `backward()` calls prove."""
        if not self.stores:
            return
        backpropagated = self._backpropagated()
        returned = self._feeds_returned_tensor()
        called_here = self._called_in_file()
        # Lightning backpropagates what `training_step` returns (its loss, or a dict's "loss")
        framework_backward = (
            self._returned_names()
            if self.info is not None
            and self.info.name == "training_step"
            and self._lightning_hook()
            else set()
        )
        returned_names = self._returned_names()
        handed_back = returned | returned_names
        # what the returned values were built from (`img_boxes = torch.cat(img_boxes)` then
        # `detections.append({"boxes": img_boxes})`, `return detections`): one call's parts
        handed_back = self._sources_closure(set(handed_back))
        info = self.info
        trained = handed_to_training(
            info.node.body if info is not None else self.file.module,
            {store[1] for store in self.stores},
            lambda names: self._sources_closure(names),
            lambda call: self.file.resolve_function_quietly(call, info),
        )
        trained |= read_by_training_callee(
            info.node.body if info is not None else self.file.module,
            {store[1] for store in self.stores},
            lambda call: self.file.resolve_function_quietly(call, info),
            self._local_function,
        )
        backward_values = self.backward_sources - {id(None)}
        owner = self._owner()
        for store in self.stores:
            if store[11] and store[1] in handed_back:
                continue  # a module method's returned parts of one call
            if store[13]:
                continue  # nothing new per batch (see repeated_input.py)
            node, container, value, kind, sources, bindings, outlives, hook, off, evaluation = (
                store[:10]
            )
            base = container.split(".")[0]
            backwarded = bool(bindings & self.backward_bindings) or any(
                name in framework_backward for name, _ in bindings
            )
            if store[12] and container in returned_names and not backwarded:
                continue  # graphs built at the caller's request, handed back for its loss
            if (
                info is not None
                and type(info.node) is cst.FunctionDef
                and "." not in container
                and not self.backward_roots
                and only_pictured(info.node, container)
            ):
                continue  # every value ends in one picture: a few panels (see pictured.py)
            if (
                container in returned_names
                and not backwarded
                and info is not None
                and every_caller_backpropagates(self.file, self.file.module, info.name)
            ):
                continue  # handed back for a loss that every caller backpropagates
            # `outputs.logits` kept after `backward(outputs.loss)`: the same forward's graph
            sibling = not backwarded and any(value in backward_values for _, value in bindings)
            # `epoch_loss` summed from the backpropagated `batch_loss`: its graphs, whose
            # saved activations that backward freed
            derived = (
                not backwarded
                and not sibling
                and bool(self._sources_closure({n for n, _ in bindings}) & self.backward_roots)
            )
            self.file.facts.tensor_stores.append(
                TensorStore(
                    self._place(node),
                    container,
                    code_of(value),
                    kind,
                    sources,
                    backwarded=backwarded,
                    container_outlives_iteration=outlives,
                    # `stats.total` of a backpropagated `stats`; not `self.history`, whose
                    # `self` every forward of `self.model` reads
                    container_backpropagated=(
                        base in backpropagated and base not in SEPARATE_RECEIVERS
                    )
                    or container in backpropagated
                    or container in trained,
                    hook=hook,
                    container_feeds_returned_tensor=container in returned,
                    grad_off_at_store=off,
                    in_evaluation=evaluation,
                    sources_from_callers=bool(sources)
                    and (
                        (called_here and all(self.candidate_keys.get(k, 0) for k in sources))
                        or (
                            owner is not None
                            and all(
                                held_from_constructor(self.file, owner.name, k) for k in sources
                            )
                        )
                    ),
                    reads_recurrent_state=store[10],
                    reset_in_loop=store[14],
                    sibling_backwarded=sibling or derived,
                )
            )
        self.stores = []

    # -- backward passes and the grad state of the names they run through ------------------
    def observe_assignment_grad(self, name: str, value: cst.BaseExpression, states: tuple) -> None:
        if states and all(g.grad is Grad.OFF for s in states for g in s.grad):
            self.bound_without_grad[name] = value
        else:
            self.bound_without_grad.pop(name, None)

    def observe_backward(self, call: cst.Call, states: tuple) -> None:
        self._observe_backward(call, states)
        self.backward_reached |= self._sources_closure(set(self.backward_roots))

    def _observe_backward(self, call: cst.Call, states: tuple) -> None:
        root = backpropagated_name(call)
        receiver = call.func.value if type(call.func) is cst.Attribute else None
        if type(receiver) is cst.Name and own_backward_object(
            self.file, self.bound_at.get(receiver.value)
        ):
            return  # `layer.backward(dout)` of a NumPy exercise's class: no autograd
        own = dotted_name(receiver) if receiver is not None else None
        engine = (
            receiver is not None and bool(states) and self.resolve(receiver, states[0]) is not None
        )
        if (
            own is not None
            and not engine
            and (
                self.taint.get(own)
                or any(not item.startswith("param:") for item in self.graph.get(own, ()))
                or own in self.bound_without_grad
            )
        ):
            # `out.backward(grad_out)`: a tensor's backward with a gradient argument; not
            # `accelerator.backward(loss)` nor a DeepSpeed engine's `model.backward(loss)`
            # (a module: it has no backward of its own), whose receiver holds no graph
            root = own
        if root is None:
            if receiver is not None and not engine:
                # `(policy_loss + c * value_loss).backward()`: what the expression reads is
                # backpropagated (containers read by index reach it), though no one name is
                # the backwarded value
                self.backward_roots.update(self.graph_names(receiver))
            return
        self.backward_roots.add(root)
        self.backward_bindings.add(self._binding(root))
        # the bindings the backpropagated value was computed from (`loss = outputs.loss`)
        self.backward_sources.update(
            id(self.bound_at.get(name.split(".")[0]))
            for name in self._sources_closure({root.split(".")[0]})
        )
        assigned = self.bound_without_grad.get(root)
        self.file.facts.backward_calls.append(
            BackwardCall(
                self._place(call), root, self._place(assigned) if assigned is not None else None
            )
        )

    @staticmethod
    def grad_off_everywhere(states: tuple[PathState, ...]) -> bool:
        return bool(states) and all(g.grad is Grad.OFF for s in states for g in s.grad)


def _reads_entry(value: cst.BaseExpression, target: cst.Subscript) -> bool:
    """`value` reads the very entry `target` stores into (`xs[i]` on both sides)."""
    from evallint.analysis.walk import iter_nodes

    text = code_of(target)
    return any(type(n) is cst.Subscript and code_of(n) == text for n in iter_nodes(value))
