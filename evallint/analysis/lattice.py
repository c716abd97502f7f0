"""The abstract values: a module's possible modes and the possible grad states, per path.

Everything here is an immutable value so that path states can be hashed, compared at a
loop's fixpoint and shared between paths. A fact carries the node that established it, so a
finding can point at "where the mode was last set".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Optional, TypeVar

import libcst as cst


class Mode(enum.Enum):
    TRAIN = "train"
    EVAL = "eval"
    ENTRY = "entry"
    """Whatever the mode was when the enclosing function was entered (resolved at call sites)."""


class Origin(enum.Enum):
    """How a mode came about; EVL003 only trusts an explicit evaluation."""

    CONSTRUCTED = "constructed"  # a fresh module: training mode
    LOADED = "loaded"  # from_pretrained / unknown factory: the library decided
    SWITCHED = "switched"  # an eval()/train() call
    CALLED = "called"  # the exit state of a called function
    FLAG = "flag"  # `train(flag)` with a flag the code chooses: deliberate either way
    ENTRY = "entry"


class Grad(enum.Enum):
    ON = "on"
    OFF = "off"
    ENTRY = "entry"


@dataclass(frozen=True)
class ModeFact:
    mode: Mode
    origin: Origin
    site: Optional[cst.CSTNode] = None

    def __repr__(self) -> str:
        return f"{self.mode.value}({self.origin.value})"


@dataclass(frozen=True)
class GradFact:
    grad: Grad
    site: Optional[cst.CSTNode] = None
    by_flag: bool = False
    """Set by `set_grad_enabled(flag)`: the code decides at run time, deliberately."""

    def __repr__(self) -> str:
        return self.grad.value


ENTRY_MODE = frozenset({ModeFact(Mode.ENTRY, Origin.ENTRY)})
ENTRY_GRAD = frozenset({GradFact(Grad.ENTRY)})
GRAD_ON = frozenset({GradFact(Grad.ON)})

Modes = frozenset  # frozenset[ModeFact]
Grads = frozenset  # frozenset[GradFact]


_V = TypeVar("_V")


def _freeze(mapping: Mapping[str, _V]) -> tuple[tuple[str, _V], ...]:
    return tuple(sorted(mapping.items(), key=lambda item: item[0]))


@dataclass(frozen=True)
class PathState:
    """What is known on one family of paths through a function.

    `assumptions` records branch conditions taken on these paths (normalised text and
    polarity) so that a later `if` on the same condition follows only the consistent
    branch: this is what keeps `if phase == "train": model.train() else: model.eval()`
    and a later `if phase == "train": loss.backward()` from mixing up.
    """

    modes: tuple[tuple[str, frozenset], ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    grad: frozenset = GRAD_ON
    grad_stack: tuple[frozenset, ...] = ()
    assumptions: frozenset = frozenset()
    snapshots: tuple[tuple[str, frozenset], ...] = ()
    passes: frozenset = frozenset()
    """Which pass of a loop over literal phases these paths are in (`phase == 'val'`
    held, the others not): the assumptions that loop itself made, kept apart from the
    ones its body's branches made so that joining past MAX_PATHS joins within a pass."""

    # -- reads ---------------------------------------------------------------------------
    def mode_of(self, key: str) -> Optional[frozenset]:
        for name, facts in self.modes:
            if name == key:
                return facts
        return None

    def mode_in_tree(self, key: str) -> Optional[frozenset]:
        """The facts of `key`, or of the nearest module it is a submodule of (`model.encoder`
        follows `model` until it is switched on its own: `model.eval()` reaches every
        submodule)."""
        facts = self.mode_of(key)
        while facts is None and "." in key and "[" not in key:  # a plain list registers none
            key = key.rsplit(".", 1)[0]
            facts = self.mode_of(key)
        return facts

    def key_of(self, variable: str) -> Optional[str]:
        for name, key in self.aliases:
            if name == variable:
                return key
        return None

    def snapshot(self, variable: str) -> Optional[frozenset]:
        for name, facts in self.snapshots:
            if name == variable:
                return facts
        return None

    def assumed(self, condition: str) -> Optional[bool]:
        for text, value in self.assumptions:
            if text == condition:
                return value
        left, equals, right = condition.partition(" == ")
        if equals and _is_literal(right):  # `phase == 'val'` holds: `phase == 'train'` not
            for text, value in self.assumptions:
                if value and text.startswith(f"{left} == ") and _is_literal(text[len(left) + 4 :]):
                    return False
        return None

    def holds_none(self, key: str) -> bool:
        """Whether these paths took `key is None` (or `is None` of a module `key` is part
        of): no module is there, so no forward of it runs on them (`if aux is not None:
        aux.eval()`, then `helper(aux)` that runs it: the path that skipped `eval()` holds
        None)."""
        while self.assumptions:
            if self.assumed(f"{key} is None") is True:
                return True
            if "." not in key:
                return False
            key = key.rsplit(".", 1)[0]
        return False

    # -- updates -------------------------------------------------------------------------
    def with_mode(self, key: str, facts: Iterable[ModeFact]) -> PathState:
        modes = dict(self.modes)
        modes[key] = frozenset(facts)
        return replace(self, modes=_freeze(modes))

    def with_mode_tree(self, key: str, facts: Iterable[ModeFact]) -> PathState:
        """`key.eval()` / `key.train()`: the module and every submodule known under it,
        including modules known by another name that it holds (`query.generator` when
        `query = Query(generator)` stored it: one module, two paths)."""
        modes = dict(self.modes)
        frozen = frozenset(facts)
        prefix = key + "."
        held = [
            target
            for variable, target in self.aliases
            if variable.startswith(prefix) and "[" not in variable[len(key) :]
        ]
        for name in modes:
            if "[" in name[len(key) :]:
                continue  # held in a plain list or dict: not registered, not reached
            if name.startswith(prefix) or any(
                name == target or name.startswith(target + ".") for target in held
            ):
                modes[name] = frozen
        for target in held:
            modes[target] = frozen
        modes[key] = frozen
        return replace(self, modes=_freeze(modes))

    def with_alias(self, variable: str, key: Optional[str]) -> PathState:
        aliases = dict(self.aliases)
        if key is None:
            aliases.pop(variable, None)
        else:
            aliases[variable] = key
        return replace(self, aliases=_freeze(aliases))

    def with_snapshot(self, variable: str, facts: Optional[frozenset]) -> PathState:
        snapshots = dict(self.snapshots)
        if facts is None:
            snapshots.pop(variable, None)
        else:
            snapshots[variable] = facts
        return replace(self, snapshots=_freeze(snapshots))

    def with_grad(self, grad: frozenset) -> PathState:
        return replace(self, grad=grad)

    def entering(self, grad: Optional[GradFact] = None) -> PathState:
        """Enter a grad manager: keep the grad state to restore on exit, then set `grad`."""
        stack = self.grad_stack + (self.grad,)
        return replace(
            self, grad_stack=stack, grad=self.grad if grad is None else frozenset({grad})
        )

    def assuming(self, condition: str, value: bool) -> PathState:
        kept = {a for a in self.assumptions if a[0] != condition}
        return replace(self, assumptions=frozenset(kept | {(condition, value)}))

    def assuming_all(self, decided: dict[str, bool]) -> PathState:
        state = self
        for condition, value in decided.items():
            state = state.assuming(condition, value)
        return state

    def in_pass(self, decided: dict[str, bool]) -> PathState:
        """Enter one pass of a loop over literal phases: assume what it decides and record
        it as the pass these paths are in (replacing an earlier pass of the same loop)."""
        kept = {item for item in self.passes if item[0] not in decided}
        state = self.assuming_all(decided)
        return replace(state, passes=frozenset(kept | set(decided.items())))

    def leaving_passes(self, conditions: Iterable[str]) -> PathState:
        """Leave a loop over literal phases: its pass no longer separates these paths."""
        dropped = set(conditions)
        if not any(item[0] in dropped for item in self.passes):
            return self
        return replace(self, passes=frozenset(i for i in self.passes if i[0] not in dropped))

    def forgetting(self, variable: str) -> PathState:
        """Drop assumptions about a condition that mentions a reassigned variable."""
        if not self.assumptions and not self.snapshots:
            return self
        kept = frozenset(a for a in self.assumptions if not _mentions(a[0], variable))
        state = (
            replace(self, assumptions=kept, passes=self.passes & kept)
            if kept != self.assumptions
            else self
        )
        return (
            state.with_snapshot(variable, None) if state.snapshot(variable) is not None else state
        )


