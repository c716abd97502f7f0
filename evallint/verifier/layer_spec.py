"""What the verifier knows about one layer found for a finding, and about a whole extraction.

No LibCST here: the numerics (torch_run, functional_run, accumulation, plot) read only this
and evallint.torch_facts, never the source parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from evallint.torch_facts import (
    DEFAULTS,
    DROPOUT_KINDS,
    POSITIONAL,
    mode_sensitive,
    owns_parameters,
    undecided_arguments,
)


class _Unknown:
    """Marker for a value that is not a literal."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class LayerSpec:
    """One torch layer found in the source (or in the library table), with its literal args."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    line: int = 0
    origin: str = "source"
    """``source``, ``forward`` (a functional call) or ``table: <where the fact comes from>``."""
    unread: tuple[str, ...] = ()
    """Arguments that were present but not literal; torch defaults stand in for them."""
    condition: str = ""
    """The undecided `if` test this layer is built under ("" when it certainly exists)."""
    assumed: tuple[tuple[str, str], ...] = ()
    """(argument, why) for arguments whose value is an assumption (a constructor default
    whose call was not followed): they may confirm a mode dependence, never rule one out."""

    def param(self, name: str) -> Any:
        """The literal argument, else torch's default, else None."""
        if name in self.params:
            return self.params[name]
        return DEFAULTS.get(self.kind, {}).get(name)

    @property
    def sensitivity(self) -> Optional[bool]:
        """Does the output differ between train and eval mode? None: a deciding argument
        (`undecided`) was present in the source but not read, so torch's default cannot
        stand in for it."""
        read = dict(self.params)
        for name in undecided_arguments(self.kind, self.unread):
            read[name] = UNKNOWN
        strict = dict(read)
        for name, _ in self.assumed:
            strict[name] = UNKNOWN
        decided = mode_sensitive(self.kind, strict)
        if decided is not None or not self.assumed:
            return decided
        # decided only by an assumed value: enough to show the dependence, not to rule it out
        return True if mode_sensitive(self.kind, read) is True else None

    @property
    def undecided(self) -> tuple[str, ...]:
        """Deciding arguments (`p`, `dropout`, `track_running_stats`...) that were not read,
        or (when nothing else decides) were only assumed."""
        unread = self.unread
        if self.assumed and self.sensitivity is None:
            unread = (*unread, *(name for name, _ in self.assumed))
        return undecided_arguments(self.kind, unread)

    @property
    def assumptions(self) -> tuple[str, ...]:
        """The assumed values this layer's mode dependence rests on."""
        return tuple(note for _, note in self.assumed)

    @property
    def mode_dependent(self) -> bool:
        return self.sensitivity is True

    @property
    def has_parameters(self) -> bool:
        return owns_parameters(self.kind, self.params)

    @property
    def location(self) -> str:
        return f"{Path(self.path).name}:{self.line}"

    def label(self) -> str:
        """`Dropout(p=0.5)`, `BatchNorm2d(64)`: how a reader recognises the line it came from."""
        if self.kind in DROPOUT_KINDS or self.kind == "StochasticDepth":
            if "p" in self.undecided:
                return f"{self.kind}(p=<not read>)"
            shown = self.param("p")
            if any(name == "p" for name, _ in self.assumed):
                return f"{self.kind}(p={shown}, assumed)"
            return (
                f"{self.kind}(p={shown})"
                if "p" in self.params
                else f"{self.kind}(p={shown}, default)"
            )
        first = POSITIONAL.get(self.kind, ("",))[0]
        if first in self.params and isinstance(self.params[first], (int, float)):
            return f"{self.kind}({self.params[first]})"
        return f"{self.kind}()"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "path": self.path,
            "line": self.line,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "mode_dependent": self.sensitivity,
            "origin": self.origin,
            "unread": list(self.unread),
            "assumed": {name: note for name, note in self.assumed},
        }


@dataclass(frozen=True)
class Extraction:
    """Every layer found for a subject, and why extraction stopped short, if it did."""

    layers: tuple[LayerSpec, ...]
    unresolved: tuple[str, ...]
    root: str
    """What the subject was followed to: ``class Net (net.py:5)``, ``torchvision resnet18``."""
    caller: str = ""
    """When the subject is a parameter with several callers: the one these layers came from."""
    parameters: tuple[str, ...] = ()
    """`nn.Parameter` attributes the module holds directly (`self.w = nn.Parameter(...)`,
    requires_grad not False): autograd records the forward's operations on them."""

    @property
    def complete(self) -> bool:
        return not self.unresolved and bool(self.root)

    @property
    def mode_dependent(self) -> tuple[LayerSpec, ...]:
        return tuple(layer for layer in self.layers if layer.mode_dependent)

    @property
    def undecided(self) -> tuple[LayerSpec, ...]:
        """Layers whose mode dependence rests on an argument that was not read."""
        return tuple(layer for layer in self.layers if layer.sensitivity is None)


def is_mode_dependent(layer: LayerSpec) -> bool:
    """Does the layer's output differ between train and eval mode (pytorch-facts.md)?"""
    return layer.mode_dependent


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return repr(value)


@dataclass(frozen=True)
class FunctionalCall:
    """A flagged `F.dropout(...)`-like call with the arguments the source fixes."""

    function: str
    """Qualified: ``torch.nn.functional.dropout``."""
    params: dict[str, Any]
    """Literal arguments (and `self.x` attributes whose `__init__` default is a literal)."""
    training: Optional[bool]
    """The literal (or default) `training`; None when it is an expression."""
    unread: tuple[str, ...]
    origins: dict[str, str] = field(default_factory=dict)
    """Where a parameter that is not a literal at the call got its value."""
    path: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        return self.function.rsplit(".", 1)[1]
