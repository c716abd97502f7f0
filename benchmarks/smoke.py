#!/usr/bin/env python
"""Real-code smoke run (issue 8): lint every .py of a large tree nobody here wrote, one file
at a time in-process, and prove that nothing escapes.

Why one file at a time: an exception must be pinned to the file that caused it, and one bad
file must not hide the rest. The run shares one project index across files, as a real
`lint_paths` run does, so cross-file analysis costs what it costs in practice.

    python benchmarks/smoke.py                      # the installed torch package
    python benchmarks/smoke.py path/to/tree --samples 30 --seed 1

Exit status 1 if any exception escaped evallint, any EVL999 says "internal error", or a file
exceeded --file-timeout (a hang blocks a pre-commit run as surely as a crash).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

PARSE_ERROR_CODE = "EVL999"


class FileTimeout(BaseException):
    """Raised by SIGALRM. A BaseException so evallint's `except Exception` cannot swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise FileTimeout()


def default_roots() -> List[Path]:
    """The installed torch package, located without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        raise SystemExit("torch is not installed; pass a ROOT directory")
    return [Path(spec.origin).parent]


def iter_py(roots: Sequence[Path]) -> List[Path]:
    """Every .py file, sorted; directory symlinks are not followed (no loops)."""
    found: List[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
            continue
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            found.extend(Path(directory) / name for name in sorted(files) if name.endswith(".py"))
    return found


def make_linter() -> Tuple[Any, str]:
    """`lint_file` with one shared project index, or `lint_paths([file])` if the engine moved."""
    try:
        from evallint.engine import run as engine

        project = engine._Project() if hasattr(engine, "_Project") else None

        def lint(path: Path) -> list:
            return engine.lint_file(path, project=project)

        return (
            lint,
            "evallint.engine.run.lint_file (one shared project index)"
            if project
            else "evallint.engine.run.lint_file",
        )
    except (ImportError, AttributeError):
        import evallint

        return (lambda path: evallint.lint_paths([str(path)])), "evallint.lint_paths([file])"


def classify(message: str) -> str:
    """EVL999 reason category: internal errors are evallint bugs, the rest are about the file."""
    lowered = message.lower()
    if "internal error" in lowered:
        return "internal error"
    for prefix in ("cannot parse", "cannot decode", "cannot read", "cannot analyse"):
        if lowered.startswith(prefix):
            return prefix
    return "other"


def context(path: str, line: int, radius: int) -> str:
    """The finding's line with `radius` lines either side, numbered, the line itself marked."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"      (cannot read source: {exc})"
    low, high = max(1, line - radius), min(len(text), line + radius)
    return "\n".join(
        f"  {'>' if n == line else ' '} {n:6d} | {text[n - 1]}" for n in range(low, high + 1)
    )


def pick_samples(findings: List[Any], count: int, seed: int) -> List[Any]:
    """Spread samples over codes round-robin so a rare rule still gets looked at."""
    by_code: Dict[str, List[Any]] = collections.defaultdict(list)
    for d in findings:
        if d.code != PARSE_ERROR_CODE:
            by_code[d.code].append(d)
    rng = random.Random(seed)
    for items in by_code.values():
        rng.shuffle(items)
    picked: List[Any] = []
    while len(picked) < count and any(by_code.values()):
        for code in sorted(by_code):
            if by_code[code] and len(picked) < count:
                picked.append(by_code[code].pop())
    return sorted(picked, key=lambda d: (d.path, d.line, d.column))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "roots",
        nargs="*",
        type=Path,
        metavar="ROOT",
        help="trees to lint (default: the installed torch package)",
    )
    parser.add_argument(
        "--samples", type=int, default=15, help="findings to print with source context"
    )
    parser.add_argument(
        "--context", type=int, default=3, help="source lines either side of a sample finding"
    )
    parser.add_argument("--seed", type=int, default=0, help="which findings are sampled")
    parser.add_argument(
        "--file-timeout", type=int, default=300, help="seconds one file may take (0: no limit)"
    )
    parser.add_argument("--slowest", type=int, default=10, help="list this many slowest files")
    args = parser.parse_args(argv)

    roots = args.roots or default_roots()
    files = iter_py(roots)
    lint, how = make_linter()
    print(
        f"smoke: {len(files)} .py files under {', '.join(map(str, roots))}; via {how}", flush=True
    )

    use_alarm = args.file_timeout > 0 and hasattr(signal, "SIGALRM")
    if use_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
    findings: List[Any] = []
    exceptions: List[Tuple[Path, str]] = []
    timeouts: List[Path] = []
    durations: List[Tuple[float, Path]] = []
    start = time.perf_counter()
    for index, path in enumerate(files, 1):
        began = time.perf_counter()
        try:
            if use_alarm:
                signal.alarm(args.file_timeout)
            findings.extend(lint(path))
        except FileTimeout:
            timeouts.append(path)
        except KeyboardInterrupt:
            raise
        except BaseException:  # anything escaping evallint is a bug: record it and go on
            exceptions.append((path, traceback.format_exc()))
        finally:
            if use_alarm:
                signal.alarm(0)
        durations.append((time.perf_counter() - began, path))
        if index % 200 == 0:
            print(
                f"  ... {index}/{len(files)} files, {time.perf_counter() - start:.0f}s", flush=True
            )
    wall = time.perf_counter() - start

    per_code = collections.Counter(d.code for d in findings)
    errors = [d for d in findings if d.code == PARSE_ERROR_CODE]
    groups: Dict[str, List[Any]] = collections.defaultdict(list)
    for d in errors:
        groups[classify(d.message)].append(d)
    lines = sum(p.read_bytes().count(b"\n") for p in files if p.is_file())

    print()
    print(
        f"files: {len(files)} ({lines:,} lines), wall: {wall:.1f}s, exceptions: {len(exceptions)}, "
        f"timeouts (> {args.file_timeout}s): {len(timeouts)}"
    )
    print(f"files with findings: {len({d.path for d in findings if d.code != PARSE_ERROR_CODE})}")
    print(
        "findings per code: "
        + (", ".join(f"{code} {n}" for code, n in sorted(per_code.items())) or "none")
    )
    print(f"EVL999 files: {len({d.path for d in errors})}")
    for category in sorted(groups):
        print(f"  {category}: {len(groups[category])}")
        for d in sorted(groups[category], key=lambda d: d.path):
            print(f"    {d.path}:{d.line}:{d.column}: {d.message}")
    for path, trace in exceptions:
        print(f"\nEXCEPTION in {path}:\n{trace}")
    for path in timeouts:
        print(f"TIMEOUT: {path}")
    print(f"\nslowest {args.slowest} files:")
    for seconds, path in sorted(durations, key=lambda t: t[0], reverse=True)[: args.slowest]:
        print(f"  {seconds:7.2f}s  {path}")

    samples = pick_samples(findings, args.samples, args.seed)
    print(f"\n{len(samples)} sample findings (judge each: true positive or a fixture to add):")
    for d in samples:
        print(f"\n{d.path}:{d.line}:{d.column}: {d.code} {d.message}")
        print(context(d.path, d.line, args.context))
        for r in getattr(d, "related", ()):
            print(f"    related {r.path}:{r.line}:{r.column}: {r.message}")

    bad = bool(exceptions) or bool(groups.get("internal error")) or bool(timeouts)
    print(f"\nsmoke: {'FAIL' if bad else 'OK'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
