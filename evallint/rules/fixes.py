"""Fixes as text edits, built only when asked for (`lint_source(..., fixes=True)`).

Every fix is located on the LibCST tree (which statement, which block, where its strings
are) and rendered onto the source's own lines, because LibCST's code generation drops form
feeds from indentation. An inserted line takes its neighbour's indentation as Python
measures it (after the last form feed); wrapping a statement in `with torch.no_grad():`
adds one indentation unit after each line's own indentation and leaves every line that
starts inside a string literal byte for byte. The engine proves each fix before keeping it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModuleFacts
from evallint.diagnostics import Edit, Fix
from evallint.source.text import split_lines

COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_STRINGS = (cst.SimpleString, cst.FormattedString) + (
    (cst.TemplatedString,) if hasattr(cst, "TemplatedString") else ()
)


_CLAUSES = (
    cst.SimpleStatementLine,
    cst.BaseCompoundStatement,
    cst.Else,
    cst.ExceptHandler,
    cst.Finally,
) + ((cst.ExceptStarHandler, cst.MatchCase) if hasattr(cst, "MatchCase") else ())


class FixBuilder:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.lines = split_lines(facts.source)

    # -- locating ------------------------------------------------------------------------------
    def _span(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        return self.facts.unit.locate(node)

    def _containing_statements(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """The statements whose spans contain `node`, outermost first, found by positions."""
        target = self._span(node)
        statements: list[cst.CSTNode] = list(self.facts.tree.body) if self.facts.tree else []
        while statements:
            statement = statements.pop()
            line, column, end_line, end_column = self._span(statement)
            if (line, column) > target[:2] or (end_line, end_column) < target[2:]:
                continue
            yield statement
            statements = list(_child_statements(statement))

    def enclosing_statement(
        self, node: cst.CSTNode, *, loop_only: bool = False
    ) -> Optional[cst.CSTNode]:
        """The innermost statement (or loop) whose span contains `node`."""
        best: Optional[cst.CSTNode] = None
        for statement in self._containing_statements(node):
            if not loop_only or isinstance(statement, (cst.For, cst.While)):
                best = statement
        return best

    def outermost_loop(self, node: cst.CSTNode) -> Optional[cst.CSTNode]:
        """The outermost `for`/`while` loop whose span contains `node`; None outside loops."""
        for statement in self._containing_statements(node):
            if isinstance(statement, (cst.For, cst.While)):
                return statement
        return None

    def _indent(self, line: int) -> str:
        """The indentation a new line needs to stand level with `line` (form feeds dropped:
        Python counts a line's indentation from its last form feed)."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return effective_indent(leading_whitespace(text))

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
        """`with torch.no_grad():` around the statement's lines, which keep their own text:
        each line gains one indentation unit after its own indentation (tabs and form feeds
        stay), and lines that start inside a string literal are not touched at all."""
        torch_name, no_grad_name = self.facts.torch_names
        manager = (
            f"{torch_name}.no_grad()"
            if torch_name
            else (f"{no_grad_name}()" if no_grad_name else "torch.no_grad()")
        )
        if not isinstance(statement, cst.BaseStatement) or self.facts.tree is None:
            return None
        line, _, end_line, _ = self._span(statement)
        if not 0 < line <= end_line <= len(self.lines):
            return None
        first = self.lines[line - 1]
        own = leading_whitespace(first)
        if first[len(own) :].startswith(("elif", "else")):
            return None  # a clause of the statement above, not a statement of its own
        frozen, starts = self._lines_inside_strings(statement)
        unit = self._unit(starts)
        rows = [f"{own}with {manager}:{self._newline()}"]
        for number in range(line, end_line + 1):
            text = self.lines[number - 1]
            if number == line:  # a form feed stays before the new header: a page break
                rows.append(effective_indent(own) + unit + text[len(own) :])
            elif number in frozen or not text.strip():
                rows.append(text)
            else:
                indent = leading_whitespace(text)
                rows.append(indent + unit + text[len(indent) :])
        text = "".join(rows)
        end_text = self.lines[end_line - 1]
        edits = [Edit(line, 1, end_line, len(end_text.rstrip("\r\n")) + 1, text.rstrip("\r\n"))]
        if torch_name is None and no_grad_name is None:
            edits.insert(0, self._import_torch())
        return Fix(description, tuple(edits))

    def _lines_inside_strings(self, statement: cst.CSTNode) -> tuple[set[int], set[int]]:
        """Lines of `statement` that start inside a string literal (their text is data),
        and lines that start a statement or clause (their indentation is syntax)."""
        inside: set[int] = set()
        starts: set[int] = set()
        stack: list[cst.CSTNode] = [statement]
        while stack:
            node = stack.pop()
            if isinstance(node, _STRINGS):
                start, _, end, _ = self._span(node)
                inside.update(range(start + 1, end + 1))
                continue
            if isinstance(node, _CLAUSES):
                starts.add(self._span(node)[0])
            stack.extend(node.children)
        return inside, starts

    def _unit(self, starts: set[int]) -> str:
        """One more level of indentation: a tab where every statement's indentation is
        tabs (a tab appended to tabs moves each column by the same amount), else the file's
        unit of spaces. Spaces appended to tabs would be consistent for CPython but are
        rejected by LibCST's tokenizer."""
        default = self.facts.tree.default_indent if self.facts.tree is not None else "    "
        indents = [effective_indent(leading_whitespace(self.lines[n - 1])) for n in starts]
        if any("\t" in indent for indent in indents) or default == "\t":
            if all(not indent.strip("\t") for indent in indents):
                return "\t"
        return default if default and not default.strip(" ") else "    "

    def add_decorator(self, function: cst.FunctionDef, description: str) -> Optional[Fix]:
        torch_name, no_grad_name = self.facts.torch_names
        decorator = (
            f"@{torch_name}.no_grad()"
            if torch_name
            else (f"@{no_grad_name}()" if no_grad_name else "@torch.no_grad()")
        )
        # innermost, right above `def`: `@app.route(...)` then registers the wrapped function
        line = self._span(function.name)[0]
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


def leading_whitespace(text: str) -> str:
    """The indentation characters Python's tokenizer accepts: spaces, tabs, form feeds."""
    return text[: len(text) - len(text.lstrip(" \t\f"))]


def effective_indent(whitespace: str) -> str:
    """The part of an indentation Python measures: a form feed resets the column to 0."""
    return whitespace.rsplit("\f", 1)[-1]


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
