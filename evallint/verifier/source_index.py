"""An index of one parsed source file, and the small LibCST helpers the extractor uses.

`SourceFile` parses a file once and records its imports, classes, functions, assignments and
calls, so the extractor (extract.py) and the site readers (sites.py) can look them up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from evallint.verifier.layer_spec import UNKNOWN

NOT_MODULES = re.compile(
    r"^(torch\.(?!nn\.)\w+|torch\.nn\.(Parameter|init\..*|functional\..*)|math\..*|numpy\..*|np\..*|"
    r"(int|float|str|bool|len|range|list|dict|tuple|set|max|min|sum|abs|round|getattr|super|print|isinstance))$"
)
"""Calls in `__init__` that build values other than modules; such assignments are skipped."""


@dataclass
class Assignment:
    target: str
    value: cst.BaseExpression
    line: int
    func: Optional[cst.FunctionDef]
    guards: tuple[tuple[cst.BaseExpression, bool], ...] = ()
    """The `if` tests around the statement inside its function, outermost first, each with
    the branch taken (True: the body, False: the `else`/`elif` side)."""


class SourceFile:
    """One parsed source file with what extraction looks up in it."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
        self.positions: Any = self.wrapper.resolve(PositionProvider)
        self.imports: dict[str, tuple[str, int]] = {}
        self.classes: dict[str, cst.ClassDef] = {}
        self.functions: dict[str, list[cst.FunctionDef]] = {}
        self.assignments: list[Assignment] = []
        self.extensions: list[Assignment] = []
        """`target += value` statements (a list grown in place: `layers += [nn.Linear(...)]`)."""
        self.calls: list[tuple[cst.Call, Optional[cst.FunctionDef]]] = []
        self.call_guards: dict[int, tuple[tuple[cst.BaseExpression, bool], ...]] = {}
        """The `if` tests around a call (by `id` of the call node), as for an Assignment."""
        self.wrapper.module.visit(_Collector(self))

    def line(self, node: cst.CSTNode) -> int:
        pos: CodeRange = self.positions[node]
        return pos.start.line

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        pos: CodeRange = self.positions[node]
        return pos.start.line, pos.end.line

    def code(self, node: cst.CSTNode) -> str:
        return self.wrapper.module.code_for_node(node)

    def qualify(self, dotted: str) -> str:
        """Map a dotted name through the file's imports: `nn.Dropout` → `torch.nn.Dropout`."""
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            full = self.imports[head][0]
        elif head == "nn":
            full = "torch.nn"
        elif head == "F":
            full = "torch.nn.functional"
        else:
            return dotted
        return f"{full}.{rest}" if rest else full

    def enclosing_function(self, line: int) -> Optional[cst.FunctionDef]:
        best: Optional[cst.FunctionDef] = None
        for defs in self.functions.values():
            for func in defs:
                start, end = self.span(func)
                if start <= line <= end and (best is None or start >= self.span(best)[0]):
                    best = func
        return best

    def class_of(self, func: Optional[cst.FunctionDef]) -> Optional[cst.ClassDef]:
        if func is None:
            return None
        start = self.span(func)[0]
        best: Optional[cst.ClassDef] = None
        for cls in self.classes.values():
            c_start, c_end = self.span(cls)
            if c_start <= start <= c_end and (best is None or c_start >= self.span(best)[0]):
                best = cls
        return best


