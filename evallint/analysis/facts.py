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
    owned_elsewhere: tuple[bool, bool] = (False, False)
    """(mode, grad): a forward of another file that its own file reports whatever this
    file's call does (see lifting.py): not repeated at the call for EVL001 / EVL002."""


@dataclass
class TrainingStep:
    """A training step (or a call that trains) on a module that may be in eval mode."""

    site: Place
    subject: str
    region: Optional[Region]
    eval_facts: frozenset
    order: int = 0
    via: tuple[Place, ...] = ()
    """Calls, outermost first, through which the training site (in a helper) was reached."""
    outer_subject: str = ""
    """The module as the outermost call names it."""
    mode_matters: bool = True
    """False for a module built of layers that behave alike in both modes (bare `nn.Linear`)."""


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
    forced_on_purpose: bool = False
    """A literal `training=True` for a flag that has a default (`F.dropout(x, p,
    training=True)`, not `torch.dropout(x, p, True)`, whose flag must be given), in a class
    whose other dropout does not follow the mode (no `training=self.training`, no
    `nn.Dropout`): written to drop in every mode (Monte Carlo dropout, test-time noise)."""
    built_inline: bool = False
    """`nn.Dropout(p)(x)`: a mode-dependent layer built and called inside the method, a new
    module in training mode on every call (`function` is the layer class)."""


@dataclass(frozen=True)
class DiscardedValue:
    """An expression statement whose value is thrown away: an attribute read (`model.eval`)
    or a call to a function the imports name (`torch.no_grad()`)."""

    place: Place
    expression: cst.BaseExpression
    callee: Optional[str] = None
    """The qualified name of the called function, for a call."""
    receiver_holds_module: bool = False
    """For an attribute read `x.attr`: `x` holds a module (or is `self` in a module class)."""


@dataclass(frozen=True)
class UncalledGradManager:
    """`with torch.no_grad:`: a grad-mode context manager named in a `with` without being
    called (the analysis treats the body as never running)."""

    place: Place
    manager: str
    """Its qualified name."""


