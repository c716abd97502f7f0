#!/usr/bin/env python
"""Time and peak memory of evallint on conditionally mutually recursive helper families
(issue 19, item 3), and on generated files made of many such families.

    python benchmarks/recursion.py                  # families n = 10, 20, 50; files 1k-100k lines
    python benchmarks/recursion.py --n 10 20 50 100 --lines 1000 10000
    python benchmarks/recursion.py --json out.json

A family of n functions: each forwards the model in a data loop and calls every other
member under its own condition, so there are exponentially many call paths (before the
analysis kept one requirement per forward, n=12 took 51 s and 2.8 GB). Each measurement is
`python -m evallint --no-cache FILE` in its own child process: wall seconds including
interpreter start-up, and peak RSS from that child's rusage (`os.wait4`). Also reported: the
number of function summaries computed (one per function when memoisation works), from an
in-process run. The target is n=50 under 5 s and 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def family(n: int, prefix: str = "f", methods: bool = False) -> str:
    """n helpers, each calling all the others under a condition (no `import` line)."""
    lines: list[str] = []
    indent = "    " if methods else ""
    self_arg = "self, " if methods else ""
    call = "self." if methods else ""
    if methods:
        lines.append(f"class {prefix.capitalize()}Agent(torch.nn.Module):")
    for i in range(n):
        lines.append(f"{indent}def {prefix}{i}({self_arg}model, val_loader, depth):")
        lines.append(f"{indent}    for x in val_loader:")
        lines.append(f"{indent}        model(x)")
        for j in range(n):
            if j != i:
                lines.append(f"{indent}    if depth % {j + 2} == {i % (j + 2)}:")
                lines.append(f"{indent}        {call}{prefix}{j}(model, val_loader, depth - 1)")
        lines.append("")
    lines.append("")
    return "\n".join(lines)


def family_file(n: int, methods: bool = False) -> str:
    """A file with one family and a caller that evaluates it in training mode."""
    entry = "FAgent().f0" if methods else "f0"  # the class `family` writes for prefix f
    return (
        "import torch\n\n\n"
        + family(n, methods=methods)
        + "\ndef main(model, train_loader, val_loader, optimizer):\n"
        + "    model.train()\n"
        + "    for x, y in train_loader:\n"
        + "        optimizer.zero_grad()\n"
        + "        model(x).sum().backward()\n"
        + "        optimizer.step()\n"
        + f"    {entry}(model, val_loader, 10)\n"
    )


def generated_file(target_lines: int, n: int = 10) -> str:
    """Families of n helpers repeated until the file has about `target_lines` lines."""
    parts = ["import torch\n\n\n"]
    count, index = 3, 0
    while count < target_lines:
        text = family(n, prefix=f"g{index}_")
        parts.append(text)
        count += text.count("\n")
        index += 1
    return "".join(parts)


def measure(path: Path, timeout: float) -> dict:
    """Wall seconds and peak RSS (MB) of one `evallint --no-cache` child process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "evallint", "--no-cache", "--exit-zero", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
    timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "ok": child.returncode == 0,
    }


def summaries_computed(source: str) -> int:
    import libcst as cst

    from evallint.analysis.file_analysis import FileAnalysis

    return FileAnalysis(cst.parse_module(source), "bench.py", source=source).summaries_computed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="*", default=[10, 20, 50])
    parser.add_argument("--lines", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows: list[dict] = []
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        cases: list[tuple[str, str]] = []
        for n in args.n:
            cases.append((f"family n={n}", family_file(n)))
            cases.append((f"methods n={n}", family_file(n, methods=True)))
        for lines in args.lines:
            cases.append((f"generated {lines} lines", generated_file(lines)))
        for name, source in cases:
            path = Path(tmp) / "bench.py"
            path.write_text(source)
            row = {"case": name, "lines": source.count("\n"), **measure(path, args.timeout)}
            row["per_1k_lines_s"] = round(row["seconds"] / max(1, row["lines"]) * 1000, 3)
            rows.append(row)
            print(
                f"{name:<24} {row['lines']:>7} lines {row['seconds']:>7.2f} s "
                f"{row['peak_mb']:>7.1f} MB  {row['per_1k_lines_s']:.3f} s/1k lines"
                + ("" if row["ok"] else "  FAILED"),
                flush=True,
            )
        # after the timings: analysing in this process grows it, and a forked child's peak
        # RSS starts from its parent's size
        for (name, source), row in zip(cases, rows):
            row["summaries"] = summaries_computed(source) if row["lines"] < 20000 else None
            if row["summaries"] is not None:
                print(f"{name:<24} summaries computed: {row['summaries']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
