"""Optimizers: whether a file builds or steps one, and which modules' parameters each holds."""

from __future__ import annotations

import re
from collections.abc import Hashable
from functools import partial
from typing import Callable, Optional, cast

import libcst as cst

from evallint.analysis.manual_updates import updates_parameters_by_hand
from evallint.analysis.reuse import memo_with
from evallint.analysis.symbols import ImportTable, dotted_name


def is_optimizer_name(node: cst.BaseExpression) -> bool:
    from evallint.analysis.regions import is_optimizer_receiver

    return is_optimizer_receiver(node)


_OPTIMIZER_CLASSES = frozenset(
    {
        "SGD",
        "Adam",
        "AdamW",
        "RMSprop",
        "Adagrad",
        "Adadelta",
        "Adamax",
        "NAdam",
        "RAdam",
        "LBFGS",
        "SparseAdam",
        "Lion",
        "Adafactor",
        "LAMB",
        "Lamb",
    }
)


_GRADIENT_CLIPS = frozenset(
    {
        "torch.nn.utils.clip_grad_norm_",
        "torch.nn.utils.clip_grad_norm",
        "torch.nn.utils.clip_grad_value_",
        "torch.nn.utils.clip_grad.clip_grad_norm_",
        "torch.nn.utils.clip_grad.clip_grad_value_",
    }
)
"""Clipping parameters' gradients: done only before an update of those parameters, so a
file that clips steps an optimizer even when it is built and stepped elsewhere
(`optimizer.step_and_update_lr()` of a project wrapper)."""


_OPTIM_WORD = re.compile(r"ptim(?!iz(?!er)|is(?!er)|al|um)")


_OPTIMIZER_CLASS_WORD = re.compile(r"\b(?:" + "|".join(sorted(_OPTIMIZER_CLASSES)) + r")\b")


def _may_build_optimizer(source: str) -> bool:
    """Text without which a file builds and steps no optimizer: `.step(`, `clip_grad_`, `optim`/`Optim`
    (`optimize`, `optimal` do not count) or an optimizer class. Literal searches first:
    one regex alternation over every file cost more than the rest of this check."""
    if ".step(" in source or "clip_grad_" in source:
        return True
    if any(source[m.start() - 1 : m.start()] in ("O", "o") for m in _OPTIM_WORD.finditer(source)):
        return True
    return (
        any(name in source for name in _OPTIMIZER_CLASSES)
        and _OPTIMIZER_CLASS_WORD.search(source) is not None
    )


