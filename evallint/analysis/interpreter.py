"""The abstract interpreter: one pass over each function's statements, tracking every
module's possible modes and the possible grad states on each path.

Shaped like mypy's partially-defined pass: branches are interpreted separately and joined,
`return`/`raise`/`break`/`continue` take paths out of the normal flow, and loops run to a
fixpoint (that is how an epoch loop carries the eval mode its last `validate()` left behind
into the next epoch's training step). Functions are summarised once and the summary is
applied at every call site.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import sysconfig
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import libcst as cst

from evallint.analysis.conditions import condition_key
from evallint.analysis.facts import (
    EvalForward,
    GradientsNeverCleared,
    ModuleFacts,
    Place,
    TrainingOnEvalData,
    TrainingStep,
    UnitRef,
)
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
from evallint.analysis.observations import Observations
from evallint.analysis.options import AnalysisOptions
from evallint.analysis.regions import (
    EvidenceCollector,
    Region,
    RegionKind,
    classify_block,
    iterates_range,
    mentions_eval_data,
    training_call_kind,
)
from evallint.analysis.scope import (
    ClassInfo,
    FunctionInfo,
    ScopeNames,
    collect_definitions,
    frozen_modules,
    looks_like_module_name,
    module_classes_of_text,
    scope_names,
)
from evallint.analysis.summaries import ForwardRequirement, Summary, TrainingRequirement
from evallint.analysis.symbols import ImportTable, collect_imports, dotted_name
from evallint.analysis.vocabulary import (
    CLASS_NAME_MODULE_WORDS,
    CONTAINER_LAYERS,
    EVAL_FILE_WORDS,
    EVAL_FUNCTION_WORDS,
    FORWARD_METHODS,
    GRAD_DISABLERS,
    GRAD_ENABLERS,
    GRAD_SETTERS,
    LIBRARY_FACTORIES,
    MODE_DEPENDENT_LAYERS,
    MODE_INDEPENDENT_SUFFIXES,
    MODULE_NAME_WORDS,
    NO_GRAD_METHODS,
    NOT_MODULE_WORDS,
    PRETRAINED_LOADERS,
    SAME_MODULE_ATTRIBUTES,
    SAME_MODULE_METHODS,
    STATELESS_LAYERS,
    UNKNOWN_MODE_LOADERS,
    WRAPPERS,
    words,
)
from evallint.source.parse import ParseFailure, parse_module
from evallint.source.positions import NodePositions, PiecewisePositions

States = tuple  # tuple[PathState, ...]
MAX_LOOP_ITERATIONS = 8

_CODEGEN = cst.Module([])


def code_of(node: cst.CSTNode) -> str:
    return _CODEGEN.code_for_node(node)


def _mentions_module(annotation: cst.BaseExpression) -> bool:
    """`nn.Module`, `Optional[torch.nn.Module]`, `"nn.Module"`: without generating its code."""
    from evallint.analysis.walk import iter_nodes

    for node in iter_nodes(annotation):
        node_type = type(node)
        if (node_type is cst.Name and "Module" in node.value) or (
            node_type is cst.Attribute and "Module" in node.attr.value
        ):
            return True
        if node_type is cst.SimpleString and "Module" in node.value:
            return True
    return False


@dataclass
class Flow:
    """Where paths go when a block ends: on, out of a loop, or out of the function."""

    normal: States = ()
    breaks: States = ()
    continues: States = ()
    returns: States = ()

    def absorb_jumps(self, other: Flow) -> None:
        self.breaks += other.breaks
        self.continues += other.continues
        self.returns += other.returns


# -- values ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleValue:
    """What an expression evaluates to, as far as modules are concerned."""

    key: Optional[str] = None
    """An existing module (alias)."""
    fresh: Optional[frozenset] = None
    """A new module with these mode facts."""
    mode_matters: bool = True
    copy_of: Optional[str] = None


@dataclass
class _Observation:
    """A forward seen during interpretation, accumulated over every pass through it."""

    key: str
    subject: str
    region: Region
    train: frozenset = frozenset()
    entry_mode: bool = False
    grad: frozenset = frozenset()
    entry_grad: bool = False
    affects_grad: bool = True
    mode_matters: bool = True
    order: int = 0


def _span_or_file_start(
    positions: NodePositions | PiecewisePositions, node: cst.CSTNode
) -> tuple[int, int, int, int]:
    return positions.span(node) or (1, 1, 1, 1)


class FileAnalysis:
    """Everything evallint knows about one file. Built once; rules read `facts`."""

    def __init__(
        self,
        module: cst.Module,
        path: str,
        *,
        source: str = "",
        options: AnalysisOptions = AnalysisOptions(),
        project: Optional[ProjectIndex] = None,
        record_flow: bool = False,
        judge_uncalled: bool = True,
        positions: Optional[NodePositions | PiecewisePositions] = None,
    ) -> None:
        self.module = module
        self.path = path
        self.options = options
        self._source = source
        self._has_optimizer: Optional[bool] = None
        self.project = project
        self.record_flow = record_flow
        self._positions = positions or NodePositions(module)
        self.unit = UnitRef(path, functools.partial(_span_or_file_start, self._positions))
        self.facts = ModuleFacts(path, self.unit, tree=module, source=source)
        self.imports: ImportTable = collect_imports(module)
        self.facts.torch_names = (
            self.imports.local_name_of("torch"),
            self.imports.local_name_of("torch.no_grad"),
        )
        self.functions, self.classes = collect_definitions(module, self.imports)
        self.summaries: dict[str, Optional[Summary]] = {}
        self.call_counts: dict[str, int] = {}
        self._in_progress: set[str] = set()
        self._order = itertools.count()
        self.mode_independent: set[str] = set()
        self.optimizer_links: Optional[set[str]] = None
        self._optimizer_params: Optional[dict[str, set[str]]] = None
        self._evidence_scope: Optional[FunctionInfo] = None
        analysis = weakref.ref(self)  # no cycle: the file's tree is freed when its analysis is
        self._evidence = EvidenceCollector(
            self.imports,
            lambda call: analysis()._call_trains(call, analysis()._evidence_scope),  # type: ignore[union-attr]
            lambda: analysis().has_optimizer,  # type: ignore[union-attr]
        )
        stem = Path(path).stem
        self.is_pytest_file = (
            stem.startswith("test_") or stem.endswith("_test") or stem == "conftest"
        )
        self.script_evaluates = bool(words(stem) & EVAL_FILE_WORDS)
        self._module_keys: set[str] = set()
        self.deliberate_switches: set[int] = set()
        """`eval()` calls in scopes that evaluate nothing: a deliberate freeze (BatchNorm
        statistics of a frozen backbone during a linear probe), not an evaluation that
        training must switch back from."""
        self._scopes: dict[int, tuple[cst.CSTNode, ScopeNames]] = {}
        self.frozen_globals: frozenset[str] = frozenset()
        """Module-level names whose parameters are all frozen at the top level of the file."""
        self.mentions_requires_grad = not source or "requires_grad" in source
        """Only then can a scope freeze a module (the scan for it is skipped otherwise)."""
        self._analyse(judge_uncalled)

    def scope(self, body: cst.CSTNode) -> ScopeNames:
        """`scope_names`, walked once per scope: the interpreters of nested functions and of
        a class's methods ask for the same scopes again. Kept per file, so it dies with it."""
        cached = self._scopes.get(id(body))
        if cached is None or cached[0] is not body:
            cached = self._scopes[id(body)] = (body, scope_names(body))
        return cached[1]

    # -- positions (lazy: only files with findings pay for them) ---------------------------
    def locate(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        return self.unit.locate(node)

    # -- driver ------------------------------------------------------------------------------
    def _analyse(self, judge_uncalled: bool) -> None:
        self._module_keys = self._module_level_keys()
        if self.mentions_requires_grad:
            self.frozen_globals = frozen_modules(
                s for s in self.module.body if type(s) not in (cst.FunctionDef, cst.ClassDef)
            )
        for info in self.all_functions():
            self.summary_for(info)
        top = _Interpreter(self, None)
        top.run()
        if judge_uncalled:
            for info in self.all_functions():
                summary = self.summaries.get(info.qualname)
                if summary is not None and self.call_counts.get(info.qualname, 0) == 0:
                    self._judge_alone(summary)
        self._drop_deliberate_switches()

    def _drop_deliberate_switches(self) -> None:
        """EVL003 is about training after an evaluation: eval-mode facts that come only from
        deliberate switches are not one."""
        if not self.deliberate_switches:
            return
        kept = []
        for step in self.facts.training_steps:
            facts = frozenset(
                f
                for f in step.eval_facts
                if not (f.origin is Origin.SWITCHED and id(f.site) in self.deliberate_switches)
            )
            if facts:
                kept.append(replace(step, eval_facts=facts))
        self.facts.training_steps = kept

    def all_functions(self) -> list[FunctionInfo]:
        """Every function, method and nested function, each before the ones nested in it."""
        result: list[FunctionInfo] = []
        pending = list(self.functions.values()) + [
            m for cls in self.classes.values() for m in cls.methods.values()
        ]
        pending.reverse()
        while pending:
            info = pending.pop()
            result.append(info)
            pending.extend(reversed(info.nested.values()))
        return result

    def summary_for(self, info: FunctionInfo) -> Optional[Summary]:
        if info.qualname in self.summaries:
            return self.summaries[info.qualname]
        if info.qualname in self._in_progress:
            return None  # recursion: no summary, the call is treated as opaque
        self._in_progress.add(info.qualname)
        try:
            interpreter = _Interpreter(self, info)
            interpreter.run()
            summary = interpreter.summary
        except RecursionError:
            summary = None
        finally:
            self._in_progress.discard(info.qualname)
        self.summaries[info.qualname] = summary
        self.facts.summaries[info.qualname] = summary
        return summary

    def _judge_alone(self, summary: Summary) -> None:
        """A function nobody here calls: its entry state is unknown, so a forward that
        depends on it is judged as possibly in training mode with autograd on, provided the
        function runs a data loop itself (a per-batch helper is left to its callers) or
        evaluates after its own training step (which needs autograd on)."""
        if (
            summary.framework_hook
            or summary.qualname.split(".")[-1] in self.options.framework_hooks
        ):
            return
        for req in summary.forwards:
            if req.region.kind is not RegionKind.EVAL or not (
                req.region.has_data_loop or req.region.after_training
            ):
                continue
            entry = (
                frozenset({ModeFact(Mode.ENTRY, Origin.ENTRY)})
                if req.mode_from_entry
                else frozenset()
            )
            grad = frozenset({GradFact(Grad.ENTRY)}) if req.grad_from_entry else frozenset()
            if not entry and not grad:
                continue
            self.facts.eval_forwards.append(
                EvalForward(
                    req.place,
                    req.subject,
                    req.region,
                    entry,
                    grad,
                    req.affects_grad,
                    req.mode_matters,
                    req.via,
                    next(self._order),
                    req.report_at_call,
                    req.region_unit,
                )
            )

    def _module_level_keys(self) -> set[str]:
        """Module-level names that hold modules, so functions using them as globals track them."""
        keys: set[str] = set()
        for statement in self.module.body:
            if type(statement) is cst.SimpleStatementLine:
                for small in statement.body:
                    if type(small) is cst.Assign and type(small.value) is cst.Call:
                        for target in small.targets:
                            name = dotted_name(target.target)
                            if (
                                name
                                and "." not in name
                                and not words(name) & NOT_MODULE_WORDS
                                and (
                                    looks_like_module_name(name)
                                    or self._constructs_module(small.value)
                                )
                            ):
                                keys.add(name)
        return keys

    def _constructs_module(self, call: cst.Call) -> bool:
        qualified = self.imports.qualify(call.func) or ""
        last = qualified.split(".")[-1]
        if last.endswith(MODE_INDEPENDENT_SUFFIXES) or last in STATELESS_LAYERS:
            return False
        return qualified.startswith("torch.nn.") or (
            qualified in self.classes and self.classes[qualified].is_module
        )

    def next_order(self) -> int:
        return next(self._order)

    def resolve_function(
        self,
        call: cst.Call,
        scope: Optional[FunctionInfo],
        *,
        count: bool = True,
        passes_module: bool = False,
    ) -> Optional[tuple[Summary, bool]]:
        """The summary of a called function of this file or project, and whether the call is
        a method call on `self` (whose `self.X` modules map onto the caller's). `count`
        records the call (functions nobody calls are judged on their own)."""
        summarise = self._summary_counted if count else self.summary_for
        func = call.func
        if type(func) is cst.Name:
            name = func.value
            cursor = scope
            while cursor is not None:
                if name in cursor.nested:
                    return summarise(cursor.nested[name]), False
                cursor = cursor.parent
            if name in self.functions:
                return summarise(self.functions[name]), False
            if (
                self.project is not None
                and name in self.imports.modules_from
                and _worth_following(call, passes_module)
            ):
                summary = self.project.summary(
                    self.path, self.imports.modules_from[name], self.imports.qualify(func) or name
                )
                if summary is not None:
                    return summary, False
            return None
        if (
            type(func) is cst.Attribute
            and type(func.value) is cst.Name
            and self.project is not None
            and self.imports.is_imported(func.value.value)
            and _worth_following(call, passes_module)
        ):
            # `engine.train_one_epoch(...)` after `import engine` / `from . import engine`
            summary = self.project.summary(
                self.path, self.imports.module_path(func.value.value), func.attr.value
            )
            return (summary, False) if summary is not None else None
        if (
            type(func) is cst.Attribute
            and type(func.value) is cst.Name
            and func.value.value == "self"
        ):
            owner = scope.owner if scope is not None else None
            while scope is not None and owner is None:
                scope = scope.parent
                owner = scope.owner if scope is not None else None
            if owner is not None:
                method = owner.methods.get(func.attr.value) or self._inherited_method(
                    owner, func.attr.value
                )
                if method is not None:
                    return summarise(method), True
        return None

    def _inherited_method(self, owner: ClassInfo, name: str) -> Optional[FunctionInfo]:
        for base in owner.bases:
            cls = self.classes.get(base)
            if cls is not None:
                found = cls.methods.get(name) or self._inherited_method(cls, name)
                if found is not None:
                    return found
        return None

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

    def _call_trains(self, call: cst.Call, scope: Optional[FunctionInfo]) -> bool:
        func = call.func
        if type(func) not in (cst.Name, cst.Attribute):
            return False
        resolved = self.resolve_function_quietly(call, scope)
        return bool(resolved and resolved.trains)

    def resolve_function_quietly(
        self, call: cst.Call, scope: Optional[FunctionInfo]
    ) -> Optional[Summary]:
        """Like resolve_function, without counting the call (evidence gathering only looks)."""
        resolved = self.resolve_function(call, scope, count=False)
        return resolved[0] if resolved else None

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
                            or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
                            or training_call_kind(node, self.imports) == "step"
                        ):
                            self._has_optimizer = True
                            break
        return self._has_optimizer

    def optimizer_params(self) -> dict[str, set[str]]:
        """Optimizer variable -> the modules whose parameters it was built with."""
        if self._optimizer_params is None:
            self.optimizer_keys()
        return self._optimizer_params or {}

    def optimizer_keys(self) -> set[str]:
        """Modules whose parameters some optimizer in the file was built with; empty when
        the file builds no optimizer (then every module forwarded with grad is trained)."""
        if self.optimizer_links is None:
            links: set[str] = set()
            by_variable: dict[str, set[str]] = {}
            from evallint.analysis.walk import iter_nodes

            for node in iter_nodes(self.module, enter_scopes=True) if self.has_optimizer else ():
                node_type = type(node)
                if (
                    node_type is cst.Assign
                    and type(node.value) is cst.Call
                    and len(node.targets) == 1
                ):
                    variable = dotted_name(node.targets[0].target)
                    if variable:
                        by_variable[variable] = self._parameter_owners(node.value)
                if node_type is cst.Call:
                    qualified = self.imports.qualify(node.func) or ""
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
            self.optimizer_links = links
            self._optimizer_params = {k: v for k, v in by_variable.items() if v and v <= links}
        return self.optimizer_links

    def _parameter_owners(self, call: cst.Call) -> set[str]:
        qualified = self.imports.qualify(call.func) or ""
        if not (
            qualified.startswith("torch.optim.") or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
        ):
            return set()
        from evallint.analysis.walk import iter_nodes

        owners = set()
        for inner in iter_nodes(call):
            if (
                type(inner) is cst.Call
                and type(inner.func) is cst.Attribute
                and inner.func.attr.value in ("parameters", "named_parameters")
            ):
                name = dotted_name(inner.func.value)
                if name:
                    owners.add(name)
        return owners


