"""Names to qualified names: `import torch as T`, `from torch import no_grad`, `nn.X`.

A light replacement for LibCST's QualifiedNameProvider: it reads only import statements
(module level and function level alike), so it costs nothing on files without them.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence, cast

import libcst as cst


def dotted_name(node: cst.BaseExpression) -> Optional[str]:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if type(node) is cst.Name:  # most calls: no list to build and join
        return node.value
    parts: list[str] = []
    while type(node) is cst.Attribute:  # exact types: isinstance on LibCST's ABCs is slow
        parts.append(node.attr.value)
        node = node.value
    if type(node) is cst.Name:
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


STANDARD_LIBRARY: frozenset[str] = frozenset(
    getattr(sys, "stdlib_module_names", ())  # Python 3.10+
    or [
        "abc",
        "argparse",
        "array",
        "ast",
        "asyncio",
        "base64",
        "bisect",
        "builtins",
        "collections",
        "concurrent",
        "contextlib",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "functools",
        "gc",
        "glob",
        "hashlib",
        "heapq",
        "importlib",
        "inspect",
        "io",
        "itertools",
        "json",
        "logging",
        "math",
        "multiprocessing",
        "operator",
        "os",
        "pathlib",
        "pickle",
        "platform",
        "pprint",
        "queue",
        "random",
        "re",
        "shutil",
        "signal",
        "socket",
        "sqlite3",
        "statistics",
        "string",
        "struct",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "timeit",
        "types",
        "typing",
        "unittest",
        "urllib",
        "uuid",
        "warnings",
        "weakref",
        "zipfile",
    ]
)
"""Top-level modules of Python's standard library (on 3.9, the common ones)."""

PASS_THROUGH_LIBRARY = frozenset(
    {"builtins", "copy", "pickle", "shelve", "marshal", "functools", "operator", "importlib"}
    | {"typing", "contextlib", "weakref", "gc", "inspect", "types", "abc", "multiprocessing"}
    | {"concurrent", "threading", "queue", "asyncio"}
)
"""Standard-library modules whose calls can hand back an object they were given, stored or
unpickled (`copy.deepcopy(model)`, `pickle.load(f)`, `typing.cast(nn.Module, m)`, a queue's
`get()`): what they return may be a torch module. Every other standard-library call builds
something of its own (`namedtuple(...)`, `json.load(f)`, `logging.getLogger(...)`)."""


def _import_alias_name(node: cst.BaseExpression) -> str:
    name = dotted_name(node)
    return name or ""


class ImportTable:
    """Local name -> the dotted name it was imported as."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self.modules_from: dict[str, str] = {}
        """Local name -> module it was imported from, for names of the project's own files."""
        self.star_modules: list[str] = []
        """Modules imported with `from module import *` (relative dots kept), in order: a
        name bound nowhere else may come from one of them."""

    def add(self, statement: cst.Import | cst.ImportFrom) -> None:
        if type(statement) is cst.Import:
            for alias in statement.names:
                asname = (
                    alias.asname.name.value
                    if alias.asname is not None and type(alias.asname.name) is cst.Name
                    else None
                )
                self.bind_import(_import_alias_name(alias.name), asname)
            return
        statement = cast(cst.ImportFrom, statement)
        if type(statement.names) is cst.ImportStar:
            module = _import_alias_name(statement.module) if statement.module is not None else ""
            star = "." * len(statement.relative) + module
            if star.strip(".") and star not in self.star_modules:
                self.star_modules.append(star)
            return
        names = cast("Sequence[cst.ImportAlias]", statement.names)
        module = _import_alias_name(statement.module) if statement.module is not None else ""
        for alias in names:
            asname = (
                alias.asname.name.value
                if alias.asname is not None and type(alias.asname.name) is cst.Name
                else None
            )
            self.bind_from(module, len(statement.relative), _import_alias_name(alias.name), asname)

    def bind_import(self, full: str, asname: Optional[str]) -> None:
        """`import full` or `import full as asname`."""
        if asname is not None:
            self._names[asname] = full
        else:
            head = full.split(".")[0]
            self._names[head] = head

    def bind_from(self, module: str, dots: int, name: str, asname: Optional[str]) -> None:
        """`from [dots]module import name [as asname]`."""
        local = asname or name
        self._names[local] = f"{module}.{name}" if module else name
        self.modules_from[local] = "." * dots + module

    def imports_nothing(self) -> bool:
        """The file has no import at all (nothing in it comes from torch or a library)."""
        return not self._names and not self.star_modules

    def qualify(self, node: cst.BaseExpression) -> Optional[str]:
        """The dotted name with its head replaced by what it was imported as."""
        if type(node) is cst.Name:  # most calls: `qualify_name` of a name without a dot
            target = self._names.get(node.value)
            return node.value if target is None else target
        name = dotted_name(node)
        return self.qualify_name(name) if name is not None else None

    def qualify_name(self, name: str) -> str:
        """`qualify` for a dotted name already read from some syntax tree."""
        head, _, rest = name.partition(".")
        target = self._names.get(head)
        if target is None:
            return name
        return f"{target}.{rest}" if rest else target

    def module_path(self, local: str) -> str:
        """The module a local name refers to, relative dots kept: `from . import engine` -> `.engine`."""
        target = self._names.get(local, local)
        if local in self.modules_from:
            base = self.modules_from[local]
            name = target.split(".")[-1]
            return f"{base}{name}" if base.endswith(".") or not base else f"{base}.{name}"
        return target

    def module_of_class(self, name: str) -> Optional[str]:
        """The module a class name used as a base comes from: `Solver` after `from pkg.base
        import Solver`, `single.Solver` after `import pkg.single as single`, or
        `pkg.single.Solver` after `import pkg.single`."""
        local = name.split(".")[-1]
        if local in self.modules_from:
            return self.modules_from[local]
        head, _, _ = name.rpartition(".")
        first = head.split(".")[0]
        if not head or not self.is_imported(first):
            return None
        return self.module_path(first) + head[len(first) :]

    def local_name_of(self, qualified: str) -> Optional[str]:
        """The local name bound to `qualified` (`T` after `import torch as T`), if any."""
        for local, target in self._names.items():
            if target == qualified:
                return local
        return None

    def is_imported(self, local: str) -> bool:
        return local in self._names

    def key(self) -> tuple:
        """Everything the table answers from: equal keys, equal answers."""
        return (
            tuple(self._names.items()),
            tuple(self.modules_from.items()),
            tuple(self.star_modules),
        )


