"""What a project file's classes are, read from its text before any analysis: module class or
plain class, the methods that run a forward, inherited methods of base classes in other
files. Part of `ProjectIndex` (a mixin): the tables it fills are the index's, cleared with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

from evallint.analysis.project_files import file_stamp, imported_from, small_text
from evallint.analysis.scope import collect_definitions, module_classes_of_text
from evallint.analysis.summaries import Summary
from evallint.analysis.symbols import ImportTable, collect_imports
from evallint.analysis.walk import ast_statements
from evallint.source.parse import shared_python_tree

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo


_TOP_CLASS = re.compile(r"^class[ \t]+([A-Za-z_]\w*)", re.M)


class ProjectClasses:
    """Part of `ProjectIndex`: the classes of project files, by their text."""

    # set by ProjectIndex.__init__
    _trees: dict[Path, Optional[cst.Module]]
    _module_classes: dict[Path, Optional[dict[str, Optional[bool]]]]
    _class_methods: dict[Path, dict]
    _forward_methods: dict[Path, dict[str, frozenset[str]]]
    _init_texts: dict[Path, tuple[Optional[tuple[int, int]], str]]
    _reexports: dict[tuple[Path, str], list[str]]
    _factories: dict[tuple[Path, str], tuple[Optional[tuple[int, int]], tuple]]
    _dependencies: dict[str, set[str]]
    # methods of ProjectIndex
    _locate: Callable[[str, str], Optional[Path]]
    class_defines_method: Callable[..., bool]
    _source: Callable[[str, str], Optional[tuple[Path, str]]]
    _tree: Callable[[str, str], Optional[tuple[Path, cst.Module, str]]]
    analysis: Callable[[str, str], Optional[FileAnalysis]]

    def starred_classes(self, importer: str, modules: list[str]) -> list[tuple[str, str]]:
        """(module, class name) of each class a `from module import *` of a project file
        brings in: the top-level classes of that file's text (not private ones), the first
        starred module defining a name winning, as Python's later import would not."""
        found: list[tuple[str, str]] = []
        seen: set[str] = set()
        for module in modules:
            source = self._source(importer, module)
            if source is None:
                continue
            for name in _TOP_CLASS.findall(source[1]):
                if not name.startswith("_") and name not in seen:
                    seen.add(name)
                    found.append((module, name))
        return found

    def is_module_class(self, importer: str, module: str, qualified: str) -> bool:
        """Whether an imported class subclasses nn.Module: only its definitions are read."""
        return self.class_kind(importer, module, qualified) is True

    def class_kind(
        self, importer: str, module: str, qualified: str, depth: int = 2
    ) -> Optional[bool]:
        """True: an nn.Module; None: a plain class, deriving from nothing (no module whatever
        its name says: `class GuidedModel:` holding one); False: another class, or not found.
        A package's `__init__.py` that re-exports the class is followed to its submodule."""
        name = qualified.split(".")[-1]
        located = self._locate(importer, module)
        text = ""
        if located is not None and located.name == "__init__.py":
            stamp = file_stamp(located)
            cached = self._init_texts.get(located)
            if cached is None or cached[0] != stamp:  # read once, again when edited
                cached = self._init_texts[located] = (stamp, small_text(located))
                self._reexports = {k: v for k, v in self._reexports.items() if k[0] != located}
            text = cached[1]
        if located is not None and text and depth > 0 and f"class {name}" not in text:
            self._dependencies.setdefault(importer, set()).add(str(located))
            reexported = self._reexports.get((located, name))
            if reexported is None:
                reexported = self._reexports[(located, name)] = imported_from(text, name)
            for submodule in reexported:
                # `.sub` is read from the package; `pkg.sub` as the first importer reads it
                origin = str(located) if submodule.startswith(".") else importer
                kind = self.class_kind(origin, submodule, name, depth - 1)
                if kind is not False:
                    return kind
            return False
        found = self._source(importer, module)
        if found is None:
            return False
        path, source = found
        if path not in self._module_classes:
            tree = self._trees.get(path)
            self._module_classes[path] = (
                _module_classes_of_tree(tree)
                if tree is not None
                else module_classes_of_text(source)
            )
        classes = self._module_classes[path]
        if classes is None:  # newer syntax than this Python reads: LibCST's parse decides
            parsed = self._tree(importer, module)
            classes = self._module_classes[path] = (
                _module_classes_of_tree(parsed[1]) if parsed else {}
            )
        return classes.get(name, False)

    def forward_methods(
        self, importer: str, module: str, qualified: str, owner: str = "", depth: int = 2
    ) -> frozenset[str]:
        """The methods of an imported project class that run its forward (read from their
        bodies, see forward_methods.py); with `owner`, the file-level key `qualified`
        (GRAD_FREE, EVAL_SWITCHED) of the file that defines class `owner`. A package's
        `__init__.py` that re-exports the class is followed to its submodule."""
        from evallint.analysis.forward_methods import forward_methods_of_text

        name = owner or qualified.split(".")[-1]
        located = self._locate(importer, module)
        if located is not None and located.name == "__init__.py" and depth > 0:
            text = small_text(located)  # a re-exporting package (no torch text: not "read")
            if name and f"class {name}" not in text:
                for submodule in imported_from(text, name):
                    origin = str(located) if submodule.startswith(".") else importer
                    methods = self.forward_methods(origin, submodule, qualified, owner, depth - 1)
                    if methods:
                        return methods
                return frozenset()
        found = self._source(importer, module)
        if found is None:
            return frozenset()
        path, source = found
        classes = self._forward_methods.get(path)
        if classes is None:
            classes = self._forward_methods[path] = forward_methods_of_text(source)
        return classes.get(qualified if owner else qualified.split(".")[-1], frozenset())

    def builds_plain_objects(self, importer: str, module: str, function: str) -> bool:
        """Whether `function` of an imported project file (any text, torch or not) returns
        on every `return` an object of a plain class (`return DeepSort(...)`), defined there
        or imported there from another project file (through a package's re-exports)."""
        located = self._locate(importer, module)
        if located is None:
            return False
        stamp = file_stamp(located)
        cached = self._factories.get((located, function))
        if cached is None or cached[0] != stamp:
            built = _factory_products(small_text(located), function)
            cached = self._factories[(located, function)] = (stamp, built)
        products = cached[1]
        if not products:
            return False
        self._dependencies.setdefault(importer, set()).add(str(located))
        origin = str(located)
        return all(
            self.class_kind(origin, source, name) is None
            if source
            else self.class_kind(importer, module, name, 0) is None
            for name, source in products
        )

    def is_class(self, importer: str, module: str, qualified: str) -> bool:
        """Whether the imported name is a class defined in that project file (read as for
        `is_module_class`, without analysing the file)."""
        self.is_module_class(importer, module, qualified)
        found = self._locate(importer, module)
        classes = self._module_classes.get(found.resolve()) if found is not None else None
        return bool(classes) and qualified.split(".")[-1] in classes  # type: ignore[operator]

    def defining_class(
        self, importer: str, module: str, name: str, depth: int = 2
    ) -> Optional[tuple[FileAnalysis, ClassInfo]]:
        """The analysis of the project file that defines the class `name` imported from
        `module`, and the class. A package's `__init__.py` that re-exports it (`from
        .trainer import Trainer` or `from pkg.trainer.trainer import Trainer`) is followed to
        the file that defines it: `from pkg.trainer import Trainer` builds that class as
        surely as importing it from its own file does."""
        if self.is_class(importer, module, name):
            analysis = self.analysis(importer, module)
            owner = analysis.classes.get(name) if analysis is not None else None
            return (analysis, owner) if analysis is not None and owner is not None else None
        located = self._locate(importer, module)
        if located is None or located.name != "__init__.py" or depth <= 0:
            return None
        for submodule in imported_from(small_text(located), name):
            # `.sub` is read from the package; `pkg.sub` as the first importer reads it
            origin = str(located) if submodule.startswith(".") else importer
            found = self.defining_class(origin, submodule, name, depth - 1)
            if found is not None:
                return found
        return None

    def base_method(
        self, analysis: FileAnalysis, owner: ClassInfo, name: str, depth: int = 3
    ) -> Optional[Summary]:
        """The summary of method `name` that `owner` (a class of `analysis`) inherits from a
        base class of another project file (`self.take_optimisation_step(...)` in an agent
        whose base class, imported, defines it); the text is checked before any analysis."""
        for base in owner.bases if depth > 0 else ():
            local = base.split(".")[-1]
            inner = analysis.classes.get(base)
            if inner is not None:  # a base of this file whose own base is imported
                found = self.base_method(analysis, inner, name, depth - 1)
                if found is not None:
                    return found
                continue
            module = analysis.imports.module_of_class(base)
            if module is None or not self.defines_method(analysis.path, module, base, name):
                continue
            other, cls = self._class_in(analysis.path, module, local)
            if other is None or cls is None:
                continue
            method = cls.methods.get(name) or other._inherited_method(cls, name)
            if method is not None:
                return other.summary_for(method)
            found = self.base_method(other, cls, name, depth - 1)
            if found is not None:
                return found
        return None

    def _class_in(
        self, importer: str, module: str, local: str, depth: int = 3
    ) -> tuple[Optional[FileAnalysis], Optional[ClassInfo]]:
        """The analysis of the file that defines class `local` imported from `module`, and
        the class, through re-exports (`from .trainer import TrainerXU` in a package's
        `__init__.py`, whose own classes do not hold it, or which has no torch text and so
        no analysis of its own)."""
        other = self.analysis(importer, module)
        if other is not None:
            cls = other.classes.get(local)
            if cls is not None or depth <= 0:
                return other, cls
            origin = other.imports.module_of_class(local)
            if origin is not None and origin != module:
                return self._class_in(other.path, origin, local, depth - 1)
        located = self._locate(importer, module)
        if depth <= 0 or located is None or located.name != "__init__.py":
            return other, None
        # `from .lpips import *` in the package's `__init__.py`: not a name it binds
        for origin in imported_from(small_text(located), local):
            found = self._class_in(str(located), origin, local, depth - 1)
            if found[1] is not None:
                return found
        return other, None

    def class_in(
        self, importer: str, module: str, local: str
    ) -> tuple[Optional[FileAnalysis], Optional[ClassInfo]]:
        """The analysis of the file that defines class `local` imported from `module`, and
        the class (None when not found), through a package's re-exports."""
        return self._class_in(importer, module, local)

    def defines_method(
        self, importer: str, module: str, qualified: str, method: str, depth: int = 3
    ) -> bool:
        """Whether the imported class `qualified`, or a base class of it in the project,
        defines `method`: then `self.method(...)` in a subclass is a method call, not a
        module set by the base."""
        return self._defines_method_of_text(
            importer, module, qualified, method, depth
        ) or self.class_defines_method(importer, module, qualified.split(".")[-1], method)

    def _defines_method_of_text(
        self, importer: str, module: str, qualified: str, method: str, depth: int
    ) -> bool:
        if depth <= 0:
            return False
        found = self._source(importer, module)
        if found is None:
            return False
        path, source = found
        classes = self._class_methods.get(path)
        if classes is None:
            classes = self._class_methods[path] = _methods_of_text(source)
        name = qualified.split(".")[-1]
        pending, seen = [name], {name}
        while pending:  # the class and its bases of this file, however deep
            current = pending.pop()
            methods, bases = classes.get(current, (frozenset(), ()))
            if method in methods:
                return True
            for base, base_module in bases:
                local = base.split(".")[-1]
                if local in classes and local != current:
                    if local not in seen:
                        seen.add(local)
                        pending.append(local)
                elif base_module and self._defines_method_of_text(
                    str(path), base_module, base, method, depth - 1
                ):
                    return True
        return False


