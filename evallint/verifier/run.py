"""`verify()`: the static verdict for each finding first, then `--import` when asked.

The root of the verifier: it imports the static verdicts (verdict.py) and the dynamic
measurement (dynamic.py); neither imports the other or this module.
"""

from __future__ import annotations

import logging

from evallint.diagnostics import Diagnostic
from evallint.verifier.dynamic import IMPORT_CODES, ImportBudget, measure_imported
from evallint.verifier.finding import VERIFIED_CODES, VerifiedFinding
from evallint.verifier.verdict import Cache, verify_static

LOG = logging.getLogger(__name__)


def verify(
    diagnostics: list[Diagnostic],
    seed: int = 0,
    *,
    import_modules: bool = False,
    budget: ImportBudget | None = None,
) -> list[VerifiedFinding]:
    """Verify every EVL001-EVL006 diagnostic, in input order; other codes, and EVL005 findings
    other than `.training = ...`, are skipped (they have no numbers to show).

    `import_modules` (`--import`): also import the file defining the flagged model's class and
    measure the instantiated model (`dynamic`). Never raises for a single finding: a crash while
    verifying one becomes its `error` verdict.
    """
    cache = Cache(seed)
    out: list[VerifiedFinding] = []
    for diagnostic in diagnostics:
        if diagnostic.code not in VERIFIED_CODES:
            continue
        try:
            found = verify_static(diagnostic, cache)
            if found is not None and import_modules and diagnostic.code in IMPORT_CODES:
                found = measure_imported(found, seed, budget or ImportBudget())
            if found is not None:
                out.append(found)
        except Exception as exc:  # noqa: BLE001 - a verifier crash is a result, not an abort
            LOG.debug("verifier crashed on %s", diagnostic, exc_info=True)
            message = f"verifier crashed: {type(exc).__name__}: {exc}"
            evidence = {"subject": diagnostic.subject, "error": message, "summary": message}
            out.append(VerifiedFinding(diagnostic, "error", evidence, message))
    return out
