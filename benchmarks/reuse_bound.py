"""What per-function summary reuse could save per edit, at best (issue 20 item 1).

Replays `lsp_latency.py`'s editing session through the language server's lint in this
process (as `lsp_latency.py --in-process` does) with the interpreter instrumented: each
`_Interpreter.run` (a function's summary, a specialised one, the top level) is timed in CPU
seconds, exclusive of the runs nested in it. For every edit that analyses again, printed:
the lint's CPU, the interpreter runs' share, and the bound a perfect reuse would leave, the
lint minus every run except those of the edited block (its class's methods, its training,
evaluation and driver functions) and the top level. The bound counts the interpreter's set-up
(`_Interpreter.__init__`), the judging of uncalled functions and the whole-file passes as
not reusable, so it is an upper bound of what such a reuse leaves; replaying the reused
summaries' writes is not counted.

    python benchmarks/reuse_bound.py [--sizes 1000 5000] [--edits 60]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsp_latency import keystrokes, training_script  # noqa: E402


@dataclass
class Edit:
    """One edit that analysed again: CPU seconds."""

    lint: float
    runs: float
    """All interpreter runs, each exclusive of the runs nested in it."""
    kept: float
    """The runs a reuse would still make: the edited block's functions and the top level."""
    count: int
    """Interpreter runs in the lint."""

    @property
    def bound(self) -> float:
        return self.lint - self.runs + self.kept


def measure(text: str, edits: int) -> list[Edit]:
    """The session's edits that ran the interpreter (comment-only and unparsable texts do
    not), with the interpreter restored after."""
    from evallint.analysis import interpreter as interpreter_module
    from evallint.lsp.convert import to_lsp
    from evallint.lsp.program import Program
    from evallint.lsp.server import EvallintServer
    from evallint.source.text import split_lines

    stack: list[float] = []
    runs: list[tuple[str, float]] = []
    original = interpreter_module._Interpreter.run

    def run(self: Any) -> None:
        label = self.info.qualname if self.info is not None else "<module>"
        started = time.process_time()
        stack.append(0.0)
        try:
            original(self)
        finally:
            nested = stack.pop()
            spent = time.process_time() - started
            if stack:
                stack[-1] += spent
            runs.append((label, spent - nested))

    directory = Path(tempfile.mkdtemp(prefix="evallint-reuse-bound-"))
    (directory / "README.md").write_text("A training script.\n", encoding="utf-8")
    path = directory / "train.py"
    server = EvallintServer()

    def lint(version: int, source: str) -> float:
        runs.clear()
        started = time.process_time()
        program = Program.of_text(path.as_uri(), str(path), version, source)
        found = server.lint(program)
        lines = [split_lines(source)]
        for finding in found:
            to_lsp(finding, program, 0, "utf-16", server.lines_of, None, lines)
        return time.process_time() - started

    measured: list[Edit] = []
    interpreter_module._Interpreter.run = run  # type: ignore[method-assign]
    try:
        lint(1, text)
        for version, (line, character, removed, inserted) in enumerate(
            keystrokes(text, edits), start=2
        ):
            lines = text.split("\n")
            offset = sum(len(each) + 1 for each in lines[:line]) + character
            text = text[:offset] + inserted + text[offset + removed :]
            spent = lint(version, text)
            if not runs:
                continue
            block = _block_at(text, line)
            mine = {f"Net{block}", f"train_epoch_{block}", f"evaluate_{block}", f"run_{block}"}
            kept = sum(t for label, t in runs if label.split(".")[0] in mine or label == "<module>")
            measured.append(Edit(spent, sum(t for _, t in runs), kept, len(runs)))
    finally:
        interpreter_module._Interpreter.run = original  # type: ignore[method-assign]
        shutil.rmtree(directory, ignore_errors=True)
    return measured


def _block_at(text: str, line: int) -> str:
    """The number of the benchmark block whose training function holds `line` (0-based)."""
    for earlier in reversed(text.split("\n")[: line + 1]):
        found = re.match(r"def train_epoch_(\d+)\(", earlier)
        if found:
            return found.group(1)
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--edits", type=int, default=60, help="edits to replay (default 60)")
    args = parser.parse_args()
    for size in args.sizes:
        edits = measure(training_script(size), args.edits)
        if not edits:
            print(f"{size} lines: no edit analysed again")
            continue

        def median(values: list[float]) -> str:
            return f"{statistics.median(values) * 1000:.0f} ms"

        print(
            f"{size} lines: {len(edits)} of {args.edits} edits analysed again, "
            f"{edits[0].count} interpreter runs each; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"  lint CPU: median {median([e.lint for e in edits])}")
        print(f"  interpreter runs: median {median([e.runs for e in edits])}")
        print(f"  outside the interpreter runs: median {median([e.lint - e.runs for e in edits])}")
        print(
            f"  bound with reuse (the edited block's runs and the top level only): median "
            f"{median([e.bound for e in edits])}, max {max(e.bound for e in edits) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
