"""What the analysis concluded about one file: the read-only surface rules query.

Rules never walk the tree; they read these records and turn some into diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import libcst as cst

from evallint.analysis.regions import Region


@dataclass(frozen=True)
class Place:
    """A node in some analysed file (this one, or a project file a call led to)."""

    node: cst.CSTNode
    unit: UnitRef

    @property
    def path(self) -> str:
        return self.unit.path

    def position(self) -> tuple[int, int, int, int]:
        return self.unit.locate(self.node)


@dataclass(frozen=True, eq=False)
class UnitRef:
    """A file's identity and a lazy position lookup (positions cost a full codegen pass,
    so they are computed only for files that have something to report)."""

    path: str
    locate: Callable[[cst.CSTNode], tuple[int, int, int, int]]


@dataclass
class EvalForward:
    """A module forward in an evaluation region, with the mode and grad facts that reach it."""

    call: Place
    subject: str
    region: Region
    train_facts: frozenset = frozenset()
    """ModeFacts with Mode.TRAIN (or an entry mode judged as possibly TRAIN)."""
    grad_facts: frozenset = frozenset()
    """GradFacts with Grad.ON (or an entry grad judged as possibly ON)."""
    affects_grad: bool = True
    """False for forwards that disable autograd themselves (HF generate)."""
    mode_matters: bool = True
    """False for modules known to contain no mode-dependent layer (a bare nn.Linear)."""
    via: tuple[Place, ...] = ()
    """Call sites, outermost first, through which this forward was reached."""
    order: int = 0
    report_at_call: bool = False
    """Report at the call in `via` that enters the evaluation rather than at the forward."""
    region_unit: Optional[UnitRef] = None
    """The file the region node belongs to."""


@dataclass
class TrainingStep:
    """A training step (or a call that trains) on a module that may be in eval mode."""

    site: Place
    subject: str
    region: Optional[Region]
    eval_facts: frozenset
    order: int = 0


@dataclass(frozen=True)
class FunctionalModeCall:
    """`F.dropout(x)` & co. (a functional form taking a `training` flag) inside an nn.Module
    method."""

    call: Place
    function: str
    training: Optional[bool]
    """The flag's value: the constant passed, the function's default when none is passed, or
    None when an expression (`self.training`, a variable) is passed."""
    training_argument: Optional[cst.Arg] = None


@dataclass(frozen=True)
class InertSwitch:
    """A mode or grad switch that does nothing (or raises)."""

    place: Place
    kind: str
    """'uncalled-mode-method', 'bare-grad-call', 'uncalled-grad-manager', 'training-attribute'."""
    subject: str
    replacement: Optional[str] = None
    """Source text that does what was meant, when that is certain."""


@dataclass(frozen=True)
class TensorStore:
    """A value kept in a container once per iteration (`total += v`, `xs.append(v)`,
    `cache[i] = v`) in a loop body or a per-batch hook, with the evidence about its graph."""

    place: Place
    container: str
    value: str
    kind: str
    """'add' (`+=`), 'append', 'index' (`cache[key] = v` with a key that changes)."""
    graph_sources: frozenset
    """Modules whose forward (with grad on) flows into the value, not through `.detach()`,
    `.item()`, `float()` or `.numpy()`."""
    backwarded: bool
    """`backward()` is called (in this function) on a name the value is read from."""
    container_outlives_iteration: bool
    """False when the container is rebound by the innermost loop's body (rebuilt each time)."""
    container_backpropagated: bool
    """The container (or something computed from it) is itself backpropagated here."""
    hook: Optional[str] = None
    """The per-batch hook the store sits in (`training_step`), when not in a loop."""
    container_feeds_returned_tensor: bool = False
    """The function returns a tensor computed from the container (`return torch.cat(xs)`),
    which its caller may backpropagate."""
    grad_off_at_store: bool = False
    """The store runs with autograd off on every path (`with torch.no_grad(): total += v`):
    an addition there records nothing, though an appended tensor keeps its own graph."""
    in_evaluation: bool = False
    """The store sits in a region the analysis classified as an evaluation."""
    sources_from_callers: bool = False
    """Every graph source is a parameter that only may hold a module, and the function is
    called in its file: what its callers pass decides."""


@dataclass(frozen=True)
class TrainingOnEvalData:
    place: Place
    region: Region


@dataclass(frozen=True)
class LoopGradients:
    """A loop that steps an optimizer or calls backward(), with what it does to gradients."""

    loop: cst.CSTNode
    step: Optional[Place]
    """The first `optimizer.step()` in the loop."""
    backward: Optional[Place]
    """The first `backward()` in the loop."""
    clears_grad: bool
    """Whether the loop clears gradients (`zero_grad()`, `p.grad = None`, ...)."""


@dataclass(frozen=True)
class BackwardWithoutGraph:
    place: Place
    variable: str
    assigned: Place


@dataclass
class ModuleFacts:
    path: str
    unit: UnitRef
    eval_forwards: list[EvalForward] = field(default_factory=list)
    training_steps: list[TrainingStep] = field(default_factory=list)
    functional_mode_calls: list[FunctionalModeCall] = field(default_factory=list)
    inert_switches: list[InertSwitch] = field(default_factory=list)
    tensor_stores: list[TensorStore] = field(default_factory=list)
    training_on_eval_data: list[TrainingOnEvalData] = field(default_factory=list)
    loop_gradients: list[LoopGradients] = field(default_factory=list)
    backward_without_graph: list[BackwardWithoutGraph] = field(default_factory=list)
    flow: list[tuple[str, cst.CSTNode, tuple]] = field(default_factory=list)
    """(function name, statement, path states) for `evallint debug --flow`; filled on request."""
    summaries: dict[str, object] = field(default_factory=dict)
    want_fixes: bool = False
    tree: Optional[cst.Module] = None
    source: str = ""
    torch_names: tuple[Optional[str], Optional[str]] = (None, None)
    """(local name of `torch`, local name of `no_grad` imported from torch), for fixes."""
