"""Overrides of a method in the project's subclasses: what `self._inference(batch)` runs when
the class that calls it leaves the method abstract.

A base class's `fit()` calls `self.step(batch)`, whose loss comes from `self._inference(batch)`,
a method the base only declares (`raise NotImplementedError`) and every subclass defines
(`return self.model(batch.x)`), often in its own file. Dispatch picks one of those at run
time, so a call on `self` of the base is read as any of them: the union of what their returns
carry. Part of `ProjectIndex` (a mixin): the table is the index's, kept for the lint. Files
are found by their text (a definition of the method and the base's name) before any analysis.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.source.word_pattern import WordPattern

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo, FunctionInfo
    from evallint.analysis.summaries import Summary

MAX_OVERRIDES = 8
"""Overrides read per (base class, method): enough for a family of solvers or agents."""


class Overrides:
    """Part of `ProjectIndex` (see project.py)."""

    _overrides: dict[tuple[Path, str, str], list[tuple[FileAnalysis, FunctionInfo]]]

    def overrides(
        self, analysis: FileAnalysis, owner: str, method: str
    ) -> list[tuple[FileAnalysis, FunctionInfo]]:
        """The definitions of `method` in the classes of the project (this file first) that
        derive from the class `owner` of `analysis` and define it themselves."""
        found = [
            (analysis, info)
            for cls in analysis.classes.values()
            if cls.name != owner and _derives(analysis, cls, owner)
            for info in (cls.methods.get(method),)
            if info is not None
        ]
        if analysis.path.startswith("<"):
            return found[:MAX_OVERRIDES]
        target, root = self.root_of(analysis.path)  # type: ignore[attr-defined]
        table = self.__dict__.setdefault("_overrides", {})
        key = (target, owner, method)
        if key not in table:
            table[key] = []  # recursion: an override's file asking back finds none yet
            table[key] = self._project_overrides(target, root, owner, method)
        return (found + table[key])[:MAX_OVERRIDES]

    def _project_overrides(
        self, target: Path, root: Path, owner: str, method: str
    ) -> list[tuple[FileAnalysis, FunctionInfo]]:
        defines = WordPattern(rf"def\s+{re.escape(method)}\s*\(")  # \bdef ...
        derives = WordPattern(rf"class\s+\w+\s*\([^)]*\b{re.escape(owner)}\b")  # \bclass ...
        found: list[tuple[FileAnalysis, FunctionInfo]] = []
        for candidate in self.files_under(root):  # type: ignore[attr-defined]
            if candidate == target:
                continue
            code = self._code_of(candidate)  # type: ignore[attr-defined]
            if not code or owner not in code or not defines.search(code):
                continue
            if not derives.search(code):
                continue
            other: Optional[FileAnalysis] = self.caller_analysis(candidate, lazy=True)  # type: ignore[attr-defined]
            if other is None:
                continue
            for cls in other.classes.values():
                info = cls.methods.get(method)
                if info is not None and _derives(other, cls, owner):
                    found.append((other, info))
                    # summarised here, before the next candidate is read and while this
                    # table entry is still empty, as when the file was analysed whole here
                    other.summary_for(info)
            if len(found) >= MAX_OVERRIDES:
                break
        return found


def _derives(analysis: FileAnalysis, cls: ClassInfo, owner: str, depth: int = 6) -> bool:
    """Whether `cls` derives from a class named `owner`, through the bases of its file."""
    for base in cls.bases:
        local = base.split(".")[-1]
        if local == owner and not base.startswith("torch."):
            return True  # (`nn.Module` is not the project's own `class Module(ABC)`)
        inner = analysis.classes.get(base)
        if inner is not None and inner is not cls and depth > 0:
            if _derives(analysis, inner, owner, depth - 1):
                return True
    return False


def dispatched_summaries(
    file: FileAnalysis, scope: Optional[FunctionInfo], call: cst.Call
) -> list[Summary]:
    """`self.X(...)` in a method of a class that leaves `X` abstract (its body only raises
    `NotImplementedError`, or is `pass` / `...` / `return None`): the summaries of the overrides of the
    project's subclasses, any of which dispatch may run; empty otherwise."""
    func = call.func
    if not (
        type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value == "self"
    ):
        return []
    owner = None
    while scope is not None and owner is None:
        owner, scope = scope.owner, scope.parent
    if owner is None or file.project is None:
        return []
    name = func.attr.value
    declared = owner.methods.get(name) or file._inherited_method(owner, name)
    if declared is None or not abstract_body(declared.node):
        return []
    found = []
    for analysis, info in file.project.overrides(file, owner.name, name):
        summary = analysis.summary_for(info)
        if summary is not None:
            found.append(summary)
    return found


def abstract_body(function: cst.FunctionDef) -> bool:
    """A body of only a docstring, `pass`, `...`, `return` / `return None` and `raise
    NotImplementedError(...)`."""
    body = function.body
    if type(body) is not cst.IndentedBlock:
        return False
    for statement in body.body:
        if type(statement) is not cst.SimpleStatementLine:
            return False
        for small in statement.body:
            if type(small) is cst.Pass:
                continue
            if type(small) is cst.Expr and type(small.value) in (
                cst.SimpleString,
                cst.ConcatenatedString,
                cst.Ellipsis,
            ):
                continue
            if type(small) is cst.Return and (
                small.value is None
                or (type(small.value) is cst.Name and small.value.value == "None")
            ):
                continue  # a template that returns nothing (`return None`): a placeholder
            if type(small) is cst.Raise and small.exc is not None:
                raised = small.exc.func if type(small.exc) is cst.Call else small.exc
                if type(raised) is cst.Name and raised.value == "NotImplementedError":
                    continue
            return False
    return True