def _mentions(condition: str, variable: str) -> bool:
    """`variable` occurs in `condition` as a whole name (not `x` in `max` or `self.x`).
    A string search, not a regex: a pattern per variable overflowed `re`'s cache."""
    start = condition.find(variable)
    while start != -1:
        end = start + len(variable)
        before = condition[start - 1] if start else " "
        after = condition[end] if end < len(condition) else " "
        if not (before.isalnum() or before in "_.") and not (after.isalnum() or after == "_"):
            return True
        start = condition.find(variable, start + 1)
    return False


def _merge_maps(a: tuple, b: tuple) -> tuple:
    merged: dict[str, frozenset] = dict(a)
    for key, facts in b:
        merged[key] = merged.get(key, frozenset()) | facts
    return _freeze(merged)


def _merge_aliases(a: tuple, b: tuple) -> tuple:
    """Keep an alias only where both paths agree on it."""
    right = dict(b)
    return tuple((k, v) for k, v in a if right.get(k) == v)


def merge_two(a: PathState, b: PathState) -> PathState:
    """The join of two path states (over-approximates both)."""
    return PathState(
        modes=_merge_maps(a.modes, b.modes),
        aliases=_merge_aliases(a.aliases, b.aliases),
        grad=a.grad | b.grad,
        grad_stack=a.grad_stack
        if a.grad_stack == b.grad_stack
        else tuple(x | y for x, y in zip(a.grad_stack, b.grad_stack)),
        assumptions=a.assumptions & b.assumptions,
        snapshots=_merge_maps(a.snapshots, b.snapshots),
        passes=a.passes & b.passes,
    )