_NOT_MODULE_PRETRAINED = (
    "Tokenizer",
    "Processor",
    "Config",
    "Extractor",
    "Scheduler",
    "Pipeline",
    "tokenizer",
    "processor",
    "config",
)
"""`from_pretrained` owners that load something other than a model."""
_NOT_MODULE_CLASS_SUFFIXES = ("Loss", "Criterion", "Metric", "Metrics")
"""Module classes that compute a loss or a metric: calling one is not a model forward."""

_GRAPH_CUTTING_METHODS = frozenset(
    {
        "detach",
        "detach_",
        "item",
        "tolist",
        "numpy",
        "argmax",
        "argmin",
        "argsort",
        "long",
        "int",
        "bool",
        "eq",
        "ne",
        "gt",
        "lt",
        "ge",
        "le",
        "size",
        "dim",
        "numel",
        "sign",
        "round",
        "floor",
        "ceil",
        "batch_decode",
        "decode",
    }
)
"""Calls whose result carries no autograd graph (numbers, indices, booleans, text)."""
_GRAPH_FREE_ATTRIBUTES = frozenset({"data", "grad", "shape", "dtype", "device", "ndim"})


_EXPRESSION_PARTS = (cst.BaseExpression, cst.Arg, cst.Element, cst.BaseElement)
_IS_EXPRESSION_PART: dict[type, bool] = {}
"""type -> whether `_expression_children` follows it (cached: ABC isinstance checks are slow)."""


def _expression_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    from evallint.analysis.walk import _child_fields, _kind

    children: list[cst.CSTNode] = []
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        value_type = type(value)
        if value_type is list or value_type is tuple:
            children.extend(v for v in value if _kind(type(v)))
            continue
        follows = _IS_EXPRESSION_PART.get(value_type)
        if follows is None:
            follows = _IS_EXPRESSION_PART[value_type] = issubclass(value_type, _EXPRESSION_PARTS)
        if follows:
            children.append(value)
    return children


_FORWARD_WORDS = frozenset(
    {
        "forward",
        "predict",
        "encode",
        "decode",
        "generate",
        "embed",
        "infer",
        "inference",
        "sample",
        "logits",
        "features",
    }
)
_NOT_FORWARD_WORDS = frozenset(
    {
        "parameters",
        "state",
        "dict",
        "load",
        "save",
        "register",
        "init",
        "config",
        "num",
        "print",
        "resize",
        "get",
        "set",
        "freeze",
        "unfreeze",
        "hook",
        "weights",
        "to",
        "apply",
        "named",
        "buffers",
        "modules",
        "children",
        "zero",
        "grad",
        "train",
        "eval",
        "pretrained",
        "gradient",
        "checkpointing",
        "tie",
        "prune",
        "half",
        "float",
        "cuda",
        "cpu",
    }
)


def _names_a_forward(attribute: str) -> bool:
    """`decoder`, `forward_features`, `encode_text` run a forward; `state_dict`,
    `num_parameters`, `save_pretrained` do not."""
    found = words(attribute)
    return bool(found & (_FORWARD_WORDS | MODULE_NAME_WORDS)) and not found & _NOT_FORWARD_WORDS


def _may_hold_comprehension(expr: cst.BaseExpression) -> bool:
    """Cheap pre-check: comprehensions sit at the top or inside a call's arguments."""
    if type(expr) in (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp):
        return True
    if type(expr) is cst.Call:
        return any(
            type(a.value) in (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp, cst.Call)
            for a in expr.args
        )
    return False


def _iterates_submodules(iterable: cst.BaseExpression) -> bool:
    from evallint.analysis.walk import iter_nodes

    return any(
        type(n) is cst.Call
        and type(n.func) is cst.Attribute
        and n.func.attr.value
        in (
            "modules",
            "children",
            "named_modules",
            "named_children",
            "parameters",
            "named_parameters",
        )
        for n in iter_nodes(iterable)
    )


def _iterable_words(loop: cst.For) -> frozenset:
    from evallint.analysis.walk import iter_nodes

    found: set[str] = set()
    for node in iter_nodes(loop.iter):
        if type(node) is cst.Name:
            found |= words(node.value)
        elif type(node) is cst.SimpleString and isinstance(node.evaluated_value, str):
            found |= words(node.evaluated_value)
    return frozenset(found)


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
_OPTIM_WORD = re.compile(r"ptim(?!iz(?!er)|is(?!er)|al|um)")
_OPTIMIZER_CLASS_WORD = re.compile(r"\b(?:" + "|".join(sorted(_OPTIMIZER_CLASSES)) + r")\b")


