"""The chain of base classes of a project class, read across the project's files: whether
the class is an `nn.Module` is decided where its chain ends, not by its name.

`WhitespaceEncoder(DelimiterEncoder)` -> `StaticTokenizerEncoder` -> `TextEncoder` ->
`Encoder(object)`, each in its own file of the same package (re-exported by the package's
`__init__.py`): the chain ends in `object`, so the class is no module however it is named.
Part of `ProjectIndex` (a mixin): the tables are the index's, kept for the lint and cleared
with it. Each file is read with CPython's parser (its classes, their bases, its imports), once.
"""

from __future__ import annotations

import ast
import builtins
import enum
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

from evallint.analysis.project_files import small_text
from evallint.analysis.scope import class_kind
from evallint.analysis.symbols import STANDARD_LIBRARY, ImportTable, class_of_import, dotted_name
from evallint.analysis.vocabulary import MODULE_BASES
from evallint.analysis.walk import ast_statements
from evallint.source.parse import shared_python_tree
from evallint.torch_facts import LIBRARY_FACTORIES

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo


MAX_CHAIN_DEPTH = 8
"""Base classes (and re-exports) followed from one class: deeper chains stay unknown."""


class Chain(enum.Enum):
    """Where the base chain of a class ends."""

    MODULE = "module"
    """Some base is `nn.Module` (or a torch.nn layer, a Lightning module, a model class of a
    known model library)."""
    PLAIN = "plain"
    """Every base ends in `object` or a standard-library class: no module."""
    OUTSIDE = "outside"
    """Some base is a class of a package outside the project and torch, the others plain:
    not a module by its name; by its use (`.parameters()`, `.eval()`) it may be one."""
    UNKNOWN = "unknown"
    """A base that cannot be read (a star import, a computed base, a chain too deep)."""


def combined(kinds: list[Chain]) -> Chain:
    """The chain of a class from the chains of its bases."""
    for kind in (Chain.MODULE, Chain.UNKNOWN, Chain.OUTSIDE):
        if kind in kinds:
            return kind
    return Chain.PLAIN


def outside_kind(qualified: str) -> Chain:
    """A base that is no class of the project, by its qualified name."""
    if not qualified or qualified.startswith("."):
        return Chain.UNKNOWN
    last = qualified.split(".")[-1]
    root = qualified.split(".")[0]
    if qualified in MODULE_BASES or qualified.endswith("nn.Module"):
        return Chain.MODULE
    if qualified.startswith("torch.nn.") and last[:1].isupper():
        return Chain.MODULE  # a torch.nn layer subclassed
    if class_kind((qualified,), {})[0] or any(qualified.startswith(p) for p in LIBRARY_FACTORIES):
        return Chain.MODULE  # a Lightning module, a torchvision or timm model class
    if root == "torch":
        return Chain.UNKNOWN  # `torch.jit.ScriptModule` is one, `Dataset` is not: not read
    if "." not in qualified:
        return (
            Chain.PLAIN if isinstance(getattr(builtins, qualified, None), type) else Chain.UNKNOWN
        )
    if root in STANDARD_LIBRARY:
        return Chain.PLAIN  # `abc.ABC`, `typing.Generic`, `enum.Enum`
    return Chain.OUTSIDE


