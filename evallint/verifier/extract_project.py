"""The project part of the extractor: parsed files, call sites, definitions by name.

`extract.Extractor` follows expressions; what it asks of the project (a file's parse, a
function's callers, the class or function a dotted name defines, a class's project bases, a
method of the class an expression is in) is answered here, each parse and search once per
extractor (one `verify` call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import libcst as cst

from evallint.verifier.callers import CallSiteCache
from evallint.verifier.resolution import MAX_DEPTH, Ctx
from evallint.verifier.source_index import SourceFile, dotted_or_none, inside, module_files


class ProjectReader:
    """Parses and call-site searches of one project, cached; definitions found by name."""

    def __init__(self) -> None:
        self.files: dict[Path, Optional[SourceFile]] = {}
        self.active: set[tuple[Path, str]] = set()
        self.sites = CallSiteCache(self.file)

    def file(self, path: Path) -> Optional[SourceFile]:
        path = path.resolve()
        if path not in self.files:
            try:
                self.files[path] = SourceFile(path, path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
                self.files[path] = None
        return self.files[path]

    def own_method(self, name: str, ctx: Ctx) -> Optional[tuple[SourceFile, cst.FunctionDef]]:
        """The method `name` of the class the expression is in, or of a project base class."""
        if ctx.cls is None:
            return None
        start = (ctx.instance.file, ctx.instance.cls) if ctx.instance else (ctx.file, ctx.cls)
        for cls_file, cls in self.class_chain(*start):  # the subclass's override first
            for func in cls_file.functions.get(name, []):
                if inside(cls_file, func, cls):
                    return cls_file, func
        return None

    def project_callable(
        self, dotted: str, ctx: Ctx
    ) -> Optional[tuple[SourceFile, Union[cst.ClassDef, cst.FunctionDef]]]:
        """A class or function named `dotted`, defined in this file or imported from a project file."""
        file = ctx.file
        head, _, rest = dotted.partition(".")
        if not rest and head in file.classes:
            return file, file.classes[head]
        if not rest and head in file.functions and head not in file.imports:
            module_level = [f for f in file.functions[head] if file.class_of(f) is None]
            if module_level:
                return file, module_level[-1]
        if not rest and head in file.functions and ctx.func is not None:
            # a helper defined inside the enclosing function (`def make(...)` in `fit`)
            start, end = file.span(ctx.func)
            nested = [
                f
                for f in file.functions[head]
                if f is not ctx.func and start < file.span(f)[0] <= end
            ]
            if nested:
                return file, nested[-1]
        if head not in file.imports:
            return None
        module, level = file.imports[head]
        if rest:
            target_module, name = f"{module}.{rest}".rsplit(".", 1)
        else:
            target_module, name = module.rsplit(".", 1) if "." in module else ("", module)
        for candidate in module_files(file.path, target_module, level):
            other = self.file(candidate)
            if other is None:
                continue
            if name in other.classes:
                return other, other.classes[name]
            funcs = [f for f in other.functions.get(name, []) if other.class_of(f) is None]
            if funcs:
                return other, funcs[-1]
            if name in other.imports and ctx.depth < MAX_DEPTH:
                # re-exported: `from .hnn import HNN` in the package's `__init__.py`
                inner = Ctx(other, None, None, {}, 0, ctx.depth + 1)
                found = self.project_callable(name, inner)
                if found is not None:
                    return found
        return None

    def class_chain(
        self, file: SourceFile, cls: cst.ClassDef
    ) -> list[tuple[SourceFile, cst.ClassDef]]:
        """The class and its project base classes (for inherited `__init__` assignments)."""
        chain = [(file, cls)]
        for base in cls.bases:
            dotted = dotted_or_none(base.value)
            if dotted is None or len(chain) > MAX_DEPTH:
                continue
            found = self.project_callable(dotted, Ctx(file, None, None, {}, 0, 0))
            if found is not None and isinstance(found[1], cst.ClassDef) and found[1] is not cls:
                chain.extend(self.class_chain(*found))  # type: ignore[arg-type]
        return chain