class OptimizerFacts:
    """Part of `FileAnalysis`: the optimizer facts of its file, computed on first use."""

    # set by FileAnalysis.__init__
    module: cst.Module
    imports: ImportTable
    _source: Optional[str]
    _has_optimizer: Optional[bool]
    _optimizer_params: Optional[dict[str, frozenset[str]]]
    optimizer_links: Optional[frozenset[str]]

    @property
    def has_optimizer(self) -> bool:
        """Whether the file builds or steps an optimizer: only then is `backward()` training
        (without one it computes saliency maps or adversarial inputs). Text first, then the
        tree, so files without the word pay nothing."""
        if self._has_optimizer is None:
            self._has_optimizer = False
            if not self._source or _may_build_optimizer(self._source):
                from evallint.analysis.regions import training_call_kind
                from evallint.analysis.walk import iter_nodes

                for node in iter_nodes(self.module, enter_scopes=True):
                    if type(node) is cst.Call:
                        qualified = self.imports.qualify(node.func) or ""
                        if (
                            qualified.startswith("torch.optim.")
                            or qualified in _GRADIENT_CLIPS
                            or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
                            or training_call_kind(node, self.imports) == "step"
                        ):
                            self._has_optimizer = True
                            break
            if not self._has_optimizer and "parameters()" in (self._source or "parameters()"):
                self._steppers = frozenset(_find_steppers(self.module))
                self._has_optimizer = bool(self._steppers)
            if not self._has_optimizer and ".grad" in (self._source or ".grad"):
                # `for p in net.parameters(): p.data.add_(-lr, p.grad.data)`: plain SGD
                # written by hand steps the parameters as an optimizer would
                self._has_optimizer = updates_parameters_by_hand(self.module)
        return self._has_optimizer

    _steppers: Optional[frozenset[str]] = None

    def parameter_steppers(self) -> frozenset[str]:
        """In a file that builds no optimizer evallint knows, the names bound to what a call
        builds from a module's parameters and that the file then calls or steps
        (`train_op = make_train_op(params=model.parameters())` ... `train_op()`): an
        optimizer step whatever its builder is called. Found by `has_optimizer`, with one
        more walk only in files that mention `.parameters()` and build no known optimizer."""
        if not self.has_optimizer:
            return frozenset()
        return self._steppers or frozenset()

    def steps_parameters_by_call(self, call: cst.Call) -> bool:
        """`train_op()` or `train_op.step()` of a name in `parameter_steppers`."""
        func = call.func
        if type(func) is cst.Attribute and func.attr.value == "step":
            func = func.value
        return dotted_name(func) in self.parameter_steppers()

    def optimizer_params(self) -> dict[str, frozenset[str]]:
        """Optimizer variable -> the modules whose parameters it was built with."""
        if self._optimizer_params is None:
            self.optimizer_keys()
        return self._optimizer_params or {}

    def optimizer_keys(self) -> frozenset[str]:
        """Modules whose parameters some optimizer in the file was built with; empty when
        the file builds no optimizer (then every module forwarded with grad is trained)."""
        if self.optimizer_links is None:
            links: set[str] = set()
            by_variable: dict[str, set[str]] = {}
            from evallint.analysis.walk import iter_nodes

            for node in iter_nodes(self.module, enter_scopes=True) if self.has_optimizer else ():
                node_type = type(node)
                if node_type is cst.Assign:
                    assign = cast(cst.Assign, node)
                    if type(assign.value) is cst.Call and len(assign.targets) == 1:
                        variable = dotted_name(assign.targets[0].target)
                        if variable:
                            owners = self._parameter_owners(assign.value)
                            if not owners and variable in self._stepped_names():
                                # `opt = get_class(cfg)(model.parameters(), **args)` ... `opt.step()`
                                owners = parameters_owners(assign.value)
                                links |= owners
                            by_variable[variable] = owners
                if node_type is cst.Call:
                    qualified = self.imports.qualify(cast(cst.Call, node).func) or ""
                    if (
                        qualified.startswith("torch.optim.")
                        or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
                    ):
                        for inner in iter_nodes(node):
                            if (
                                type(inner) is cst.Call
                                and type(inner.func) is cst.Attribute
                                and inner.func.attr.value in ("parameters", "named_parameters")
                            ):
                                name = dotted_name(inner.func.value)
                                if name:
                                    links.add(name)
            self.optimizer_links = frozenset(links)
            self._optimizer_params = {
                k: frozenset(v) for k, v in by_variable.items() if v and v <= links
            }
        return self.optimizer_links

    _stepped: Optional[frozenset[str]] = None

    def _stepped_names(self) -> frozenset[str]:
        """Names whose `step()` the file calls (`opt.step()`): bound to a call built over a
        module's parameters, an optimizer over that module whatever builds it (a builder
        read from a config, `get_class(cfg.optimizer)(model.parameters(), **args)`)."""
        if self._stepped is None:
            from evallint.analysis.walk import iter_nodes

            found: set[str] = set()
            if ".step(" in (self._source or ".step("):
                for node in iter_nodes(self.module, enter_scopes=True):
                    if (
                        type(node) is cst.Call
                        and type(node.func) is cst.Attribute
                        and node.func.attr.value == "step"
                    ):
                        name = dotted_name(node.func.value)
                        if name is not None:
                            found.add(name)
            self._stepped = frozenset(found)
        return self._stepped

    def _parameter_owners(self, call: cst.Call) -> set[str]:
        qualified = self.imports.qualify(call.func) or ""
        if not (
            qualified.startswith("torch.optim.") or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
        ):
            return set()
        return parameters_owners(call)


