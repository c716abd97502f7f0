"""evallint's runtime verifier (extra `verify`): numbers for EVL001/EVL002/EVL003 findings.

Public API: `verify`, `VerifiedFinding`, `VERDICTS`, `write_plots`. They are loaded lazily
(PEP 562) so that `evallint.verifier.extract`, which needs only LibCST, imports without
numpy/torch; nothing outside this package may import it eagerly (the CLI imports it lazily).
The guard's exception types live here, torch-free, so `except EvalModeError` works anywhere;
`evallint.verify` is the library facade over `live`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evallint.verifier.finding import VERDICTS, VerifiedFinding
    from evallint.verifier.run import verify

__all__ = [
    "VERDICTS",
    "EvalModeError",
    "EvalModeWarning",
    "VerifiedFinding",
    "verify",
    "write_plots",
]


class EvalModeError(RuntimeError):
    """A forward ran in training mode where an evaluation was meant (`guard(action="raise")`)."""


class EvalModeWarning(UserWarning):
    """What `guard(action="warn")` issues instead of raising `EvalModeError`."""


def __getattr__(name: str) -> Any:
    if name in ("VERDICTS", "VerifiedFinding"):
        from evallint.verifier import finding

        return getattr(finding, name)
    if name == "verify":
        from evallint.verifier.run import verify

        return verify
    raise AttributeError(f"module 'evallint.verifier' has no attribute {name!r}")


def write_plots(findings: list[VerifiedFinding], directory: str) -> list[str]:
    """One PNG per confirmed finding in `directory`; imports matplotlib only when called."""
    from evallint.verifier.plot import write_plots as _write

    return _write(findings, directory)