class _Collector(cst.CSTVisitor):
    """One pass that indexes imports, classes, functions, assignments and calls."""

    def __init__(self, file: SourceFile) -> None:
        super().__init__()
        self.file = file
        self.funcs: list[cst.FunctionDef] = []
        self.guards: list[tuple[cst.BaseExpression, bool]] = []
        self.saved: list[list[tuple[cst.BaseExpression, bool]]] = []

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted_name(alias.name)
            if alias.asname is not None:
                local = dotted_name(alias.asname.name)
                self.file.imports[local] = (name, 0)
            else:
                head = name.split(".")[0]
                self.file.imports.setdefault(head, (head, 0))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module) if node.module is not None else ""
        level = len(node.relative)
        for alias in node.names:
            name = dotted_name(alias.name)
            local = dotted_name(alias.asname.name) if alias.asname is not None else name
            self.file.imports[local] = (f"{module}.{name}" if module else name, level)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.file.classes[node.name.value] = node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.file.functions.setdefault(node.name.value, []).append(node)
        self.funcs.append(node)
        self.saved.append(self.guards)
        self.guards = []  # the guards of a statement are those of its own function

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.funcs.pop()
        self.guards = self.saved.pop()

    def visit_If_body(self, node: cst.If) -> None:
        self.guards.append((node.test, True))

    def leave_If_body(self, node: cst.If) -> None:
        self.guards.pop()

    def visit_If_orelse(self, node: cst.If) -> None:
        self.guards.append((node.test, False))

    def leave_If_orelse(self, node: cst.If) -> None:
        self.guards.pop()

    def _current(self) -> Optional[cst.FunctionDef]:
        return self.funcs[-1] if self.funcs else None

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, (cst.Tuple, cst.List)):
                self._unpack(target.target, node.value)
            else:
                self._record(target.target, node.value)

    def _unpack(self, target: cst.Tuple | cst.List, value: cst.BaseExpression) -> None:
        """`a, self.net = x, y` pairs the elements; `a, self.net = build()` records
        `self.net` as `build()[1]` (the extractor reads it from what `build` returns)."""
        names = [e.value for e in target.elements]
        if any(isinstance(e, cst.StarredElement) for e in target.elements):
            return
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(names):
            for name, element in zip(names, value.elements):
                self._record(name, element.value)
        elif isinstance(value, cst.Call):
            for index, name in enumerate(names):
                text = dotted_or_none(name)
                if text is not None:
                    picked = cst.Subscript(
                        value, [cst.SubscriptElement(cst.Index(cst.Integer(str(index))))]
                    )
                    line = self.file.line(value)
                    self.file.assignments.append(
                        Assignment(text, picked, line, self._current(), tuple(self.guards))
                    )

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._record(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        text = dotted_or_none(node.target)
        if text is not None and isinstance(node.operator, cst.AddAssign):
            self.file.extensions.append(
                Assignment(
                    text,
                    node.value,
                    self.file.line(node.value),
                    self._current(),
                    tuple(self.guards),
                )
            )

    def _record(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        text = dotted_or_none(target)
        if text is not None:
            self.file.assignments.append(
                Assignment(text, value, self.file.line(value), self._current(), tuple(self.guards))
            )

    def visit_Call(self, node: cst.Call) -> None:
        self.file.calls.append((node, self._current()))
        if self.guards:
            self.file.call_guards[id(node)] = tuple(self.guards)


def dotted_name(node: cst.BaseExpression) -> str:
    text = dotted_or_none(node)
    if text is None:
        raise ValueError("not a dotted name")
    return text


def dotted_or_none(node: cst.BaseExpression) -> Optional[str]:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        inner = dotted_or_none(node.value)
        return None if inner is None else f"{inner}.{node.attr.value}"
    return None


def arith(op: cst.BaseBinaryOp, left: float, right: float) -> Any:
    try:
        if isinstance(op, cst.Add):
            return left + right
        if isinstance(op, cst.Subtract):
            return left - right
        if isinstance(op, cst.Multiply):
            return left * right
        if isinstance(op, cst.Divide):
            return left / right
        if isinstance(op, cst.FloorDivide):
            return left // right
        if isinstance(op, cst.Power):
            # 10**10**9 would take minutes and gigabytes: an absurd literal is not read
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
                if right * abs(left).bit_length() > 4096:
                    return UNKNOWN
            return left**right
    except (ZeroDivisionError, OverflowError):
        return UNKNOWN
    return UNKNOWN


def call_arg(call: cst.Call, index: int, keyword: str) -> Optional[cst.BaseExpression]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[index].value if index < len(positional) else None


def call_argument(
    call: cst.Call, name: str, params: list[str], offset: int
) -> Optional[cst.BaseExpression]:
    if name not in params:
        return None
    return call_arg(call, params.index(name) - offset, name)


def param_names(func: cst.FunctionDef) -> set[str]:
    p = func.params
    return {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)}


def positional_params(func: cst.FunctionDef) -> list[str]:
    return [x.name.value for x in (*func.params.posonly_params, *func.params.params)]


def init_of(cls: cst.ClassDef) -> Optional[cst.FunctionDef]:
    body = cls.body
    if isinstance(body, cst.IndentedBlock):
        for stmt in body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
                return stmt
    return None


def inside(file: SourceFile, func: cst.FunctionDef, cls: cst.ClassDef) -> bool:
    """Is `func` a method of `cls` itself (not of a class nested in it)?"""
    return file.class_of(func) is cls


def return_statements(func: cst.FunctionDef) -> list[cst.Return]:
    found: list[cst.Return] = []

    class _Returns(cst.CSTVisitor):
        def visit_Return(self, node: cst.Return) -> None:
            found.append(node)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is func

    func.visit(_Returns())
    return found


MODULE_ROOT_LEVELS = 6
"""How many directories above the importing file's own are tried as the root of an absolute
import (a test four levels deep imports the package from the repository root)."""


def module_files(origin: Path, module: str, level: int) -> list[Path]:
    """Candidate files for `module` imported from `origin`: relative, then the project roots."""
    parts = [p for p in module.split(".") if p]
    if level:
        base = origin.parent
        for _ in range(level - 1):
            base = base.parent
        roots = [base]
    else:
        roots = [origin.parent, *list(origin.parent.parents)[:MODULE_ROOT_LEVELS]]
    out = []
    for root in roots:
        target = root.joinpath(*parts) if parts else root
        out.extend(
            [target.with_suffix(".py") if parts else root / "__init__.py", target / "__init__.py"]
        )
    return [p for p in out if p.is_file() and p.resolve() != origin.resolve()] or [
        p for p in out if p.is_file()
    ]


def ordered_dict_values(call: cst.Call) -> list[cst.BaseExpression]:
    """The values of `OrderedDict([(k, v), ...])` / `dict(k=v)`."""
    out: list[cst.BaseExpression] = []
    for arg in call.args:
        if isinstance(arg.value, (cst.List, cst.Tuple)):
            for element in arg.value.elements:
                pair = element.value
                if isinstance(pair, cst.Tuple) and len(pair.elements) == 2:
                    out.append(pair.elements[1].value)
        elif arg.keyword is not None:
            out.append(arg.value)
    return out
