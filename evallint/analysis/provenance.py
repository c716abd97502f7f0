"""Which values carry an autograd graph: the provenance EVL006 reports on.

A value carries a graph when it derives from a module's forward run with grad on, or from a
computation on such a value run with grad on: arithmetic, a tensor method, a `torch.*`
function, a loss (`criterion(out, y)`, any call given a graph-carrying argument).
`.detach()`, `.item()`, `.tolist()`, `.numpy()`, `float()` and the like remove it, and
NumPy/SciPy/pandas results never hold one. A bare reference (`seen.append(out)`) keeps what
the name holds even under `no_grad`; a computation under `no_grad` builds none. A call given
no graph-carrying value (a metric of arrays, an environment step, a helper the analysis
cannot read given only the model, a class building an object such as `nn.ModuleList`) gives
an unknown value, which is not taken to carry a graph. A function of this file (or of the
project, when the analysis already reads it) gives what its `return` statements give, with
its parameters replaced by the caller's arguments.

This is deliberately stricter than `taint_of`, which answers "whose parameters may this
value's backward reach" (for training steps) and counts any helper given a module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast

import libcst as cst

from evallint.analysis.annotated_members import annotated_attribute_type
from evallint.analysis.array_arguments import array_parameters, converted_by_numpy
from evallint.analysis.context import InterpreterPart
from evallint.analysis.declared_returns import plain_returned_elements
from evallint.analysis.frozen_copies import builds_frozen_copy, frozen_attribute
from evallint.analysis.lattice import Grad, PathState
from evallint.analysis.module_sources import other_framework_call
from evallint.analysis.plain_modules import parameter_free_classes, parameter_free_module_class
from evallint.analysis.project_forwards import project_module_class
from evallint.analysis.symbols import ImportTable, chain_receiver, dotted_name
from evallint.analysis.taint import (
    _GRAPH_CUTTING_METHODS,
    _GRAPH_FREE_ATTRIBUTES,
    _creates_graph,
    _cuts_graph,
    _index_result,
    _indices_element,
    _returns_no_graph,
)
from evallint.analysis.vocabulary import (
    GRAD_DISABLERS,
    GRAD_ENABLERS,
    GRADIENT_FUNCTIONS,
    NO_GRAD_METHODS,
    PARAMETER,
    PARAMETER_FREE_LIBRARY_CLASSES,
    SAME_MODULE_OR_MODE_METHODS,
)
from evallint.analysis.walk import iter_nodes, push_children

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis

_EMPTY: frozenset = frozenset()

_PASSING_BUILTINS = frozenset({"sum", "max", "min", "abs", "list", "tuple", "reversed"})
"""Builtins whose result holds (or is computed from) the tensors they are given."""

_ARRAY_LIBRARIES = frozenset(
    {"numpy", "scipy", "pandas", "sklearn", "math", "statistics", "random", "json", "time"}
)
"""Libraries whose results are arrays, numbers or text (a tensor with a graph cannot even be
converted to a NumPy array)."""

_NEW_LEAF_CONSTRUCTORS = frozenset({"torch.tensor", "torch.from_numpy"})
"""Constructors that copy data into a new tensor with no autograd history (`torch.tensor(t)`
copies even a tensor, detached: PyTorch warns to use `t.clone().detach()`)."""

_UNHINTED = 2
"""`candidate_keys` level of a parameter nothing says is a module (see interpreter.py)."""


class Provenance(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    def _init_provenance(self) -> None:
        self.graph: dict[str, frozenset] = {}
        """Name -> provenance of its latest binding: module keys whose forward feeds it with
        a graph, `torch.autograd.grad` for differentiable gradients, `param:p` for what the
        caller passed as `p`."""
        self.return_graph: set[str] = set()
        self.return_elements: Optional[list[frozenset]] = None
        """Per position, what every `return a, b` of the function carries (None when some
        return is not a tuple of the same length)."""
        self.elements_differ = False
        self.records_hold_graphs = True
        """Whether a record built from forward outputs (`Batch(ref, pos)`) holds their graph."""
        info = self.info
        if info is not None:
            for name in (*info.params, *info.keyword_only):
                if name not in ("self", "cls"):
                    self.graph[name] = frozenset({PARAMETER + name})

    # -- recording ---------------------------------------------------------------------------
    def note_graph(self, name: str, value: cst.BaseExpression, states: tuple) -> None:
        """`name = value`."""
        self._note_imported_class(name, value)
        if states:
            self.graph[name] = self.graph_of(value, states[0], self._grad_may_be_on(states))
        else:
            self.graph.pop(name, None)

    def note_graph_elements(
        self, names: list[list[str]], value: cst.BaseExpression, states: tuple
    ) -> None:
        """`a, b = value` (not a literal tuple): every element may hold what the value holds,
        except one a local helper returns as a plain number."""
        if not states:
            return
        whole = self.graph_of(value, states[0], self._grad_may_be_on(states))
        resolved = self._own_function(value, states[0]) if type(value) is cst.Call else None
        if resolved is None and whole and type(value) is cst.Call:
            resolved = self._imported_method(value)  # `logits, tokens = net.decode(x)`
        if whole and getattr(resolved, "elements", None) == len(names):
            # `char, h = predict(net, c, h)`: what the function's tuple gives at each position
            for index, element_names in enumerate(names):
                for name in element_names:
                    self.graph[name] = resolved(states[0], index)  # type: ignore[misc]
            return
        for index, element_names in enumerate(names):
            free = bool(whole) and (
                _indices_element(value, index, len(names), self.imports)
                or self.element_graph_free(value, index, len(names))
            )
            for name in element_names:
                self.graph[name] = _EMPTY if free else whole

    def note_array_arguments(self, call: cst.Call) -> None:
        """`np.argsort(t_prob)`, or `top_k(t_prob, 5)` whose parameter goes to NumPy: NumPy
        would raise on a tensor that requires grad, so the names given hold no graph from
        here on (see array_arguments.py)."""
        names = converted_by_numpy(call, self.imports.qualify)
        func = call.func
        function = self._local_def(func.value) if type(func) is cst.Name else None
        if function is not None and type(function.node) is cst.FunctionDef:
            handed = self._memo("_array_parameters").get(
                function.node, lambda node: array_parameters(node, self.imports.qualify)
            )
            positional = [a.value for a in call.args if a.keyword is None and not a.star]
            names += [
                value.value
                for param, value in zip(handed, positional)
                if param and type(value) is cst.Name
            ]
        for name in names:
            if self.graph.get(name):
                self.graph[name] = _EMPTY

    def note_graph_added(self, name: str, value: cst.BaseExpression, states: tuple) -> None:
        """`name += value`: with grad on the sum is a new node of both graphs; with grad off
        it is a plain tensor (an in-place add of a leaf keeps what it had)."""
        # `total_loss += objective(recons[i], mus[i])`: the sum is computed from those too
        self.reads.setdefault(name, set()).update(
            n.value for n in iter_nodes(value) if type(n) is cst.Name
        )
        if not states:
            return
        if self._grad_may_be_on(states):
            self.graph[name] = self.graph.get(name, _EMPTY) | self.graph_of(value, states[0], True)

    def note_graph_appended(self, name: str, value: cst.BaseExpression, states: tuple) -> None:
        """`xs.append(v)` / `xs.extend(vs)` on a local list: the list holds what `v` holds,
        so `return torch.stack(xs)` gives the graph of the values appended."""
        self.note_stored(name, value)
        if states and "." not in name:
            found = self.graph_of(value, states[0], self._grad_may_be_on(states))
            if found:
                self.graph[name] = self.graph.get(name, _EMPTY) | found

    def note_stored(self, name: str, value: cst.BaseExpression) -> None:
        """`xs.append(v)`, `xs[i] = v`: the container is computed from what `v` reads, so a
        `backward()` of a value read from the container (`sum(xs).backward()`, or a second
        list filled from the first's entries) backpropagates `v`'s sources too."""
        self.reads.setdefault(name, set()).update(
            n.value for n in iter_nodes(value) if type(n) is cst.Name
        )

    def note_return_graph(self, value: cst.BaseExpression, states: tuple) -> None:
        if not states:
            return
        grad_on = self._grad_may_be_on(states)
        self.return_graph |= self.graph_of(value, states[0], grad_on)
        elements = value.elements if type(value) is cst.Tuple else ()
        if not elements or any(type(e) is cst.StarredElement for e in elements):
            self.elements_differ = True
            return
        parts = [self.graph_of(e.value, states[0], grad_on) for e in elements]
        if self.return_elements is None and not self.elements_differ:
            self.return_elements = parts
        elif self.return_elements is not None and len(self.return_elements) == len(parts):
            self.return_elements = [a | b for a, b in zip(self.return_elements, parts)]
        else:
            self.elements_differ = True

    def _grad_may_be_on(self, states: tuple) -> bool:
        facts = [g.grad for s in states for g in s.grad]
        if all(g is Grad.OFF for g in facts):
            return False
        # the caller's grad state, when every caller in the file turns it off, is off
        return not (all(g is Grad.ENTRY for g in facts) and self._callers_without_grad())

    def _callers_without_grad(self) -> bool:
        """Every call of this function in its file runs with autograd off (inside
        `with torch.no_grad():` or a function decorated with it), and there is one."""
        info = self.info
        if info is None:
            return False
        seen = calls_by_grad(self.file).get(info.name, [])
        return bool(seen) and all(seen)

    # -- queries -----------------------------------------------------------------------------
    def stored_graph(self, value: cst.BaseExpression, states: tuple) -> frozenset:
        """The module keys whose graph a value stored here is proven to carry (a parameter's
        value is unknown: the caller decides)."""
        if not states:
            return _EMPTY
        self.records_hold_graphs = False  # EVL006 counts the outputs kept, not records of them
        try:
            found = self.graph_of(value, states[0], self._grad_may_be_on(states))
        finally:
            self.records_hold_graphs = True
        return frozenset(item for item in found if not item.startswith(PARAMETER))

    def graph_of(self, expr: cst.BaseExpression, state: PathState, grad_on: bool) -> frozenset:
        """The provenance of `expr`'s value (see the module docstring); empty when it carries
        no graph or nothing proves one."""
        kind = type(expr)
        if kind is cst.Name:
            return self.graph.get(cast(cst.Name, expr).value, _EMPTY)
        if (kind is cst.Subscript or kind is cst.Attribute) and _index_result(expr, self.imports):
            return _EMPTY  # `torch.max(out, 1)[1]`, `out.topk(5).indices`: integers
        if kind is cst.Attribute:
            attribute = cast(cst.Attribute, expr)
            if attribute.attr.value in _GRAPH_FREE_ATTRIBUTES:
                return _EMPTY
            name = dotted_name(attribute)
            if name is not None and name in self.graph:
                return self.graph[name]
            return self.graph_of(attribute.value, state, grad_on)  # `out.logits`
        if kind is cst.Subscript:
            return self.graph_of(cast(cst.Subscript, expr).value, state, grad_on)
        if kind in (cst.Tuple, cst.List, cst.Set):
            found: frozenset = _EMPTY
            for item in cast("cst.Tuple | cst.List | cst.Set", expr).elements:
                found |= self.graph_of(item.value, state, grad_on)
            return found
        if kind is cst.Dict:
            found = _EMPTY
            for entry in cast(cst.Dict, expr).elements:
                if type(entry) is cst.DictElement:
                    found |= self.graph_of(entry.value, state, grad_on)
            return found
        if kind is cst.IfExp:
            branch = cast(cst.IfExp, expr)
            return self.graph_of(branch.body, state, grad_on) | self.graph_of(
                branch.orelse, state, grad_on
            )
        if kind in (cst.ListComp, cst.GeneratorExp, cst.SetComp):
            produced = cast("cst.ListComp | cst.GeneratorExp | cst.SetComp", expr).elt
            return self.graph_of(produced, state, grad_on)
        if kind is cst.NamedExpr:
            return self.graph_of(cast(cst.NamedExpr, expr).value, state, grad_on)
        if not grad_on:
            return _EMPTY  # a computation under no_grad records no graph
        if kind is cst.BinaryOperation:
            operation = cast(cst.BinaryOperation, expr)
            return self.graph_of(operation.left, state, grad_on) | self.graph_of(
                operation.right, state, grad_on
            )
        if kind is cst.UnaryOperation:
            unary = cast(cst.UnaryOperation, expr)
            if type(unary.operator) is cst.Not:
                return _EMPTY
            return self.graph_of(unary.expression, state, grad_on)
        if kind is cst.Call:
            return self._call_graph(cast(cst.Call, expr), state)
        return _EMPTY  # constants, comparisons, lambdas, f-strings

    def _arguments_graph(self, call: cst.Call, state: PathState) -> frozenset:
        found: frozenset = _EMPTY
        for argument in call.args:
            found |= self.graph_of(argument.value, state, True)
        return found

    def _call_graph(self, call: cst.Call, state: PathState) -> frozenset:
        func = call.func
        if _cuts_graph(func):
            return _EMPTY
        qualified = self.imports.qualify(func) or ""
        if qualified.split(".")[-1] in _GRAPH_CUTTING_METHODS:
            return _EMPTY
        if qualified.endswith("_like") and qualified.startswith("torch."):
            return _EMPTY  # `torch.zeros_like(out)`: a new tensor of the same shape
        if qualified in _NEW_LEAF_CONSTRUCTORS:
            return _EMPTY  # `torch.tensor([bos] + ids)`: copies data into a new leaf tensor
        if qualified in GRADIENT_FUNCTIONS:
            # the gradients' own graph, under one name (`create_graph=True`), or none
            return frozenset({"torch.autograd.grad"}) if _creates_graph(call, qualified) else _EMPTY
        if self._runs_frozen_copy(call):
            # `agent.ema_actor.sample(obs)`: an averaged copy whose parameters never require
            # grad; only a graph its inputs carry reaches the output
            return self._arguments_graph(call, state)
        resolved = self._own_function(call, state)
        if resolved is not None:
            return resolved(state)
        target = self._forward_target(call, state)
        if target is not None:
            if type(func) is cst.Attribute and func.attr.value in NO_GRAD_METHODS:
                return _EMPTY  # `model.generate(...)` runs under no_grad
            if self._forward_returns_no_graph(func):
                return _EMPTY  # `self.model(...)` of a class whose forward returns token ids
            if target[0] in self.frozen_so_far or self._parameter_free_forward(call, state):
                # `sampler.requires_grad_(False)`, or a module with no parameters
                # (`MelSpec(...)`): nothing of its own is recorded; only a graph its inputs
                # carry reaches the output
                return self._arguments_graph(call, state)
            declared = plain_returned_elements(
                self.file, self._owner(), call, self.imported_module_classes.get
            )
            if declared and all(declared):
                return _EMPTY  # `-> float` declared by the method's class: a plain value
            method = self._class_method_graph(call, state)
            if method is not None:
                return method  # `model.act(state)` of a class of this file: what it returns
            if self.candidate_keys.get(target[0], 0) == _UNHINTED:
                # a parameter that only may hold a module (`criterion`, `trainer`): what it
                # computes from a graph-carrying argument keeps that graph
                return self._arguments_graph(call, state)
            return frozenset({target[0]}) | self._arguments_graph(call, state)
        callee = (dotted_name(func) or "").split(".")[-1]
        if callee[:1].isupper():
            # builds an object (a module, a container, a record): holds no graph of its own,
            # but a record built from forward outputs (`Batch(ref, pos, neg)`) holds theirs
            if callee == "Variable":
                return self._arguments_graph(call, state)
            if self._builds_module(call):
                # `ContentLoss(target, w)`: a module holds parameters and buffers; a list of
                # modules is not a list of per-iteration outputs
                return _EMPTY
            if not self.records_hold_graphs:
                return _EMPTY
            found = self._arguments_graph(call, state)
            return frozenset(item for item in found if not item.startswith(PARAMETER))
        if type(func) is cst.Name and func.value in _PASSING_BUILTINS:
            return self._arguments_graph(call, state)
        if qualified.split(".")[0] in _ARRAY_LIBRARIES or other_framework_call(self.imports, call):
            return _EMPTY  # NumPy, SciPy, pandas, JAX...: arrays and numbers, never a graph
        if type(func) is cst.Attribute and self._plain_method_of_file(func, state):
            return _EMPTY  # `model.validation_epoch_end(outputs)` returning `.item()` floats
        found = self._arguments_graph(call, state)  # `torch.cat(...)`, `criterion(out, y)`
        if type(func) is cst.Attribute:
            found |= self.graph_of(func.value, state, True)  # a tensor method: `out.mean()`
        return found  # a call given no graph-carrying value (a metric of arrays, an
        # environment step, a helper given only the model) is unknown: no graph

    def _builds_module(self, call: cst.Call) -> bool:
        """`Cls(...)` of a module class: `torch.nn`'s, this file's or another project file's."""
        if (self.imports.qualify(call.func) or "").startswith("torch.nn."):
            return True
        local = self._local_class(call)
        if local is not None:
            return local.is_module
        found = self._imported_class_of(call)
        return found is not None and project_module_class(
            self.file.project, self.file.path, found[1]
        )

    def _forward_returns_no_graph(self, func: cst.BaseExpression) -> bool:
        """`self.model(...)` where `model` is annotated with a module class of this file
        (see annotated_members.py) whose `forward` returns only values that carry no graph
        (what `generate()` produced, numbers): the call keeps no graph."""
        owner = self._owner()
        if owner is None or type(func) is not cst.Attribute:
            return False
        if not (type(func.value) is cst.Name and func.value.value == "self"):
            return False
        annotation = annotated_attribute_type(owner.node, func.attr.value)
        found = self.file.classes.get(annotation) if annotation is not None else None
        forward = found.methods.get("forward") if found is not None else None
        if forward is None or not found.is_module:  # type: ignore[union-attr]
            return False
        summary = self.file.summary_for(forward)
        return (
            summary is not None and summary.return_graph is not None and not (summary.return_graph)
        )

    def _class_method_graph(self, call: cst.Call, state: PathState) -> Optional[frozenset]:
        """`agent.act(obs)` where the classes of this file that define `act` (other than as
        `forward`) are all read: the union of what their returns carry, `self` mapped onto
        the receiver and parameters onto the arguments (`act` returning `q.argmax().item()`
        or a random action carries no graph). None when no class of the file defines it or
        one cannot be read (recursion, no `return`): then the call counts as a forward."""
        func = call.func
        if type(func) is not cst.Attribute or func.attr.value in ("forward", "__call__"):
            return None
        name = func.attr.value
        receiver = dotted_name(func.value)
        methods = [c.methods[name] for c in self.file.classes.values() if name in c.methods]
        if not methods:
            imported = self._imported_method(call)
            return imported(state) if imported is not None else None
        if receiver is None:
            return None
        found: frozenset = _EMPTY
        for info in methods:
            summary = self.file.summary_for(info)
            if summary is None or summary.return_graph is None:
                return None
            found |= self._method_items(summary, summary.return_graph, call, receiver, state)
        return found

    def _parameter_free_forward(self, call: cst.Call, state: PathState) -> bool:
        """`mel(wav)` with `mel = MelSpec(...)` of a module class (of this file or another
        project file) that holds no parameter, or of a library module known to hold none
        (`torchaudio.transforms.Resample`): see plain_modules.py. A class that keeps its
        constructor arguments counts only when none of them holds a module."""
        func = call.func
        built = self.bound_at.get(func.value) if type(func) is cst.Name else None
        if not isinstance(built, cst.BaseExpression):
            return False
        built = chain_receiver(built, SAME_MODULE_OR_MODE_METHODS)
        if type(built) is not cst.Call:
            return False
        if (self.imports.qualify(built.func) or "") in PARAMETER_FREE_LIBRARY_CLASSES:
            return True
        verdict: Optional[bool] = None
        local = self._local_class(built)
        if local is not None:
            source = getattr(self.file, "_source", "")
            verdicts = self.file.__dict__.get("_parameter_free")
            if verdicts is None:
                verdicts = self.file.__dict__["_parameter_free"] = (
                    parameter_free_classes(source) if source else {}
                )
            verdict = verdicts.get(local.name)
        else:
            found = self._imported_class_of(built)
            if found is not None and self.file.project is not None:
                verdict = parameter_free_module_class(self.file.project, self.file.path, *found)
        if verdict is None:
            return False
        return not verdict or all(self._holds_no_module(a.value, state) for a in built.args)

    def _runs_frozen_copy(self, call: cst.Call) -> bool:
        """The call runs an object whose parameters never require grad (see
        frozen_copies.py): `ema(x)` or `ema.sample(x)` with `ema = EMA(model)` of a library
        that freezes its copy, `self.ema_model(x)` or `agent.ema_actor.sample(x)` with the
        attribute frozen by its class's constructor."""
        func = call.func
        for receiver in (func, func.value) if type(func) is cst.Attribute else (func,):
            if type(receiver) is cst.Name:
                if builds_frozen_copy(self.bound_at.get(receiver.value), self.imports.qualify):
                    return True
                continue
            if type(receiver) is not cst.Attribute or type(receiver.value) is not cst.Name:
                continue
            holder = receiver.value.value
            owner = self._owner() if holder == "self" else self.module_classes.get(holder)
            if owner is not None and frozen_attribute(
                owner, receiver.attr.value, self.imports.qualify
            ):
                return True
        return False

    def _plain_method_of_file(self, func: cst.Attribute, state: PathState) -> bool:
        """`model.validation_epoch_end(outputs)` on a receiver no forward is proven to have
        fed (a parameter, an object of unknown type), where every class of this file that
        defines the method returns only values with no graph (a dict of `.item()` floats):
        the call returns such a value, whatever object the receiver is (every `return`
        written as plain values, see taint.py: a summary's empty provenance only says that
        nothing proves a graph). A receiver that carries a graph is a tensor, whose own
        method of that name computes from it."""
        name = func.attr.value
        if name in ("forward", "__call__") or name.startswith("__"):
            return False
        receiver = self.graph_of(func.value, state, True)
        if any(not item.startswith(PARAMETER) for item in receiver):
            return False
        methods = [c.methods[name] for c in self.file.classes.values() if name in c.methods]
        memo = self._memo("_returns_no_graph")
        return bool(methods) and all(
            type(info.node) is cst.FunctionDef and memo.get(info.node, _returns_no_graph)
            for info in methods
        )

    def _method_items(
        self, summary, items, call: cst.Call, receiver: str, state: PathState
    ) -> frozenset:
        """A method's return provenance `items` at a call on `receiver`: parameters become
        the arguments' provenance, `self...` the receiver's keys."""
        found: set[str] = set()
        for item in items:
            if item.startswith(PARAMETER):
                argument = _argument_for(summary, item[len(PARAMETER) :], call)
                if argument is not None:
                    found |= self.graph_of(argument, state, True)
                continue
            key = self._map_argument(summary, item, call, receiver, state)
            if key is not None:
                found.add(key)
            elif item == "self" or item.startswith("self."):
                found.add(receiver)
            else:
                found.add(item)  # `torch.autograd.grad`, a global module
        return frozenset(found)

    def _note_imported_class(self, name: str, value: cst.BaseExpression) -> None:
        """`agent = Agent(...)` (through `.to(device)` chains) with `Agent` imported from a
        project file: remembered, so `agent.act(obs)` is read for what `act` returns."""
        value = chain_receiver(value, SAME_MODULE_OR_MODE_METHODS)
        found = self._imported_class_of(value) if type(value) is cst.Call else None
        if found is not None and self.file.project is not None:
            self.imported_module_classes[name] = found
        else:
            self.imported_module_classes.pop(name, None)

    def _imported_method(self, call: cst.Call):
        # -> Optional[Callable[[PathState, Optional[int]], frozenset]]
        """`agent.act(obs)` on an object of a class of another project file (`agent =
        Agent(...)` in this function; an nn.Module, or a plain class such as a predictor
        that holds a model and is no module itself): what the method returns there, its `self`
        mapped onto the receiver and its parameters onto the arguments (`act` returning
        `action.numpy()` computed under `no_grad` carries no graph; per position for a
        returned tuple). None when the class or the method cannot be read: the call then
        counts as a forward of the object."""
        func = call.func
        project = self.file.project
        if type(func) is not cst.Attribute or type(func.value) is not cst.Name or project is None:
            return None
        if func.attr.value in ("forward", "__call__"):
            return None
        receiver = func.value.value
        found = self.imported_module_classes.get(receiver)
        if found is None:
            return None
        analysis = project.analysis(self.file.path, found[0])
        owner = analysis.classes.get(found[1]) if analysis is not None else None
        if analysis is None or owner is None:
            return None  # a plain class's method (a predictor holding a model) is read too
        info = owner.methods.get(func.attr.value) or analysis._inherited_method(
            owner, func.attr.value
        )
        summary = analysis.summary_for(info) if info is not None else None
        if summary is None or summary.return_graph is None:
            return None
        elements = summary.return_elements

        def mapped(state: PathState, index: Optional[int] = None) -> frozenset:
            items = summary.return_graph if index is None or elements is None else elements[index]
            return self._method_items(summary, items or (), call, receiver, state)

        mapped.elements = len(elements) if elements is not None else None  # type: ignore[attr-defined]
        return mapped

    def _own_function(self, call: cst.Call, state: PathState):
        # -> Optional[Callable[[PathState], frozenset]]
        """The provenance of a call of a function this file (or the project) defines and the
        analysis reads: its returns' provenance, mapped onto the caller's arguments. A
        function of another project file is read when it is given a graph-carrying value
        (`calculate_loss(prediction, target)` may return `math.log` floats): only then does
        its result matter."""
        func = call.func
        if not (
            type(func) is cst.Name or (type(func) is cst.Attribute and type(func.value) is cst.Name)
        ):
            return None
        resolved = self.file.resolve_function(call, self.info, count=False)
        if (
            resolved is None
            and self.file.project is not None
            and (
                (type(func) is cst.Name and func.value in self.imports.modules_from)
                or (  # `from utils import *` then `margin(out, y)`
                    type(func) is cst.Name
                    and bool(self.imports.star_modules)
                    and not self.imports.is_imported(func.value)
                )
                or (
                    type(func) is cst.Attribute
                    and self.imports.is_imported(cast(cst.Name, func.value).value)
                )
            )
            and self._arguments_graph(call, state)
        ):
            resolved = self.file.resolve_function(call, self.info, count=False, passes_module=True)
        if resolved is None and self.file.project is None and self.file.reader is not None:
            resolved = self._read_imported_helper(call, state)
        if resolved is None:
            return None
        summary, on_self = resolved
        if summary is None or summary.return_graph is None:
            return lambda state: _EMPTY  # recursion, or no return: unknown

        def mapped(state: PathState, index: Optional[int] = None) -> frozenset:
            found: set[str] = set()
            elements = summary.return_elements
            items = summary.return_graph if index is None or elements is None else elements[index]
            for item in items or ():
                if item.startswith(PARAMETER):
                    argument = _argument_for(summary, item[len(PARAMETER) :], call)
                    if argument is not None:
                        found |= self.graph_of(argument, state, True)
                    continue
                if item == "torch.autograd.grad":
                    found.add(item)
                    continue
                key = self._map_argument(summary, item, call, "self" if on_self else None, state)
                if key is None and item in self.scope_keys:
                    key = item  # a closure's module: the same name here
                if key is not None and self.candidate_keys.get(key, 0) != _UNHINTED:
                    found.add(key)
            return frozenset(found)

        elements = summary.return_elements
        mapped.elements = len(elements) if elements is not None else None  # type: ignore[attr-defined]
        return mapped

    def _read_imported_helper(self, call: cst.Call, state: PathState):
        # -> Optional[tuple[Optional[Summary], bool]]
        """In a file analysed because another file imports it, a function of a further
        project file given a graph-carrying value (`accuracy(scores, labels)` of
        `metrics.py`): its summary, read for what it returns (a NumPy score carries no
        graph), as the linted file reads its own imports. None when it cannot be read."""
        reader = self.file.reader
        func = call.func
        if reader is None or not self._arguments_graph(call, state):
            return None
        module: Optional[str] = None
        if type(func) is cst.Name:
            module = self.imports.modules_from.get(func.value)
        elif type(func) is cst.Attribute and type(func.value) is cst.Name:
            if self.imports.is_imported(func.value.value):
                module = self.imports.module_path(func.value.value)
        if module is None:
            return None
        qualified = self.imports.qualify(func) or cast(cst.Name, func).value
        summary = reader.summary(self.file.path, module, qualified)
        return (summary, False) if summary is not None else None


"""Methods that return the module they are called on."""


def _argument_for(summary, parameter: str, call: cst.Call) -> Optional[cst.BaseExpression]:
    """The caller's expression passed for `parameter` (by keyword, else by position)."""
    for argument in call.args:
        if argument.keyword is not None and argument.keyword.value == parameter:
            return argument.value
    if parameter in summary.params:
        index = summary.params.index(parameter)
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if index < len(positional):
            return positional[index].value
    return None


def _grad_switch(expr: cst.BaseExpression, imports: ImportTable) -> Optional[bool]:
    """True for `torch.no_grad()` / `inference_mode()`, False for `enable_grad()`."""
    func = expr.func if type(expr) is cst.Call else expr
    qualified = imports.qualify(func) or ""
    if qualified in GRAD_DISABLERS:
        return True
    if qualified in GRAD_ENABLERS:
        return False
    return None


def _calls_by_grad(module: cst.Module, imports: ImportTable) -> dict[str, list[bool]]:
    """Called name (`f(...)`, `self.f(...)`) -> for each call in the file, whether it runs
    with autograd off as far as its own function shows (a `with torch.no_grad():` around it,
    a `@torch.no_grad()` decorator on its function). One lean walk (code-bearing fields
    only, see walk.py) with an explicit stack, not a recursive closure: a closure that names
    itself is a reference cycle holding the file's tree."""
    found: dict[str, list[bool]] = {}
    stack: list[tuple[cst.CSTNode, bool]] = [(module, False)]
    pop = stack.pop
    children: list[cst.CSTNode] = []
    while stack:
        node, off = pop()
        kind = type(node)
        if kind is cst.FunctionDef:
            function = cast(cst.FunctionDef, node)
            # the body runs when the function is called, not where it is defined
            off = any(_grad_switch(d.decorator, imports) for d in function.decorators)
            stack.append((function.body, off))
            continue
        if kind is cst.With:
            with_node = cast(cst.With, node)
            inner = off
            for item in with_node.items:
                stack.append((item.item, off))
                turned = _grad_switch(item.item, imports)
                if turned is not None:
                    inner = turned
            stack.append((with_node.body, inner))
            continue
        if kind is cst.Call:
            func = cast(cst.Call, node).func
            if type(func) is cst.Name:
                found.setdefault(func.value, []).append(off)
            elif (
                type(func) is cst.Attribute
                and type(func.value) is cst.Name
                and func.value.value == "self"
            ):
                found.setdefault(func.attr.value, []).append(off)
        push_children(node, children.append, 2)
        stack.extend((child, off) for child in children)
        children.clear()
    return found


def may_turn_grad_off(source: str) -> bool:
    """Whether `source` (when known) can name a grad disabler at all: each is spelled with
    one of these words, whatever the import alias (`from torch import no_grad as ng`)."""
    return not source or any(word in source for word in _DISABLER_WORDS)


_DISABLER_WORDS = frozenset(name.split(".")[-1] for name in GRAD_DISABLERS)


def calls_by_grad(file: FileAnalysis) -> dict[str, list[bool]]:
    """Per function name of the file, whether each of its calls runs with autograd off
    (`_calls_by_grad`); a whole-file table, walked once per file."""
    table: Optional[dict[str, list[bool]]] = file.__dict__.get("_calls_by_grad")
    if table is None:
        # without a word for `no_grad`, no call in the file runs with autograd off
        table = file.__dict__["_calls_by_grad"] = (
            _calls_by_grad(file.module, file.imports)
            if may_turn_grad_off(getattr(file, "_source", ""))
            else {}
        )
    return table
