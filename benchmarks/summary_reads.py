"""What a function summary reads and writes outside its own function: the inventory that
per-function reuse in the language server (issue 20 item 1) has to key on or replay.

Lints one file with the analysis instrumented (in this process, for that lint only): every
`_Interpreter` run (a function's summary, a specialised summary, the module's top level;
its set-up included) is charged with each attribute it reads of the file's `FileAnalysis`,
of its `ModuleFacts`, and of the `FunctionInfo`/`ClassInfo` of *other* definitions (not the
function interpreted, its enclosing functions or its class), with the analysis function that
read it. Writes are counted as the growth of the analysis's and the facts' containers
(lists, dicts, sets) over a run, the runs nested in it included (a callee summarised inside
its first caller). A lower bound: what the interpreter copied from the analysis when it was
built (`imports`), module-level memos and the project index are not seen.

    python benchmarks/summary_reads.py [path.py]     # default: lsp_latency.py's 1k script

Printed: per attribute, how many of the runs read it and from where (the sites that a
sound reuse must turn into recorded queries, or key on), and the containers runs grow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Inventory:
    findings: int
    runs: list[str] = field(default_factory=list)
    """One label per interpreter run: the function's qualified name, or `<module>`."""
    reads: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    """`Kind.attribute` -> run -> the analysis functions (`module.function`) that read it."""
    grows: dict[str, set[str]] = field(default_factory=dict)
    """`Kind.container` -> the runs over which it grew."""


def inventory(text: str, name: str) -> Inventory:
    """Lint `text` (named `name`) instrumented; the analysis is restored after."""
    from evallint.analysis import interpreter as interpreter_module
    from evallint.analysis.facts import ModuleFacts
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo, FunctionInfo
    from evallint.engine.run import lint_source

    stack: list[tuple[str, Any]] = []  # (run label, the FunctionInfo interpreted)
    reads: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    grows: dict[str, set[str]] = defaultdict(set)
    runs: list[str] = []
    analyses: list[Any] = []
    busy: list[bool] = []  # a read made while charging a read is not charged

    def own(info: Any) -> set[int]:
        """The interpreted function, its enclosing functions and their classes."""
        mine: set[int] = set()
        cursor = info
        while cursor is not None:
            mine.add(id(cursor))
            owner = cursor.owner
            if owner is not None:
                mine.add(id(owner))
            cursor = cursor.parent
        return mine

    def recorder(kind: str) -> Callable[[Any, str], Any]:
        def __getattribute__(self: Any, attribute: str) -> Any:  # noqa: N807
            if stack and not busy and not attribute.startswith("__"):
                busy.append(True)
                try:
                    run, info = stack[-1]
                    if kind not in ("FunctionInfo", "ClassInfo") or id(self) not in own(info):
                        caller = sys._getframe(1).f_code
                        reads[f"{kind}.{attribute}"][run].add(
                            f"{Path(caller.co_filename).stem}.{caller.co_name}"
                        )
                finally:
                    busy.pop()
            return object.__getattribute__(self, attribute)

        return __getattribute__

    def sizes() -> dict[str, int]:
        found: dict[str, int] = {}
        for analysis in analyses:
            for label, holder in (("FileAnalysis", analysis), ("ModuleFacts", analysis.facts)):
                for key, value in vars(holder).items():
                    if type(value) in (list, dict, set):
                        found[f"{label}.{key}"] = len(value)
        return found

    interpreter = interpreter_module._Interpreter
    run_original, init_original = interpreter.run, interpreter.__init__

    def label_of(info: Any, flags: Any) -> str:
        label = info.qualname if info is not None else "<module>"
        return label + (f" {dict(flags)}" if flags else "")

    def init(self: Any, file: Any, info: Any, flags: Any = ()) -> None:
        stack.append((label_of(info, flags), info))  # the run's set-up is charged to it
        try:
            init_original(self, file, info, flags)
        finally:
            stack.pop()

    def run(self: Any) -> None:
        label = label_of(self.info, self.flags)
        runs.append(label)
        if all(self.file is not a for a in analyses):
            analyses.append(self.file)
        before = sizes()
        stack.append((label, self.info))
        try:
            run_original(self)
        finally:
            stack.pop()
            for key, size in sizes().items():
                if size > before.get(key, 0):
                    grows[key].add(label)

    instrumented = (FileAnalysis, ModuleFacts, FunctionInfo, ClassInfo)
    assert all("__getattribute__" not in vars(cls) for cls in instrumented)
    interpreter.run, interpreter.__init__ = run, init  # type: ignore[method-assign]
    for cls in instrumented:
        cls.__getattribute__ = recorder(cls.__name__)  # type: ignore[method-assign,assignment]
    try:
        found = lint_source(text, name)
    finally:
        interpreter.run, interpreter.__init__ = run_original, init_original  # type: ignore[method-assign]
        for cls in instrumented:
            del cls.__getattribute__  # type: ignore[attr-defined]
    return Inventory(len(found), runs, {k: dict(v) for k, v in reads.items()}, dict(grows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="a Python file (default: the 1k-line script)")
    parser.add_argument("--sites", type=int, default=4, help="reading sites shown per attribute")
    args = parser.parse_args()
    if args.path:
        text = Path(args.path).read_text(encoding="utf-8")
        name = str(Path(args.path).resolve())
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from lsp_latency import training_script

        directory = Path(tempfile.mkdtemp(prefix="evallint-summary-reads-"))
        (directory / "README.md").write_text("A training script.\n", encoding="utf-8")
        text, name = training_script(1000), str(directory / "train.py")
    found = inventory(text, name)
    total = len(found.runs)
    print(f"{name}: {text.count(chr(10))} lines, {found.findings} findings, {total} runs")
    print(f"\nread outside the run's own function (of {total} runs):")
    for attribute, by_run in sorted(found.reads.items(), key=lambda item: -len(item[1])):
        sites = Counter(s for each in by_run.values() for s in each)
        ranked = sorted(sites, key=lambda s: (-sites[s], s))
        shown = ", ".join(ranked[: args.sites])
        more = f" (+{len(sites) - args.sites} more)" if len(sites) > args.sites else ""
        print(f"  {len(by_run):5d}  {attribute}: {shown}{more}")
    print(f"\ncontainers a run grows (its nested runs included), of {total} runs:")
    for key, labels in sorted(found.grows.items(), key=lambda item: -len(item[1])):
        print(f"  {len(labels):5d}  {key}")


if __name__ == "__main__":
    main()