def _find_steppers(module: cst.Module) -> set[str]:
    """Names bound to an object built over module parameters that the file then calls or
    steps (`train_op = make_train_op(params=model.parameters())` ... `train_op()`)."""
    from evallint.analysis.walk import iter_nodes

    built: set[str] = set()
    called: set[str] = set()
    for node in iter_nodes(module, enter_scopes=True):
        if type(node) is cst.Assign:
            built.update(_built_over_parameters(node))
        elif type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and func.attr.value == "step":
                func = func.value
            name = dotted_name(func)
            if name is not None:
                called.add(name)
    return built & called


def _built_over_parameters(assign: cst.Assign) -> list[str]:
    """Names bound to an object built over module parameters (`op = op_type(model.parameters(),
    lr=lr)`, an optimizer class the caller passes in, `make_op(params=model.parameters())`):
    with a `step()` or a call of its own, an optimizer, whatever its class or name (a name
    never stepped or called, `n = sum(p.numel() for p in model.parameters())`, is harmless)."""
    from evallint.analysis.walk import iter_nodes

    call = assign.value
    if type(call) is not cst.Call or not any(
        type(inner) is cst.Call
        and type(inner.func) is cst.Attribute
        and inner.func.attr.value in ("parameters", "named_parameters")
        for arg in call.args
        for inner in iter_nodes(arg.value)
    ):
        return []
    names: list[str] = []
    for t in assign.targets:
        # `engine, opt, loader, _ = deepspeed.initialize(model=m, model_parameters=m.parameters())`:
        # whichever item the file steps or calls is the optimizer
        parts = [e.value for e in t.target.elements] if type(t.target) is cst.Tuple else [t.target]
        names.extend(name for part in parts if (name := dotted_name(part)) is not None)
    return names


def _is_optimizer_class(qualified: str) -> bool:
    return qualified.startswith("torch.optim.") or qualified.split(".")[-1] in _OPTIMIZER_CLASSES


def _requires_grad_names(module: cst.Module) -> set[str]:
    """Plain names the file makes require grad: `x = torch.zeros(..., requires_grad=True)`,
    `x = y.clone().requires_grad_()`, `x.requires_grad_(True)`, `x.requires_grad = True`."""
    from evallint.analysis.walk import iter_nodes

    found: set[str] = set()
    for node in iter_nodes(module, enter_scopes=True):
        if isinstance(node, cst.Assign):
            value = node.value
            flagged = isinstance(value, cst.Call) and (
                any(
                    a.keyword is not None
                    and a.keyword.value == "requires_grad"
                    and type(a.value) is cst.Name
                    and a.value.value == "True"
                    for a in value.args
                )
                or _sets_requires_grad(value)
            )
            for target in node.targets:
                name = target.target
                if isinstance(name, cst.Name) and flagged:
                    found.add(name.value)
                if (
                    isinstance(name, cst.Attribute)
                    and name.attr.value == "requires_grad"
                    and isinstance(name.value, cst.Name)
                    and isinstance(value, cst.Name)
                    and value.value == "True"
                ):
                    found.add(name.value.value)
        elif (
            isinstance(node, cst.Call)
            and _sets_requires_grad(node)
            and isinstance(node.func, cst.Attribute)
            and isinstance(node.func.value, cst.Name)
        ):
            found.add(node.func.value.value)
    return found


def _sets_requires_grad(call: cst.Call) -> bool:
    func = call.func
    return (
        type(func) is cst.Attribute
        and func.attr.value == "requires_grad_"
        and not (
            call.args
            and type(call.args[0].value) is cst.Name
            and call.args[0].value.value == "False"
        )
    )