def _may_build_optimizer(source: str) -> bool:
    """Text without which a file builds and steps no optimizer: `.step(`, `optim`/`Optim`
    (`optimize`, `optimal` do not count) or an optimizer class. Literal searches first:
    one regex alternation over every file cost more than the rest of this check."""
    if ".step(" in source:
        return True
    if any(source[m.start() - 1 : m.start()] in ("O", "o") for m in _OPTIM_WORD.finditer(source)):
        return True
    return (
        any(name in source for name in _OPTIMIZER_CLASSES)
        and _OPTIMIZER_CLASS_WORD.search(source) is not None
    )


class _Interpreter(Observations):
    """Interprets one function body (or the module's top level) once."""

    def __init__(self, file: FileAnalysis, info: Optional[FunctionInfo]) -> None:
        self.file = file
        self.info = info
        self.imports = file.imports
        body_node = info.node if info is not None else file.module
        self.body = (
            list(info.node.body.body)
            if info is not None and type(info.node.body) is cst.IndentedBlock
            else ([] if info is not None else list(file.module.body))
        )
        self.evidence_names = file.scope(body_node).evidence
        self.scope_keys = self._scope_keys()
        self.regions: list[Region] = []
        self._observed_loops: set = set()
        self.regions_evaluates = False
        self.eval_switches: list[cst.Call] = []
        """`x.eval()` / `x.train(False)` calls interpreted here."""
        self.evaluates = False
        """Whether anything here evaluates: an evaluation region, a forward in one (here or
        in a callee), or a forward with autograd off."""
        self.observations: dict[cst.Call, _Observation] = {}
        self.training: dict[
            tuple[int, str], tuple[Place, str, Optional[Region], frozenset, bool, int]
        ] = {}
        self.grad_forwards: dict[int, set[str]] = {}
        self.frozen: set[str] = (
            set(frozen_modules(self.body))
            if file.mentions_requires_grad and self._mentions_requires_grad(body_node)
            else set()
        )
        """Modules whose parameters this scope freezes: their forwards build no graph."""
        self.scope_locals = (
            frozenset(info.params + info.keyword_only) | self._assigned_names()
            if info is not None
            else frozenset()
        )
        self.opaque_switch: Optional[frozenset] = None
        self.opaque_variables: set[str] = set()
        """Names bound to `getattr(obj, name)`: one of several modules, not one we can name."""
        self.submodule_variables: set[str] = set()
        """Loop variables over `x.modules()` / `x.children()`: switching them is a partial freeze."""
        self.taint: dict[str, frozenset] = {}
        self.instances: dict[str, ClassInfo] = {}
        self.summary: Optional[Summary] = None
        self.yield_states: States = ()
        self.return_values: list[ModuleValue] = []
        self.return_states: States = ()
        self.requirements: list[ForwardRequirement] = []
        self.training_requirements: list[TrainingRequirement] = []
        self.trains = False
        self._init_observations()

    # -- set up ------------------------------------------------------------------------------
    def _mentions_requires_grad(self, body: cst.CSTNode) -> bool:
        """Only then can this scope freeze a module (`requires_grad_(False)` or
        `p.requires_grad = False`): the walk for it is skipped otherwise."""
        return not self.file.scope(body).names.isdisjoint(("requires_grad", "requires_grad_"))

    def _scope_keys(self) -> set[str]:
        keys: set[str] = set()
        info = self.info
        if info is None:
            return {name for name in self.evidence_names if "." not in name}
        annotations = {
            p.name.value: p.annotation
            for p in (
                *info.node.params.params,
                *info.node.params.kwonly_params,
                *info.node.params.posonly_params,
            )
        }
        for name in (*info.params, *info.keyword_only):
            if name in ("self", "cls"):
                continue
            annotation = annotations.get(name)
            annotated = (
                annotation is not None
                and _mentions_module(annotation.annotation)
                and not words(name) & NOT_MODULE_WORDS
            )
            if annotated or looks_like_module_name(name) or name in self.evidence_names:
                keys.add(name)
        owner = self._owner()
        if owner is not None:
            if owner.is_module:
                keys.add("self")
            keys.update(self._class_module_attributes(owner))
        keys.update(
            name for name in self.evidence_names if not name.startswith("self.") and "." not in name
        )
        keys.update(self.file._module_keys & self._free_names())
        if info.parent is not None:
            local = set(info.params) | self._assigned_names()
            keys.update(
                n
                for n in self._free_names() - local
                if looks_like_module_name(n) or n in self.file.scope(info.parent.node).evidence
            )
        return keys

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

    def _class_module_attributes(self, owner: ClassInfo) -> set[str]:
        if owner.module_attributes:
            return owner.module_attributes
        attributes: set[str] = set()
        mode_dependent: set[str] = set()
        for method in owner.methods.values():
            for name, value in self.file.scope(method.node).attribute_assignments:
                facts = self._constructor_facts(value) if type(value) is cst.Call else None
                if facts is not None or (
                    looks_like_module_name(name)
                    and type(value) in (cst.Call, cst.Name, cst.Attribute, cst.Subscript)
                ):
                    attributes.add(name)  # `self.model = kwargs["model"]` too
                if facts is None or facts[1]:
                    mode_dependent.add(name)
            for name in self.file.scope(method.node).evidence:
                if name.startswith("self.") and name.count(".") == 1:
                    attributes.add(name)
            for name in self.file.scope(method.node).called_attributes:
                if looks_like_module_name(name):  # `self.model(x)`, set by a base class or a caller
                    attributes.add(name)
                    mode_dependent.add(name)
        for name in attributes - mode_dependent:
            self.file.mode_independent.add(f"{owner.name}::{name}")  # only bare nn.Linear & co.
        owner.module_attributes = attributes or {"<none>"}
        return owner.module_attributes

    def initial_state(self) -> PathState:
        state = PathState()
        if self.info is None:
            return state
        for key in sorted(self.scope_keys):
            state = state.with_mode(key, ENTRY_MODE).with_alias(key, key)
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
        return state.with_grad(grad)

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
            if by_name and self.file.is_pytest_file and "test" in name_words:
                by_name = False  # a unit test, not an evaluation
            region = classify_block(
                info.node,
                f"function {info.name}()",
                evidence,
                eval_by_name=by_name,
                eval_by_metrics=False,
            )
            trains_by_name = bool(
                name_words
                & {"train", "training", "fit", "finetune", "tune", "adapt", "step", "test"}
            )
            if (
                by_name
                and not trains_by_name
                and region.kind is RegionKind.TRAIN
                and not evidence.switches_to_train
            ):
                first_step = (evidence.steps or evidence.backwards or [None])[0]
                if first_step is not None:
                    self.file.facts.training_on_eval_data.append(
                        TrainingOnEvalData(Place(first_step, self.file.unit), region)
                    )
        self.regions.append(region)
        self.regions_evaluates = region.kind is RegionKind.EVAL
        self.evaluates = self.regions_evaluates
        flow = self.region_body(self.body, (self.initial_state(),), region)
        self.regions.pop()
        exit_states = normalize(flow.normal + flow.returns)
        self.finish_accumulations()
        if self.eval_switches and not self.evaluates and not self._calls_an_evaluation():
            self.file.deliberate_switches.update(id(call) for call in self.eval_switches)
        self._emit(exit_states)

    def _calls_an_evaluation(self) -> bool:
        """A call this analysis cannot follow that still reads as an evaluation: named for
        one (`evaluate(...)`, `trainer.validate()`; not the `eval()` switch itself) or given
        evaluation data."""
        from evallint.analysis.walk import iter_nodes

        for statement in self.body:
            for node in iter_nodes(statement):
                if type(node) is cst.Call:
                    name = dotted_name(node.func)  # type: ignore[attr-defined]
                    last = name.split(".")[-1] if name else ""
                    if last not in ("eval", "train") and words(last) & (
                        EVAL_FUNCTION_WORDS | self.file.options.eval_words
                    ):
                        return True
                    if any(
                        mentions_eval_data(arg.value, self.file.options.eval_words)
                        for arg in node.args
                    ):  # type: ignore[attr-defined]
                        return True
        return False

    # -- emitting facts and summaries ----------------------------------------------------------
    def _emit(self, exit_states: States) -> None:
        file = self.file
        here = file.unit
        for call, obs in sorted(self.observations.items(), key=lambda item: item[1].order):
            place = Place(call, here)
            if obs.region.kind is RegionKind.EVAL or obs.region.kind is RegionKind.MIXED:
                if obs.train or obs.grad:
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
                        report_at_call=self.regions_evaluates,
                        region_unit=here,
                    )
                )
        for (_, key), (place, subject, region, eval_facts, from_entry, order) in sorted(
            self.training.items(), key=lambda item: item[1][5]
        ):
            if eval_facts:
                file.facts.training_steps.append(
                    TrainingStep(place, subject, region, eval_facts, order)
                )
            if from_entry and self.info is not None:
                self.training_requirements.append(TrainingRequirement(place, key, subject))
        if self.info is None:
            return
        info = self.info
        exit_modes: dict[str, frozenset] = {}
        for key in self.scope_keys:
            facts: frozenset = frozenset()
            for state in exit_states:
                facts |= state.mode_of(key) or frozenset()
            exit_modes[key] = facts or ENTRY_MODE
        yield_modes = None
        if info.is_contextmanager and self.yield_states:
            yield_modes = {}
            for key in self.scope_keys:
                facts = frozenset()
                for state in self.yield_states:
                    facts |= state.mode_of(key) or frozenset()
                yield_modes[key] = facts or ENTRY_MODE
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
            self.trains or bool(evidence.training_sites),
            return_key,
            return_facts,
            opaque_switch=self.opaque_switch,
        )

    def _return_summary(self) -> tuple[Optional[str], Optional[frozenset]]:
        keys = {v.key for v in self.return_values if v.key is not None}
        fresh = [v.fresh for v in self.return_values if v.fresh is not None]
        if len(keys) == 1 and not fresh:
            key = next(iter(keys))
            if key in self.scope_keys:
                return key, None
            facts: frozenset = frozenset()
            for state in self.return_states:
                facts |= state.mode_of(key) or frozenset()
            return None, facts or None
        if fresh and not keys:
            facts = frozenset()
            for f in fresh:
                facts |= f
            return None, facts
        return None, None

    # -- statements ----------------------------------------------------------------------------
    def block(self, statements, states: States) -> Flow:
        flow = Flow(normal=states)
        for statement in statements:
            if not flow.normal:
                break
            step = self.statement(statement, flow.normal)
            flow.absorb_jumps(step)
            flow.normal = normalize(step.normal)
        return flow

    def region_body(self, statements, states: States, region: Region) -> Flow:
        """A loop's or function's body. In a training region, the statements from an eval()
        switch after the last training step on are an evaluation of their own
        (`optimizer.step(); model.eval(); val = model(x_val)`)."""
        tail = (
            self._evaluation_tail(statements)
            if region.kind is RegionKind.TRAIN and len(statements) > 1
            else None
        )
        if tail is None:
            return self.block(statements, states)
        flow = self.block(statements[:tail], states)
        evidence = self.file.block_evidence(statements[tail:], self.info)
        self.regions.append(
            Region(
                statements[tail],
                RegionKind.EVAL,
                "evaluation after the training step",
                evidence.needs_grad,
                has_data_loop=evidence.has_loop,
                after_training=True,
            )
        )
        rest = self.block(statements[tail:], flow.normal)
        self.regions.pop()
        rest.absorb_jumps(flow)
        return rest

    def _evaluation_tail(self, statements) -> Optional[int]:
        """Index of the statement that switches to eval mode after the body's last training
        site (backward, optimizer step, a call that trains), if one does."""
        trained = False
        tail = None
        for index, statement in enumerate(statements):
            evidence = self.file.statement_evidence(statement, self.info)
            if evidence.training_sites:
                trained, tail = True, None
            elif tail is None and trained and evidence.switches_to_eval:
                tail = index
        return tail

    def statement(self, node: cst.CSTNode, states: States) -> Flow:
        if self.file.record_flow:
            self.file.facts.flow.append(
                (self.info.qualname if self.info else "<module>", node, states)
            )
        if type(node) is cst.SimpleStatementLine:
            flow = Flow(normal=states)
            for small in node.body:
                if not flow.normal:
                    break
                step = self.small_statement(small, flow.normal)
                flow.absorb_jumps(step)
                flow.normal = step.normal
            return flow
        if type(node) is cst.If:
            return self.if_statement(node, states)
        if type(node) in (cst.For, cst.While):
            return self.loop(node, states)
        if type(node) is cst.With:
            return self.with_statement(node, states)
        if type(node) is cst.Try or type(node).__name__ == "TryStar":
            return self.try_statement(node, states)
        if type(node) is cst.Match:
            return self.match_statement(node, states)
        if type(node) in (cst.FunctionDef, cst.ClassDef):
            return Flow(normal=states)
        return Flow(normal=states)

    def suite(self, suite: cst.BaseSuite, states: States) -> Flow:
        if type(suite) is cst.IndentedBlock:
            return self.block(suite.body, states)
        return (
            self.block([cst.SimpleStatementLine(body=suite.body)], states)
            if suite.body
            else Flow(normal=states)
        )

    def small_statement(self, node: cst.BaseSmallStatement, states: States) -> Flow:
        if type(node) is cst.Return:
            if node.value is not None:
                states = self.expression(node.value, states)
                self.return_values.append(
                    self.value_of(node.value, states[0]) if states else ModuleValue()
                )
                self.return_states += states
            return Flow(returns=states)
        if type(node) is cst.Raise:
            if node.exc is not None:
                self.expression(node.exc, states)
            return Flow()
        if type(node) is cst.Break:
            return Flow(breaks=states)
        if type(node) is cst.Continue:
            return Flow(continues=states)
        if type(node) is cst.Expr:
            value = node.value
            if type(value) in (cst.Yield, cst.Await) and isinstance(
                getattr(value, "value", None), cst.CSTNode
            ):
                states = (
                    self.expression(value.value, states)
                    if isinstance(value.value, cst.BaseExpression)
                    else states
                )
            if type(value) is cst.Yield:
                self.yield_states += states
                return Flow(normal=states)
            self.observe_expression_statement(value, states)
            if type(value) is cst.Call and (self.imports.qualify(value.func) or "") in GRAD_SETTERS:
                states = self.expression(value, states)
                return Flow(normal=self.set_grad(value, states, statement=True))
            return Flow(normal=self.expression(value, states))
        if type(node) is cst.Assign:
            states = self.expression(node.value, states)
            for target in node.targets:
                self.observe_training_attribute(node, target.target, node.value, states)
                states = self.assign(target.target, node.value, states)
            return Flow(normal=states)
        if type(node) is cst.AnnAssign:
            if node.value is None:
                return Flow(normal=states)
            states = self.expression(node.value, states)
            return Flow(normal=self.assign(node.target, node.value, states))
        if type(node) is cst.AugAssign:
            states = self.expression(node.value, states)
            target = dotted_name(node.target)
            if target is not None and type(node.operator) is cst.AddAssign:
                self.observe_accumulation(node, target, node.value, states)
            if (
                target is not None
                and states
                and any(g.grad is not Grad.OFF for s in states for g in s.grad)
            ):
                self.taint[target] = self.taint.get(target, frozenset()) | self.taint_of(
                    node.value, states[0]
                )
            return Flow(normal=tuple(self._forget(node.target, s) for s in states))
        if type(node) is cst.Del:
            return Flow(normal=states)
        if type(node) in (cst.Import, cst.ImportFrom, cst.Pass, cst.Global, cst.Nonlocal):
            return Flow(normal=states)
        if type(node) is cst.Assert:
            return Flow(normal=self.expression(node.test, states))
        return Flow(normal=states)

    def if_statement(self, node: cst.If, states: States) -> Flow:
        states = self.expression(node.test, states)
        if states and self._is_module_check(node.test, states[0]):
            # `if isinstance(net, nn.Module): net.eval()`: always true for a module
            then_flow = self.suite(node.body, states)
            then_flow.normal = normalize(then_flow.normal)
            return then_flow
        key = condition_key(node.test)
        then_states: list[PathState] = []
        else_states: list[PathState] = []
        for state in states:
            if key is None:
                then_states.append(state)
                else_states.append(state)
                continue
            text, polarity = key
            known = state.assumed(text)
            if known is None:
                then_states.append(state.assuming(text, polarity))
                else_states.append(state.assuming(text, not polarity))
            elif known == polarity:
                then_states.append(state)
            else:
                else_states.append(state)
        flow = Flow()
        if then_states:
            then_flow = self.suite(node.body, normalize(then_states))
            flow.absorb_jumps(then_flow)
            flow.normal += then_flow.normal
        if else_states:
            if node.orelse is None:
                flow.normal += normalize(else_states)
            else:
                orelse = node.orelse
                else_flow = (
                    self.if_statement(orelse, normalize(else_states))
                    if type(orelse) is cst.If
                    else self.suite(orelse.body, normalize(else_states))
                )
                flow.absorb_jumps(else_flow)
                flow.normal += else_flow.normal
        flow.normal = normalize(flow.normal)
        return flow

    def _is_module_check(self, test: cst.BaseExpression, state: PathState) -> bool:
        return (
            type(test) is cst.Call
            and type(test.func) is cst.Name
            and test.func.value == "isinstance"
            and len(test.args) == 2
            and self.resolve(test.args[0].value, state) is not None
            and "Module" in code_of(test.args[1].value)
        )

    def loop(self, node: cst.For | cst.While, states: States) -> Flow:
        if type(node) is cst.For:
            states = self.expression(node.iter, states)
            eval_data = mentions_eval_data(
                node.iter, self.file.options.eval_words, testing=self.file.is_pytest_file
            )
            description = f"loop over {code_of(node.iter)}"
            metric_loop = not iterates_range(node.iter)
        else:
            states = self.expression(node.test, states)
            eval_data = False
            description = "while loop"
            metric_loop = True
        if self.file.is_pytest_file and self.info is not None and self.info.name.startswith("test"):
            metric_loop = False  # a unit test that checks accuracy is not an evaluation
        body = (
            node.body.body
            if type(node.body) is cst.IndentedBlock
            else [cst.SimpleStatementLine(body=node.body.body)]
        )
        evidence = self.file.statement_evidence(node, self.info)
        # metrics computed inside a training function are training metrics
        # (a whole script is too coarse a region to say so)
        enclosing = self.regions[1:] if self.info is None else self.regions
        metric_loop = metric_loop and not any(
            r.kind in (RegionKind.TRAIN, RegionKind.MIXED) for r in enclosing
        )
        region = classify_block(
            node, description, evidence, eval_by_name=eval_data, eval_by_metrics=metric_loop
        )
        if region.kind is RegionKind.EVAL and not region.has_data_loop:
            region = replace(region, has_data_loop=True)
        self.regions.append(region)
        self.evaluates = self.evaluates or region.kind is RegionKind.EVAL
        self._observe_loop(node, region, evidence, eval_data)
        self.loop_depth += 1
        entry = normalize(states)
        head = entry
        exits: States = ()
        unrolled = self._over_listed_modules(node, entry)
        if unrolled is not None:  # `for net in (netG, netD): net.eval()`: each in turn
            head, exits = unrolled
        for _ in range(MAX_LOOP_ITERATIONS if unrolled is None else 0):
            current = head
            if type(node) is cst.For:
                current = tuple(self._bind_target(node.target, s) for s in current)
                if _iterates_submodules(node.iter):
                    self.submodule_variables.update(self._target_names(node.target))
            body_flow = self.region_body(body, current, region)
            exits = body_flow.breaks
            self.return_passthrough(body_flow)
            new_head = normalize(entry + body_flow.normal + body_flow.continues)
            if new_head == head:
                break
            head = new_head
        self.regions.pop()
        self.loop_depth -= 1
        flow = Flow(returns=self._loop_returns)
        self._loop_returns = ()
        infinite = (
            type(node) is cst.While and type(node.test) is cst.Name and node.test.value == "True"
        )
        finished = () if infinite else head
        if node.orelse is not None and finished:
            else_flow = self.suite(node.orelse.body, finished)
            flow.absorb_jumps(else_flow)
            finished = else_flow.normal
        flow.normal = normalize(finished + exits)
        return flow

    _loop_returns: States = ()

    def _over_listed_modules(
        self, node: cst.For | cst.While, entry: States
    ) -> Optional[tuple[States, States]]:
        """A loop over a literal tuple/list of modules runs its body once per module, the
        target naming that module: (states after the last, states that broke out). None
        for any other loop, which is run to a fixpoint instead."""
        if type(node) is not cst.For or type(node.target) is not cst.Name or not entry:
            return None
        if (
            type(node.iter) not in (cst.Tuple, cst.List)
            or not 0 < len(node.iter.elements) <= MAX_LOOP_ITERATIONS
        ):  # type: ignore[attr-defined]
            return None
        items = [element.value for element in node.iter.elements]  # type: ignore[attr-defined]
        if any(type(element) is cst.StarredElement for element in node.iter.elements):  # type: ignore[attr-defined]
            return None
        if any(self.resolve(item, state) is None for item in items for state in entry):
            return None
        name = node.target.value
        current, exits = entry, ()
        for item in items:
            bound = tuple(
                state.forgetting(name).with_alias(name, self.resolve(item, state))
                for state in current
            )
            body_flow = self.suite(node.body, bound)
            exits = normalize(exits + body_flow.breaks)
            self.return_passthrough(body_flow)
            current = normalize(body_flow.normal + body_flow.continues)
            if not current:
                break
        return current, exits

    def _observe_loop(self, node: cst.CSTNode, region: Region, evidence, eval_data: bool) -> None:
        """EVL007: an unconditional training step in a loop over evaluation data;
        EVL008: a loop that steps the optimizer on backward() but never clears gradients."""
        if node in self._observed_loops:
            return
        self._observed_loops.add(node)
        first_step = (evidence.steps or evidence.backwards or [None])[0]
        trains_on_eval = (
            eval_data
            and region.kind is RegionKind.TRAIN
            and first_step is not None
            and not evidence.switches_to_train
            and not (type(node) is cst.For and "train" in _iterable_words(node))
        )
        if trains_on_eval:
            self.file.facts.training_on_eval_data.append(
                TrainingOnEvalData(Place(first_step, self.file.unit), region)
            )
        if evidence.steps and evidence.backwards and not evidence.clears_grad:
            self.file.facts.gradients_never_cleared.append(
                GradientsNeverCleared(
                    Place(evidence.steps[0], self.file.unit),
                    node,
                    Place(evidence.backwards[0], self.file.unit),
                )
            )

    def return_passthrough(self, body_flow: Flow) -> None:
        self._loop_returns = normalize(self._loop_returns + body_flow.returns)

    def with_statement(self, node: cst.With, states: States) -> Flow:
        pushed = 0
        exits: list[tuple[Summary, bool, cst.Call]] = []
        before = states
        for item in node.items:
            expr = item.item
            states = self.expression(expr, states)
            call = expr if type(expr) is cst.Call else None
            qualified = self.imports.qualify(call.func if call else expr) or ""
            if (
                qualified in GRAD_DISABLERS
                or qualified in GRAD_ENABLERS
                or qualified in GRAD_SETTERS
            ):
                if call is None:
                    self.observe_uncalled_manager(expr)
                    return Flow()  # `with torch.no_grad:` raises TypeError: the body never runs
                states = tuple(replace(s, grad_stack=s.grad_stack + (s.grad,)) for s in states)
                pushed += 1
                if qualified in GRAD_SETTERS:
                    states = self.set_grad(call, states, statement=False)
                else:
                    grad = Grad.OFF if qualified in GRAD_DISABLERS else Grad.ON
                    states = tuple(s.with_grad(frozenset({GradFact(grad, call)})) for s in states)
            elif call is not None:
                resolved = self.file.resolve_function(
                    call,
                    self.info,
                    passes_module=any(
                        self.resolve(a.value, states[0]) is not None for a in call.args
                    )
                    if states
                    else False,
                )
                if (
                    resolved is not None
                    and resolved[0] is not None
                    and resolved[0].yield_modes is not None
                ):
                    summary, receiver = resolved[0], ("self" if resolved[1] else None)
                    states = self.apply_modes(summary.yield_modes, summary, call, receiver, states)
                    exits.append((summary, receiver, call))
            if item.asname is not None and call is not None:
                states = self.assign(item.asname.name, expr, states)
        flow = self.suite(node.body, states)

        def leave(out: States) -> States:
            result = out
            for summary, receiver, call in reversed(exits):
                result = self.apply_modes(
                    summary.exit_modes, summary, call, receiver, result, base=before
                )
            if pushed:
                popped = []
                for s in result:
                    stack = s.grad_stack
                    grad = s.grad
                    for _ in range(min(pushed, len(stack))):
                        grad = stack[-1]
                        stack = stack[:-1]
                    popped.append(replace(s, grad=grad, grad_stack=stack))
                result = tuple(popped)
            return normalize(result)

        return Flow(
            leave(flow.normal), leave(flow.breaks), leave(flow.continues), leave(flow.returns)
        )

    def try_statement(self, node, states: States) -> Flow:
        body_flow = self.suite(node.body, states)
        flow = Flow()
        flow.absorb_jumps(body_flow)
        handler_entry = normalize(states + body_flow.normal)
        normal = body_flow.normal
        if node.orelse is not None:
            else_flow = self.suite(node.orelse.body, normal)
            flow.absorb_jumps(else_flow)
            normal = else_flow.normal
        for handler in node.handlers:
            handler_flow = self.suite(handler.body, handler_entry)
            flow.absorb_jumps(handler_flow)
            normal += handler_flow.normal
        if node.finalbody is not None:
            final = self.suite(node.finalbody.body, normalize(normal)) if normal else Flow()
            flow.breaks = self.suite(node.finalbody.body, flow.breaks).normal if flow.breaks else ()
            flow.continues = (
                self.suite(node.finalbody.body, flow.continues).normal if flow.continues else ()
            )
            flow.returns = (
                self.suite(node.finalbody.body, flow.returns).normal if flow.returns else ()
            )
            flow.absorb_jumps(final)
            normal = final.normal
        flow.normal = normalize(normal)
        return flow

    def match_statement(self, node: cst.Match, states: States) -> Flow:
        states = self.expression(node.subject, states)
        flow = Flow(normal=states)  # no case may match
        for case in node.cases:
            case_flow = self.suite(case.body, states)
            flow.absorb_jumps(case_flow)
            flow.normal += case_flow.normal
        flow.normal = normalize(flow.normal)
        return flow

    # -- assignment ----------------------------------------------------------------------------
    def _forget(self, target: cst.BaseExpression, state: PathState) -> PathState:
        for name in self._target_names(target):
            state = state.forgetting(name)
        return state

    def _target_names(self, target: cst.BaseExpression) -> list[str]:
        if type(target) in (cst.Tuple, cst.List):
            names: list[str] = []
            for element in target.elements:
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

    def assign(
        self, target: cst.BaseExpression, value: cst.BaseExpression, states: States
    ) -> States:
        if type(target) in (cst.Tuple, cst.List):
            elements = [e.value for e in target.elements]
            if type(value) in (cst.Tuple, cst.List) and len(value.elements) == len(elements):
                for element, item in zip(elements, value.elements):
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
            if states and any(g.grad is not Grad.OFF for st in states for g in st.grad):
                sources = self.taint_of(
                    value, states[0]
                )  # `logits, aux = model(x)`: both carry the graph
                for name in self._target_names(target):
                    self.taint[name] = sources
            return tuple(self._bind_target(target, s) for s in states)
        name = dotted_name(target)
        if name is None:
            return states
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
        self.note_reads(name, value)
        result = []
        for state in states:
            state = state.forgetting(name)
            snapshot = self._training_snapshot(value, state)
            if snapshot is not None:
                result.append(state.with_snapshot(name, snapshot))
                continue
            module_value = self.value_of(value, state)
            if module_value.key is not None:
                state = state.with_alias(name, module_value.key)
            elif module_value.fresh is not None:
                key = name
                state = state.with_alias(name, key).with_mode(key, module_value.fresh)
                if not module_value.mode_matters:
                    self.file.mode_independent.add(self._key_id(key))
                else:
                    self.file.mode_independent.discard(self._key_id(key))
            elif type(value) is cst.Call and self._unknown_module_source(name, value, state):
                state = state.with_alias(name, name).with_mode(
                    name,
                    {
                        ModeFact(Mode.TRAIN, Origin.LOADED, value),
                        ModeFact(Mode.EVAL, Origin.LOADED, value),
                    },
                )
            elif state.key_of(name) is not None:
                state = state.with_alias(name, None)
            result.append(state)
            if type(value) is cst.Call:
                owner = self._local_class(value)
                if owner is not None and not owner.is_module:
                    self.instances[name] = owner
                    init = owner.methods.get("__init__")
                    summary = self.file._summary_counted(init) if init is not None else None
                    if summary is not None:
                        return self.apply_call(summary, name, value, tuple(result))
        return tuple(result)

    def _unknown_module_source(self, name: str, value: cst.Call, state: PathState) -> bool:
        """`model = get_model(cfg)`: a call we cannot follow, into a variable that the code
        treats as a module (`model.parameters()` elsewhere) or names like one. Its mode is
        unknown: it may be in training mode."""
        if self._forward_target(value, state) is not None:
            return False
        if type(value.func) is cst.Name and value.func.value == "getattr":
            return False  # `getattr(self, name)`: one of several modules, switched opaquely
        callee = (dotted_name(value.func) or "").split(".")[-1]
        if callee[:1].isupper():
            return False  # a class that is not known to be a module: its name says what it is
        return name in self.evidence_names or (looks_like_module_name(name) and "." not in name)

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

    def _key_id(self, key: str) -> str:
        """Identity of a key for flow-insensitive facts: `self.X` belongs to its class."""
        owner = self._owner()
        if key.startswith("self.") and owner is not None:
            return f"{owner.name}::{key}"
        return f"{self.info.qualname if self.info else ''}::{key}"

    def _local_class(self, call: cst.Call) -> Optional[ClassInfo]:
        name = dotted_name(call.func)
        return self.file.classes.get(name) if name else None

    def _training_snapshot(
        self, value: cst.BaseExpression, state: PathState
    ) -> Optional[frozenset]:
        """`was_training = model.training`: remember the mode to restore later."""
        if type(value) is cst.Attribute and value.attr.value == "training":
            key = self.resolve(value.value, state)
            if key is not None:
                return state.mode_of(key) or ENTRY_MODE
        return None

    # -- values --------------------------------------------------------------------------------
    def resolve(self, expr: cst.BaseExpression, state: PathState) -> Optional[str]:
        """The module key an expression names, if it names a module."""
        while type(expr) is cst.Attribute and expr.attr.value in SAME_MODULE_ATTRIBUTES:
            expr = expr.value
        name = dotted_name(expr)
        if name is None or name in self.opaque_variables:
            return None
        key = state.key_of(name)
        if key is not None:
            return key
        if name in self.scope_keys:
            return name
        return None

    def value_of(self, expr: cst.BaseExpression, state: PathState) -> ModuleValue:
        key = self.resolve(expr, state)
        if key is not None:
            return ModuleValue(key=key)
        if type(expr) is not cst.Call:
            return ModuleValue()
        func = expr.func
        if type(func) is cst.Attribute:
            attr = func.attr.value
            if attr in SAME_MODULE_METHODS or attr in ("eval", "train"):
                inner = self.value_of(func.value, state)
                if inner.fresh is not None and attr in ("eval", "train"):
                    mode = self._mode_argument(expr) if attr == "train" else Mode.EVAL
                    if mode is not None:
                        return replace(
                            inner, fresh=frozenset({ModeFact(mode, Origin.SWITCHED, expr)})
                        )
                return inner
        qualified = self.imports.qualify(func) or ""
        if qualified in WRAPPERS or (
            qualified.split(".")[-1] in ("DataParallel", "DistributedDataParallel", "compile")
            and qualified.startswith("torch")
        ):
            if expr.args:
                return self.value_of(expr.args[0].value, state)
        if qualified in ("copy.deepcopy", "deepcopy"):
            if expr.args:
                inner = self.value_of(expr.args[0].value, state)
                if inner.key is not None:
                    return ModuleValue(fresh=state.mode_of(inner.key) or ENTRY_MODE)
                return inner
        facts = self._constructor_facts(expr)
        if facts is not None:
            return ModuleValue(fresh=facts[0], mode_matters=facts[1])
        resolved = self.file.resolve_function_quietly(expr, self.info)
        if resolved is not None:
            if resolved.return_facts:
                return ModuleValue(
                    fresh=frozenset(
                        ModeFact(f.mode, f.origin, expr)
                        for f in resolved.return_facts
                        if f.mode is not Mode.ENTRY
                    )
                    or None
                )
            if resolved.return_key is not None:
                mapped = self._map_argument(resolved, resolved.return_key, expr, None, state)
                if mapped is not None:
                    return ModuleValue(key=mapped)
        return ModuleValue()

    def _constructor_facts(self, call: cst.Call) -> Optional[tuple[frozenset, bool]]:
        """Mode facts of a freshly built or loaded module, and whether its mode matters."""
        func = call.func
        qualified = self.imports.qualify(func) or ""
        last = qualified.split(".")[-1]
        fresh = frozenset({ModeFact(Mode.TRAIN, Origin.CONSTRUCTED, call)})
        if type(func) is cst.Attribute and func.attr.value in PRETRAINED_LOADERS:
            owner = dotted_name(func.value) or ""
            if any(part in owner for part in _NOT_MODULE_PRETRAINED):
                return None
            return frozenset({ModeFact(Mode.EVAL, Origin.LOADED, call)}), True
        if last.endswith(_NOT_MODULE_CLASS_SUFFIXES):
            return None
        if qualified.startswith("torch.nn.") and qualified.count(".") == 2:
            if (
                last in STATELESS_LAYERS
                or last.endswith(MODE_INDEPENDENT_SUFFIXES)
                or not last[:1].isupper()
            ):
                return None
            if last in MODE_DEPENDENT_LAYERS or last in CONTAINER_LAYERS:
                return fresh, True
            return fresh, False
        if (
            qualified.startswith(LIBRARY_FACTORIES)
            or qualified in self.file.options.module_factories
        ):
            return fresh, True
        if qualified in self.file.classes and self.file.classes[qualified].is_module:
            return fresh, True
        if qualified in UNKNOWN_MODE_LOADERS or last in UNKNOWN_MODE_LOADERS:
            return frozenset(
                {
                    ModeFact(Mode.TRAIN, Origin.LOADED, call),
                    ModeFact(Mode.EVAL, Origin.LOADED, call),
                }
            ), True
        if (
            self.file.project is not None
            and type(func) is cst.Name
            and func.value in self.imports.modules_from
        ):
            if self.file.project.is_module_class(
                self.file.path, self.imports.modules_from[func.value], qualified
            ):
                return fresh, True
        if (
            last[:1].isupper()
            and words(last) & CLASS_NAME_MODULE_WORDS
            and not words(last) & NOT_MODULE_WORDS
            and not self.file.functions.get(last)
        ):
            return fresh, True
        return None

    def _mode_argument(self, call: cst.Call) -> Optional[Mode]:
        """train() / train(True) / train(False) / train(mode=False); None if not constant."""
        if not call.args:
            return Mode.TRAIN
        value = call.args[0].value
        if type(value) is cst.Name and value.value in ("True", "False"):
            return Mode.TRAIN if value.value == "True" else Mode.EVAL
        return None

    # -- expressions -------------------------------------------------------------------------
    def expression(self, expr: cst.BaseExpression, states: States) -> States:
        from evallint.analysis.walk import calls_in_evaluation_order

        regions = self._comprehension_regions(expr)
        for call in calls_in_evaluation_order(expr):
            region = regions.get(call)
            if region is not None:
                self.regions.append(region)
            states = self.call(call, states)
            if region is not None:
                self.regions.pop()
            if not states:
                break
        return states

    def _comprehension_regions(self, expr: cst.BaseExpression) -> dict[cst.Call, Region]:
        """`[model(x) for x, _ in val_loader]` evaluates like the loop it abbreviates: calls
        in a comprehension over evaluation data are in an evaluation region."""
        if not isinstance(expr, cst.BaseExpression) or not _may_hold_comprehension(expr):
            return {}
        from evallint.analysis.walk import iter_nodes

        regions: dict[cst.Call, Region] = {}
        for node in iter_nodes(expr):
            if type(node) in (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp):
                loop = node.for_in
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

    def call(self, call: cst.Call, states: States) -> States:
        func = call.func
        self.observe_functional(call)
        if (
            type(func) is cst.Attribute
            and func.attr.value == "append"
            and self.loop_depth
            and call.args
        ):
            accumulator = dotted_name(func.value)
            if accumulator is not None:
                self.observe_accumulation(call, accumulator, call.args[0].value, states)
        if type(func) is cst.Attribute:
            attr = func.attr.value
            if attr in ("eval", "train"):
                return self.switch_mode(call, attr, states)
            if (
                attr == "requires_grad_"
                and call.args
                and type(call.args[0].value) is cst.Name
                and call.args[0].value.value == "False"
            ):
                key = self.resolve(func.value, states[0])
                if key is not None:
                    self.frozen.add(key)
                return states
        kind = training_call_kind(call, self.imports)
        if kind == "backward":
            self.observe_backward(call, states)
        if kind == "step" or (kind == "backward" and self.file.has_optimizer):
            self.trains = True
            return self.training_step(call, kind, states)
        instance_call = self._instance_method(call)
        if instance_call is not None:
            return self.apply_call(instance_call[0], instance_call[1], call, states)
        passes_module = any(self.resolve(a.value, states[0]) is not None for a in call.args)
        resolved = (
            self.file.resolve_function(call, self.info, passes_module=passes_module)
            if type(func) in (cst.Name, cst.Attribute)
            else None
        )
        if resolved is not None and resolved[0] is not None:
            return self.apply_call(resolved[0], "self" if resolved[1] else None, call, states)
        forward = self._forward_target(call, states[0])
        if forward is not None:
            self.forward(call, forward[0], forward[1], states)
        return states

    def _instance_method(self, call: cst.Call) -> Optional[tuple[Summary, str]]:
        """`trainer.predict(batch)` on an instance of a class of this file: the method's
        summary, with its `self.X` modules mapped onto `trainer.X`."""
        func = call.func
        if type(func) is not cst.Attribute:
            return None
        receiver = dotted_name(func.value)
        owner = self.instances.get(receiver or "")
        if owner is None:
            return None
        method = owner.methods.get(func.attr.value) or self.file._inherited_method(
            owner, func.attr.value
        )
        if method is None:
            return None
        summary = self.file._summary_counted(method)
        return (summary, receiver) if summary is not None and receiver is not None else None

    def _forward_target(self, call: cst.Call, state: PathState) -> Optional[tuple[str, str]]:
        func = call.func
        key = self.resolve(func, state)
        if key is not None:
            return key, code_of(func)
        if type(func) is cst.Attribute and func.attr.value in FORWARD_METHODS:
            key = self.resolve(func.value, state)
            if key is not None:
                return key, code_of(func)
        if type(func) is cst.Attribute and _names_a_forward(func.attr.value):
            # `net.decoder(h)`, `model.backbone.layer4(x)`, `net.forward_features(x)`: part of the
            # module's forward, in the module's mode (eval() reached every submodule)
            receiver: cst.BaseExpression = func.value
            while True:
                key = self.resolve(receiver, state)
                if key is not None:
                    return key, key
                if type(receiver) is not cst.Attribute:
                    return None
                receiver = receiver.value
        return None

    def switch_mode(self, call: cst.Call, attr: str, states: States) -> States:
        receiver = call.func.value  # type: ignore[attr-defined]
        result: list[PathState] = []
        for state in states:
            key = self.resolve(receiver, state)
            if key is None:
                result.append(self._opaque_switch(call, attr, receiver, state))
                continue
            if attr == "eval":
                self.eval_switches.append(call)
                result.append(state.with_mode(key, {ModeFact(Mode.EVAL, Origin.SWITCHED, call)}))
                continue
            arg = call.args[0].value if call.args else None
            constant = self._mode_argument(call)
            if constant is not None:
                if constant is Mode.EVAL:
                    self.eval_switches.append(call)
                result.append(state.with_mode(key, {ModeFact(constant, Origin.SWITCHED, call)}))
                continue
            snapshot = state.snapshot(dotted_name(arg) or "") if arg is not None else None
            if snapshot is not None:
                result.append(state.with_mode(key, snapshot))
                continue
            condition = condition_key(arg) if arg is not None else None
            both = {ModeFact(Mode.TRAIN, Origin.FLAG, call), ModeFact(Mode.EVAL, Origin.FLAG, call)}
            if condition is None:
                result.append(state.with_mode(key, both))
                continue
            text, polarity = condition
            known = state.assumed(text)
            if known is not None:
                mode = Mode.TRAIN if known == polarity else Mode.EVAL
                result.append(state.with_mode(key, {ModeFact(mode, Origin.FLAG, call)}))
            else:
                result.append(
                    state.assuming(text, polarity).with_mode(
                        key, {ModeFact(Mode.TRAIN, Origin.FLAG, call)}
                    )
                )
                result.append(
                    state.assuming(text, not polarity).with_mode(
                        key, {ModeFact(Mode.EVAL, Origin.FLAG, call)}
                    )
                )
        return normalize(result)

    def _opaque_switch(
        self, call: cst.Call, attr: str, receiver: cst.BaseExpression, state: PathState
    ) -> PathState:
        """`getattr(self, name).train(mode)`, `for m in self.models: m.eval()`: a switch of
        modules we cannot name, in a method: taken as a switch of every module attribute
        (a loop over `.modules()`/`.children()` is a deliberate partial switch instead)."""
        if self._is_submodule_receiver(receiver) or self._owner() is None:
            return state
        constant = Mode.EVAL if attr == "eval" else self._mode_argument(call)
        facts = (
            frozenset({ModeFact(constant, Origin.SWITCHED, call)})
            if constant
            else frozenset(
                {ModeFact(Mode.TRAIN, Origin.FLAG, call), ModeFact(Mode.EVAL, Origin.FLAG, call)}
            )
        )
        self.opaque_switch = facts if self.opaque_switch is None else self.opaque_switch | facts
        for key in self.scope_keys:
            if key.startswith("self."):
                state = state.with_mode(key, facts)
        return state

    def _is_submodule_receiver(self, receiver: cst.BaseExpression) -> bool:
        name = dotted_name(receiver)
        if name is None:
            return False
        root = name.split(".")[0]
        return (
            root in self.submodule_variables
            or (root == "self" and name.count(".") > 1)
            or (root in self.scope_keys and root not in self.opaque_variables)
        )

    def set_grad(self, call: cst.Call, states: States, *, statement: bool) -> States:
        arg = call.args[0].value if call.args else None
        result: list[PathState] = []
        for state in states:
            if type(arg) is cst.Name and arg.value in ("True", "False"):
                result.append(
                    state.with_grad(
                        frozenset({GradFact(Grad.ON if arg.value == "True" else Grad.OFF, call)})
                    )
                )
                continue
            condition = condition_key(arg) if arg is not None else None
            if condition is None:
                result.append(
                    state.with_grad(
                        frozenset({GradFact(Grad.ON, call, True), GradFact(Grad.OFF, call, True)})
                    )
                )
                continue
            text, polarity = condition
            known = state.assumed(text)
            if known is not None:
                result.append(
                    state.with_grad(
                        frozenset(
                            {GradFact(Grad.ON if known == polarity else Grad.OFF, call, True)}
                        )
                    )
                )
            else:
                result.append(
                    state.assuming(text, polarity).with_grad(
                        frozenset({GradFact(Grad.ON, call, True)})
                    )
                )
                result.append(
                    state.assuming(text, not polarity).with_grad(
                        frozenset({GradFact(Grad.OFF, call, True)})
                    )
                )
        return normalize(result)

    # -- regions -------------------------------------------------------------------------------
    def _evaluating(self, state: PathState) -> Optional[Region]:
        """The innermost region that decides this path: EVAL, or MIXED with its flag off."""
        for region in reversed(self.regions):
            if region.kind is RegionKind.NEUTRAL:
                continue
            if region.kind is RegionKind.EVAL:
                return region
            if region.kind is RegionKind.MIXED:
                known = state.assumed(region.condition or "")
                if known is not None and known != region.trains_when:
                    return region
            return None
        return None

    # -- events ----------------------------------------------------------------------------------
    def forward(self, call: cst.Call, key: str, subject: str, states: States) -> None:
        method = (
            call.func.attr.value
            if type(call.func) is cst.Attribute and self.resolve(call.func, states[0]) is None
            else None
        )
        frozen = key in self.frozen or (
            key in self.file.frozen_globals and key not in self.scope_locals
        )
        affects_grad = (
            method not in NO_GRAD_METHODS and not frozen
        )  # frozen parameters: no graph to keep
        mode_matters = self._key_id(key) not in self.file.mode_independent
        for state in states:
            grad = state.grad
            if any(g.grad in (Grad.ON, Grad.ENTRY) for g in grad) and affects_grad:
                for region in self.regions:
                    self.grad_forwards.setdefault(id(region.node), set()).add(key)
            region = self._evaluating(state)
            # an evaluation region, or a forward with autograd off (sampling, a quick check)
            self.evaluates = (
                self.evaluates
                or region is not None
                or (bool(grad) and all(g.grad is Grad.OFF for g in grad))
            )
            if region is None:
                region = (
                    self.regions[-1]
                    if all(r.kind is RegionKind.NEUTRAL for r in self.regions)
                    else None
                )
                if region is None:
                    continue
            facts = state.mode_of(key) or ENTRY_MODE
            obs = self.observations.get(call)
            if obs is None:
                obs = _Observation(
                    key,
                    subject,
                    region,
                    affects_grad=affects_grad,
                    mode_matters=mode_matters,
                    order=self.file.next_order(),
                )
                self.observations[call] = obs
            if region.kind is RegionKind.NEUTRAL and obs.region.kind is not RegionKind.NEUTRAL:
                continue
            if obs.region.kind is RegionKind.NEUTRAL and region.kind is not RegionKind.NEUTRAL:
                obs.region = region
            obs.train |= frozenset(
                f for f in facts if f.mode is Mode.TRAIN and f.origin is not Origin.FLAG
            )
            obs.entry_mode = obs.entry_mode or any(f.mode is Mode.ENTRY for f in facts)
            if not region.needs_grad:
                obs.grad |= frozenset(g for g in grad if g.grad is Grad.ON and not g.by_flag)
                obs.entry_grad = obs.entry_grad or any(g.grad is Grad.ENTRY for g in grad)

    def training_step(self, call: cst.Call, kind: str, states: States) -> States:
        trained = self._trained_keys(states[0], self._step_sources(call, kind, states[0]))
        region = next((r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL), None)
        for key in trained:
            self._record_training(call, key, key, region, states)
        return states

    def _record_training(
        self, site: cst.CSTNode, key: str, subject: str, region: Optional[Region], states: States
    ) -> None:
        # a backward pass with autograd off trains nothing: it is guarded (`if loss.requires_grad:`,
        # a helper shared by training and a no_grad evaluation) or fails (EVL009's business)
        states = tuple(
            s for s in states if not s.grad or any(g.grad is not Grad.OFF for g in s.grad)
        )
        if not states:
            return
        eval_facts: frozenset = frozenset()
        from_entry = False
        for state in states:
            facts = state.mode_of(key) or frozenset()
            eval_facts |= frozenset(
                f for f in facts if f.mode is Mode.EVAL and _left_in_eval(f, facts)
            )
            from_entry = from_entry or any(f.mode is Mode.ENTRY for f in facts)
        region_id = id(region.node) if region else 0
        entry = self.training.get((region_id, key))
        if entry is None:
            self.training[(region_id, key)] = (
                Place(site, self.file.unit),
                subject,
                region,
                eval_facts,
                from_entry,
                self.file.next_order(),
            )
        else:
            place, subject0, region0, facts0, entry0, order = entry
            self.training[(region_id, key)] = (
                place,
                subject0,
                region0,
                facts0 | eval_facts,
                entry0 or from_entry,
                order,
            )

    def _step_sources(self, call: cst.Call, kind: str, state: PathState) -> Optional[frozenset]:
        """Modules whose forward feeds this step: the loss's data flow for backward(),
        the optimizer's parameters for step(); None when that cannot be told."""
        func = call.func
        if kind == "backward":
            if type(func) is cst.Attribute and not (
                type(func.value) is cst.Name and func.value.value in ("accelerator", "fabric")
            ):
                sources = self.taint_of(func.value, state)
            else:
                sources = (
                    frozenset().union(*(self.taint_of(a.value, state) for a in call.args))
                    if call.args
                    else frozenset()
                )
            return sources or None
        receiver = func.value if type(func) is cst.Attribute else None
        if (
            receiver is not None
            and type(func) is cst.Attribute
            and func.attr.value == "step"
            and call.args
            and not is_optimizer_name(receiver)
        ):
            receiver = call.args[0].value  # scaler.step(optimizer)
        name = dotted_name(receiver) if receiver is not None else None
        linked = self.file.optimizer_params().get(name or "")
        return frozenset(linked) if linked else None

    def taint_of(self, expr: cst.BaseExpression, state: PathState) -> frozenset:
        """Modules whose forward output flows into `expr` with its graph (not through
        `.detach()`, `.item()` or a number conversion)."""
        found: set[str] = set()
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            node_type = type(node)  # exact types: these classes have no subclasses
            if node_type is cst.Comparison:
                continue  # a boolean tensor has no graph
            if node_type is cst.Attribute and node.attr.value in _GRAPH_FREE_ATTRIBUTES:
                continue
            if node_type is cst.Call:
                func = node.func
                if type(func) is cst.Attribute and func.attr.value in _GRAPH_CUTTING_METHODS:
                    continue
                if type(func) is cst.Name and func.value in ("float", "int", "bool", "len", "str"):
                    continue
                if (self.imports.qualify(func) or "").split(".")[-1] in _GRAPH_CUTTING_METHODS:
                    continue
                target = self._forward_target(node, state)
                if target is not None and not (
                    type(func) is cst.Attribute and func.attr.value in NO_GRAD_METHODS
                ):
                    found.add(target[0])
                for arg in node.args:
                    key = self.resolve(arg.value, state)
                    if key is not None:
                        found.add(key)
            name = (
                dotted_name(node) if node_type is cst.Name or node_type is cst.Attribute else None
            )
            if name is not None and name in self.taint:
                found |= self.taint[name]
            for child in _expression_children(node):
                stack.append(child)
        return frozenset(found)

    def _trained_keys(self, state: PathState, sources: Optional[frozenset] = None) -> list[str]:
        forwarded: set[str] = set()
        for region in reversed(self.regions):
            forwarded |= self.grad_forwards.get(id(region.node), set())
            if forwarded:
                break
        if sources is not None:
            forwarded = set(sources)
        links = self.file.optimizer_keys()
        keys = []
        for key in sorted(forwarded - self.frozen):
            if links and not any(
                link == key or link.startswith(key + ".") or key.startswith(link + ".")
                for link in links
            ):
                if not self._aliased_link(key, links, state):
                    continue
            keys.append(key)
        return keys

    def _aliased_link(self, key: str, links: set[str], state: PathState) -> bool:
        return any(
            state.key_of(link.split(".")[0]) == key or state.key_of(link) == key for link in links
        )

    # -- calls to summarised functions ---------------------------------------------------------------
    def _map_argument(
        self,
        summary: Summary,
        callee_key: str,
        call: cst.Call,
        receiver: Optional[str],
        state: PathState,
    ) -> Optional[str]:
        """The caller's module key for a key of the callee (a parameter, `self.X`, or a global)."""
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
                    return self.resolve(arg.value, state)
            if callee_key in summary.params:
                index = summary.params.index(callee_key)
                positional = [a for a in call.args if a.keyword is None and not a.star]
                if index < len(positional):
                    return self.resolve(positional[index].value, state)
            return None
        return self.resolve_path(callee_key, state)

    def resolve_path(self, path: str, state: PathState) -> Optional[str]:
        key = state.key_of(path)
        if key is not None:
            return key
        return path if path in self.scope_keys else None

    def apply_call(
        self, summary: Summary, receiver: Optional[str], call: cst.Call, states: States
    ) -> States:
        here = Place(call, self.file.unit)
        if summary.trains:
            self.trains = True
        for state in states:
            region = self._evaluating(state)
            for req in summary.forwards:
                self._apply_forward(req, summary, receiver, call, here, state, region)
            for req in summary.trainings:
                key = self._map_argument(summary, req.key, call, receiver, state)
                if key is not None:
                    region_here = next(
                        (r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL),
                        None,
                    )
                    self._record_training(call, key, key, region_here, (state,))
        states = self.apply_modes(summary.exit_modes, summary, call, receiver, states)
        if summary.opaque_switch and receiver is not None:
            facts = frozenset(ModeFact(f.mode, f.origin, call) for f in summary.opaque_switch)
            prefix = receiver + "."
            states = tuple(
                _with_modes(
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
    ) -> None:
        region, region_unit = (
            (req.region, req.region_unit)
            if req.region.kind is RegionKind.EVAL
            else (caller_region, self.file.unit)
        )
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
        key = self._map_argument(summary, req.key, call, receiver, state)
        train = req.train_facts
        entry_mode = False
        if req.mode_from_entry and key is not None:
            facts = state.mode_of(key) or ENTRY_MODE
            train = train | frozenset(
                f for f in facts if f.mode is Mode.TRAIN and f.origin is not Origin.FLAG
            )
            entry_mode = any(f.mode is Mode.ENTRY for f in facts)
        grad = req.grad_facts
        entry_grad = False
        if req.grad_from_entry:
            grad = grad | frozenset(g for g in state.grad if g.grad is Grad.ON and not g.by_flag)
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
                    )
                )
            return
        if region.needs_grad or req.region.needs_grad:
            grad, entry_grad = frozenset(), False
        if not req.affects_grad:
            grad, entry_grad = frozenset(), False
        at_call = req.report_at_call or region is caller_region
        if train or grad:
            self.file.facts.eval_forwards.append(
                EvalForward(
                    req.place,
                    req.subject,
                    region,
                    train,
                    grad,
                    req.affects_grad,
                    req.mode_matters,
                    (here,) + req.via,
                    self.file.next_order(),
                    at_call,
                    region_unit,
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
                    req.affects_grad,
                    req.mode_matters,
                    (here,) + req.via,
                    at_call,
                    region_unit,
                )
            )

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
            for callee_key, facts in modes.items():
                key = self._map_argument(summary, callee_key, call, receiver, state)
                if key is None:
                    continue
                if all(f.mode is Mode.ENTRY for f in facts):
                    if base is None:
                        continue
                before: frozenset = frozenset()
                if any(f.mode is Mode.ENTRY for f in facts):
                    source = base if base is not None else (state,)
                    for s in source:
                        before |= s.mode_of(key) or ENTRY_MODE
                new = (
                    frozenset(
                        ModeFact(f.mode, Origin.CALLED, call)
                        for f in facts
                        if f.mode is not Mode.ENTRY
                    )
                    | before
                )
                state = state.with_mode(key, new)
            result.append(state)
        return normalize(result)


