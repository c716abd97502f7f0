"""A verified finding: a diagnostic with its verdict, JSON evidence and one-line summary.

A leaf of the verifier: the static verdicts (verdict.py), `--import` (dynamic.py) and the
orchestration (run.py) all produce these, and nothing here imports any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Optional

from evallint.diagnostics import Diagnostic

if TYPE_CHECKING:
    from evallint.verifier.torch_run import LayerRun, MemoryRun

Verdict = Literal["confirmed", "not-affected", "unresolved", "error"]
VERDICTS: tuple[Verdict, ...] = ("confirmed", "not-affected", "unresolved", "error")
VERIFIED_CODES = ("EVL001", "EVL002", "EVL003", "EVL004", "EVL005", "EVL006")


@dataclass(frozen=True)
class VerifiedFinding:
    """A diagnostic with its verdict, JSON evidence and a one-line summary."""

    diagnostic: Diagnostic
    verdict: Verdict
    evidence: dict[str, Any]
    summary: str
    runs: tuple[LayerRun, ...] = field(default=(), compare=False, repr=False)
    """The raw measurements (arrays included) for `plot`; not part of the JSON."""
    memory: Optional[MemoryRun] = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The diagnostic's JSON object plus `verdict` and `evidence` (which holds `summary`)."""
        return {**self.diagnostic.to_json(), "verdict": self.verdict, "evidence": self.evidence}