@dataclass(frozen=True)
class ModeFlagAssignment:
    """An assignment to the `training` attribute of a value that holds a module."""

    place: Place
    """The assignment statement."""
    receiver: cst.BaseExpression
    value: cst.BaseExpression
    function: Optional[str]
    """The function the assignment sits in (None at module level)."""
    receiver_class_defines_training: bool
    """The receiver is `self` and its class defines `training` itself (a property), or the
    receiver is another object and the file defines a plain class (not an `nn.Module`) that
    keeps its own `training` flag: assigning the flag is how such hand-written layers switch."""
    single_target: bool
    """The statement assigns nothing else (`a.training = b.training = v` has two targets)."""


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
    called in its file: what its callers pass decides. Or every source is an attribute a
    plain class keeps from its constructor (see plain_objects.held_from_constructor): what
    the constructing code passes decides."""
    sibling_backwarded: bool = False
    """Another output of the same forward was backpropagated (`outputs.logits` kept after
    `backward(outputs.loss)`), or the value was computed from backpropagated values (an
    epoch's sum of backpropagated losses): that backward freed the saved activations of
    their shared graph, whose nodes the kept value still reaches."""
    reads_recurrent_state: bool = False
    """The value is computed from a recurrent state of the loop (`h = cell(x, h)`): its
    graph already links every earlier iteration's, so keeping it keeps nothing more."""
    reset_in_loop: bool = False
    """The loop that stores the value also rebinds the container in the branch that steps
    the optimizer (`running_loss = 0` after each step of a gradient-accumulation loop): what
    it holds is dropped at every optimizer step."""


@dataclass(frozen=True)
class StepBlock:
    """A loop or a function whose body steps an optimizer or calls backward(), with what the
    analysis knows of it."""

    block: cst.CSTNode
    kind: str
    """'loop' or 'function'."""
    region: Region
    """How the analysis classified the block."""
    step: Optional[Place]
    """The first `optimizer.step()` in the block."""
    backward: Optional[Place]
    """The first `backward()` in the block."""
    clears_grad: bool
    """Whether the block clears gradients (`zero_grad()`, `p.grad = None`, ...); for a loop,
    also through a function of the file that the loop calls."""
    switches_to_train: bool
    """The block itself calls `train()` on something."""
    evaluation_data: bool
    """A loop over evaluation data (`val_loader`), or a function named like an evaluation
    (`evaluate()`, or a word of the `eval-words` option)."""
    words: frozenset = frozenset()
    """The words of a `for` loop's iterable (`train_val_loader`: train, val, loader) or of the
    function's name."""


@dataclass(frozen=True)
class BackwardCall:
    """`loss.backward()`, `accelerator.backward(loss)`, `torch.autograd.backward(loss)`."""

    place: Place
    variable: str
    """The name the backward pass runs through (`loss`)."""
    bound_without_grad: Optional[Place]
    """The value expression of the name's latest binding in this function when that binding
    ran with autograd off on every path (inside `no_grad`/`inference_mode`), else None."""


@dataclass
class ModuleFacts:
    path: str
    unit: UnitRef
    eval_forwards: list[EvalForward] = field(default_factory=list)
    training_steps: list[TrainingStep] = field(default_factory=list)
    deliberate_switches: frozenset[int] = frozenset()
    """Ids of the `eval()` calls in scopes that evaluate nothing and call no evaluation: a
    deliberate freeze (BatchNorm statistics of a frozen backbone during a linear probe); and
    of those paired with a `train()` of another module (analysis/paired_switches.py)."""
    layer_demonstrations: frozenset[int] = frozenset()
    """Calls of a single torch.nn layer shown alone (analysis/layer_demonstrations.py): a
    demonstration of the layer in either mode, not an evaluation of a model; and probes of a
    module just built, on made-up tensors (analysis/probes.py)."""
    local_layer_demonstrations: frozenset[int] = frozenset()
    """Calls of a single torch.nn layer built in a function and shown alone there, and
    probes of a module the function just built on tensors it made up (analysis/probes.py):
    the same demonstration whichever caller runs the function."""
    hidden_mode_methods: dict[tuple[int, str], frozenset[str]] = field(default_factory=dict)
    """(id of a forward's call or a training site, module named there) -> the mode methods
    (`eval`, `train`) its class overrides with one that switches no mode
    (analysis/mode_overrides.py): advice to call `module.eval()` must name `nn.Module.eval`."""
    hooks_leaving_eval: list = field(default_factory=list)
    """Lightning training-phase hooks that may return in eval mode (`HookLeavesEval`)."""
    hooks_leaving_train: list = field(default_factory=list)
    """Lightning evaluation-phase hooks that may return switched to train mode (`HookLeavesEval`
    with train facts)."""
    functional_mode_calls: list[FunctionalModeCall] = field(default_factory=list)
    discarded_values: list[DiscardedValue] = field(default_factory=list)
    uncalled_grad_managers: list[UncalledGradManager] = field(default_factory=list)
    mode_flag_assignments: list[ModeFlagAssignment] = field(default_factory=list)
    tensor_stores: list[TensorStore] = field(default_factory=list)
    step_blocks: list[StepBlock] = field(default_factory=list)
    backward_calls: list[BackwardCall] = field(default_factory=list)
    trained_forwards: set[Place] = field(default_factory=set)
    """Forwards of helpers that a call made in a training region runs: a helper shared by
    training and evaluation, whose evaluations are reported at the calls that evaluate."""
    flow: list[tuple[str, cst.CSTNode, tuple, str]] = field(default_factory=list)
    """(function name, statement, path states, region) for `evallint debug --flow`; filled on request."""
    summaries: dict[str, object] = field(default_factory=dict)
    want_fixes: bool = False
    tree: Optional[cst.Module] = None
    source: str = ""
    torch_names: tuple[Optional[str], Optional[str]] = (None, None)
    """(local name of `torch`, local name of `no_grad` imported from torch), for fixes."""
