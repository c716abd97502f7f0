"""Quick fixes for an editor: computed once per document version, proven before offered,
and abandoned as soon as the text they were for is gone.

One lint with fixes gives every finding's candidate fix (linear in the file). A quick fix
is proven only when the editor asks for the line it is on (one re-lint per finding there,
each cached for the version), and "Fix all" applies every non-overlapping fix at once and
re-lints once, halving the set only around a fix that breaks something: one lint per round
when all fixes are good, where proving each fix alone cost a lint per finding. Each step
checks its job's cancellation first, and waits while a lint for diagnostics runs, so
diagnostics never queue behind a code action."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from evallint.diagnostics import PARSE_ERROR_CODE, Diagnostic, Edit
from evallint.lsp.program import Program

MAX_ROUNDS = 8
"""Fix-all rounds: overlapping fixes (an `eval()` before a loop that is also wrapped in
`no_grad`) are applied in later rounds, on the text the earlier ones produced."""

FindingKey = tuple[str, str, str]


class Cancelled(Exception):
    """The job's text was replaced, or the client cancelled the request."""


@dataclass(eq=False)
class Job:
    """One code-action request's work; `cancel` stops it at its next step."""

    idle: threading.Event
    """Set while no diagnostics lint runs: steps wait for it."""
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()

    def step(self) -> None:
        """Raise Cancelled if cancelled; else wait until no diagnostics lint is running."""
        while True:
            if self.cancelled.is_set():
                raise Cancelled
            if self.idle.wait(0.05):
                if self.cancelled.is_set():
                    raise Cancelled
                return


@dataclass
class FixPlan:
    """The fixes of one version of one program."""

    program: Program
    findings: list[Diagnostic]
    """One lint with fixes, suppressions applied."""
    proven: dict[int, bool] = field(default_factory=dict)
    """Index in `findings` -> whether its fix survived a re-lint."""
    fixed_texts: Optional[list[str]] = None
    """Every part's text after "Fix all", once computed."""


Lint = Callable[[str], list[Diagnostic]]


def make_plan(program: Program, lint_with_fixes: Lint, job: Job) -> FixPlan:
    job.step()
    return FixPlan(program, lint_with_fixes(program.text))


def proven(plan: FixPlan, index: int, lint: Lint, job: Job) -> bool:
    """Whether finding `index`'s fix, applied alone, parses, removes the finding and adds
    nothing (the engine's criterion for `--fix`); cached in the plan."""
    if index not in plan.proven:
        job.step()
        finding = plan.findings[index]
        plan.proven[index] = (
            finding.fix is not None
            and _accepted(plan.program.text, [finding], plan.findings, lint) is not None
        )
    return plan.proven[index]


def fix_all(plan: FixPlan, lint_with_fixes: Lint, job: Job) -> list[str]:
    """Every part's text with all provable fixes applied, in rounds of non-overlapping
    fixes; cached in the plan."""
    if plan.fixed_texts is not None:
        return plan.fixed_texts
    program, findings = plan.program, plan.findings
    for _ in range(MAX_ROUNDS):
        candidates = _non_overlapping(program, findings)
        accepted: list[Diagnostic] = []
        result = _largest_good_set(
            program.text, candidates, findings, accepted, lint_with_fixes, job
        )
        if result is None:
            break
        program = _apply_to_parts(program, accepted)
        findings = result[1]
    plan.fixed_texts = [part.text for part in program.parts]
    return plan.fixed_texts


def _largest_good_set(
    text: str,
    group: list[Diagnostic],
    before: list[Diagnostic],
    accepted: list[Diagnostic],
    lint: Lint,
    job: Job,
) -> Optional[tuple[str, list[Diagnostic]]]:
    """Effect: extend `accepted` with the fixes of `group` that can join it (all at once if
    they can, else each half in turn, down to single fixes); the text with all of
    `accepted` applied and its findings, or None when nothing new was accepted."""
    if not group:
        return None
    job.step()
    trial = _accepted(text, accepted + group, before, lint)
    if trial is not None:
        accepted.extend(group)
        return trial
    if len(group) == 1:
        return None
    middle = len(group) // 2
    first = _largest_good_set(text, group[:middle], before, accepted, lint, job)
    second = _largest_good_set(text, group[middle:], before, accepted, lint, job)
    return second or first


def _key(d: Diagnostic) -> FindingKey:
    """What a finding is, apart from where: line shifts from a fix must not make it 'new'."""
    return (d.code, d.subject, d.message)


def _accepted(
    text: str, chosen: list[Diagnostic], before: list[Diagnostic], lint: Lint
) -> Optional[tuple[str, list[Diagnostic]]]:
    """The text with the chosen fixes and its findings, if it parses, each chosen finding
    is gone and no other finding appeared; else None."""
    from evallint.engine.fixes import apply_edits, native_edits

    edits = [edit for d in chosen if d.fix is not None for edit in d.fix.edits]
    try:
        candidate = apply_edits(text, native_edits(text, edits))
    except ValueError:
        return None
    if candidate == text:
        return None
    after = lint(candidate)
    if any(d.code == PARSE_ERROR_CODE for d in after):
        return None
    allowed = Counter(map(_key, before))
    allowed.subtract(Counter(map(_key, chosen)))
    if Counter(map(_key, after)) - allowed:
        return None
    return candidate, after


def _span(edit: Edit) -> tuple[tuple[int, int], tuple[int, int]]:
    return (edit.line, edit.column), (edit.end_line, edit.end_column)


def _non_overlapping(program: Program, findings: list[Diagnostic]) -> list[Diagnostic]:
    """Fixable findings in text order whose edits touch no edit chosen before them (a
    shared point counts as touching: two insertions there would have no defined order),
    and can be written into the document (a notebook fix stays in one cell)."""
    chosen: list[Diagnostic] = []
    taken: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for finding in findings:
        if finding.fix is None or program.part_edits(finding.fix.edits) is None:
            continue
        spans = [_span(edit) for edit in finding.fix.edits]
        if any(s[0] <= t[1] and t[0] <= s[1] for s in spans for t in taken):
            continue
        chosen.append(finding)
        taken.extend(spans)
    return chosen


def _apply_to_parts(program: Program, accepted: list[Diagnostic]) -> Program:
    """The program with the accepted fixes written into the parts they belong to."""
    from evallint.engine.fixes import apply_edits, native_edits

    per_part: dict[int, list[Edit]] = {}
    for finding in accepted:
        assert finding.fix is not None
        placed = program.part_edits(finding.fix.edits)
        assert placed is not None
        per_part.setdefault(placed[0], []).extend(placed[1])
    texts = [part.text for part in program.parts]
    for index, edits in per_part.items():
        texts[index] = apply_edits(texts[index], native_edits(texts[index], edits))
    return program.with_texts(texts)