class InputOptimizerFacts:
    """Part of `FileAnalysis`: optimizers that step inputs, not modules.

    An adversarial attack steps a perturbation, style transfer steps the image: the optimizer
    is built over a literal list of tensors the file made require grad, and no module's
    parameters. Their `step()` trains nothing, and a backward whose only optimizer is one of
    them computes the input's gradient (an evaluation that needs autograd), not training."""

    module: cst.Module
    imports: ImportTable
    _input_optimizers: Optional[frozenset[str]] = None
    _steps_parameters: Optional[bool] = None

    _grad_inputs: Optional[frozenset[str]] = None

    def is_grad_input(self, name: str) -> bool:
        """Whether the file makes the plain name `name` require grad (an input whose
        gradient it reads: `delta.requires_grad = True` ... `delta.grad`)."""
        if self._grad_inputs is None:
            self._grad_inputs = frozenset(
                _requires_grad_names(self.module)
                if "requires_grad" in (self._source or "requires_grad")  # type: ignore[attr-defined]
                else ()
            )
        return name in self._grad_inputs

    def input_optimizers(self) -> frozenset[str]:
        """Variables bound to an optimizer over inputs (see the class docstring)."""
        if self._input_optimizers is None:
            self._input_optimizers = frozenset()
            if self.has_optimizer and "requires_grad" in (self._source or "requires_grad"):  # type: ignore[attr-defined]
                self._input_optimizers = frozenset(self._find_input_optimizers())
        return self._input_optimizers

    def _find_input_optimizers(self) -> set[str]:
        from evallint.analysis.walk import iter_nodes

        found: set[str] = set()
        for node in iter_nodes(self.module, enter_scopes=True):
            if not (
                isinstance(node, cst.Assign)
                and isinstance(node.value, cst.Call)
                and len(node.targets) == 1
                and isinstance(node.targets[0].target, cst.Name)
                and _is_optimizer_class(self.imports.qualify(node.value.func) or "")
                and node.value.args
            ):
                continue
            params = node.value.args[0].value
            items = (
                [e.value for e in params.elements]
                if isinstance(params, (cst.List, cst.Tuple))
                else [params]
            )
            names = [item.value for item in items if isinstance(item, cst.Name)]
            if names and len(names) == len(items) and all(map(self.is_grad_input, names)):
                found.add(node.targets[0].target.value)
        return found

    def steps_input(self, call: cst.Call) -> bool:
        """`delta_opt.step()`: a step of an optimizer over inputs."""
        func = call.func
        return (
            type(func) is cst.Attribute
            and func.attr.value == "step"
            and type(func.value) is cst.Name
            and func.value.value in self.input_optimizers()
        )

    _backward_reach: Optional[dict[int, bool]] = None

    def backward_trains(self, call: cst.Call) -> bool:
        """Whether this `backward()` call feeds a parameter step (see `backward_reach`):
        False in a function that no step of the file serves (a Fisher or gradient-norm pass
        in a file whose other function trains), even though the file steps parameters;
        True for every backward of a file where no step serves any."""
        if not self.steps_parameters:
            return False
        reach = self.backward_trains_table()
        # no backward of the file is served by a step (the step is forgotten, or taken in
        # another file): every backward is training, not a Fisher or gradient-norm pass
        return reach.get(id(call), True) or not any(reach.values())

    def backward_trains_table(self) -> dict[int, bool]:
        """`backward_reach` of the file: id of each backward call -> whether a step serves
        it, in the order of the tree's walk; computed once per file."""
        if self._backward_reach is None:
            self._backward_reach = backward_reach(
                self.module,
                self.imports,
                self.steps_input,
                self.steps_parameters_by_call,  # type: ignore[attr-defined]
                # what the two answer from (see `steps_input`, `steps_parameters_by_call`)
                (self.imports.key(), self.input_optimizers(), self.parameter_steppers()),  # type: ignore[attr-defined]
            )
        return self._backward_reach

    @property
    def steps_parameters(self) -> bool:
        """Whether some optimizer of the file may step module parameters: then backward()
        is training. False when the file has no optimizer or only optimizers over inputs."""
        if self._steps_parameters is None:
            self._steps_parameters = self.has_optimizer  # type: ignore[attr-defined]
            if self._steps_parameters and self.input_optimizers():
                self._steps_parameters = self._steps_other_optimizer()
        return self._steps_parameters

    def _steps_other_optimizer(self) -> bool:
        from evallint.analysis.regions import training_call_kind
        from evallint.analysis.walk import iter_nodes

        inputs = self.input_optimizers()
        for node in iter_nodes(self.module, enter_scopes=True):
            if type(node) is cst.Call:
                qualified = self.imports.qualify(node.func) or ""
                if _is_optimizer_class(qualified):
                    continue  # constructions are judged by the assignment below
                if training_call_kind(node, self.imports) == "step" and not self.steps_input(node):
                    return True
            elif (
                type(node) is cst.Assign
                and type(node.value) is cst.Call
                and _is_optimizer_class(self.imports.qualify(node.value.func) or "")
                and not (
                    len(node.targets) == 1
                    and type(node.targets[0].target) is cst.Name
                    and node.targets[0].target.value in inputs
                )
            ):
                return True
        return False