MAX_PATHS = 8
"""Path families kept apart before they are joined into one (bounds the cost per statement)."""

MAX_PASSES = 4
"""Passes of a loop over literal phases that each keep MAX_PATHS families of their own."""


def normalize(states: Iterable[PathState]) -> tuple[PathState, ...]:
    """Join states that agree on their assumptions; join everything past MAX_PATHS.

    Inside a loop over literal phases (`for phase in ("train", "val", "test"):`) the cap
    holds per pass: the pass decides the mode (`if phase == "train": model.train() else:
    model.eval()`), so a join across passes would put the training pass's mode into the
    evaluation's; the body's own branches (`if args.bottleneck:`) then get MAX_PATHS
    families in each pass (a few passes at most: MAX_PASSES)."""
    groups: dict[tuple, PathState] = {}
    for state in states:
        key = (state.assumptions, len(state.grad_stack))
        groups[key] = merge_two(groups[key], state) if key in groups else state
    result = tuple(groups.values())
    if len(result) <= MAX_PATHS:
        return result
    passes: dict[frozenset, list[PathState]] = {}
    for state in result:
        passes.setdefault(state.passes, []).append(state)
    if 1 < len(passes) <= MAX_PASSES:
        return tuple(state for group in passes.values() for state in _capped(group))
    if 1 < len(passes) <= MAX_PATHS:  # too many passes: one family each
        return tuple(_joined(group) for group in passes.values())
    return _capped(result)


def _capped(states: Iterable[PathState]) -> tuple[PathState, ...]:
    """At most MAX_PATHS families: first join the families that differ only in what they
    assumed (`adv` or not, a custom loss or not): their branches changed nothing the
    analysis tracks, so only those assumptions are lost, and a mode still tied to its
    condition (`model.train() if is_train else model.eval()`) stays with it; then, if still
    too many, everything."""
    result = tuple(states)
    if len(result) <= MAX_PATHS:
        return result
    alike: dict[tuple, PathState] = {}
    for state in result:
        same = (
            state.modes,
            state.aliases,
            state.grad,
            state.grad_stack,
            state.snapshots,
            state.passes,
        )
        alike[same] = merge_two(alike[same], state) if same in alike else state
    result = tuple(alike.values())
    if len(result) > MAX_PATHS:
        # then the families that agree on every module's possible modes (not on where
        # those were set, nor on the names bound to them): a mode still tied to the
        # branch that set it (`if args.bottleneck: bottleneck.eval()`) stays with it
        agreeing: dict[tuple, PathState] = {}
        for state in result:
            values = (_mode_values(state), state.grad, state.grad_stack, state.passes)
            agreeing[values] = merge_two(agreeing[values], state) if values in agreeing else state
        result = tuple(agreeing.values())
    return result if len(result) <= MAX_PATHS else (_joined(result),)


def _mode_values(state: PathState) -> tuple:
    return tuple(
        (key, frozenset((fact.mode, fact.origin) for fact in facts)) for key, facts in state.modes
    )


def _joined(states: Iterable[PathState]) -> PathState:
    result = list(states)
    joined = result[0]
    for state in result[1:]:
        joined = merge_two(joined, state)
    return joined


def _is_literal(text: str) -> bool:
    """A string or integer constant as condition_key writes it (`'train'`, `3`)."""
    return text[:1] in ("'", '"') or text.lstrip("-").isdigit()
