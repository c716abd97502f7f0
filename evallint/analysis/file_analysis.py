"""Everything evallint knows about one file: tables, the driver, the summary cache."""

from __future__ import annotations

import functools
import itertools
import weakref
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

from evallint.analysis.bound_names import text_bound_names
from evallint.analysis.call_resolution import CallResolution
from evallint.analysis.facts import (
    ModuleFacts,
    Place,
    UnitRef,
)
from evallint.analysis.file_shapes import (
    called_names,
    top_level_statements,
    without_sites,
    wraps_in_no_grad,
)
from evallint.analysis.file_tables import FileTables, file_tables
from evallint.analysis.instances import objects_in_scope
from evallint.analysis.interpreter import _Interpreter
from evallint.analysis.judging import optional_path_forwards
from evallint.analysis.layer_demonstrations import (
    demonstration_forwards,
    local_demonstration_forwards,
)
from evallint.analysis.lightning_hooks import hooks_leaving_eval, hooks_leaving_train
from evallint.analysis.module_backward import calls_own_backward
from evallint.analysis.module_sources import library_class, library_factory, other_framework_call
from evallint.analysis.optimizers import InputOptimizerFacts, OptimizerFacts
from evallint.analysis.options import AnalysisOptions
from evallint.analysis.paired_switches import paired_eval_switches
from evallint.analysis.plain_objects import builds_plain_object
from evallint.analysis.probes import PROBE_WORDS, local_probe_forwards, probe_forwards
from evallint.analysis.regions import (
    EvidenceCollector,
    is_optimizer_receiver,
)
from evallint.analysis.reported import plain_helper, reports_by_itself
from evallint.analysis.reuse import memo, text_store
from evallint.analysis.scope import (
    ClassInfo,
    FunctionInfo,
    ScopeNames,
    collect_definitions,
    frozen_modules,
    looks_like_module_name,
    redefinitions,
    scope_names,
)
from evallint.analysis.specialise import Flags, constant_flags, tested_parameters
from evallint.analysis.summaries import ForwardRequirement, Summary, distinct_requirements
from evallint.analysis.symbols import ImportTable, assigned_pairs, collect_imports, dotted_name
from evallint.analysis.vocabulary import (
    EVAL_FILE_WORDS,
    MODE_INDEPENDENT_SUFFIXES,
    NOT_MODULE_WORDS,
    STATELESS_LAYERS,
    words,
)
from evallint.analysis.walk import iter_nodes
from evallint.source.positions import NodePositions, PiecewisePositions

MAX_CALLER_FILES = 6
"""Files analysed to judge one file's helpers by their callers in other files."""

FACT_BUDGET = 200_000
"""Forward facts one file may accumulate (requirements kept in its summaries plus evaluation
forwards found). Summaries keep one requirement per forward and entry state, so real files
stay far below this (the largest torch source files hold a few thousand); past it, functions
not yet summarised are treated as opaque calls, the findings so far are kept, and the file
gets one EVL999 "analysis budget exceeded" line (`budget_exceeded`)."""

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex


def _span_or_file_start(
    positions: NodePositions | PiecewisePositions, node: cst.CSTNode
) -> tuple[int, int, int, int]:
    return positions.span(node) or (1, 1, 1, 1)