_Scope = Optional[int]
"""A function of the file by its node's id; None for the module's top level."""


def backward_reach(
    module: cst.Module,
    imports: ImportTable,
    steps_input: Callable[[cst.Call], bool],
    steps_by_call: Callable[[cst.Call], bool] = lambda call: False,
    context: Optional[Hashable] = None,
) -> dict[int, bool]:
    """For every backward call of the file, whether a parameter step serves it: one in its
    own function, in a function it calls that does no backward of its own (an
    `optimizer_step()` helper, passed on through its callers' callees too), or in a function
    that calls it (directly or further up; the top level counts as a function). A step in a
    sibling that backwards for itself (`train()` next to `fisher()`, both called by `main`)
    serves only its own backward. Calls are matched by name (`f(...)`, `self.f(...)`, a
    function passed as `optimizer.step(closure)`), so an unreadable call connects nothing.
    `context`, when given, holds all that `steps_input` and `steps_by_call` answer from
    besides the call: a language server then keeps each statement's scan for the next lint
    (`evallint.analysis.reuse`; the scan reads the statement, the imports and the file's
    optimizer names, which the key holds too)."""

    scopes: list[tuple[_Scope, cst.CSTNode]] = [(None, module)]
    defined: dict[str, list[_Scope]] = {}
    optimizers: set[str] = set()
    """Names bound to an optimizer the file builds (`optm = torch.optim.Adam(...)`), whose
    `step()` is a step whatever the name says."""
    for outer in module.body:  # the module's walk is its statements' walks in order
        own_optimizers, own_scopes = (
            _definitions(outer, imports)
            if context is None
            else memo_with(
                "backward_reach.definitions",
                outer,
                context,
                partial(_definitions, imports=imports),
            )
        )
        optimizers |= own_optimizers
        for scope in own_scopes:
            if type(scope) is cst.FunctionDef:
                defined.setdefault(scope.name.value, []).append(id(scope))
                scopes.append((id(scope), scope.body))
            else:
                scopes.append((None, scope.body))  # class-level statements
    steps: set[_Scope] = set()
    backwards: dict[_Scope, list[int]] = {}
    names: dict[_Scope, set[str]] = {}
    top: list[tuple[bool, frozenset[str], tuple[int, ...]]] = []
    """Per top-level statement of the module (a notebook's cells in order): whether it steps,
    the names it uses, its backward calls. A script runs its statements once, in order, so a
    top-level backward is served only by a step in its own statement or a later one (a
    saliency cell after the training cells updates no weight)."""
    scan = partial(
        _scope_statement,
        imports=imports,
        steps_input=steps_input,
        steps_by_call=steps_by_call,
        optimizers=frozenset(optimizers),
    )
    kept = (context, scan.keywords["optimizers"])
    for key, root in scopes:
        named = names.setdefault(key, set())
        for statement in module.body if root is module else [root]:
            own_step, own_names, own_backwards = (
                scan(statement)
                if context is None
                else memo_with("backward_reach", statement, kept, scan)
            )
            if own_backwards:
                backwards.setdefault(key, []).extend(own_backwards)
            if own_step:
                steps.add(key)
            named |= own_names
            if root is module:
                top.append((own_step, own_names, own_backwards))
    callees: dict[_Scope, set[_Scope]] = {
        key: {f for name in used if name in defined for f in defined[name] if f != key}
        for key, used in names.items()
    }
    # a function with no backward of its own passes its (callees') steps up to its callers
    exports: set[_Scope] = set()
    changed = True
    while changed:
        changed = False
        for key, called in callees.items():
            if key in exports or key in backwards or key is None:
                continue
            if key in steps or called & exports:
                exports.add(key)
                changed = True
    served = {key for key, called in callees.items() if key in steps or called & exports}
    callers: dict[_Scope, set[_Scope]] = {}
    for key, called in callees.items():
        for callee in called:
            callers.setdefault(callee, set()).add(key)
    result: dict[int, bool] = {}
    for key, calls in backwards.items():
        trains = key in served
        seen, pending = {key}, [key]
        while pending and not trains:
            for caller in callers.get(pending.pop(), ()):
                if caller not in seen:
                    seen.add(caller)
                    trains = trains or caller in served
                    pending.append(caller)
        for call_id in calls:
            result[call_id] = trains
    # the top level: a statement is served by its own steps or a later statement's
    exporting = {name for name, keys in defined.items() if any(k in exports for k in keys)}
    later = False
    for own_step, own_names, own_backwards in reversed(top):
        later = later or own_step or bool(own_names & exporting)
        for call_id in own_backwards:
            result[call_id] = later
    return result