MAX_IMPORTED_FILES = 8
"""Project files one linted file may pull in: a file deep inside a large package must not
drag the package in (they are cached across the files of one run)."""

MAX_CACHED_ANALYSES = 64

_TRAINING_CALL_WORDS = frozenset({"train", "training", "fit", "epoch"})


def _worth_following(call: cst.Call, passes_module: bool) -> bool:
    """Only calls that can change a finding are followed into other files (reading one costs
    a parse): calls that pass a module (`evaluate(model, loader)`) or that train."""
    name = (
        call.func.attr.value
        if type(call.func) is cst.Attribute
        else getattr(call.func, "value", "")
    )
    return passes_module or bool(words(name) & _TRAINING_CALL_WORDS)


class ProjectIndex:
    """Other files of the same project that a linted file imports from, read on demand and
    cached for the run, so `from engine import evaluate` is understood. Installed packages
    and the standard library are never followed; neither are files without any torch text.
    Most importers only ask whether an imported class is a module: that is answered from
    CPython's parse of the file; LibCST parses it only when its functions are followed."""

    def __init__(
        self, read: Callable[[Path], Optional[str]], options: AnalysisOptions = AnalysisOptions()
    ) -> None:
        self._read = read
        self.options = options
        self._located: dict[tuple[str, str], Optional[Path]] = {}
        self._sources: dict[Path, Optional[str]] = {}
        self._trees: dict[Path, Optional[cst.Module]] = {}
        self._analyses: dict[Path, Optional[FileAnalysis]] = {}
        self._module_classes: dict[Path, Optional[dict[str, bool]]] = {}
        self._pulled: dict[str, set[Path]] = {}
        self._dependencies: dict[str, set[str]] = {}
        self._stamps: dict[Path, Optional[tuple[int, int]]] = {}

    def _forget(self, path: Path) -> None:
        for table in (
            self._sources,
            self._trees,
            self._analyses,
            self._module_classes,
            self._stamps,
        ):
            table.pop(path, None)  # type: ignore[attr-defined]

    def _make_room(self) -> None:
        """Memory stays flat over a large run: at most MAX_CACHED_ANALYSES files are kept."""
        if len(self._sources) >= MAX_CACHED_ANALYSES or len(self._analyses) >= MAX_CACHED_ANALYSES:
            for table in (self._sources, self._trees, self._analyses, self._module_classes):
                table.clear()  # type: ignore[attr-defined]

    def parsed(self, path: str, source: str) -> Optional[cst.Module]:
        """A tree already parsed in this run for this exact text (imported before being linted)."""
        resolved = Path(path).resolve() if not path.startswith("<") else None
        if resolved is None or self._sources.get(resolved) != source:
            return None
        return self._trees.get(resolved)

    def remember(self, path: str, source: str) -> None:
        """Keep a linted file's text (a later file of the run may import it), not its tree:
        few importers need one, and dozens of kept trees would make every garbage
        collection in the process (flake8's own work included) walk millions of nodes."""
        if not path.startswith("<"):
            self._make_room()
            resolved = Path(path).resolve()
            self._forget(resolved)
            self._sources[resolved] = source
            self._stamps[resolved] = _stamp(resolved)

    def dependencies_of(self, importer: str) -> set[str]:
        """Project files the analysis of `importer` read: its cache entry depends on them."""
        return self._dependencies.get(importer, set())

    def _locate(self, importer: str, module: str) -> Optional[Path]:
        if not module or importer.startswith("<"):
            return None
        directory = os.path.dirname(os.path.abspath(importer))
        cache_key = (directory, module)
        if cache_key not in self._located:
            found = self._search(Path(directory), module)
            self._located[cache_key] = None if found is None or _installed(found) else found
        return self._located[cache_key]

    @staticmethod
    def _search(base: Path, module: str) -> Optional[Path]:
        """`engine` next to the importer or in up to three parent directories (a project
        root); `.engine` relative to the importer's package."""
        dots = len(module) - len(module.lstrip("."))
        relative = module.lstrip(".").replace(".", "/")
        roots = [base] if dots == 0 else [base.parents[dots - 2] if dots >= 2 else base]
        if dots == 0:
            roots += list(base.parents)[:3]
        for root in roots:
            for candidate in (root / f"{relative}.py", root / relative / "__init__.py"):
                if candidate.is_file():
                    return candidate
        return None

    def _source(self, importer: str, module: str) -> Optional[tuple[Path, str]]:
        """The imported file's text, within this importer's budget of MAX_IMPORTED_FILES."""
        path = self._locate(importer, module)
        if path is None:
            return None
        path = path.resolve()
        if path in self._sources and self._stamps.get(path) != _stamp(path):
            self._forget(path)  # edited since it was read (a long-lived editor or flake8 process)
        if path not in self._sources:
            pulled = self._pulled.setdefault(importer, set())
            if path not in pulled and len(pulled) >= MAX_IMPORTED_FILES:
                return None
            pulled.add(path)
            self._make_room()
            self._stamps[path] = _stamp(path)
            self._sources[path] = self._read(path)
        self._dependencies.setdefault(importer, set()).add(str(path))
        source = self._sources[path]
        return (path, source) if source is not None else None

    def _tree(self, importer: str, module: str) -> Optional[tuple[Path, cst.Module, str]]:
        found = self._source(importer, module)
        if found is None:
            return None
        path, source = found
        if path not in self._trees:
            tree = parse_module(source)
            self._trees[path] = None if isinstance(tree, ParseFailure) else tree
        tree = self._trees[path]
        return (path, tree, source) if tree is not None else None

    def analysis(self, importer: str, module: str) -> Optional[FileAnalysis]:
        """The analysis of an imported project file; its own imports are not followed, so a
        file inside a large package never drags the package in."""
        found = self._tree(importer, module)
        if found is None:
            return None
        path, tree, source = found
        if path not in self._analyses:
            self._analyses[path] = None  # guards import cycles
            self._analyses[path] = FileAnalysis(
                tree,
                str(path),
                source=source,
                options=self.options,
                project=None,
                judge_uncalled=False,
            )
        return self._analyses[path]

    def summary(self, importer: str, module: str, qualified: str) -> Optional[Summary]:
        analysis = self.analysis(importer, module)
        if analysis is None:
            return None
        info = analysis.functions.get(qualified.split(".")[-1])
        return analysis.summaries.get(info.qualname) if info is not None else None

    def is_module_class(self, importer: str, module: str, qualified: str) -> bool:
        """Whether an imported class subclasses nn.Module: only its definitions are read."""
        found = self._source(importer, module)
        if found is None:
            return False
        path, source = found
        if path not in self._module_classes:
            tree = self._trees.get(path)
            self._module_classes[path] = (
                _module_classes_of_tree(tree)
                if tree is not None
                else module_classes_of_text(source)
            )
        classes = self._module_classes[path]
        if classes is None:  # newer syntax than this Python reads: LibCST's parse decides
            parsed = self._tree(importer, module)
            classes = self._module_classes[path] = (
                _module_classes_of_tree(parsed[1]) if parsed else {}
            )
        return classes.get(qualified.split(".")[-1], False)


