"""What a function does to its callers' modules, stated relative to its entry state.

A summary is applied at every call site: `evaluate(model, loader)` then means "forwards
`model` in an evaluation region, in whatever mode `model` had at the call", so the finding
can be decided with the caller's facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Optional

from evallint.analysis.facts import Place, UnitRef
from evallint.analysis.lattice import ENTRY_MODE, Grad
from evallint.analysis.regions import Region


@dataclass(frozen=True)
class ForwardRequirement:
    """A forward inside the function whose mode or grad state comes from the caller."""

    place: Place
    key: str
    subject: str
    region: Region
    mode_from_entry: bool
    grad_from_entry: bool
    train_facts: frozenset
    grad_facts: frozenset
    affects_grad: bool
    mode_matters: bool
    via: tuple[Place, ...] = ()
    report_at_call: bool = False
    """The called function is itself an evaluation (or is judged in the caller's region):
    the call is what evaluates, so a finding belongs at the call."""
    region_unit: Optional[UnitRef] = None
    conditional: int = 0
    """The key is a parameter that holds a module only if the caller passes one: 1 when its
    name hints at a module, 2 when nothing does (then only a caller's module makes it one)."""
    whole: bool = False
    """The forward is part of a whole evaluation (see Summary.whole_evaluation) on its way
    up: an uncalled caller that only runs it (`predict()` -> `trainer.predict(text)`) is
    judged as that evaluation would be alone."""
    parts_as_built: bool = False
    """A method call that runs only parts its class keeps in eval mode (see eval_parts.py):
    the module's training mode from its construction alone does not reach them."""


@dataclass(frozen=True)
class TrainingRequirement:
    """A training step inside the function on a module whose mode comes from the caller."""

    place: Place
    key: str
    subject: str
    via: tuple[Place, ...] = ()
    """Calls, outermost first, from this function to the helper that trains (if any)."""


@dataclass
class Summary:
    qualname: str
    params: tuple[str, ...]
    keyword_only: tuple[str, ...]
    is_method: bool
    has_data_loop: bool
    framework_hook: bool
    exit_modes: dict[str, frozenset] = field(default_factory=dict)
    yield_modes: Optional[dict[str, frozenset]] = None
    forwards: list[ForwardRequirement] = field(default_factory=list)
    trainings: list[TrainingRequirement] = field(default_factory=list)
    trains: bool = False
    return_key: Optional[str] = None
    return_facts: Optional[frozenset] = None
    return_mode_free: bool = False
    """Every `return` gives a module whose mode changes nothing (see mode_matters.py)."""
    grad_on_exit: Optional[frozenset] = None
    """The grad state a statement-level `torch.set_grad_enabled(...)` in the body leaves set
    for the caller after the call (see global_grad.py); None when the caller's is kept."""
    yield_grad: Optional[Grad] = None
    """A context manager's grad state at its `yield` when the function set it itself on every
    path (`with torch.inference_mode(): yield`, or `with torch.set_grad_enabled(mode): yield`
    entered as `_training_mode(False)`): its `with` block runs in that state."""
    opaque_switch: Optional[frozenset] = None
    """Mode facts of a switch on modules the analysis cannot name (`getattr(self, n).train(m)`),
    applied to every module attribute of the receiver at call sites."""
    whole_evaluation: bool = False
    """The function switches to eval mode itself and hands its results out of autograd
    (reports them, or returns none with a graph): a complete evaluation such as a library's
    `predict()` or `test()`, not a per-batch helper whose caller decides the grad state."""
    return_graph: Optional[frozenset] = None
    """Where the returned value's autograd graph comes from (see provenance.py); None when
    the function returns no value."""
    return_elements: Optional[tuple] = None
    """Per position, where the graph of each element of the returned tuple comes from, when
    every `return` gives a tuple of the same length."""
    hands_out_no_graph: bool = False
    """Nothing the function computes leaves it with a graph (numbers, arrays, prints): what
    it runs under autograd is wasted whoever calls it."""
    return_element_facts: Optional[tuple] = None
    """Per position of the tuple every `return` gives, the mode facts of a module the
    function made there and whether its mode matters (see returned_tuples.py)."""
    returns_function: bool = False
    """Every `return` gives a function the body defines (a nested `def` returned by name, or a
    lambda): a factory of functions (see closures.returns_own_function), whose result is no
    module, whatever the name the caller binds it to."""
    clears_grad: bool = False
    """The body clears gradients itself (`optimizer.zero_grad()`, `p.grad = None`,
    `p.grad.zero_()`): a loop that calls the function clears them (EVL008)."""

    def describe(self) -> str:
        parts = [f"{self.qualname}({', '.join(self.params)})"]
        for key, facts in sorted(self.exit_modes.items()):
            parts.append(f"  exit {key}: {sorted(repr(f) for f in facts)}")
        if self.yield_modes:
            for key, facts in sorted(self.yield_modes.items()):
                parts.append(f"  at yield {key}: {sorted(repr(f) for f in facts)}")
        for req in self.forwards:
            needs = [
                n
                for n, on in (
                    ("mode from caller", req.mode_from_entry),
                    ("grad from caller", req.grad_from_entry),
                )
                if on
            ]
            parts.append(
                f"  forwards {req.subject} in {req.region.kind.value} region ({', '.join(needs) or 'fixed state'})"
            )
        for training in self.trainings:
            parts.append(f"  trains {training.subject} in the caller's mode")
        if self.return_key or self.return_facts:
            parts.append(
                f"  returns {self.return_key or sorted(repr(f) for f in self.return_facts or ())}"
            )
        return "\n".join(parts)


def at_yield(
    yield_states: tuple, scope_keys
) -> tuple[Optional[dict[str, frozenset]], Optional[Grad]]:
    """A context manager's modes at its `yield`, and its grad state there when the function
    set the same one on every path (none when some path yields in the caller's state)."""
    if not yield_states:
        return None, None
    modes: dict[str, frozenset] = {}
    for key in scope_keys:
        facts: frozenset = frozenset()
        for state in yield_states:
            facts |= state.mode_of(key) or frozenset()
        modes[key] = facts or ENTRY_MODE
    grads = {fact.grad for state in yield_states for fact in state.grad}
    grad = next(iter(grads)) if len(grads) == 1 else None
    return modes, (grad if grad is not Grad.ENTRY else None)


def distinct_requirements(requirements: list[ForwardRequirement]) -> list[ForwardRequirement]:
    """The requirements that differ in more than the call chain (`via`) that reached them,
    the first of each kept. Rules report the first forward per region and module, and
    requirements equal but for `via` give forwards equal but for `via`, applied in list
    order, so the first is the one reported either way. Without this, n mutually recursive
    helpers that each call the others carry one requirement per call path: 2**n."""
    if len(requirements) < 2:
        return requirements
    seen: set[tuple] = set()
    kept: list[ForwardRequirement] = []
    for req in requirements:
        key = _BUT_VIA(req)
        if key not in seen:
            seen.add(key)
            kept.append(req)
    return kept


_BUT_VIA = attrgetter(*(f.name for f in fields(ForwardRequirement) if f.name != "via"))
"""A requirement's fields except `via`, as a tuple (a cheap hashable identity)."""
but_via = _BUT_VIA