def _methods_of_text(
    source: str,
) -> dict[str, tuple[frozenset[str], tuple[tuple[str, str], ...]]]:
    """Class name -> (the methods its body defines, its bases with the module each was
    imported from), read with CPython's parser."""
    try:
        tree = shared_python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    imports = ImportTable()
    for node in ast_statements(tree):
        if isinstance(node, ast.ImportFrom) and not any(a.name == "*" for a in node.names):
            for alias in node.names:
                imports.bind_from(node.module or "", node.level, alias.name, alias.asname)
    result = {}
    for node in ast_statements(tree):
        if isinstance(node, ast.ClassDef):
            methods = frozenset(
                item.name
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
            bases = tuple(
                (base.id, imports.modules_from.get(base.id, ""))
                for base in node.bases
                if isinstance(base, ast.Name)
            )
            result[node.name] = (methods, bases)
    for bound, module in imports.modules_from.items():
        # `from .trainer import TrainerXU` in a package's `__init__.py`: the class is the
        # one of that module (a class of no methods here, whose base is the imported one)
        if bound not in result and bound[:1].isupper() and module:
            result[bound] = (frozenset(), ((imports.qualify_name(bound) or bound, module),))
    return result


def _factory_products(source: str, function: str) -> tuple[tuple[str, str], ...]:
    """(class name, the module it is imported from or "" when defined here) of each call a
    top-level `function` of the text returns (`return Cls(...)`, or `obj = Cls(...); return
    obj`); empty when some return gives anything else, or the function is not there."""
    try:
        tree = shared_python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    imports = ImportTable()
    found: Optional[ast.FunctionDef] = None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and not any(a.name == "*" for a in node.names):
            for alias in node.names:
                imports.bind_from(node.module or "", node.level, alias.name, alias.asname)
        elif isinstance(node, ast.FunctionDef) and node.name == function:
            found = node
    if found is None:
        return ()
    assigned = {
        target.id: node.value
        for node in ast.walk(found)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    products = []
    for inner in ast.walk(found):
        if isinstance(inner, (ast.FunctionDef, ast.Lambda)) and inner is not found:
            return ()  # a nested function's returns would mix in: not read
        if not isinstance(inner, ast.Return):
            continue
        value = inner.value
        if isinstance(value, ast.Name):
            value = assigned.get(value.id)
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)):
            return ()
        name = value.func.id
        products.append((name, imports.modules_from.get(name, "")))
    return tuple(products)


def _module_classes_of_tree(tree: cst.Module) -> dict[str, Optional[bool]]:
    return {
        name: None if all(base == "object" for base in info.bases) else info.is_module
        for name, info in collect_definitions(tree, collect_imports(tree))[1].items()
    }