def _module_classes_of_tree(tree: cst.Module) -> dict[str, bool]:
    return {
        name: info.is_module
        for name, info in collect_definitions(tree, collect_imports(tree))[1].items()
    }


def _left_in_eval(fact: ModeFact, facts: frozenset) -> bool:
    """An eval-mode fact that training must not inherit: an `eval()` call, a call that
    leaves the module in eval mode, or `from_pretrained()` (which calls `eval()`); not an
    unknown loader's "either mode", which comes with a train-mode fact from the same site."""
    if fact.origin in (Origin.SWITCHED, Origin.CALLED):
        return True
    return fact.origin is Origin.LOADED and not any(
        other.mode is Mode.TRAIN and other.site is fact.site for other in facts
    )


def _stamp(path: Path) -> Optional[tuple[int, int]]:
    """(modification time, size): a cached file whose stamp changed is read again."""
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)


def _installed(path: Path) -> bool:
    """Site-packages and the standard library are libraries, not the user's project."""
    text = str(path)
    return "site-packages" in text or "dist-packages" in text or text.startswith(_STDLIB)


_STDLIB = sysconfig.get_paths()["stdlib"]


def _with_modes(state: PathState, keys: list[str], facts: frozenset) -> PathState:
    for key in keys:
        state = state.with_mode(key, facts)
    return state