def _definitions(
    statement: cst.CSTNode, imports: ImportTable
) -> tuple[frozenset[str], tuple[cst.FunctionDef | cst.ClassDef, ...]]:
    """What `backward_reach` reads of one top-level statement before its scan: the names it
    binds to an optimizer (`optm = torch.optim.Adam(...)`, `_built_over_parameters`), and its
    functions and classes (each a scope of its own) in the order of the walk. Read from the
    statement and the imports alone, so a language server keeps it per statement node (an
    edit's kept statements are not walked again)."""
    from evallint.analysis.walk import iter_nodes

    optimizers: set[str] = set()
    scopes: list[cst.FunctionDef | cst.ClassDef] = []
    for node in iter_nodes(statement, enter_scopes=True):
        if type(node) is cst.Assign and type(node.value) is cst.Call:
            qualified = imports.qualify(node.value.func) or ""
            if qualified.startswith("torch.optim.") or (
                qualified.split(".")[-1] in _OPTIMIZER_CLASSES
            ):
                optimizers.update(
                    name for t in node.targets if (name := dotted_name(t.target)) is not None
                )
            optimizers.update(_built_over_parameters(node))
        if type(node) is cst.FunctionDef or type(node) is cst.ClassDef:
            scopes.append(node)
    return frozenset(optimizers), tuple(scopes)


def _scope_statement(
    statement: cst.CSTNode,
    *,
    imports: ImportTable,
    steps_input: Callable[[cst.Call], bool],
    steps_by_call: Callable[[cst.Call], bool],
    optimizers: frozenset[str],
) -> tuple[bool, frozenset[str], tuple[int, ...]]:
    """One statement of a scope (`backward_reach`): whether it steps parameters, the names
    it uses, its backward calls (by id)."""
    from evallint.analysis.regions import training_call_kind
    from evallint.analysis.walk import iter_nodes

    own_step, own_names, own_backwards = False, set(), []
    for node in iter_nodes(statement):
        kind = type(node)
        if kind is cst.Call:
            call = cast(cst.Call, node)
            found = training_call_kind(call, imports)
            if found == "backward":
                own_backwards.append(id(call))
            elif (
                found == "step"
                or steps_by_call(call)
                or (
                    type(call.func) is cst.Attribute
                    and call.func.attr.value == "step"
                    and dotted_name(call.func.value) in optimizers
                )
            ) and not steps_input(call):
                own_step = True
        elif kind is cst.Name:
            own_names.add(cast(cst.Name, node).value)
        elif kind is cst.Attribute:
            own_names.add(cast(cst.Attribute, node).attr.value)
    return own_step, frozenset(own_names), tuple(own_backwards)


def parameters_owners(call: cst.Call) -> set[str]:
    """The modules whose `parameters()`/`named_parameters()` a call's arguments hold
    (`builder(model.parameters(), lr=lr)` -> {"model"}), whatever the call is."""
    from evallint.analysis.walk import iter_nodes

    owners: set[str] = set()
    for arg in call.args:
        for inner in iter_nodes(arg.value):
            if (
                type(inner) is cst.Call
                and type(inner.func) is cst.Attribute
                and inner.func.attr.value in ("parameters", "named_parameters")
            ):
                name = dotted_name(inner.func.value)
                if name:
                    owners.add(name)
    return owners