class FileAnalysis(CallResolution, OptimizerFacts, InputOptimizerFacts):
    """Everything evallint knows about one file. Built once; rules read `facts`."""

    def __init__(
        self,
        module: cst.Module,
        path: str,
        *,
        source: str = "",
        options: AnalysisOptions = AnalysisOptions(),
        project: Optional[ProjectIndex] = None,
        reader: Optional[ProjectIndex] = None,
        record_flow: bool = False,
        judge_uncalled: bool = True,
        positions: Optional[NodePositions | PiecewisePositions] = None,
        lazy: bool = False,
        eager_tables: bool = False,
    ) -> None:
        self.module = module
        self.path = path
        self.options = options
        self._source = source
        self._own_bound_names: Optional[frozenset[str]] = None
        self._forward_method_names: Optional[frozenset[str]] = None
        self._module_class_methods: Optional[frozenset[str]] = None
        self._grad_free_methods: frozenset[str] = frozenset()
        self.eval_switched_methods: frozenset[str] = frozenset()  # after forward_method_names()
        self.kept_eval_methods: frozenset[str] = frozenset()  # after forward_method_names()
        self.class_mode_matters: dict[str, bool] = {}
        self.class_parameter_free: dict[str, Optional[bool]] = {}
        """Module class -> whether it holds parameters only through its arguments (see
        mode_matters.py `_local_parameter_free`)."""
        """Module class -> whether its instances may behave differently by mode."""
        self.eval_kept_attributes: dict[str, dict[str, frozenset]] = {}
        """Plain class -> `self.X` its methods keep in eval mode (see eval_attributes.py)."""
        self._has_optimizer: Optional[bool] = None
        self.project = project
        self.reader = reader
        """For a file analysed because another file imports it (`project` None, so its own
        imports are not followed for findings): the project whose files its functions call,
        read only for what those calls return (provenance.py)."""
        self.class_index: Optional[ProjectIndex] = project or reader
        """The project whose module classes say what a method name does (`net.sample(n)`
        decorated with no_grad there, project_forwards.py): the same for a file analysed
        because another imports it as for a linted one, since those questions read the
        project's class definitions, not the file's imports."""
        self.record_flow = record_flow
        self._positions = positions or NodePositions(module)
        self.unit = UnitRef(path, functools.partial(_span_or_file_start, self._positions))
        self.facts = ModuleFacts(path, self.unit, tree=module, source=source)
        self.imports: ImportTable = collect_imports(module)
        if project is not None and self.imports.star_modules:
            # `from model import *` of a project file: its classes are imported names here
            # (`rnn = CharRNN(...)` builds that file's module class), as `from model import
            # CharRNN` would make them; a class of this file's own keeps its name
            own = {s.name.value for s in module.body if type(s) is cst.ClassDef}
            for starred, name in project.starred_classes(path, self.imports.star_modules):
                if name not in own and not self.imports.is_imported(name):
                    dots = len(starred) - len(starred.lstrip("."))
                    self.imports.bind_from(starred.lstrip("."), dots, name, None)
        self.facts.torch_names = (
            self.imports.local_name_of("torch"),
            self.imports.local_name_of("torch.no_grad"),
        )
        self.functions, self.classes = collect_definitions(module, self.imports)
        self.redefined = redefinitions(module, self.imports, self.functions)
        self.defined_now: dict[str, FunctionInfo] = {}
        """Redefined names -> the definition the top-level code has passed last."""
        self.rebound_now: set[str] = set()
        """Top-level function names the top-level code has since rebound by an assignment
        (`def model(x): ...` then `model = nn.Sequential(...)`): a top-level call of the name
        reaches the assigned value, not the function."""
        self.closures: dict[str, dict[str, tuple[FunctionInfo, FunctionInfo, cst.Call]]] = {}
        """Per scope: names bound to a closure a factory of this file returned (closures.py)."""
        self.closure_calls: dict[int, tuple[FunctionInfo, cst.Call]] = {}
        """id(call of a returned closure) -> (its factory, the factory call that made it)."""
        self.summaries: dict[str, Optional[Summary]] = {}
        self.held_imported: dict[int, tuple[ClassInfo, dict[str, list]]] = {}
        """Per class of the file: its attributes holding objects of plain classes of other
        project files (class_members.py `_held_imported_instances`)."""
        self._grad_decorators: dict[str, bool] = {}
        self._callers_by_function: list[list[Path]] = []
        self._training_callers: list[list[Path]] = []
        """Callers of helpers with training steps and no evaluation forward: read for the
        training steps they reach here in eval mode only."""
        self.imported_objects: dict[
            tuple[Optional[str], str], list[tuple[FileAnalysis, ClassInfo]]
        ] = {}
        """(scope, variable) -> the plain classes of other project files it holds objects of."""
        self._scanned_scopes: set[Optional[str]] = set()
        self.decided_forwards: set[Place] = set()
        self.top_exit_states: tuple = ()
        """Path states at the end of the module's top-level code (`__main__` included)."""
        """Forwards of summaries (this file's or another's) whose mode and grad state a call
        in this file decided: the callee's entry state did not pass on to a further caller."""
        self.call_counts: dict[str, int] = {}
        self._in_progress: set[object] = set()
        self._tested: dict[str, frozenset[str]] = {}
        self._specialised: dict[tuple[str, Flags], Optional[Summary]] = {}
        self.summaries_computed = 0
        """Interpreter runs for function summaries: one per function unless over budget."""
        self._facts_held = 0
        self.budget_exceeded = False
        """FACT_BUDGET was reached: the findings are partial (see FACT_BUDGET)."""
        self._order = itertools.count()
        self.mode_independent: set[str] = set()
        self.graph_free: set[str] = set()
        """Keys (see `_key_id`) of modules with no parameters: their forward keeps no graph."""
        self.kept_members: dict[str, tuple[str, ...]] = {}
        """Keys of modules built only to carry modules given to them (see kept_modules.py):
        key -> the attributes that hold those modules."""
        self.optimizer_links: Optional[frozenset[str]] = None
        self._optimizer_params: Optional[dict[str, frozenset[str]]] = None
        self._evidence_scope: Optional[FunctionInfo] = None
        analysis = weakref.ref(self)  # no cycle: the file's tree is freed when its analysis is
        self._evidence = EvidenceCollector(
            self.imports,
            lambda call: analysis()._call_trains(call, analysis()._evidence_scope),  # type: ignore[union-attr]
            lambda call: analysis().backward_trains(call),  # type: ignore[union-attr]
            lambda call: analysis().steps_input(call),  # type: ignore[union-attr]
            lambda name: analysis().is_grad_input(name),  # type: ignore[union-attr]
            lambda call: analysis()._call_reports(call),  # type: ignore[union-attr]
            lambda call: (
                analysis().resolve_function_quietly(call, analysis()._evidence_scope)  # type: ignore[union-attr]
                is not None
            ),
            lambda call: calls_own_backward(analysis(), call),  # type: ignore[arg-type]
        )
        self._reporting_helpers: dict[str, bool] = {}
        stem = Path(path).stem
        self.is_pytest_file = (
            stem.startswith("test_") or stem.endswith("_test") or stem == "conftest"
        )
        self.script_evaluates = bool(words(stem) & EVAL_FILE_WORDS)
        self._module_keys: frozenset[str] = frozenset()
        self._library_callbacks: Optional[frozenset[str]] = None
        self.tables: Optional[FileTables] = None
        """The whole-file tables, filled before the first summary of a complete analysis made
        with `eager_tables` (file_tables.py): what a later lint of the same document compares
        to reuse summaries. Otherwise (a batch lint, which lints each text once and reuses
        nothing) each table is filled on demand by its accessor, as before, and `tables` is
        None: several tables are never asked for in most library files, and filling them
        anyway cost about 4% of a cold lint of the torch sample. A lazy analysis has none
        until `completed`."""
        self._eager_tables = eager_tables
        self._called_names: Optional[tuple[frozenset[str], frozenset[str]]] = None
        self.deliberate_switches: set[int] = set()
        """`eval()` calls in scopes that evaluate nothing: a deliberate freeze (BatchNorm
        statistics of a frozen backbone during a linear probe), not an evaluation that
        training must switch back from."""
        self._scopes: dict[int, tuple[cst.CSTNode, ScopeNames]] = {}
        self._backpropagated: dict[int, tuple[cst.CSTNode, frozenset[str]]] = {}
        self.frozen_globals: frozenset[str] = frozenset()
        """Module-level names whose parameters are all frozen at the top level of the file."""
        self.mentions_requires_grad = not source or "requires_grad" in source
        """Only then can a scope freeze a module (the scan for it is skipped otherwise)."""
        self.complete = not lazy
        """Every function summarised and the top level interpreted. A file analysed only
        because another file imports it (`lazy`) is summarised on demand: its importers read
        the summaries of the functions and methods they call, and the rest (the functions
        after the last one asked for, the top level) runs only when its facts as a whole are
        read (`completed`)."""
        self._summarised_upto = 0
        """Lazy: the functions of `all_functions()` before this index have been asked for."""
        self.busy = False
        """Lazy: summarising the functions in order (see `summary_for`)."""
        self._judge_uncalled = judge_uncalled
        self._analyse(judge_uncalled, lazy)

    def scope(self, body: cst.CSTNode) -> ScopeNames:
        """`scope_names`, walked once per scope: the interpreters of nested functions and of
        a class's methods ask for the same scopes again. Kept per file, so it dies with it."""
        cached = self._scopes.get(id(body))
        if cached is None or cached[0] is not body:
            cached = self._scopes[id(body)] = (body, memo("scope_names", body, scope_names))
        return cached[1]

    # -- positions (lazy: only files with findings pay for them) ---------------------------
    def locate(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        return self.unit.locate(node)

    # -- driver ------------------------------------------------------------------------------
    def _analyse(self, judge_uncalled: bool, lazy: bool = False) -> None:
        self._module_keys = frozenset(self._module_level_keys())
        if self.mentions_requires_grad:
            self.frozen_globals = frozen_modules(
                s for s in self.module.body if type(s) not in (cst.FunctionDef, cst.ClassDef)
            )
        if not lazy:
            self._interpret(judge_uncalled)

    def completed(self) -> FileAnalysis:
        """This analysis with every function summarised and the top level interpreted (its
        facts as a whole read), however it was built."""
        if not self.complete:
            self.complete = True
            self._interpret(self._judge_uncalled)
        return self

    def _interpret(self, judge_uncalled: bool) -> None:
        if self._eager_tables:
            self.tables = file_tables(self)
        for info in self.all_functions():
            self.summary_for(info)
        top = _Interpreter(self, None)
        top.run()
        if judge_uncalled:
            called_elsewhere: list[FunctionInfo] = []
            for info in self.all_functions():
                summary = self.summaries.get(info.qualname)
                if summary is None:
                    continue
                called_here = self.call_counts.get(info.qualname, 0)
                if not summary.forwards and summary.trainings:
                    # its training steps are judged by its callers in other files too (`fit()`
                    # called after the script's `validate()`); it is judged alone as before
                    self._called_in_project(info, self._training_callers)
                if summary.forwards and self._called_in_project(info):
                    # judged by its callers in other files too (a method this file calls
                    # under no_grad that a script calls after training without it)
                    if not called_here:
                        called_elsewhere.append(info)
                elif not called_here:
                    plain = self.specialised(info, None)
                    callback = bool(info.decorators) or self._handed_to_library(info)
                    self._judge_alone(plain or summary, callback=callback)
                    if plain is not None:
                        # its options are uses too: what a non-default flag reaches in the
                        # state the function was entered with (see judging.py)
                        self._judge_alone(
                            summary, optional_path_forwards(summary, plain), callback=callback
                        )
            if self._callers_by_function or self._training_callers:
                decided = self._judge_by_callers()
                for info in called_elsewhere:
                    # no caller's analysis reached the helper's forward in a state it could
                    # decide (callers unresolved, or only in functions nobody calls): judged
                    # alone, like a library function
                    summary = self.summaries.get(info.qualname)
                    if summary is not None:
                        self._judge_alone(
                            summary, [r for r in summary.forwards if r.place not in decided]
                        )
        self.facts.deliberate_switches = frozenset(self.deliberate_switches) | paired_eval_switches(
            self.module, self._source
        )
        if not self._source or "nn." in self._source:
            self.facts.layer_demonstrations = demonstration_forwards(self.module, self.imports)
            self.facts.local_layer_demonstrations = local_demonstration_forwards(
                self.module, self.imports
            )
        if not self._source or any(word in self._source for word in PROBE_WORDS):
            module_classes = frozenset(name for name, cls in self.classes.items() if cls.is_module)
            self.facts.layer_demonstrations |= probe_forwards(
                self.module, self.imports, module_classes
            )
            self.facts.local_layer_demonstrations |= local_probe_forwards(
                self.module, self.imports, module_classes
            )
        self.facts.hooks_leaving_eval = hooks_leaving_eval(
            self.classes.values(), self.summary_for, self.unit
        )
        self.facts.hooks_leaving_train = hooks_leaving_train(
            self.classes.values(), self.summary_for, self.unit
        )

    def _handed_to_library(self, info: FunctionInfo) -> bool:
        """A top-level function the module's code gives a library by name (see
        library_callbacks.py): called back after the module's code, like a decorated one."""
        if self.functions.get(info.name) is not info:
            return False
        return info.name in self.library_callbacks()

    def library_callbacks(self) -> frozenset[str]:
        """Top-level functions the module's code hands a library by name (see
        library_callbacks.py), found once per file."""
        if self._library_callbacks is None:
            from evallint.analysis.library_callbacks import handed_to_libraries

            self._library_callbacks = handed_to_libraries(self)
        return self._library_callbacks

    def all_functions(self) -> list[FunctionInfo]:
        """Every function, method and nested function, each before the ones nested in it."""
        result: list[FunctionInfo] = []
        pending = (
            list(self.functions.values())
            + self.redefined.earlier
            + [m for cls in self.classes.values() for m in cls.methods.values()]
        )
        pending.reverse()
        while pending:
            info = pending.pop()
            result.append(info)
            pending.extend(reversed(info.nested.values()))
        return result

    def close(self) -> None:
        """Drop the tables that hold this analysis itself, once the rules have read it.
        `imported_objects` keeps (analysis, class) pairs for this file's own classes too,
        a reference cycle that would keep the file's whole tree and summaries alive until
        the cyclic collector finds them (its traversal was ~8% of a cold run); without it
        reference counting frees them as the lint returns. Only the engine's lint of a
        file calls it: analyses a project index keeps for other files stay whole."""
        self.imported_objects.clear()

    def summary_for(self, info: FunctionInfo) -> Optional[Summary]:
        if info.qualname in self.summaries:
            return self.summaries[info.qualname]
        if not self.complete and not self.busy:
            return self._summary_in_order(info)
        if info.qualname in self._in_progress:
            return None  # recursion: no summary, the call is treated as opaque
        if self.budget_exceeded or self._facts_held + len(self.facts.eval_forwards) > FACT_BUDGET:
            self.budget_exceeded = True
            return None  # not cached: the next call asks again, at no cost
        self._in_progress.add(info.qualname)
        self.summaries_computed += 1
        try:
            interpreter = _Interpreter(self, info)
            interpreter.run()
            summary = interpreter.summary
        except RecursionError:
            summary = None
        finally:
            self._in_progress.discard(info.qualname)
        if summary is not None:
            summary.forwards = distinct_requirements(summary.forwards)
            self._facts_held += len(summary.forwards)
        self.summaries[info.qualname] = summary
        self.facts.summaries[info.qualname] = summary
        return summary

    def _summary_in_order(self, info: FunctionInfo) -> Optional[Summary]:
        """A lazy analysis asked from outside (an importer) for a summary: every function
        before it in `all_functions()` is summarised first, in that order, as a complete
        analysis does. A summary depends on the ones computed before it (recursion answers,
        `call_counts`, `mode_independent`, the fact budget), so each is the one the complete
        analysis computes, whichever importer asks first and in whatever order; what is
        saved is the functions after the last one asked for, and the top level."""
        order = self._lazy_order()
        if all(f is not info for f in order):
            return self.completed().summary_for(info)
        self.busy = True
        try:
            while self._summarised_upto < len(order) and info.qualname not in self.summaries:
                current = order[self._summarised_upto]
                self._summarised_upto += 1
                self.summary_for(current)
        finally:
            self.busy = False
        return self.summaries.get(info.qualname)

    def _lazy_order(self) -> list[FunctionInfo]:
        order = self.__dict__.get("_all_functions")
        if order is None:
            order = self.__dict__["_all_functions"] = self.all_functions()
        return order

    def _called_in_project(
        self, info: FunctionInfo, into: Optional[list[list[Path]]] = None
    ) -> bool:
        """A top-level helper that other project files (scripts, notebooks) import and call:
        judged by those callers, not alone as a library function."""
        if self.project is None or info.parent is not None:
            return False
        owner = info.owner
        if owner is not None and (
            "." in owner.name or (owner.is_module and (info.name == "forward" or "__" in info.name))
        ):
            return False  # a module's forward runs through `model(x)`; nested classes
        # a module's other methods (`net.sample(prime, n)` from a solver in another file) are
        # judged by those callers, as a method called in its own file is
        callers = self.project.callers_of(
            self.path, info.name, owner.name if owner is not None else None
        )
        if callers:
            (self._callers_by_function if into is None else into).append(callers)
        return bool(callers)

    def _judge_by_callers(self) -> set[Place]:
        """Analyse the files that call this file's helpers, with this analysis standing in
        for this file, and keep what they find inside it: an evaluation forward here that a
        real caller reaches in the wrong mode, or a training step here that it reaches in
        eval mode, is reported here, with the caller's path."""
        project = self.project
        decided: set[Place] = set()
        if project is None:
            return decided
        project.adopt(self.path, self._source or "", self.module, self)
        chosen: list[Path] = []
        for lists in (self._callers_by_function, self._training_callers):
            for rank in range(max((len(c) for c in lists), default=0)):
                for callers in lists:  # every helper's first caller first
                    if rank < len(callers) and callers[rank] not in chosen:
                        if len(chosen) < MAX_CALLER_FILES:
                            chosen.append(callers[rank])
        of_forwards = {caller for callers in self._callers_by_function for caller in callers}
        for caller in chosen:
            analysis = project.caller_analysis(caller)
            if analysis is None:
                continue
            if caller in of_forwards:
                decided |= analysis.decided_forwards
            for forward in analysis.facts.eval_forwards if caller in of_forwards else ():
                if forward.call.unit is not self.unit:
                    continue
                self.facts.eval_forwards.append(
                    replace(
                        forward,
                        train_facts=without_sites(forward.train_facts),
                        grad_facts=without_sites(forward.grad_facts),
                        report_at_call=False,
                        order=self.next_order(),
                    )
                )
            for step in analysis.facts.training_steps:
                # a training step here that a caller reaches in eval mode (`validate()` then
                # this file's `fit()` again): reported at the step, as a same-file helper's is
                if step.site.unit is not self.unit or not step.via:
                    continue
                deliberate = analysis.facts.deliberate_switches  # a freeze, not an evaluation
                kept = frozenset(f for f in step.eval_facts if id(f.site) not in deliberate)
                if kept:
                    self.facts.training_steps.append(
                        replace(step, eval_facts=without_sites(kept), order=self.next_order())
                    )
        return decided

    def _judge_alone(
        self,
        summary: Summary,
        requirements: Optional[list[ForwardRequirement]] = None,
        callback: bool = False,
    ) -> None:
        from evallint.analysis.judging import judge_alone

        judge_alone(self, summary, requirements, callback)

    def _module_level_keys(self) -> set[str]:
        """Module-level names that hold modules, so functions using them as globals track them."""
        keys: set[str] = set()
        evidence: Optional[frozenset[str]] = None
        for statement in top_level_statements(self.module.body):
            if type(statement) is cst.SimpleStatementLine:
                for small in statement.body:
                    if type(small) is not cst.Assign:
                        continue
                    for name, call in assigned_pairs(small):
                        if not name or "." in name or words(name) & NOT_MODULE_WORDS:
                            continue
                        if call is not None and (
                            self._builds_plain_object(call)
                            or other_framework_call(self.imports, call)
                        ):
                            continue  # `model = Sequential(layers)`, a hand-written class;
                            # `apply_resnet = jax.jit(...)`, another framework's function
                        if evidence is None:
                            evidence = self.scope(self.module).evidence
                        if call is not None and (
                            self._constructs_module(call)
                            or (looks_like_module_name(name) and not self._library_object(call))
                        ):
                            keys.add(name)
                            continue
                        if name in evidence:
                            keys.add(name)  # `sr = torch.load(path)["model"]; sr.eval()`
        if not self._source or "global " in self._source:
            keys |= self._global_modules_built_in_functions()
        return keys

    def _library_object(self, call: cst.Call) -> bool:
        """`ctc_decoder = ctcdecode.CTCBeamDecoder(labels)`: an object of a class that a
        package outside torch and the project defines (module_sources.library_class). The
        name it is bound to says nothing about it; only its use as a module (`.eval()`,
        `.parameters()`, an optimizer over it: the scope's evidence) makes it one."""
        return library_class(self.imports, self.project or self.reader, self.path, call)

    def _global_modules_built_in_functions(self) -> set[str]:
        """`global dlrm` then `dlrm = DLRM_Net(...)` in a function (`run()`): the module is a
        global of the file all the same, which other functions (`dlrm_wrap`) use."""
        keys: set[str] = set()
        for info in self.functions.values():
            declared = self.scope(info.node).declared_outer
            if not declared:
                continue
            for node in iter_nodes(info.node.body):
                if type(node) is not cst.Assign:
                    continue
                for name, call in assigned_pairs(node):
                    if name in declared and call is not None and self._constructs_module(call):
                        keys.add(name)
        return keys

    def _builds_plain_object(self, call: cst.Call) -> bool:
        """`Sequential([...])` with `Sequential` a class of this file that derives from
        nothing (hand-written layers keeping their own `training` flag): no nn.Module,
        whatever its name and its `parameters()` method say."""
        return builds_plain_object(self, call)  # of another project file too

    def _constructs_module(self, call: cst.Call) -> bool:
        qualified = self.imports.qualify(call.func) or ""
        last = qualified.split(".")[-1]
        if last.endswith(MODE_INDEPENDENT_SUFFIXES) or last in STATELESS_LAYERS:
            return False
        return (
            qualified.startswith("torch.nn.")
            or (qualified in self.classes and self.classes[qualified].is_module)
            or library_factory(qualified, self.options.module_factories)
        )

    def binds_attribute(self, name: str) -> bool:
        """Whether this file or another file of its project may bind attribute `name`
        (`self.name = ...`, a class attribute, a property, `setattr(self, "name", m)`: see
        bound_names.py). When nothing does, `self.name(...)` of a class whose base lies
        outside the project calls a method that base defines (`self.register_model(...)`,
        nn.Module's `self.add_module(...)`), never a submodule."""
        if name in self.own_bound_names() or not self._source:
            return True
        project = self.project or self.reader
        return project is None or project.project_binds(self.path, name)

    def own_bound_names(self) -> frozenset[str]:
        """The attribute names this file's own text binds (see bound_names.py), read once
        (in a language server, per piece of text kept from the previous lint)."""
        if self._own_bound_names is None:
            self._own_bound_names = text_bound_names(self._source or "", text_store())
        return self._own_bound_names

    def called_names(self) -> tuple[frozenset[str], frozenset[str]]:
        """The names the file calls: bare (`f(...)`), and bare or as an attribute (`x.f(...)`)
        (file_shapes.called_names), walked once per file."""
        if self._called_names is None:
            self._called_names = called_names(self.module)
        return self._called_names

    def grad_disabling_decorator(self, name: str) -> bool:
        """A decorator defined in this file that runs the function it wraps under
        `no_grad`/`inference_mode` (`def nograd(f): ... with torch.no_grad(): return
        f(*args)`): recognised by its body, not its name."""
        info = self.functions.get(name)
        if info is None or not info.params:
            return False
        cached = self._grad_decorators.get(name)
        if cached is None:
            cached = self._grad_decorators[name] = wraps_in_no_grad(
                info.node, info.params[0], self.imports
            )
        return cached

    def backpropagated(self, block: cst.CSTNode) -> frozenset[str]:
        """`calls.backpropagated_names` of a block, once per block of this file."""
        cached = self._backpropagated.get(id(block))
        if cached is None or cached[0] is not block:
            from evallint.analysis.statement_shapes import backpropagated_names

            cached = self._backpropagated[id(block)] = (
                block,
                memo("backpropagated_names", block, backpropagated_names),
            )
        return cached[1]

    def next_order(self) -> int:
        return next(self._order)

    def forward_method_names(self) -> frozenset[str]:
        """Methods that run a module's forward, read from the bodies of this file's module
        classes and of the project module classes it imports (see forward_methods.py)."""
        if self._forward_method_names is None:
            from evallint.analysis.forward_methods import methods_of_file

            (
                self._forward_method_names,
                self._grad_free_methods,
                self.eval_switched_methods,
                self.kept_eval_methods,
            ) = methods_of_file(self)
        return self._forward_method_names

    def module_class_method_names(self) -> frozenset[str]:
        """Names of the methods this file's module classes define (the classes and their
        methods are fixed when the file's definitions are collected)."""
        if self._module_class_methods is None:
            self._module_class_methods = frozenset(
                name for cls in self.classes.values() if cls.is_module for name in cls.methods
            )
        return self._module_class_methods

    def grad_free_methods(self) -> frozenset[str]:
        """Methods of this file's and its imported project classes that run under a
        no_grad/inference_mode decorator (see forward_methods.py)."""
        self.forward_method_names()
        return self._grad_free_methods

    def specialised(
        self, info: FunctionInfo, call: Optional[cst.Call], known: Flags = ()
    ) -> Optional[Summary]:
        """The summary of `info` for a call that fixes some of its flags with constants
        (see specialise.py); None when the call fixes none (the general summary applies).
        Without a call: the function's plain use, its flags at their defaults."""
        tested = self._tested.get(info.qualname)
        if tested is None:
            # a function's parameters are read from its node: the node decides
            tested = self._tested[info.qualname] = memo(
                "tested_parameters", info.node, lambda _: tested_parameters(info)
            )
        flags = constant_flags(info, call, tested, known)
        if not flags:
            return None
        key = (info.qualname, flags)
        if key in self._specialised:
            return self._specialised[key]
        if key in self._in_progress or self.budget_exceeded:
            return None
        self._in_progress.add(key)
        self.summaries_computed += 1
        # facts other than forwards and training steps (which rules report once per region
        # and module) were recorded by the general interpretation already
        kept = {
            name: len(value)
            for name, value in vars(self.facts).items()
            if type(value) is list and name not in ("eval_forwards", "training_steps")
        }
        try:
            interpreter = _Interpreter(self, info, flags)
            interpreter.run()
            summary = interpreter.summary
        except RecursionError:
            summary = None
        finally:
            self._in_progress.discard(key)
            for name, length in kept.items():
                del getattr(self.facts, name)[length:]
        if summary is not None:
            summary.forwards = distinct_requirements(summary.forwards)
            self._facts_held += len(summary.forwards)
        self._specialised[key] = summary
        return summary

    def _summary_counted(self, info: FunctionInfo) -> Optional[Summary]:
        self.call_counts[info.qualname] = self.call_counts.get(info.qualname, 0) + 1
        return self.summary_for(info)

    def block_evidence(self, statements, scope: Optional[FunctionInfo]):
        """Evidence of a function's body or a run of statements (cached per statement)."""
        return self._evidence_in(scope, self._evidence.block, statements)

    def statement_evidence(self, statement: cst.CSTNode, scope: Optional[FunctionInfo]):
        """Evidence of one statement; a loop's is its body's and header's (cached)."""
        return self._evidence_in(scope, self._evidence.statement, statement)

    def _evidence_in(self, scope: Optional[FunctionInfo], gather: Callable, what):
        """Calls in `what` are resolved from `scope`; gathering may summarise a callee, whose
        own evidence is gathered in its scope, so the caller's is restored after."""
        outer, self._evidence_scope = self._evidence_scope, scope
        try:
            return gather(what)
        finally:
            self._evidence_scope = outer

    def _call_reports(self, call: cst.Call) -> bool:
        """`save_results(n, samples.detach(), epoch)`: a plain project helper that reports
        (see reported.reports_by_itself); decided once per name in this file."""
        name = dotted_name(call.func)
        if name is None or name.count(".") > 1:
            return False
        known = self._reporting_helpers.get(name)
        if known is None:
            helper = plain_helper(self, call.func)
            known = self._reporting_helpers[name] = helper is not None and reports_by_itself(helper)
        return known

    def _call_trains(self, call: cst.Call, scope: Optional[FunctionInfo]) -> bool:
        func = call.func
        if type(func) not in (cst.Name, cst.Attribute):
            return False
        if self.steps_parameters_by_call(call):
            return True  # `train_op()` built from `model.parameters()`
        if type(func) is cst.Attribute and type(func.value) is cst.Name and self.project:
            # `agent.learn(memory)` on an object of a plain class of another project file
            scope_name = scope.qualname if scope else None
            if scope_name not in self._scanned_scopes:
                self._scanned_scopes.add(scope_name)
                for name, classes in objects_in_scope(self, scope, every_class=True).items():
                    self.imported_objects.setdefault((scope_name, name), classes)
            held = self.imported_objects.get((scope_name, func.value.value))
            for analysis, owner in held or ():
                method = owner.methods.get(func.attr.value) or analysis._inherited_method(
                    owner, func.attr.value
                )
                summary = analysis.summary_for(method) if method is not None else None
                if summary is not None and summary.trains:
                    return True
        resolved = self.resolve_function(
            call, scope, count=False, passes_module=_passes_optimizer(call)
        )
        return bool(resolved and resolved[0] and resolved[0].trains)


def _passes_optimizer(call: cst.Call) -> bool:
    """A call given an optimizer (`apply_gradients(loss, self.g_optimizer)`): whether it
    steps it is the called function's to say, so it is read even in another project file
    (a helper of any name that runs `backward()` and `step()` is a training step)."""
    return any(is_optimizer_receiver(arg.value) for arg in call.args)
