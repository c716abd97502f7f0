"""`evallint debug --flow FILE`: the analysis' facts per statement, to trace a finding
(or a missing one) back to the fact that caused it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, cast

import libcst as cst

from evallint.analysis.context import code_of
from evallint.analysis.file_analysis import FileAnalysis
from evallint.analysis.lattice import PathState
from evallint.analysis.summaries import Summary
from evallint.engine.config import ConfigError
from evallint.engine.run import analyse_source, new_project
from evallint.source.parse import ParseFailure
from evallint.source.text import DecodeError, decode_source


def _describe_state(state: PathState) -> str:
    parts = []
    for key, facts in state.modes:
        modes = "|".join(sorted({f.mode.value for f in facts}))
        parts.append(f"{key}={modes}")
    grads = "|".join(sorted({g.grad.value for g in state.grad}))
    parts.append(f"grad={grads}")
    if state.assumptions:
        parts.append(
            "assuming "
            + ", ".join(f"{'' if v else 'not '}{c}" for c, v in sorted(state.assumptions))
        )
    return " ".join(parts)


def render_flow(path: Path) -> str:
    """The flow of a `.py` file, or of a notebook's code cells read as one program (as the
    linter reads them), its lines shown as `cell N:LINE`."""
    virtual = None
    try:
        data = path.read_bytes()
        if path.suffix == ".ipynb":
            from evallint.source.notebook import NotebookError, read_notebook

            try:
                virtual = read_notebook(data)
            except NotebookError as exc:
                raise ConfigError(path, None, f"cannot read notebook: {exc}") from None
            source = virtual.text
        else:
            source = decode_source(data)
    except (OSError, DecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from None
    analysis = analyse_source(source, str(path), project=new_project(), record_flow=True)
    if isinstance(analysis, ParseFailure):
        return f"{path}:{analysis.line}:{analysis.column}: cannot parse: {analysis.reason}\n"
    if virtual is None:
        return _render(analysis)
    cells = virtual

    def cell_line(line: int) -> str:
        try:
            cell, within = cells.locate(line)
        except ValueError:
            return str(line)
        return f"cell {cell}:{within}"

    return _render(analysis, cell_line)


def _render(analysis: FileAnalysis, place: Callable[[int], str] = str) -> str:
    lines: list[str] = []
    current = None
    region = None
    for function, statement, states, statement_region in analysis.facts.flow:
        if function != current:
            lines.append(f"\n== {function} ==")
            current = function
            region = None
        if statement_region != region:
            lines.append(f"   -- region: {statement_region}")
            region = statement_region
        line = analysis.locate(statement)[0]
        text = (
            code_of(statement).strip().splitlines()[0]
            if not isinstance(statement, cst.SimpleStatementLine)
            else code_of(statement).strip()
        )
        lines.append(f"{place(line):>5}  {text[:70]}")
        for state in dict.fromkeys(states):
            lines.append(f"         {_describe_state(state)}")
    lines.append("\n== function summaries ==")
    for name, summary in analysis.facts.summaries.items():
        lines.append(
            cast(Summary, summary).describe()
            if summary is not None
            else f"{name}: (recursive, not summarised)"
        )
    lines.append("\n== evaluation forwards ==")
    for forward in analysis.facts.eval_forwards:
        line = forward.call.position()[0]
        lines.append(
            f"{forward.call.path}:{place(line)} {forward.subject} in {forward.region.description}: "
            f"train={sorted(repr(f) for f in forward.train_facts)} grad={sorted(repr(g) for g in forward.grad_facts)}"
        )
    lines.append("\n== training steps ==")
    for step in analysis.facts.training_steps:
        lines.append(
            f"{step.site.path}:{place(step.site.position()[0])} {step.subject} eval from {sorted(repr(f) for f in step.eval_facts)}"
        )
    return "\n".join(lines).lstrip("\n") + "\n"
