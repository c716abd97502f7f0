"""Types shared by the interpreter's parts: the tuple of path states, source text of a node."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, Optional, Protocol

import libcst as cst

from evallint.analysis.reuse import memo

if TYPE_CHECKING:
    from evallint.analysis.effects import Observation, PendingTraining
    from evallint.analysis.facts import Place
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.flow import Flow
    from evallint.analysis.lattice import Mode, PathState
    from evallint.analysis.regions import Region
    from evallint.analysis.scope import ClassInfo, FunctionInfo
    from evallint.analysis.summaries import ForwardRequirement, Summary, TrainingRequirement
    from evallint.analysis.symbols import ImportTable
    from evallint.analysis.values import ModuleValue
    from evallint.analysis.walk import NodeMemo

States = tuple  # tuple[PathState, ...]


_CODEGEN = cst.Module([])


def code_of(node: cst.CSTNode) -> str:
    return memo("code_of", node, _CODEGEN.code_for_node)


class InterpreterContext(Protocol):
    """What the interpreter's parts (flow, binding, values, taint, switches, effects, calls,
    observations) may read and call on the running interpreter. Each part is a mixin of
    `_Interpreter`; for the type checker it subclasses this protocol, so a part that reaches
    for something no part provides is a type error, not an AttributeError at run time."""

    file: FileAnalysis
    info: Optional[FunctionInfo]
    flags: tuple[tuple[str, bool], ...]
    snapshot_receivers: dict[str, cst.BaseExpression]
    imports: ImportTable
    body: list[cst.CSTNode]
    evidence_names: frozenset[str]
    scope_keys: set[str]
    candidate_keys: dict[str, int]
    regions: list[Region]
    _observed_loops: set[cst.CSTNode]
    _tested_again: list[frozenset[str]]
    regions_evaluates: bool
    eval_switches: list[cst.Call]
    flag_chosen: set[int]
    evaluates: bool
    observations: dict[cst.Call, Observation]
    training: dict[tuple[int, str], PendingTraining]
    backpropagated: dict[int, frozenset]
    grad_forwards: dict[int, set[str]]
    frozen: set[str]
    frozen_so_far: set[str]
    scope_locals: frozenset[str]
    opaque_switch: Optional[frozenset]
    opaque_variables: set[str]
    submodule_variables: set[str]
    taint: dict[str, frozenset]
    graph: dict[str, frozenset]
    return_graph: set[str]
    return_elements: Optional[list[frozenset]]
    elements_differ: bool
    instances: dict[str, ClassInfo]
    module_classes: dict[str, ClassInfo]
    built_classes: dict[str, ClassInfo]
    imported_module_classes: dict[str, tuple[str, str]]
    imported_instances: dict[str, list[tuple[FileAnalysis, ClassInfo]]]

    def _imported_instance_call(self, call: cst.Call, states: States) -> Optional[States]: ...

    containers: dict[str, tuple[str, ...]]
    assigning: frozenset[str]
    constructor_calls: set[cst.Call]
    summary: Optional[Summary]
    yield_states: States
    manager_states: States
    grad_manager_names: dict[str, str]
    grad_chosen_names: dict[str, cst.BaseExpression]
    return_values: list[ModuleValue]
    return_states: States
    returned_tuples: list[Optional[tuple]]

    def note_return_value(self, value: cst.BaseExpression, states: States) -> None: ...
    def note_returned_manager(self, call: cst.Call, states: States) -> None: ...

    def returned_element_facts(self) -> Optional[tuple]: ...

    def loaded_parts(self, value: cst.BaseExpression, state: PathState) -> Optional[frozenset]: ...
    def wrapped_modes(self, value: cst.BaseExpression, state: PathState) -> Optional[frozenset]: ...

    def bind_returned_elements(
        self, elements: list[cst.BaseExpression], value: cst.BaseExpression, states: States
    ) -> Optional[States]: ...

    requirements: list[ForwardRequirement]
    passed_up: set[tuple]
    training_requirements: list[TrainingRequirement]
    trains: bool
    stores: list[tuple]
    bound_at: dict[str, cst.CSTNode]
    backward_bindings: set[tuple[str, int]]
    backward_roots: set[str]
    backward_reached: set[str]
    bound_without_grad: dict[str, cst.CSTNode]
    reads: dict[str, set[str]]
    loop_depth: int
    _loop_returns: States
    returns_graph: bool
    graph_holders: set[str]
    graph_handed_out: bool
    records_hold_graphs: bool

    statement_chain: list[cst.CSTNode]
    phase_conditions: set[str]

    def carries_graph(self, expr: cst.BaseExpression, state: PathState) -> bool: ...

    def carries_known_graph(self, expr: cst.BaseExpression, state: PathState) -> bool: ...

    def reported_region(self, call: cst.Call) -> Optional[Region]: ...
    def dropped_region(self, call: cst.Call, key: str, states: States) -> Optional[Region]: ...

    def record_flow(self, node: cst.CSTNode, states: States) -> None: ...

    def block(self, statements, states: States) -> Flow: ...

    def region_body(self, statements, states: States, region: Region) -> Flow: ...

    def _evaluation_tail(self, statements, evidence, last: int, in_loop: bool) -> Optional[int]: ...

    def statement(self, node: cst.CSTNode, states: States) -> Flow: ...

    def suite(self, suite: cst.BaseSuite, states: States) -> Flow: ...

    def small_statement(self, node: cst.BaseSmallStatement, states: States) -> Flow: ...

    def if_statement(self, node: cst.If, states: States) -> Flow: ...

    def loop(self, node: cst.For | cst.While, states: States) -> Flow: ...

    def _over_listed_modules(
        self, node: cst.For | cst.While, entry: States
    ) -> Optional[tuple[States, States]]: ...

    def _observe_loop(
        self, node: cst.CSTNode, region: Region, evidence, eval_data: bool
    ) -> None: ...

    def return_passthrough(self, body_flow: Flow) -> None: ...

    def with_statement(self, node: cst.With, states: States) -> Flow: ...

    def try_statement(self, node, states: States) -> Flow: ...

    def match_statement(self, node: cst.Match, states: States) -> Flow: ...

    def _forget(self, target: cst.BaseExpression, state: PathState) -> PathState: ...

    def _target_names(self, target: cst.BaseExpression) -> list[str]: ...

    def _bind_target(self, target: cst.BaseExpression, state: PathState) -> PathState: ...

    def assign(
        self, target: cst.BaseExpression, value: cst.BaseExpression, states: States
    ) -> States: ...

    def note_construction(self, node: cst.Assign) -> None: ...

    def bind_container(self, name: str, value: cst.BaseExpression, states: States) -> States: ...

    def container_loop(
        self, iterable: cst.BaseExpression, target: cst.BaseExpression
    ) -> Optional[tuple[str, tuple[str, ...]]]: ...

    def resolve_member(self, member: str, state: PathState) -> Optional[str]: ...

    def held_attributes(
        self, value: cst.BaseExpression
    ) -> list[tuple[str, cst.BaseExpression]]: ...

    def carried_attributes(
        self, value: cst.BaseExpression
    ) -> list[tuple[str, cst.BaseExpression]]: ...

    def _unknown_module_source(self, name: str, value: cst.Call, state: PathState) -> bool: ...
    def _non_module(self, name: str) -> bool: ...
    def _builds_plain_object(self, value: cst.BaseExpression) -> bool: ...
    def _weakly_loaded(self, value: cst.BaseExpression) -> bool: ...

    def _has_training_property(self) -> bool: ...

    def _training_setter(self, value: cst.BaseExpression, states: States) -> States: ...

    def _key_id(self, key: str) -> str: ...

    def _local_class(self, call: cst.Call) -> Optional[ClassInfo]: ...

    def _imported_class_of(self, call: cst.Call) -> Optional[tuple[str, str]]: ...

    def _class_mode_matters(self, cls: ClassInfo) -> bool: ...

    def _builds_graph_free(self, call: cst.Call, state: PathState) -> bool: ...
    def _holds_no_module(self, value: cst.BaseExpression, state: PathState) -> bool: ...

    def _plain_imported(self, call: cst.Call) -> Optional[bool]: ...

    def _returns_mode_free(self) -> bool: ...

    def resolve(self, expr: cst.BaseExpression, state: PathState) -> Optional[str]: ...

    def held_path(self, expr: cst.BaseExpression, state: PathState) -> Optional[str]: ...

    def value_of(
        self, expr: cst.BaseExpression, state: PathState, holder: Optional[str] = None
    ) -> ModuleValue: ...

    def _returned_by(self, call: cst.Call, holder: Optional[str]) -> Optional[Summary]: ...

    def passes_module(self, call: cst.Call, state: PathState) -> bool: ...

    def _constructor_facts(
        self, call: cst.Call, scope: Optional[cst.CSTNode] = None
    ) -> Optional[tuple[frozenset, bool]]: ...

    def _mode_arguments(self, call: cst.Call) -> Sequence[cst.Arg]: ...

    def _mode_argument(self, call: cst.Call) -> Optional[Mode]: ...

    def _forward_target(self, call: cst.Call, state: PathState) -> Optional[tuple[str, str]]: ...

    def _own_forward(self, key: str, subject: str, state: PathState) -> tuple[str, str]: ...

    def taint_of(self, expr: cst.BaseExpression, state: PathState) -> frozenset: ...

    def _own_function(self, call: cst.Call, state: PathState): ...

    def graph_of(self, expr: cst.BaseExpression, state: PathState, grad_on: bool) -> frozenset: ...

    def train_loss_parameter(self, call: cst.Call, states: States) -> None: ...

    def apply_loss_training(self, summary, key: str, call: cst.Call, state: PathState) -> None: ...

    def loss_trained_names(self, block: cst.CSTNode) -> frozenset[str]: ...

    def note_graph(self, name: str, value: cst.BaseExpression, states: States) -> None: ...

    def note_graph_elements(
        self, names: list[list[str]], value: cst.BaseExpression, states: States
    ) -> None: ...

    def note_graph_added(self, name: str, value: cst.BaseExpression, states: States) -> None: ...

    def note_graph_appended(self, name: str, value: cst.BaseExpression, states: States) -> None: ...

    def note_stored(self, name: str, value: cst.BaseExpression) -> None: ...

    def note_return_graph(self, value: cst.BaseExpression, states: States) -> None: ...

    def stored_graph(self, value: cst.BaseExpression, states: States) -> frozenset: ...

    def _training_snapshot(
        self, value: cst.BaseExpression, state: PathState
    ) -> Optional[frozenset]: ...

    def switch_mode(
        self,
        call: cst.Call,
        attr: str,
        states: States,
        receiver: Optional[cst.BaseExpression] = None,
    ) -> States: ...

    def set_tree_flags(
        self, target: cst.BaseExpression, value: cst.BaseExpression, states: States
    ) -> States: ...

    def _opaque_switch(
        self, call: cst.Call, attr: str, receiver: cst.BaseExpression, state: PathState
    ) -> PathState: ...

    def _is_submodule_receiver(self, receiver: cst.BaseExpression) -> bool: ...

    def set_grad(
        self,
        call: cst.Call,
        states: States,
        *,
        statement: bool,
        chosen_by: Optional[cst.BaseExpression] = None,
    ) -> States: ...
    def _evaluating(self, state: PathState) -> Optional[Region]: ...

    def forward(self, call: cst.Call, key: str, subject: str, states: States) -> None: ...

    def training_step(self, call: cst.Call, kind: str, states: States) -> States: ...

    def _record_training(
        self,
        site: cst.CSTNode,
        key: str,
        subject: str,
        region: Optional[Region],
        states: States,
        place: Optional[Place] = None,
        via: tuple[Place, ...] = (),
    ) -> None: ...

    def _step_sources(self, call: cst.Call, kind: str, state: PathState) -> Optional[frozenset]: ...

    def _trained_keys(self, state: PathState, sources: Optional[frozenset] = None) -> list[str]: ...

    def _aliased_link(self, key: str, links: frozenset[str], state: PathState) -> bool: ...

    def expression(self, expr: cst.BaseExpression, states: States) -> States: ...

    def _comprehension_regions(self, expr: cst.BaseExpression) -> dict[cst.Call, Region]: ...

    def _comprehension_members(
        self, expr: cst.BaseExpression
    ) -> dict[cst.Call, tuple[str, tuple[str, ...]]]: ...

    def _call_per_member(
        self, call: cst.Call, name: str, members: tuple[str, ...], states: States
    ) -> States: ...

    def call(self, call: cst.Call, states: States) -> States: ...

    def _instance_method(self, call: cst.Call) -> Optional[tuple[Summary, str]]: ...

    def _map_argument(
        self,
        summary: Summary,
        callee_key: str,
        call: cst.Call,
        receiver: Optional[str],
        state: PathState,
    ) -> Optional[str]: ...

    def resolve_path(self, path: str, state: PathState) -> Optional[str]: ...

    def apply_call(
        self, summary: Summary, receiver: Optional[str], call: cst.Call, states: States
    ) -> States: ...

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
    ) -> None: ...

    def apply_modes(
        self,
        modes: Optional[dict[str, frozenset]],
        summary: Summary,
        call: cst.Call,
        receiver: Optional[str],
        states: States,
        base: Optional[States] = None,
    ) -> States: ...

    def _init_observations(self) -> None: ...

    def _place(self, node: cst.CSTNode) -> Place: ...

    def observe_functional(self, call: cst.Call) -> None: ...

    def observe_expression_statement(self, value: cst.BaseExpression, states: tuple) -> None: ...

    def observe_uncalled_manager(self, expr: cst.BaseExpression, qualified: str) -> None: ...

    def observe_subscript_store(
        self,
        statement: cst.Assign,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        states: tuple,
    ) -> None: ...

    def observe_training_attribute(
        self,
        statement: cst.Assign,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        states: tuple,
    ) -> None: ...

    def _is_module_expression(self, node: cst.BaseExpression, states: tuple) -> bool: ...

    def _local_function(self, call: cst.Call) -> Optional[cst.FunctionDef]: ...

    def observe_store(
        self,
        node: cst.CSTNode,
        container: str,
        value: cst.BaseExpression,
        kind: str,
        states: tuple,
    ) -> None: ...

    def note_module_appended(
        self, container: str, value: cst.BaseExpression, states: tuple
    ) -> None: ...

    def calls_gradient_clearer(self, loop: cst.CSTNode) -> bool: ...

    def element_graph_free(self, value: cst.BaseExpression, index: int, count: int) -> bool: ...

    def _memo(self, name: str) -> NodeMemo: ...

    def _local_def(self, name: str) -> Optional[FunctionInfo]: ...

    def note_array_arguments(self, call: cst.Call) -> None: ...

    def graph_names(
        self, expr: cst.BaseExpression, skip_call: Optional[Callable[[cst.Call], bool]] = None
    ) -> frozenset: ...

    def note_reads(self, name: str, value: cst.BaseExpression) -> None: ...

    def note_recurrence(self, names: list[str], value: cst.BaseExpression) -> None: ...

    def _backpropagated(self) -> set[str]: ...

    def finish_accumulations(self) -> None: ...

    def observe_assignment_grad(
        self, name: str, value: cst.BaseExpression, states: tuple
    ) -> None: ...

    def observe_backward(self, call: cst.Call, states: tuple) -> None: ...

    @staticmethod
    def grad_off_everywhere(states: tuple[PathState, ...]) -> bool: ...

    def _mentions_requires_grad(self, body: cst.CSTNode) -> bool: ...

    def _scope_keys(self) -> set[str]: ...

    def _assigned_names(self) -> frozenset[str]: ...

    def _owner(self) -> Optional[ClassInfo]: ...

    def _free_names(self) -> frozenset[str]: ...

    def _class_module_attributes(self, owner: ClassInfo) -> set[str]: ...

    def _is_method(self, owner: ClassInfo, name: str) -> bool: ...

    def _from_caller(self, key: str) -> bool: ...

    def _held_aliases(self, owner: ClassInfo) -> tuple[tuple[str, str], ...]: ...

    def _copied_attributes(self, owner: ClassInfo) -> tuple[tuple[str, str], ...]: ...

    def _class_containers(self, owner: ClassInfo) -> dict[str, tuple[str, ...]]: ...

    def initial_state(self) -> PathState: ...

    def run(self) -> None: ...

    def _calls_an_evaluation(self) -> bool: ...

    def _emit(self, exit_states: States) -> None: ...

    def _return_summary(self) -> tuple[Optional[str], Optional[frozenset]]: ...


if TYPE_CHECKING:
    InterpreterPart = InterpreterContext
    """Base of each part of the interpreter: the protocol for the type checker, ..."""
else:
    InterpreterPart = object
    """... nothing at run time."""
