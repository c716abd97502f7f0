"""Code actions: quick fixes, "Suppress CODE on this line" and "Fix all", computed on the
fix thread (`evallint.lsp.fixes`) so that a slow one never holds up diagnostics."""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any, Callable, Optional

from lsprotocol import types

from evallint.diagnostics import PARSE_ERROR_CODE
from evallint.engine.config import Config
from evallint.engine.run import lint_source
from evallint.lsp import fixes
from evallint.lsp.convert import line_edits, text_edit, to_lsp
from evallint.lsp.program import Program
from evallint.lsp.text import kind_wanted, suppression_edit
from evallint.source.text import split_lines

FIX_ALL_KIND = "source.fixAll.evallint"


class CodeActions:
    """The server's code-action half (a mixin of `EvallintServer`)."""

    plans: dict[str, fixes.FixPlan]
    jobs: dict[str, set[fixes.Job]]
    idle: threading.Event
    fixer: Any
    fix_projects: dict[Any, Any]
    resolve_fix_all: bool
    program_of: Callable[[str], Program]
    config_for: Callable[[str], Config]
    project: Callable[[Config, dict[Any, Any]], Any]
    other_file: Callable[[str, Optional[int]], tuple[str, list[str]]]

    @property
    def encoding(self) -> str:  # the server's negotiated position encoding
        raise NotImplementedError

    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        program = self.program_of(uri)
        job = fixes.Job(self.idle)
        self.jobs.setdefault(program.uri, set()).add(job)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.fixer, self.actions_for, program, uri, params, job
            )
        except fixes.Cancelled:
            return []
        finally:
            job.cancel()  # also when this request itself was cancelled ($/cancelRequest)
            self.jobs.get(program.uri, set()).discard(job)

    def plan_for(self, program: Program, job: fixes.Job) -> fixes.FixPlan:
        plan = self.plans.get(program.uri)
        if plan is None or plan.program.text != program.text:
            config = self.config_for(program.path)
            plan = fixes.make_plan(program, self.linter_for(program, config, True), job)
            self.plans[program.uri] = plan
        return plan

    def linter_for(self, program: Program, config: Config, with_fixes: bool) -> fixes.Lint:
        project = None if program.path.startswith("<") else self.project(config, self.fix_projects)
        return functools.partial(
            lint_source, path=program.path, config=config, fixes=with_fixes, project=project
        )

    def actions_for(
        self, program: Program, uri: str, params: types.CodeActionParams, job: fixes.Job
    ) -> list[types.CodeAction]:
        """The code actions at the request's range (on the fix thread)."""
        part = program.index_of(uri)
        if part is None:
            return []
        only = params.context.only
        lines = split_lines(program.parts[part].text)
        from evallint.engine.fixes import native_edits  # LibCST: loaded by the first lint

        actions: list[types.CodeAction] = []
        if kind_wanted(types.CodeActionKind.QuickFix, _kinds(only)):
            plan = self.plan_for(program, job)
            config = self.config_for(program.path)
            suppressed: set[tuple[str, int]] = set()
            first, last = params.range.start.line + 1, params.range.end.line + 1
            for index, finding in enumerate(plan.findings):
                where, placed = program.place(finding)
                if (
                    finding.code == PARSE_ERROR_CODE
                    or where != part
                    or not first <= placed.line <= last
                ):
                    continue
                diagnostic = to_lsp(placed, program, part, self.encoding, self.other_file)
                edits = program.part_edits(finding.fix.edits) if finding.fix else None
                lint = self.linter_for(program, config, False)
                if edits is not None and edits[0] == part and fixes.proven(plan, index, lint, job):
                    assert finding.fix is not None
                    text = program.parts[part].text
                    actions.append(
                        self.action(
                            finding.fix.description,
                            types.CodeActionKind.QuickFix,
                            uri,
                            [
                                text_edit(lines, e, self.encoding)
                                for e in native_edits(text, edits[1])
                            ],
                            diagnostic,
                            preferred=True,
                        )
                    )
                if (finding.code, placed.line) not in suppressed:
                    suppressed.add((finding.code, placed.line))
                    edit = suppression_edit(program.parts[part].text, placed.line, finding.code)
                    actions.append(
                        self.action(
                            f"Suppress {finding.code} on this line",
                            types.CodeActionKind.QuickFix,
                            uri,
                            [text_edit(lines, edit, self.encoding)],
                            diagnostic,
                        )
                    )
        if kind_wanted(FIX_ALL_KIND, _kinds(only)):
            if self.resolve_fix_all:
                plan = self.plan_for(program, job)
                if any(f.fix is not None for f in plan.findings):
                    action = types.CodeAction(
                        title="Fix all evallint findings",
                        kind=FIX_ALL_KIND,
                        data={"uri": uri, "text_hash": hash(program.text)},
                    )
                    actions.append(action)
            else:
                fix_all = self.fix_all_action(program, uri, job)
                if fix_all is not None:
                    actions.append(fix_all)
        return actions

    def fix_all_action(
        self, program: Program, uri: str, job: fixes.Job
    ) -> Optional[types.CodeAction]:
        plan = self.plan_for(program, job)
        config = self.config_for(program.path)
        texts = fixes.fix_all(plan, self.linter_for(program, config, True), job)
        changes = {
            part.uri: line_edits(part.text, new, self.encoding)
            for part, new in zip(program.parts, texts)
            if new != part.text
        }
        if not changes:
            return None
        return types.CodeAction(
            title="Fix all evallint findings",
            kind=FIX_ALL_KIND,
            edit=types.WorkspaceEdit(changes=changes),
        )

    async def resolve(self, action: types.CodeAction) -> types.CodeAction:
        """Effect: the "Fix all" edit, computed only when the client picks the action."""
        data = action.data if isinstance(action.data, dict) else {}
        uri = data.get("uri")
        if not isinstance(uri, str):
            return action
        program = self.program_of(uri)
        job = fixes.Job(self.idle)
        self.jobs.setdefault(program.uri, set()).add(job)
        try:
            resolved = await asyncio.get_running_loop().run_in_executor(
                self.fixer, self.fix_all_action, program, uri, job
            )
        except fixes.Cancelled:
            return action
        finally:
            job.cancel()
            self.jobs.get(program.uri, set()).discard(job)
        if resolved is not None:
            action.edit = resolved.edit
        return action

    @staticmethod
    def action(
        title: str,
        kind: str,
        uri: str,
        edits: list[types.TextEdit],
        diagnostic: Optional[types.Diagnostic] = None,
        *,
        preferred: bool = False,
    ) -> types.CodeAction:
        return types.CodeAction(
            title=title,
            kind=kind,
            diagnostics=[diagnostic] if diagnostic else None,
            is_preferred=preferred or None,
            edit=types.WorkspaceEdit(changes={uri: edits}),
        )


def _kinds(only: Optional[Any]) -> Optional[list[str]]:
    return (
        None
        if only is None
        else [str(kind.value if hasattr(kind, "value") else kind) for kind in only]
    )
