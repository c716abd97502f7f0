"""The abstract interpreter: one pass over each function's statements, tracking every
module's possible modes and the possible grad states on each path.

Shaped like mypy's partially-defined pass: branches are interpreted separately and joined,
`return`/`raise`/`break`/`continue` take paths out of the normal flow, and loops run to a
fixpoint (that is how an epoch loop carries the eval mode its last `validate()` left behind
into the next epoch's training step). Functions are summarised once and the summary is
applied at every call site.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional, cast

import libcst as cst

from evallint.analysis.acting import forwards_act
from evallint.analysis.annotated_objects import annotated_objects
from evallint.analysis.binding import Binding
from evallint.analysis.caller_aliases import (
    attributes_every_caller_passes,
    globals_every_caller_passes,
    globals_sharing_a_module,
)
from evallint.analysis.calls import Calls
from evallint.analysis.class_members import ClassMembers
from evallint.analysis.closures import returns_own_function
from evallint.analysis.constructions import Constructions
from evallint.analysis.container_binding import ContainerBinding
from evallint.analysis.context import States
from evallint.analysis.effects import Effects, Observation, PendingTraining
from evallint.analysis.eval_attributes import modes_kept_by_methods
from evallint.analysis.facts import (
    EvalForward,
    Place,
    StepBlock,
    TrainingStep,
)
from evallint.analysis.filled_containers import members_mode
from evallint.analysis.flag_assignments import FlagAssignments
from evallint.analysis.flow import Statements
from evallint.analysis.forward_methods import backpropagating_forward
from evallint.analysis.frozen_copies import frozen_when_built
from evallint.analysis.global_grad import grad_left_set, sets_grad_unscoped
from evallint.analysis.gradient_clearers import GradientClearers
from evallint.analysis.handoff import returns_detached_tensor
from evallint.analysis.instances import modes_set_at_construction
from evallint.analysis.lattice import (
    ENTRY_GRAD,
    ENTRY_MODE,
    GRAD_ON,
    Grad,
    GradFact,
    Mode,
    ModeFact,
    Origin,
    PathState,
    normalize,
)
from evallint.analysis.library_hooks import library_hook, returns_forward_result
from evallint.analysis.lightning_hooks import after_training_epoch_hook, in_training_hook
from evallint.analysis.loaded_parts import LoadedParts
from evallint.analysis.loss_training import LossTraining
from evallint.analysis.observations import Observations
from evallint.analysis.own_methods import annotated_class
from evallint.analysis.parameters import (
    callable_parameter,
    callable_parameters,
    may_hold_module,
    mentions_module,
)
from evallint.analysis.plain_objects import annotated_plain, plain_class_named
from evallint.analysis.project import ProjectIndex  # noqa: F401  (engine/fixes.py imports it from here)
from evallint.analysis.property_aliases import property_aliases
from evallint.analysis.provenance import Provenance
from evallint.analysis.regions import (
    Region,
    RegionKind,
    classify_block,
    mentions_eval_data,
)
from evallint.analysis.reported import Reported, held_exit_modes
from evallint.analysis.restoring import (
    part_switched_back,
    restores_train_last,
    trains_beside_a_frozen_module,
)
from evallint.analysis.result_reports import feeds_back, hands_results_back, reports_results
from evallint.analysis.returned_arguments import rebinds_to_another
from evallint.analysis.returned_tuples import ReturnedTuples
from evallint.analysis.scope import (
    ClassInfo,
    FunctionInfo,
    frozen_modules,
    looks_like_module_name,
)
from evallint.analysis.self_setting_forwards import self_setting_forward
from evallint.analysis.specialise import Flags, settle
from evallint.analysis.stored_results import stores_forward_results
from evallint.analysis.summaries import ForwardRequirement, Summary, TrainingRequirement, at_yield
from evallint.analysis.switches import Switches
from evallint.analysis.symbols import dotted_name
from evallint.analysis.taint import Taint
from evallint.analysis.unit_tests import is_unit_test
from evallint.analysis.values import ModuleValue, Values
from evallint.analysis.vocabulary import (
    EVAL_FUNCTION_WORDS,
    GRAD_DISABLERS,
    GRAD_ENABLERS,
    NOT_MODULE_WORDS,
    words,
)

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


NAMED = 1
UNHINTED = 2
"""Levels of `_Interpreter.candidate_keys` (0: proven a module in the function itself)."""


class _Interpreter(
    Statements,
    Binding,
    ContainerBinding,
    Constructions,
    Calls,
    Switches,
    Effects,
    Values,
    Taint,
    Provenance,
    LossTraining,
    Observations,
    FlagAssignments,
    GradientClearers,
    Reported,
    ClassMembers,
    ReturnedTuples,
    LoadedParts,
):
    """Interprets one function body (or the module's top level) once."""

    def __init__(self, file: FileAnalysis, info: Optional[FunctionInfo], flags: Flags = ()) -> None:
        self.file = file
        self.info = info
        self.flags = flags
        """Parameters fixed to constants by the call this interpretation is specialised for."""
        self.imports = file.imports
        body_node = info.node if info is not None else file.module
        self.body = (
            list(info.node.body.body)
            if info is not None and type(info.node.body) is cst.IndentedBlock
            else ([] if info is not None else list(file.module.body))
        )
        self.evidence_names = file.scope(body_node).evidence
        self.candidate_keys: dict[str, int] = {}
        """Parameters that hold a module only if a caller passes one (nothing in the
        function proves it): NAMED if the name hints at one, UNHINTED otherwise."""
        self.scope_keys = self._scope_keys()
        self.regions: list[Region] = []
        self._observed_loops: set = set()
        self._tested_again: list = []  # conditions.tested_again of the body, once
        self.regions_evaluates = False
        self.eval_switches: list[cst.Call] = []  # `x.eval()` / `x.train(False)` calls here
        self.flag_chosen: set[int] = set()  # ids of switches.flag_chosen_switches calls
        self.evaluates = False
        """Whether anything here evaluates: an evaluation region, a forward in one (here or
        in a callee), or a forward with autograd off."""
        self.observations: dict[cst.Call, Observation] = {}
        self.training: dict[tuple[int, str], PendingTraining] = {}
        self.backpropagated: dict[int, frozenset] = {}
        """Region -> modules the known losses of its `backward()` calls come from."""
        """(region, module) -> what training it there has gathered."""
        self.grad_forwards: dict[int, set[str]] = {}
        self.frozen: set[str] = (
            set(frozen_modules(self.body))
            if file.mentions_requires_grad and self._mentions_requires_grad(body_node)
            else set()
        )
        owner = self._owner() if file.mentions_requires_grad else None
        if owner is not None:
            self.frozen |= frozen_when_built(owner)  # `self.identity`, frozen where built
        """Modules whose parameters this scope freezes, or that its class only ever holds
        frozen: their forwards build no graph, and no backward trains them."""
        self.frozen_so_far: set[str] = set()
        """Modules a `requires_grad_(False)` already run (in flow order) has frozen."""
        self.scope_locals = (
            frozenset(info.params + info.keyword_only) | self._assigned_names()
            if info is not None
            else frozenset()
        )
        self.opaque_switch: Optional[frozenset] = None
        self.opaque_variables: set[str] = set()
        """Names bound to `getattr(obj, name)`: one of several modules, not one we can name."""
        self.snapshot_receivers: dict[str, cst.BaseExpression] = {}
        """`was_training = model.training`: the variable -> `model` (see mode_tests.py)."""
        self.submodule_variables: set[str] = set()
        """Loop variables over `x.modules()` / `x.children()`: switching them is a partial freeze."""
        self.taint: dict[str, frozenset] = {}
        self.instances: dict[str, ClassInfo] = {}
        self.module_classes: dict[str, ClassInfo] = {}  # see own_methods.note_module_class
        self.built_classes: dict[str, ClassInfo] = {}  # any class of the file, same note
        self.imported_module_classes: dict[str, tuple[str, str]] = {}  # see provenance.py
        self.imported_instances: dict[str, list[tuple[FileAnalysis, ClassInfo]]] = {}
        """Objects of plain classes of other project files: (that file's analysis, class)."""
        self.containers: dict[str, tuple[str, ...]] = {}
        """Plain lists/dicts of modules: name -> the keys of the modules they hold."""
        self.assigning: frozenset[str] = frozenset()
        """The names the assignment being interpreted binds (while its value runs)."""
        owner = self._owner()
        if owner is not None and info is not None:
            self.instances.update(self._held_instances(owner))
            for name, members in self._class_containers(owner).items():
                self.containers[name] = members
                self.scope_keys.update(members)
        if owner is not None and info is not None:
            for name, held in self._held_imported_instances(owner).items():
                self.imported_instances[name] = list(held)
        self.imported_instances.update(annotated_objects(file, info))
        """Calls made as a statement of their own: their result is not used."""
        self.constructor_calls: set[cst.Call] = set()
        """Calls of a parameter or variable whose result is used as a module: `Model(envs)`
        with `Model` a class passed in, a construction, not a forward."""
        self.summary: Optional[Summary] = None
        self.yield_states: States = ()
        self.starts_in_callers_grad = False
        """The body starts in the caller's grad state (no grad decorator): a grad state it
        sets and leaves set is the caller's after the call (see global_grad.py)."""
        self.manager_states: States = ()
        self.restored_on_exit: set[str] = set()
        """Keys a decorating context manager switches on entry and restores on leaving."""
        """States at the `yield` of a context manager this function returns (`def
        eval_mode(m): return train_mode(m, False)`), mapped onto this function's keys."""
        self.grad_manager_names: dict[str, str] = {}
        self.grad_chosen_names: dict[str, cst.BaseExpression] = {}
        """`ctx = torch.enable_grad if c else torch.no_grad`: name -> the test that turns
        autograd on when it holds."""
        self.return_values: list[ModuleValue] = []
        self.return_states: States = ()
        self.returned_tuples: list[Optional[tuple]] = []
        self.requirements: list[ForwardRequirement] = []
        self.passed_up: set[tuple] = set()  # see Calls._apply_forward
        self.training_requirements: list[TrainingRequirement] = []
        self.trains = False
        self.returns_graph = False
        """Whether a `return` may hand a forward's graph to the caller."""
        self.graph_holders: set[str] = set()
        """Containers a value with a graph was put into (`outputs.append(model(x))`)."""
        self.graph_handed_out = False
        """Whether a value with a graph was handed to an object's method (`buffer.push(p)`)."""
        self._init_observations()
        self._init_provenance()
        self._init_plans()
        self._init_reported()

    # -- set up ------------------------------------------------------------------------------
    def _mentions_requires_grad(self, body: cst.CSTNode) -> bool:
        """Only then can this scope freeze a module (`requires_grad_(False)` or
        `p.requires_grad = False`): the walk for it is skipped otherwise."""
        return not self.file.scope(body).names.isdisjoint(("requires_grad", "requires_grad_"))

    def _scope_keys(self) -> set[str]:
        keys: set[str] = set()
        info = self.info
        if info is None:
            return {
                name
                for name in self.evidence_names
                if "." not in name and not self._python_module(name) and not self._names_class(name)
            }
        parameters = {
            p.name.value: p
            for p in (
                *info.node.params.params,
                *info.node.params.kwonly_params,
                *info.node.params.posonly_params,
            )
        }
        for name in (*info.params, *info.keyword_only):
            if name in ("self", "cls"):
                continue
            annotation = parameters[name].annotation if name in parameters else None
            annotated = (
                annotation is not None
                and (mentions_module(annotation.annotation) or annotated_class(self, name))
                and not words(name) & NOT_MODULE_WORDS
            )
            function = callable_parameter(parameters.get(name))  # `model_fn: Callable[...]`
            if (annotated and not function) or name in self.evidence_names:
                keys.add(name)
            elif self._non_module(name) or function:
                continue  # `encoder_tokenizer.batch_decode(ids)`: used as a tokenizer only
            elif looks_like_module_name(name) and not annotated_plain(
                self.file, parameters.get(name)
            ):  # `decoder: GreedyDecoder` is no module by its name (it may hold some)
                keys.add(name)
                self.candidate_keys[name] = NAMED
            elif may_hold_module(name, parameters.get(name)):
                keys.add(name)
                self.candidate_keys[name] = UNHINTED
        owner = self._owner()
        if owner is not None:
            if owner.is_module:
                keys.add("self")
            keys.update(self._class_module_attributes(owner))
        keys.update(
            name
            for name in self.evidence_names
            if not name.startswith("self.") and "." not in name and not self._names_class(name)
        )
        # a module-level module, unless this function binds the name for itself
        keys.update(
            self.file._module_keys & (self._free_names() - self.file.scope(info.node).locals)
        )
        if owner is not None and not owner.is_module and plain_class_named(self.file, owner.name):
            keys.discard("self")  # `self.eval()` of a NumPy `class Module(ABC)`: no nn.Module
        if info.parent is not None:
            local = (
                set(info.params) | self._assigned_names() | callable_parameters(info.parent.node)
            )
            globals_only = self._file_level_definitions(info)
            keys.update(
                n
                for n in self._free_names() - local
                if (looks_like_module_name(n) and n not in globals_only)
                or n in self.file.scope(info.parent.node).evidence
            )
        return keys

    def _file_level_definitions(self, info: FunctionInfo) -> frozenset[str]:
        """Free names of a nested function that no enclosing function binds and the file binds
        by an import or a `def`: globals (`is_model_wrapper(module)` inside a checkpoint
        loader's inner `load`), not a module closed over from the enclosing function. A
        module-level module is tracked as every function's (`file._module_keys`)."""
        enclosing: set[str] = set()
        parent = info.parent
        while parent is not None:
            enclosing |= {*parent.params, *parent.keyword_only}
            enclosing |= self.file.scope(parent.node).locals
            parent = parent.parent
        return frozenset(
            n
            for n in self._free_names() - enclosing
            if self.imports.is_imported(n) or n in self.file.functions
        )

    def _python_module(self, name: str) -> bool:
        """A name bound by `import x` names a Python module, never a torch module instance:
        `fc_model.train(model, loader)` calls a function of it."""
        return self.imports.is_imported(name) and name not in self.imports.modules_from

    def _names_class(self, name: str) -> bool:
        """A class of this file or an imported one of another project file: never a module
        instance, whatever is called on it (`Vocab.load_state_dict(state)`, a classmethod).
        In a file read for another one (its imports not followed), a CamelCase import."""
        if name in self.file.classes:
            return True
        module, project = self.imports.modules_from.get(name), self.file.project
        if module is None or project is None:
            return module is not None and name[:1].isupper() and not name.isupper()
        return project.is_class(self.file.path, module, self.imports.qualify_name(name) or name)

    def _assigned_names(self) -> frozenset[str]:
        return self.file.scope(self.info.node).assigned if self.info else frozenset()

    def _owner(self) -> Optional[ClassInfo]:
        cursor = self.info
        while cursor is not None:
            if cursor.owner is not None:
                return cursor.owner
            cursor = cursor.parent
        return None

    def _free_names(self) -> frozenset[str]:
        return self.file.scope(self.info.node).names if self.info else frozenset()

    def _from_caller(self, key: str) -> bool:
        """Whether a key names a module the caller can name too: not a local variable that
        merely holds one (`net = Net(); ...; return net` returns a new module)."""
        root = key.split(".")[0]
        info = self.info
        return (
            info is None
            or root == "self"
            or root not in self._assigned_names()
            or (root in info.params + info.keyword_only and not rebinds_to_another(info.node, root))
        )

    def initial_state(self) -> PathState:
        state = PathState()
        if self.info is None:
            return state
        for key in sorted(self.scope_keys):
            state = state.with_mode(key, ENTRY_MODE).with_alias(key, key)
        state = in_training_hook(self.info, self.scope_keys, state)
        owner = self._owner()
        if owner is not None:
            for variable, target in self._held_aliases(owner):
                if target in self.scope_keys:
                    state = state.with_alias(variable, target)
            for variable, target in property_aliases(owner.node):
                if target in self.scope_keys:
                    state = state.with_alias(variable, target)  # `self.unwrapped_model`
            for variable, target in self._copied_attributes(owner):
                if variable in self.scope_keys and state.key_of(variable) == variable:
                    # `self._original_model = self.state.model`: one module, two paths
                    if state.mode_of(target) is None:
                        state = state.with_mode(target, ENTRY_MODE).with_alias(target, target)
                    state = state.with_alias(variable, target)
        state = self._closure_modes(state)
        for param, name in globals_every_caller_passes(
            self.file, self.info, self._used_module_globals()
        ).items():
            if state.mode_of(name) is None:
                state = state.with_mode(name, ENTRY_MODE)  # used by a callee only
            state = state.with_alias(param, name)  # `val(crnn, ...)` only: one module
        for name, wrapped in globals_sharing_a_module(
            self.file, self._module_globals_used()
        ).items():
            state = state.with_alias(name, wrapped)  # `para_model = DataParallel(model)`
        if owner is not None and self.info.params:
            for param, attribute in attributes_every_caller_passes(self.file, self.info).items():
                if param in self.scope_keys and attribute in self.scope_keys:
                    state = state.with_alias(param, attribute)  # `self.test_(x, self.model)`
        if owner is not None and self.info.name != "__init__":
            constructed = modes_set_at_construction(self.file, owner)
            for key, facts in constructed.items():
                if key in self.scope_keys:
                    state = state.with_mode(key, facts)
            for key, facts in modes_kept_by_methods(self.file, owner).items():
                if key in self.scope_keys and key not in constructed:
                    state = state.with_mode(key, facts)
        grad = ENTRY_GRAD
        for decorator in self.info.decorators:
            if (
                decorator in GRAD_DISABLERS
                or {"inference", "mode"} <= words(decorator.split(".")[-1])
                or "no_grad" in decorator.split(".")[-1]
            ):
                grad = frozenset({GradFact(Grad.OFF)})
            elif decorator in GRAD_ENABLERS:
                grad = GRAD_ON
            elif self.file.grad_disabling_decorator(decorator):
                grad = frozenset({GradFact(Grad.OFF)})
        for name, value in self.flags:
            state = state.assuming(name, value)
        state, managed_grad = self._entered_by_decorators(state)
        if managed_grad is not None and grad == ENTRY_GRAD:
            grad = frozenset({GradFact(managed_grad)})
        self.starts_in_callers_grad = grad == ENTRY_GRAD
        return state.with_grad(grad)

    def note_returned_manager(self, call: cst.Call, states: States) -> None:
        """`return train_mode(model, False)`: a call of a context manager (a function with a
        `yield` summary) returned to be entered by the caller: this function is a manager
        too, whose `yield` state is the one the returned manager sets."""
        info = self.info
        if info is None or info.is_contextmanager or not states:
            return
        if type(call.func) not in (cst.Name, cst.Attribute):
            return
        resolved = self.file.resolve_function(call, info, count=False, passes_module=True)
        if resolved is None or resolved[0] is None or resolved[0].yield_modes is None:
            return
        summary, receiver = resolved[0], ("self" if resolved[1] else None)
        entered = self.apply_modes(summary.yield_modes, summary, call, receiver, states)
        if summary.yield_grad is not None:
            entered = tuple(s.with_grad(frozenset({GradFact(summary.yield_grad)})) for s in entered)
        self.manager_states += entered

    def _entered_by_decorators(self, state: PathState) -> tuple[PathState, Optional[Grad]]:
        """`@eval_mode(model_ema) def demo():` with a project context manager: a
        `contextmanager` used as a decorator runs the whole body as `with eval_mode(...):`
        would, so the body starts in the modes (and grad) the manager set at its `yield`.
        The decorator's arguments are read in the enclosing scope."""
        info = cast(FunctionInfo, self.info)
        grad: Optional[Grad] = None
        for decorator in getattr(info.node, "decorators", ()):
            call = decorator.decorator
            if type(call) is not cst.Call or type(call.func) not in (cst.Name, cst.Attribute):
                continue
            resolved = self.file.resolve_function(
                call, info.parent, count=False, passes_module=True
            )
            if resolved is None or resolved[0] is None:
                continue
            summary, receiver = resolved[0], ("self" if resolved[1] else None)
            if summary.yield_modes is None:
                continue
            entered = self.apply_modes(summary.yield_modes, summary, call, receiver, (state,))
            if len(entered) == 1:
                for callee_key in summary.yield_modes:
                    exit_facts = summary.exit_modes.get(callee_key, ENTRY_MODE)
                    key = self._map_argument(summary, callee_key, call, receiver, state, held=True)
                    if key is not None and all(f.mode is Mode.ENTRY for f in exit_facts):
                        self.restored_on_exit.add(key)  # the manager restores it on leaving
                state = entered[0]
            if summary.yield_grad is not None:
                grad = summary.yield_grad
        return state, grad

    def _module_globals_used(self) -> set[str]:
        """Module-level names holding modules that this function uses as globals."""
        info = cast(FunctionInfo, self.info)
        own = {*info.params, *info.keyword_only, *self._assigned_names()}
        return {k for k in self.scope_keys if k not in own and k in self.file._module_keys}

    def _used_module_globals(self) -> set[str]:
        """Module-level names holding modules that a parameter of this function may alias,
        when it has parameters that hold modules (else no parameter can alias one): those
        it uses itself, and those a function of the file it calls uses (`translate(net)`
        switching `net.eval()`, then calling a helper that runs the global `transformer`
        the only caller passes as `net`), when that function switches no mode itself. A
        generator or context manager keeps its own."""
        info = cast(FunctionInfo, self.info)
        params = {*info.params, *info.keyword_only}
        if not params & self.scope_keys:
            return set()
        from evallint.analysis.walk import iter_nodes

        used = {k for k in self.scope_keys if k not in params and k in self.file._module_keys}
        callees: set[str] = set()
        for node in iter_nodes(info.node.body):
            if type(node) in (cst.Yield, cst.Await):
                return used  # a generator or context manager: its `yield` state maps by parameter
            if (
                type(node) is cst.Call
                and type(node.func) is cst.Name
                and node.func.value in self.file.functions
            ):
                callees.add(node.func.value)
        own = params | self.file.scope(info.node).locals
        for name in callees:
            node = self.file.functions[name].node
            if any(
                type(n) is cst.Call
                and type(n.func) is cst.Attribute
                and n.func.attr.value in ("train", "eval")
                for n in iter_nodes(node.body)
            ):
                continue  # it switches modes itself: what it runs is not in this one's modes
            callee = self.file.scope(node)
            used |= (callee.names - callee.locals) & self.file._module_keys - own
        return used

    def _closure_modes(self, state: PathState) -> PathState:
        """A nested function its enclosing function never calls (`fn=evaluate` handed to a
        UI) runs later, with its free modules in the modes the enclosing function left them
        in where it defined it and where it ended (`model.eval()` before `def evaluate`)."""
        info = cast(FunctionInfo, self.info)
        if not info.definition_states or self.file.call_counts.get(info.qualname, 0):
            return state
        local = {*info.params, *info.keyword_only} | self._assigned_names()
        for key in sorted(self.scope_keys):
            if key.split(".")[0] in local or key.split(".")[0] in ("self", "cls"):
                continue
            facts: frozenset = frozenset()
            for outer in info.definition_states:
                facts |= outer.mode_in_tree(outer.key_of(key) or key) or ENTRY_MODE
            if facts and all(f.mode is not Mode.ENTRY for f in facts):
                state = state.with_mode(key, facts)
        return state

    # -- driver --------------------------------------------------------------------------------
    def run(self) -> None:
        info = self.info
        if info is None:
            evidence = self.file.block_evidence(self.body, None)
            region = classify_block(
                self.file.module,
                f"script {Path(self.file.path).name}",
                evidence,
                eval_by_name=self.file.script_evaluates,
                eval_by_metrics=False,
            )
        else:
            evidence = self.file.block_evidence(self.body, info)
            name_words = words(info.name)
            by_name = bool(name_words & (EVAL_FUNCTION_WORDS | self.file.options.eval_words))
            if by_name and (
                (self.file.is_pytest_file and "test" in name_words)
                or is_unit_test(False, info.name, info.node, self.file._module_keys)
            ):
                by_name = False  # a unit test, not an evaluation
            if evidence.switches_to_eval and (
                part_switched_back(self.body) or trains_beside_a_frozen_module(self.body)
            ):
                # a frozen part, restored; a frozen companion of the module it trains
                evidence = replace(evidence, switches_to_eval=False)
            if evidence.switches_to_eval and self_setting_forward(info):
                # a module's `forward` that sets its own mode (MC dropout keeping its dropout
                # on) is the computation its callers train or evaluate, not an evaluation
                evidence = replace(evidence, switches_to_eval=False)
            region = classify_block(
                info.node,
                f"function {info.name}()",
                evidence,
                eval_by_name=by_name,
                eval_by_metrics=False,
            )
            region = settle(region, self.flags)
            if evidence.steps or evidence.backwards:
                unit = self.file.unit
                self.file.facts.step_blocks.append(
                    StepBlock(
                        info.node,
                        "function",
                        region,
                        Place(evidence.steps[0], unit) if evidence.steps else None,
                        Place(evidence.backwards[0], unit) if evidence.backwards else None,
                        clears_grad=bool(evidence.clears_grad),
                        switches_to_train=bool(evidence.switches_to_train),
                        evaluation_data=by_name,
                        words=frozenset(name_words),
                    )
                )
        self.regions.append(region)
        self.regions_evaluates = region.kind is RegionKind.EVAL
        self.evaluates = self.regions_evaluates
        flow = self.region_body(self.body, (self.initial_state(),), region)
        self.regions.pop()
        if (
            info is not None
            and region.kind is RegionKind.EVAL
            and not evidence.switches_to_eval
            and library_hook(self.file, info)
            and (self.returns_graph or returns_forward_result(info.node, self.observations))
        ):
            # a library's hook handing back a loss with its graph: the library's training
            # loop backpropagates it (library_hooks.py), whatever the method's name says
            region = self._as_library_training_hook(region)
        exit_states = normalize(flow.normal + flow.returns)
        if info is None:
            self.file.top_exit_states = exit_states
        if info is not None:
            for nested in info.nested.values():
                nested.definition_states += exit_states
            self._evaluation_by_results(region, evidence)
        self.finish_accumulations()
        if self.eval_switches and not self.evaluates and not self._calls_an_evaluation():
            self.file.deliberate_switches.update(id(call) for call in self.eval_switches)
        self._emit(exit_states)

    def _as_library_training_hook(self, region: Region) -> Region:
        """The function's evaluation region, and each of its forwards seen there, made
        neutral: what it computes goes to the library that calls it, for a backward."""
        hook = replace(
            region,
            kind=RegionKind.NEUTRAL,
            description=f"hook {cast(FunctionInfo, self.info).name}() a library calls",
        )
        for obs in self.observations.values():
            if obs.region.kind is RegionKind.EVAL:
                obs.region = hook
        self.regions_evaluates = self.evaluates = False
        return hook

    def carries_graph(self, expr: cst.BaseExpression, state: PathState) -> bool:
        """Whether a forward's autograd graph may flow into the value of `expr`."""
        return bool(self.taint_of(expr, state)) or bool(
            self.graph_holders and self.graph_names(expr) & self.graph_holders
        )

    def _hands_out_no_graph(self, evidence) -> bool:
        """Nothing computed here needs or keeps its graph: no training, no gradient use, no
        graph returned, yielded or stored on an object."""
        return not (
            evidence.training_sites
            or evidence.needs_grad
            or self.trains
            or self.returns_graph
            or self.yield_states
            or any(
                graph and ("." in name or "[" in name) and not _own_state(name, graph)
                for name, graph in self.taint.items()
            )
            or self.graph_handed_out
        )

    def _evaluation_by_results(self, region: Region, evidence) -> None:
        """A function that is neither training nor named or marked as an evaluation, whose
        forwards' results only leave autograd (printed, plotted, turned into numbers or
        labels) and never reach a backward pass, the caller, or an object: it evaluates.
        `prediction = net(x); plt.plot(x, prediction.data.numpy())` after reloading a
        model, anomaly scores turned into NumPy, a sampler's batches collected as arrays."""
        if region.kind is not RegionKind.NEUTRAL or not evidence.reports:
            return
        info = cast(FunctionInfo, self.info)
        if is_unit_test(self.file.is_pytest_file, info.name, info.node, self.file._module_keys):
            return  # a unit test checks what the module computes; it evaluates nothing
        owner = info.owner
        if owner is not None and owner.is_module and not after_training_epoch_hook(info):
            return  # a module's own method runs in the mode its caller set: the caller decides
        if not self._hands_out_no_graph(evidence) or returns_detached_tensor(info.node):
            return  # its results go on to the caller's computation: the caller decides
        neutral = [o for o in self.observations.values() if o.region.kind is RegionKind.NEUTRAL]
        pending = [r for r in self.requirements if r.region.kind is RegionKind.NEUTRAL]
        if not neutral and not pending:
            return
        seeds = [c for c, o in self.observations.items() if o in neutral] + [
            (r.via[0] if r.via else r.place).node for r in pending
        ]
        if not reports_results(info.node, seeds, self.file._call_reports):
            return  # what it reports is not what its forwards computed: no evidence
        if (
            owner is None
            and all(o.entry_mode and not o.train for o in neutral)
            and all(r.mode_from_entry and not r.train_facts for r in pending)
            and info.name not in self.file.called_names()[0]
            and feeds_back(info.node, seeds)
            and hands_results_back(info.node, seeds, self.file._call_reports)
        ):
            # a library decoding function nothing here calls, given its model, that returns
            # what it generated (sampled indices) and shows nothing: the caller decides
            return
        if forwards_act(info.node, [c for c, o in self.observations.items() if o in neutral]):
            return  # acting: its results step an environment or are stored as transitions
        if any(
            backpropagating_forward(self.file, c, info)
            for c, o in self.observations.items()
            if o in neutral
        ):
            return  # a module whose forward backpropagates: its result is a training loss
        if owner is not None and stores_forward_results(
            info.node, [c for c, o in self.observations.items() if o in neutral]
        ):
            return  # its results are kept on its object for the object's other methods
        evaluation = replace(
            region,
            kind=RegionKind.EVAL,
            description=f"function {info.name}(), whose results only leave autograd",
            by_results=True,
        )
        for obs in neutral:
            obs.region = evaluation
        self.requirements = [
            # a callee's forward: reported at the call here, the evaluation being this function
            replace(r, region=evaluation, region_unit=self.file.unit, report_at_call=True)
            if r.region.kind is RegionKind.NEUTRAL
            else r
            for r in self.requirements
        ]
        self.evaluates = True

    def _calls_an_evaluation(self) -> bool:
        """A call this analysis cannot follow that still reads as an evaluation: named for
        one (`evaluate(...)`, `trainer.validate()`; not the `eval()` switch itself) or given
        evaluation data."""
        from evallint.analysis.walk import iter_nodes

        for statement in self.body:
            for node in iter_nodes(statement):
                if type(node) is cst.Call:
                    name = dotted_name(node.func)
                    last = name.split(".")[-1] if name else ""
                    if last not in ("eval", "train") and words(last) & (
                        EVAL_FUNCTION_WORDS | self.file.options.eval_words
                    ):
                        return True
                    if any(
                        mentions_eval_data(arg.value, self.file.options.eval_words)
                        for arg in node.args
                    ):
                        return True
        return False

    # -- emitting facts and summaries ----------------------------------------------------------
    def _emit(self, exit_states: States) -> None:
        file = self.file
        here = file.unit
        for call, obs in sorted(self.observations.items(), key=lambda item: item[1].order):
            place = Place(call, here)
            conditional = self.candidate_keys.get(obs.key, 0)
            if obs.region.kind is RegionKind.EVAL or obs.region.kind is RegionKind.MIXED:
                if (obs.train or obs.grad) and conditional != UNHINTED:
                    file.facts.eval_forwards.append(
                        EvalForward(
                            place,
                            obs.subject,
                            obs.region,
                            obs.train,
                            obs.grad if obs.affects_grad else frozenset(),
                            obs.affects_grad,
                            obs.mode_matters,
                            (),
                            obs.order,
                            False,
                            here,
                        )
                    )
            if self.info is not None and (
                obs.entry_mode or obs.entry_grad or obs.region.kind is RegionKind.NEUTRAL
            ):
                self.requirements.append(
                    ForwardRequirement(
                        place,
                        obs.key,
                        obs.subject,
                        obs.region,
                        obs.entry_mode,
                        obs.entry_grad,
                        obs.train,
                        obs.grad,
                        obs.affects_grad,
                        obs.mode_matters,
                        report_at_call=self.regions_evaluates or obs.region.by_flags,
                        region_unit=here,
                        conditional=conditional,
                        parts_as_built=obs.parts_as_built,
                    )
                )
        for (_, key), pending in sorted(self.training.items(), key=lambda item: item[1].order):
            if pending.eval_facts:
                file.facts.training_steps.append(
                    TrainingStep(
                        pending.place,
                        pending.subject,
                        pending.region,
                        pending.eval_facts,
                        pending.order,
                        pending.via,
                        pending.outer_subject,
                        pending.mode_matters and self._key_id(key) not in file.mode_independent,
                    )
                )
            if pending.from_entry and self.info is not None:
                self.training_requirements.append(
                    TrainingRequirement(pending.place, key, pending.subject, pending.via)
                )
        if self.info is None:
            return
        info = self.info
        exit_modes: dict[str, frozenset] = {}
        for key in self.scope_keys:
            facts: frozenset = frozenset()
            for state in exit_states:
                facts |= members_mode(self, key, state.mode_of(key) or frozenset())
            exit_modes[key] = facts or ENTRY_MODE
        exit_modes.update(held_exit_modes(info, exit_states, self.scope_keys))
        for key in self.restored_on_exit:
            exit_modes[key] = ENTRY_MODE
        for key, facts in exit_modes.items():
            tested = {f for f in facts if _narrowed_by_a_test(f)}
            if tested:  # `if model.training: ...` with no else: the test switched nothing
                exit_modes[key] = (facts - tested) | ENTRY_MODE
        owner = self._owner()
        if owner is not None:  # what the class keeps in eval mode is no news to a caller
            for key, facts in modes_kept_by_methods(self.file, owner).items():
                if exit_modes.get(key) == facts:
                    exit_modes[key] = ENTRY_MODE
        yield_modes, yield_grad = (
            at_yield(self.yield_states, self.scope_keys)
            if info.is_contextmanager
            else at_yield(self.manager_states, self.scope_keys)
            if self.manager_states
            else (None, None)
        )
        return_key, return_facts = self._return_summary()
        evidence = file.block_evidence(self.body, info)
        self.summary = Summary(
            info.qualname,
            tuple(p for p in info.params if p not in ("self", "cls")),
            info.keyword_only,
            info.owner is not None,
            evidence.has_loop,
            info.framework_hook,
            exit_modes,
            yield_modes,
            self.requirements,
            self.training_requirements,
            self.trains or (bool(evidence.training_sites) and not self.flags),
            return_key,
            return_facts,
            return_mode_free=self._returns_mode_free(),
            opaque_switch=self.opaque_switch,
            whole_evaluation=evidence.switches_to_eval
            and (evidence.reports or not self.returns_graph)
            and self._hands_out_no_graph(evidence)
            and (not evidence.switches_to_train or self._restores_train_last()),
            return_graph=frozenset(self.return_graph) if self.return_values else None,
            return_elements=tuple(self.return_elements)
            if self.return_values and self.return_elements is not None and not self.elements_differ
            else None,
            yield_grad=yield_grad,
            grad_on_exit=grad_left_set(exit_states)
            if self.starts_in_callers_grad and sets_grad_unscoped(info.node)
            else None,
            return_element_facts=self.returned_element_facts(),
            hands_out_no_graph=self._hands_out_no_graph(evidence)
            and not returns_detached_tensor(info.node),
            clears_grad=bool(evidence.clears_grad),
            returns_function=returns_own_function(info),
        )
        if self.summary.whole_evaluation:
            self.summary.forwards = [replace(r, whole=True) for r in self.requirements]

    def _restores_train_last(self) -> bool:
        """`train()` only after the evaluation, restoring the mode (see restoring.py)."""
        sites = [(r.via[0] if r.via else r.place).node for r in self.requirements]
        return restores_train_last(self.body, sites)

    def _return_summary(self) -> tuple[Optional[str], Optional[frozenset]]:
        keys = {v.key for v in self.return_values if v.key is not None}
        fresh = [v.fresh for v in self.return_values if v.fresh is not None]
        if len(keys) == 1 and not fresh:
            key = next(iter(keys))
            if key in self.scope_keys and self._from_caller(key):
                return key, None  # the caller's module (a parameter, `self.X`, a global)
            facts: frozenset = frozenset()
            for state in self.return_states:
                facts |= members_mode(self, key, state.mode_of(key) or frozenset())
            return None, facts or None
        if fresh and not keys:
            facts = frozenset()
            for f in fresh:
                facts |= f
            return None, facts
        return None, None


def _narrowed_by_a_test(fact: ModeFact) -> bool:
    """A mode the function only learnt from a test of `.training` on the path that found it
    false (see mode_tests.enter_branch), not one it set: for a caller, no switch, so the
    callee leaves that module in the caller's own mode. Switches chosen by a flag
    (`model.train(flag)`) have the call as their site."""
    site = fact.site
    return (
        fact.origin is Origin.FLAG
        and fact.mode is Mode.EVAL
        and site is not None
        and not (
            type(site) is cst.Call
            and type(site.func) is cst.Attribute
            and site.func.attr.value in ("train", "eval")
        )
    )


def _own_state(name: str, graph: frozenset) -> bool:
    """`model.hidden = model.init_hidden()`: a value the module computed from nothing but
    itself, kept on that same module (a recurrent state reset before a batch): no data's
    graph leaves the function through it."""
    head = name.split(".", 1)[0].split("[", 1)[0]
    return graph == frozenset({head}) and "." in name