def collect_imports(module: cst.Module) -> ImportTable:
    """Read every import statement, wherever it is, without a generic walk: only the
    statement lists of module, classes, functions and compound blocks are visited."""
    table = ImportTable()
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        body = getattr(node, "body", None)
        if isinstance(body, (list, tuple)):
            for statement in body:
                if type(statement) is cst.SimpleStatementLine:
                    for small in statement.body:
                        if type(small) in (cst.Import, cst.ImportFrom):
                            table.add(cast("cst.Import | cst.ImportFrom", small))
                else:
                    stack.append(statement)
        elif isinstance(body, cst.BaseSuite):
            stack.append(body)
        for attr in ("orelse", "handlers", "finalbody"):
            extra = getattr(node, attr, None)
            if isinstance(extra, (list, tuple)):
                stack.extend(extra)
            elif extra is not None and isinstance(extra, cst.CSTNode):
                stack.append(extra)
    return table


def assigned_pairs(assign: cst.Assign) -> list[tuple[Optional[str], Optional[cst.Call]]]:
    """Each name an assignment binds with the call that builds it, when one does: `model =
    Net()`, and `gen, disc = Generator(), Discriminator()` element by element; `model, opt =
    build()` binds names whose calls are unknown."""
    value = assign.value
    pairs: list[tuple[Optional[str], Optional[cst.Call]]] = []
    for target in assign.targets:
        names = target.target
        if type(names) in (cst.Tuple, cst.List):
            elements = [e.value for e in names.elements]  # type: ignore[attr-defined]
            values = (
                [e.value for e in value.elements]  # type: ignore[attr-defined]
                if type(value) in (cst.Tuple, cst.List) and len(value.elements) == len(elements)  # type: ignore[attr-defined]
                else [None] * len(elements)
            )
            for element, built in zip(elements, values):
                if type(element) is cst.Name:
                    pairs.append((element.value, built if type(built) is cst.Call else None))
            continue
        pairs.append((dotted_name(names), value if type(value) is cst.Call else None))
    return pairs


def class_of_import(imports: ImportTable, name: str) -> Optional[tuple[str, str]]:
    """The module and class a name of another file stands for: `mod.Cls` after `import mod`
    (or `from pkg import mod`), `Cls` after `from mod import Cls` (as an alias too)."""
    head, _, attr = name.partition(".")
    if attr and "." not in attr and imports.is_imported(head):
        return imports.module_path(head), attr
    if not attr and head in imports.modules_from:
        return imports.modules_from[head], (imports.qualify_name(head) or head).split(".")[-1]
    return None


def chain_receiver(expr: cst.BaseExpression, methods: frozenset[str]) -> cst.BaseExpression:
    """`net.to(device).cuda()` -> `net`: the object a chain of calls of `methods` (methods
    that return the object they are called on) starts from; `expr` itself when it is none."""
    while (
        type(expr) is cst.Call
        and type(expr.func) is cst.Attribute
        and expr.func.attr.value in methods
    ):
        expr = expr.func.value
    return expr


def unwrap_enumerate(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """`enumerate(X)` -> X (what the loop walks); any other iterable as it is."""
    if (
        type(iterable) is cst.Call
        and type(iterable.func) is cst.Name
        and iterable.func.value == "enumerate"
        and iterable.args
    ):
        return iterable.args[0].value
    return iterable
