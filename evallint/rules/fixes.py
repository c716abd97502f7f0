"""Fixes as text edits, built only when asked for (`lint_source(..., fixes=True)`).

Insertions are computed from positions and the line's own indentation; wrapping a
statement in `with torch.no_grad():` is a LibCST transformation (so multi-line strings and
comments inside keep their text), turned into an edit of the statement's lines.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModuleFacts
from evallint.diagnostics import Edit, Fix
from evallint.source.text import split_lines

COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_COMPOUND = (
    cst.If,
    cst.For,
    cst.While,
    cst.With,
    cst.Try,
    cst.FunctionDef,
    cst.ClassDef,
    cst.Match,
)


class FixBuilder:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.lines = split_lines(facts.source)

    # -- locating ------------------------------------------------------------------------------
    def _span(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        return self.facts.unit.locate(node)

    def enclosing_statement(
        self, node: cst.CSTNode, *, loop_only: bool = False
    ) -> Optional[cst.CSTNode]:
        """The innermost statement (or loop) whose span contains `node`, found by positions."""
        target = self._span(node)
        best: Optional[cst.CSTNode] = None
        statements = list(self.facts.tree.body) if self.facts.tree else []
        while statements:
            statement = statements.pop()
            line, column, end_line, end_column = self._span(statement)
            if (line, column) > target[:2] or (end_line, end_column) < target[2:]:
                continue
            if not loop_only or isinstance(statement, (cst.For, cst.While)):
                best = statement
            statements = list(_child_statements(statement))
        return best

    def _indent(self, line: int) -> str:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return text[: len(text) - len(text.lstrip(" \t"))]

    def _newline(self) -> str:
        first = self.lines[0] if self.lines else "\n"
        return "\r\n" if first.endswith("\r\n") else "\n"

    # -- edits ---------------------------------------------------------------------------------
    def insert_before(self, statement: cst.CSTNode, code: str, description: str) -> Fix:
        line = self._span(statement)[0]
        return Fix(
            description, (Edit(line, 1, line, 1, f"{self._indent(line)}{code}{self._newline()}"),)
        )

    def insert_at_body_start(
        self, compound: cst.CSTNode, code: str, description: str
    ) -> Optional[Fix]:
        body = getattr(compound, "body", None)
        if not isinstance(body, cst.IndentedBlock) or not body.body:
            return None
        first = body.body[0]
        if isinstance(compound, cst.FunctionDef) and _is_docstring(first) and len(body.body) > 1:
            first = body.body[1]
        elif isinstance(compound, cst.FunctionDef) and _is_docstring(first):
            return None
        return self.insert_before(first, code, description)

    def wrap_in_no_grad(self, statement: cst.CSTNode, description: str) -> Optional[Fix]:
        torch_name, no_grad_name = self.facts.torch_names
        manager = (
            f"{torch_name}.no_grad()"
            if torch_name
            else (f"{no_grad_name}()" if no_grad_name else "torch.no_grad()")
        )
        if not isinstance(statement, cst.BaseStatement) or self.facts.tree is None:
            return None
        wrapped = cst.With(
            items=[cst.WithItem(cst.parse_expression(manager))],
            body=cst.IndentedBlock(body=[statement.with_changes(leading_lines=())]),
            leading_lines=statement.leading_lines
            if isinstance(statement, (cst.SimpleStatementLine,) + _COMPOUND)
            else (),
        )
        line, _, end_line, _ = self._span(statement)
        indent = self._indent(line)
        code = self.facts.tree.code_for_node(wrapped.with_changes(leading_lines=()))
        text = "".join(
            indent + row if row.strip() else row for row in code.splitlines(keepends=True)
        )
        end_text = self.lines[end_line - 1] if end_line <= len(self.lines) else ""
        edits = [Edit(line, 1, end_line, len(end_text.rstrip("\r\n")) + 1, text.rstrip("\r\n"))]
        if torch_name is None and no_grad_name is None:
            edits.insert(0, self._import_torch())
        return Fix(description, tuple(edits))

    def add_decorator(self, function: cst.FunctionDef, description: str) -> Optional[Fix]:
        torch_name, no_grad_name = self.facts.torch_names
        decorator = (
            f"@{torch_name}.no_grad()"
            if torch_name
            else (f"@{no_grad_name}()" if no_grad_name else "@torch.no_grad()")
        )
        first = function.decorators[0] if function.decorators else function
        line = self._span(first)[0]
        edits = [Edit(line, 1, line, 1, f"{self._indent(line)}{decorator}{self._newline()}")]
        if torch_name is None and no_grad_name is None:
            edits.insert(0, self._import_torch())
        return Fix(description, tuple(edits))

    def _import_torch(self) -> Edit:
        """`import torch` after the module docstring and `__future__` imports."""
        tree = self.facts.tree
        line = 1
        for statement in tree.body if tree else ():
            if _is_docstring(statement) or _is_future_import(statement):
                line = self._span(statement)[2] + 1
                continue
            break
        return Edit(line, 1, line, 1, f"import torch{self._newline()}")


def _child_statements(statement: cst.CSTNode) -> list[cst.CSTNode]:
    children: list[cst.CSTNode] = []
    for attr in ("body", "orelse", "finalbody"):
        value = getattr(statement, attr, None)
        if isinstance(value, (cst.Else, cst.Finally)):
            value = value.body
        if isinstance(value, cst.If):
            children.append(value)
        elif isinstance(value, cst.IndentedBlock):
            children.extend(value.body)
    for handler in getattr(statement, "handlers", ()) or ():
        if isinstance(handler.body, cst.IndentedBlock):
            children.extend(handler.body.body)
    for case in getattr(statement, "cases", ()) or ():
        if isinstance(case.body, cst.IndentedBlock):
            children.extend(case.body.body)
    return children


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_future_import(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and any(
        isinstance(s, cst.ImportFrom)
        and isinstance(s.module, cst.Name)
        and s.module.value == "__future__"
        for s in statement.body
    )