class FileClasses:
    """A project file's classes with their base expressions, and its imports."""

    __slots__ = ("bases", "imports", "methods")

    def __init__(self, source: str) -> None:
        self.bases: dict[str, list[ast.expr]] = {}
        self.methods: dict[str, frozenset[str]] = {}
        self.imports = ImportTable()
        try:
            tree = shared_python_tree(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        for node in ast_statements(tree):  # imports are statements
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports.bind_import(alias.name, alias.asname)
            elif isinstance(node, ast.ImportFrom):
                if any(alias.name == "*" for alias in node.names):
                    star = "." * node.level + (node.module or "")
                    if star.strip(".") and star not in self.imports.star_modules:
                        self.imports.star_modules.append(star)
                    continue
                for alias in node.names:
                    self.imports.bind_from(node.module or "", node.level, alias.name, alias.asname)
        self._visit(tree.body)

    def _visit(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.ClassDef):
                self.bases[statement.name] = list(statement.bases)
                self.methods[statement.name] = frozenset(
                    item.name
                    for item in statement.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                )
            elif isinstance(statement, ast.If):
                self._visit(statement.body)
                self._visit(statement.orelse)
            elif isinstance(statement, ast.Try):
                self._visit(statement.body)


def _ast_dotted(expr: ast.expr) -> Optional[str]:
    if isinstance(expr, ast.Subscript):
        expr = expr.value  # `Generic[T]`, `Base[Config]`: still that class
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return ".".join(reversed(parts))


class ClassChains:
    """Part of `ProjectIndex`: where the base chains of project classes end."""

    # set by ProjectIndex.__init__
    _chain_files: dict[Path, FileClasses]
    _chains: dict[tuple[Path, str], Chain]
    _dependencies: dict[str, set[str]]
    # methods of ProjectIndex
    _locate: Callable[[str, str], Optional[Path]]

    def class_chain(
        self, importer: str, module: str, name: str, depth: int = MAX_CHAIN_DEPTH
    ) -> Chain:
        """Where the chain of class `name`, imported by `importer` from `module`, ends. A
        module outside the project is judged by the qualified name."""
        located = self._locate(importer, module)
        if located is None:
            return outside_kind(f"{module}.{name}" if module else name)
        if depth <= 0:
            return Chain.UNKNOWN
        self._dependencies.setdefault(importer, set()).add(str(located))
        return self._chain_in(located.resolve(), name, depth - 1)

    def _chain_table(self, path: Path) -> FileClasses:
        table = self._chain_files.get(path)
        if table is None:
            table = self._chain_files[path] = FileClasses(small_text(path))
        return table

    def _chain_in(self, path: Path, name: str, depth: int) -> Chain:
        key = (path, name)
        found = self._chains.get(key)
        if found is not None:
            return found
        self._chains[key] = Chain.UNKNOWN  # while in progress (a cycle of imports)
        table = self._chain_table(path)
        if name in table.bases:
            found = combined(
                [self._base_chain(path, table, base, depth) for base in table.bases[name]]
            )
        elif name in table.imports.modules_from:  # a re-export: `from .text import Encoder`
            original = table.imports.qualify_name(name).split(".")[-1]
            found = self.class_chain(str(path), table.imports.modules_from[name], original, depth)
        else:
            found = Chain.UNKNOWN
            for star in table.imports.star_modules:
                found = self.class_chain(str(path), star, name, depth)
                if found is not Chain.UNKNOWN:
                    break
        self._chains[key] = found
        return found

    def _base_chain(self, path: Path, table: FileClasses, base: ast.expr, depth: int) -> Chain:
        dotted = _ast_dotted(base)
        if dotted is None:
            return Chain.UNKNOWN
        if dotted in table.bases and dotted != "object":
            return self._chain_in(path, dotted, depth - 1) if depth > 0 else Chain.UNKNOWN
        return self._named_chain(str(path), table.imports, dotted, depth)

    def _named_chain(self, importer: str, imports: ImportTable, dotted: str, depth: int) -> Chain:
        found = class_of_import(imports, dotted)
        if found is not None:
            return self.class_chain(importer, found[0], found[1], depth)
        if "." not in dotted and imports.star_modules and not hasattr(builtins, dotted):
            return Chain.UNKNOWN  # maybe a name of a starred module
        return outside_kind(imports.qualify_name(dotted))

    def local_class_chain(
        self, file: FileAnalysis, info: ClassInfo, depth: int = MAX_CHAIN_DEPTH
    ) -> Chain:
        """The chain of a class of the linted file whose bases are imported (a class of
        the file deriving only from the file's classes and `object` needs no chain)."""
        if info.is_module:
            return Chain.MODULE
        kinds = []
        for arg in info.node.bases:
            value = arg.value.value if type(arg.value) is cst.Subscript else arg.value
            dotted = dotted_name(value)
            if dotted is None:
                kinds.append(Chain.UNKNOWN)
            elif dotted in file.classes and dotted != info.name:
                inner = file.classes[dotted]
                kinds.append(
                    self.local_class_chain(file, inner, depth - 1) if depth > 0 else Chain.UNKNOWN
                )
            else:
                kinds.append(self._named_chain(file.path, file.imports, dotted, depth))
        return combined(kinds)

    def class_defines_method(
        self, importer: str, module: str, name: str, method: str, depth: int = MAX_CHAIN_DEPTH
    ) -> bool:
        """Whether class `name`, imported by `importer` from `module`, or a base class of it
        in the project defines `method`, re-exports and files without torch text followed
        (`class ADDA(TrainerXU)` with `TrainerXU` re-exported by `dassl.engine`, its base's
        base defining `register_model`): `self.register_model(...)` is a method call."""
        located = self._locate(importer, module)
        if located is None or depth <= 0:
            return False
        self._dependencies.setdefault(importer, set()).add(str(located))
        found = self._definition(located.resolve(), name, depth - 1)
        return found is not None and self._defines(*found, method, depth - 1)

    def _defines(
        self, path: Path, table: FileClasses, defined: str, method: str, depth: int
    ) -> bool:
        if method in table.methods.get(defined, ()):
            return True
        for base in table.bases[defined] if depth > 0 else ():
            dotted = _ast_dotted(base)
            if dotted is None:
                continue
            if dotted in table.bases and dotted != defined:
                if self._defines(path, table, dotted, method, depth - 1):
                    return True
                continue
            imported = class_of_import(table.imports, dotted)
            if imported is not None and self.class_defines_method(
                str(path), imported[0], imported[1], method, depth - 1
            ):
                return True
        return False

    def _definition(
        self, path: Path, name: str, depth: int
    ) -> Optional[tuple[Path, FileClasses, str]]:
        """The file and table that define class `name` as seen from `path` (re-exports
        followed)."""
        table = self._chain_table(path)
        if name in table.bases:
            return path, table, name
        if depth <= 0:
            return None
        modules = list(table.imports.star_modules)
        original = name
        if name in table.imports.modules_from:
            modules = [table.imports.modules_from[name]]
            original = table.imports.qualify_name(name).split(".")[-1]
        for module in modules:
            located = self._locate(str(path), module)
            if located is not None:
                found = self._definition(located.resolve(), original, depth - 1)
                if found is not None:
                    return found
        return None
