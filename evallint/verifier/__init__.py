"""evallint's runtime verifier (extra `verify`): numbers for EVL001/EVL002/EVL003 findings.

Imports numpy and torch; nothing outside this package may import it eagerly (the CLI imports
it lazily). Public API: `verify`, `VerifiedFinding`, `VERDICTS`, `write_plots`.
"""

from __future__ import annotations

from evallint.verifier.verdict import VERDICTS, VerifiedFinding, verify

__all__ = ["VERDICTS", "VerifiedFinding", "verify", "write_plots"]


def write_plots(findings: list[VerifiedFinding], directory: str) -> list[str]:
    """One PNG per confirmed finding in `directory`; imports matplotlib only when called."""
    from evallint.verifier.plot import write_plots as _write

    return _write(findings, directory)
