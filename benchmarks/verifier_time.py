#!/usr/bin/env python
"""The verifier's added time per finding (issue 5's target: under 0.5 s after torch is imported).

Why measured in one run: lint-only and lint+verify must see the same files, the same warm
caches and the same machine load. The run lints the fixtures once (lint-only time), imports
torch and the verifier (reported separately: a one-off cost, not per finding), verifies one
finding to warm torch's kernels, then verifies every finding and divides the verify time by
the number of verdicts.

    python benchmarks/verifier_time.py                 # tests/fixtures
    python benchmarks/verifier_time.py path/to/tree --import-modules
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

from evallint.engine.run import lint_paths

TARGET_SECONDS = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths",
        nargs="*",
        default=[str(Path(__file__).resolve().parents[1] / "tests" / "fixtures")],
    )
    parser.add_argument(
        "--import-modules", action="store_true", help="also measure --import (dynamic mode)"
    )
    args = parser.parse_args()

    start = time.perf_counter()
    diagnostics = lint_paths(args.paths, jobs=1, use_cache=False)
    lint_seconds = time.perf_counter() - start

    start = time.perf_counter()
    import torch  # noqa: F401 - timed on its own: a one-off cost per process

    from evallint.verifier import verify

    import_seconds = time.perf_counter() - start

    warm = diagnostics[:1]
    start = time.perf_counter()
    verify(warm)
    warm_seconds = time.perf_counter() - start

    start = time.perf_counter()
    verified = verify(diagnostics, import_modules=args.import_modules)
    verify_seconds = time.perf_counter() - start

    verdicts = collections.Counter(v.verdict for v in verified)
    per_code = collections.Counter(v.diagnostic.code for v in verified)
    per_finding = verify_seconds / max(1, len(verified))
    print(
        f"files: {len({d.path for d in diagnostics})}, findings: {len(diagnostics)}, verified: {len(verified)} "
        f"({', '.join(f'{c} {n}' for c, n in sorted(per_code.items()))})"
    )
    print(f"verdicts: {', '.join(f'{k} {n}' for k, n in sorted(verdicts.items()))}")
    print(f"lint only:               {lint_seconds:7.2f} s")
    print(f"import torch + verifier: {import_seconds:7.2f} s (once per process)")
    print(f"first verdict (warm-up): {warm_seconds:7.2f} s")
    print(
        f"lint + verify:           {lint_seconds + verify_seconds:7.2f} s (after torch is imported)"
    )
    print(f"added per finding:       {per_finding:7.3f} s (target < {TARGET_SECONDS} s)")
    return 0 if per_finding < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
