"""The long fuzz run: the properties of tests/test_fuzz.py with many more examples.

    python tools/fuzz.py --examples 5000            # every generator, N examples each
    python tools/fuzz.py --examples 3000 --only torch

Generators: torch (training/evaluation loop shapes: lint, determinism, positions, and the
fix properties), grammar (hypothesmith from_grammar) and nodes (hypothesmith from_node).
Prints `examples: N, failures: F` per generator and in total; exit status 1 on a failure,
with the shrunk failing program and its error printed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.test_fuzz import check_all, grammar_programs, node_programs, torch_programs  # noqa: E402

GENERATORS = {"torch": torch_programs, "grammar": grammar_programs, "nodes": node_programs}


def run(name: str, examples: int, seed: int | None) -> tuple[int, int]:
    """(examples run, failures) for one generator."""
    count = 0

    def prop(source: str) -> None:
        nonlocal count
        count += 1
        check_all(source)

    test = given(GENERATORS[name]())(prop)
    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(test)
    if seed is not None:
        from hypothesis import seed as with_seed

        test = with_seed(seed)(test)
    started = time.monotonic()
    try:
        test()
    except Exception:  # hypothesis re-raises the (shrunk) failure; report it and go on
        print(f"[{name}] FAILURE:", file=sys.stderr)
        traceback.print_exc()
        failures = 1
    else:
        failures = 0
    print(
        f"[{name}] examples: {count}, failures: {failures} ({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return count, failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--examples", type=int, default=5000, help="examples per generator (default 5000)"
    )
    parser.add_argument(
        "--only",
        choices=sorted(GENERATORS),
        action="append",
        help="run only this generator (repeatable)",
    )
    parser.add_argument("--seed", type=int, help="hypothesis seed, for a reproducible run")
    args = parser.parse_args()
    warnings.simplefilter("ignore", SyntaxWarning)  # CPython's own notes on generated code
    total = failures = 0
    for name in args.only or list(GENERATORS):
        ran, failed = run(name, args.examples, args.seed)
        total += ran
        failures += failed
    print(f"examples: {total}, failures: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
