"""Other files of the same project, read on demand and cached for the run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

from evallint.analysis.bound_names import bound_names
from evallint.analysis.class_chains import Chain, ClassChains, FileClasses
from evallint.analysis.factory_tables import factory_entries
from evallint.analysis.options import AnalysisOptions
from evallint.analysis.overrides import Overrides
from evallint.analysis.project_classes import ProjectClasses
from evallint.analysis.project_files import (
    MAX_INDEXED_FILES,
    display_path,
    file_stamp,
    imported_from,
    imported_names,
    installed,
    project_files,
    project_root,
    reexported_from,
    small_text,
    submodule_name,
)
from evallint.analysis.summaries import Summary
from evallint.source.parse import ParseFailure, parse_module
from evallint.source.word_pattern import WordPattern

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


MAX_IMPORTED_CHARS = 400_000
"""Text of the project files one linted file may follow (about 10,000 lines): a file deep
inside a large package must not drag the package in. A cost, not a count of files: a file
importing twenty small modules of its own project follows all of them, one importing the
large files of a framework stops after a few. A file without any torch text costs nothing
(it is read, found irrelevant and never parsed). Charged per importer whatever other files
of the run read first, so what a file's analysis sees does not depend on the run's order."""


MAX_CACHED_ANALYSES = 64

MAX_KEPT_IMPORTED = 8
"""Analyses of imported files kept, with their trees, when the tables above are cleared
(`_make_room`: every 64 files of a run): taken again when the file's text is the same, so a
run does not parse and summarise `torch/nn/functional.py` again after every clear. A lazy
analysis's summaries do not depend on what was asked of it before (see
`FileAnalysis.summary_for`), so a kept one answers as a new one would."""

MAX_CALLERS_PER_FUNCTION = 3
"""Calling files listed for one helper (in directory order)."""

_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w.]+)(?:[ \t]+as[ \t]+(\w+))?", re.M)


class _FileFacts:
    """A project file's code as the call search reads it, and its import statements (found
    by regex on first use)."""

    __slots__ = ("_from_imports", "_imports", "code", "stamp")

    def __init__(self, stamp: Optional[tuple[int, int]], code: Optional[str]) -> None:
        self.stamp = stamp
        self.code = code
        self._from_imports: Optional[list[tuple[str, str]]] = None
        self._imports: Optional[list[tuple[str, str]]] = None

    def from_imports(self) -> list[tuple[str, str]]:
        """(module, imported names as written) of each `from module import ...`."""
        if self._from_imports is None:
            found = _FROM_IMPORT.finditer(self.code or "")
            self._from_imports = [(m.group(1), m.group(2)) for m in found]
        return self._from_imports

    def imports(self) -> list[tuple[str, str]]:
        """(module, the name it is bound to) of each `import module [as alias]`."""
        if self._imports is None:
            found = _IMPORT.finditer(self.code or "")
            self._imports = [(m.group(1), m.group(2) or m.group(1)) for m in found]
        return self._imports


MAX_CACHED_FILE_FACTS = 5_000
_FILE_FACTS: dict[tuple[Callable[[Path], Optional[str]], Path], _FileFacts] = {}
"""Per (reader, file): its code and imports at its (mtime, size); see `_file_facts`."""


class ProjectIndex(ProjectClasses, ClassChains, Overrides):
    """Other files of the same project that a linted file imports from, read on demand and
    cached for the run, so `from engine import evaluate` is understood. Installed packages
    and the standard library are never followed; neither are files without any torch text.
    Most importers only ask whether an imported class is a module: that is answered from
    CPython's parse of the file; LibCST parses it only when its functions are followed."""

    def __init__(
        self,
        read: Callable[[Path], Optional[str]],
        options: AnalysisOptions = AnalysisOptions(),
        *,
        analyse: Callable[..., FileAnalysis],
    ) -> None:
        self._read = read
        self._analyse = analyse
        """Builds a `FileAnalysis` (given by the engine, so this module does not import it)."""
        self.options = options
        self._located: dict[tuple[str, str], tuple[Optional[Path], tuple[str, ...]]] = {}
        self._directories: dict[str, str] = {}
        """An absolute importer path (a relative one: the working directory, NUL, the path)
        -> its directory (asked per import of every call)."""
        self._missing: dict[str, set[str]] = {}
        self._sources: dict[Path, Optional[str]] = {}
        self._trees: dict[Path, Optional[cst.Module]] = {}
        self._analyses: dict[Path, Optional[FileAnalysis]] = {}
        self._module_classes: dict[Path, Optional[dict[str, Optional[bool]]]] = {}
        self._class_methods: dict[Path, dict] = {}
        self._forward_methods: dict[Path, dict[str, frozenset[str]]] = {}
        self._init_texts: dict[Path, tuple[Optional[tuple[int, int]], str]] = {}
        self._reexports: dict[tuple[Path, str], list[str]] = {}
        self._chain_files: dict[Path, FileClasses] = {}
        self._chains: dict[tuple[Path, str], Chain] = {}
        self._factories: dict[tuple[Path, str], tuple[Optional[tuple[int, int]], tuple]] = {}
        self._pulled: dict[str, dict[Path, int]] = {}
        """Per importer: the project files it follows, with what each cost its budget."""
        self._dependencies: dict[str, set[str]] = {}
        self._stamps: dict[Path, Optional[tuple[int, int]]] = {}
        self._call_indexes: dict[Path, dict[str, list[Path]]] = {}
        self._root_files: dict[Path, list[Path]] = {}
        self._bound_names: dict[Path, Optional[frozenset[str]]] = {}
        """Per project root: the names its files may bind (None: too many files to read)."""
        self._roots: dict[str, tuple[Path, Path]] = {}  # path -> resolved, root (per lint)
        self.field_verdicts: dict[
            tuple[str, str, frozenset[str]], tuple[bool, tuple[Path, ...]]
        ] = {}
        """stored_fields.py: (reader, field, fields being read) -> verdict, files read for it."""
        self._code: dict[Path, Optional[str]] = {}
        self._caller_analyses: dict[tuple[Path, Optional[Path]], Optional[FileAnalysis]] = {}
        self._adopted: Optional[Path] = None
        self._kept: dict[Path, tuple[str, cst.Module, Optional[FileAnalysis], dict]] = {}
        """Per imported file (least recently used first): its text, tree and analysis, kept
        over `_make_room`, with the (mtime, size) of the project files its analysis read."""
        self.parses = 0
        """Imported files parsed with LibCST (the kept ones are not parsed again)."""

    def _forget(self, path: Path) -> None:
        for table in (
            self._sources,
            self._trees,
            self._analyses,
            self._module_classes,
            self._class_methods,
            self._forward_methods,
            self._stamps,
            self._init_texts,
            self._chain_files,
        ):
            table.pop(path, None)
        self._chains.clear()  # a chain read through the file

    def _make_room(self) -> None:
        """Memory stays flat over a large run: at most MAX_CACHED_ANALYSES files are kept."""
        if len(self._sources) >= MAX_CACHED_ANALYSES or len(self._analyses) >= MAX_CACHED_ANALYSES:
            path = self._adopted
            adopted = (
                None
                if path is None or path not in self._analyses
                else (path, self._sources.get(path), self._trees.get(path), self._analyses[path])
            )
            for path, analysis in self._analyses.items():
                source, tree = self._sources.get(path), self._trees.get(path)
                if analysis is not None and analysis.reader is self and not analysis.busy:
                    if source is not None and tree is not None:
                        read = {d: file_stamp(Path(d)) for d in self.dependencies_of(str(path))}
                        self._keep(path, (source, tree, analysis, read))
            for table in (
                self._sources,
                self._trees,
                self._analyses,
                self._module_classes,
                self._class_methods,
                self._forward_methods,
                self._init_texts,
                self._reexports,
                self._factories,
                self._directories,
                self._chain_files,
                self._chains,
            ):
                table.clear()
            # the adopted file (the one being linted) stays: its callers' analyses, made
            # after this clear too, must import that very analysis, or what they find in it
            # is placed on a second analysis of the file and dropped (`_judge_by_callers`
            # keeps only forwards of its own unit), depending on where the run's 64-file
            # clears happen to fall
            if adopted is not None:
                path, source, tree, analysis = adopted
                self._sources[path], self._trees[path], self._analyses[path] = (
                    source,
                    tree,
                    analysis,
                )

    def _keep(
        self, path: Path, entry: tuple[str, cst.Module, Optional[FileAnalysis], dict]
    ) -> None:
        self._kept.pop(path, None)
        self._kept[path] = entry
        while len(self._kept) > MAX_KEPT_IMPORTED:
            del self._kept[next(iter(self._kept))]

    def parsed(self, path: str, source: str) -> Optional[cst.Module]:
        """A tree already parsed in this run for this exact text (imported before being linted)."""
        resolved = Path(path).resolve() if not path.startswith("<") else None
        if resolved is None or self._sources.get(resolved) != source:
            return None
        return self._trees.get(resolved)

    def remember(self, path: str, source: str) -> None:
        """Keep a linted file's text (a later file of the run may import it), not its tree:
        few importers need one, and dozens of kept trees would make every garbage
        collection in the process (flake8's own work included) walk millions of nodes."""
        if not path.startswith("<"):
            self._make_room()
            self._roots.pop(path, None)
            resolved = Path(path).resolve()
            self._forget(resolved)
            self._sources[resolved] = source
            self._stamps[resolved] = file_stamp(resolved)

    def dependencies_of(self, importer: str) -> set[str]:
        """Project files the analysis of `importer` read, and those their analyses read (an
        imported file's helpers are read for what they return): its cache entry depends on
        them."""
        found = set(self._dependencies.get(importer, ()))
        pending = list(found)
        while pending:
            for further in self._dependencies.get(pending.pop(), ()):
                if further not in found and further != importer:
                    found.add(further)
                    pending.append(further)
        return found

    def _locate(self, importer: str, module: str) -> Optional[Path]:
        if not module or importer.startswith("<"):
            return None
        directory = self._directories.get(importer)
        if directory is None:
            # a relative importer's directory depends on the working directory: kept under
            # both (`evallint .` names every file relative, and asks per import of a call)
            relative = not os.path.isabs(importer)
            key = f"{os.getcwd()}\0{importer}" if relative else importer
            directory = self._directories.get(key)
            if directory is None:
                directory = self._directories[key] = os.path.dirname(os.path.abspath(importer))
        cache_key = (directory, module)
        if cache_key not in self._located:
            found, absent = self._search(Path(directory), module)
            self._located[cache_key] = (
                None if found is None or installed(found) else found,
                absent,
            )
        found, absent = self._located[cache_key]
        if absent:
            self._missing.setdefault(importer, set()).update(absent)
        return found

    def missing_of(self, importer: str) -> set[str]:
        """Paths that would change what `importer`'s imports resolve to if they appeared
        (candidates searched before the file found, or all of them): negative dependencies
        of its cache entry."""
        return self._missing.get(importer, set())

    @staticmethod
    def _search(base: Path, module: str) -> tuple[Optional[Path], tuple[str, ...]]:
        """`engine` next to the importer or in up to three parent directories (a project
        root), `pkg.engine` from the parent of the importer's enclosing `pkg` directory;
        `.engine` relative to the importer's package. With the candidates tried
        before it that do not exist."""
        dots = len(module) - len(module.lstrip("."))
        relative = module.lstrip(".").replace(".", "/")
        roots = [base] if dots == 0 else [base.parents[dots - 2] if dots >= 2 else base]
        if dots == 0:
            roots += list(base.parents)[:3]
            # `from pkg.a.b import f` deep inside `pkg`: the root is the parent of `pkg`
            head = relative.split("/")[0]
            roots += [p.parent for p in (base, *base.parents) if p.name == head][:1]
        if dots == 0:
            # a src layout (`src/pkg/...` of a package the project installs from itself):
            # `import pkg` from the project's scripts and notebooks means that package
            roots += [root / "src" for root in roots[1:] if (root / "src").is_dir()]
        absent: list[str] = []
        for root in roots:
            for candidate in (root / f"{relative}.py", root / relative / "__init__.py"):
                if candidate.is_file():
                    return candidate, tuple(absent)
                absent.append(str(candidate))
        return None, tuple(absent)

    def _source(self, importer: str, module: str) -> Optional[tuple[Path, str]]:
        """The imported file's text, within this importer's budget of MAX_IMPORTED_CHARS."""
        path = self._locate(importer, module)
        if path is None:
            return None
        path = path.resolve()
        if path in self._sources and self._stamps.get(path) != file_stamp(path):
            self._forget(path)  # edited since it was read (a long-lived editor or flake8 process)
        if path not in self._sources:
            self._make_room()
            self._stamps[path] = file_stamp(path)
            self._sources[path] = self._read(path)
        self._dependencies.setdefault(importer, set()).add(str(path))
        source = self._sources[path]
        if source is None:
            return None
        pulled = self._pulled.setdefault(importer, {})
        if path not in pulled:
            if sum(pulled.values()) + len(source) > MAX_IMPORTED_CHARS:
                return None
            pulled[path] = len(source)
        return path, source

    def located_source(self, importer: str, module: str) -> Optional[tuple[Path, str]]:
        return self._source(importer, module)  # for plain_modules.py

    def located(self, importer: str, module: str) -> Optional[Path]:
        return self._locate(importer, module)  # for plain_objects.py, whatever the text

    def is_project_module(self, importer: str, module: str) -> bool:
        """Whether `module`, imported by `importer`, is a file of the project (whatever its
        text): a project's own `code.py` shadows the standard library's `code`."""
        return self._locate(importer, module) is not None

    def _tree(self, importer: str, module: str) -> Optional[tuple[Path, cst.Module, str]]:
        found = self._source(importer, module)
        if found is None:
            return None
        path, source = found
        if path not in self._trees:
            kept = self._kept.pop(path, None)
            if kept is not None and kept[0] == source:  # the same text: its tree and analysis
                self._trees[path] = kept[1]
                if (
                    kept[2] is not None
                    and path not in self._analyses
                    and all(file_stamp(Path(d)) == stamp for d, stamp in kept[3].items())
                ):  # and the files its summaries read (what their functions return) unchanged
                    self._analyses[path] = kept[2]
            else:
                self.parses += 1
                parsed = parse_module(source)
                self._trees[path] = None if isinstance(parsed, ParseFailure) else parsed
        tree = self._trees[path]
        return (path, tree, source) if tree is not None else None

    def analysis(self, importer: str, module: str) -> Optional[FileAnalysis]:
        """The analysis of an imported project file; its own imports are not followed, so a
        file inside a large package never drags the package in."""
        found = self._tree(importer, module)
        if found is None:
            return None
        path, tree, source = found
        if path not in self._analyses:
            self._analyses[path] = None  # guards import cycles
            self._analyses[path] = self._analyse(
                tree,
                str(path),
                source=source,
                options=self.options,
                project=None,
                reader=self,
                judge_uncalled=False,
                lazy=True,
            )
        analysis = self._analyses[path]
        # a file whose functions are being summarised reads as unanalysed to the files it
        # reaches meanwhile (an import cycle), as while a complete analysis is being built
        return None if analysis is None or analysis.busy else analysis

    def summary(
        self,
        importer: str,
        module: str,
        qualified: str,
        call: Optional[cst.Call] = None,
        flags: tuple = (),
        depth: int = 3,
    ) -> Optional[Summary]:
        """The summary of `qualified` in the project file `module`; with the importer's
        `call` (and the flags its context fixes: `model.training` of a module argument in eval
        mode), the summary specialised to what the call fixes, as for a function of the
        importer's own file (`pass_epoch(model, loss, loader)` that trains only `if
        model.training:`)."""
        analysis = self.analysis(importer, module)
        if analysis is None:
            located = self._locate(importer, module)
            if located is None or located.name != "__init__.py":
                return None
            # a package whose `__init__.py` only re-exports (no torch text of its own)
            return self._reexported_summary(importer, located, qualified.split(".")[-1], depth)
        name = qualified.split(".")[-1]
        info = analysis.functions.get(name)
        if info is not None:
            general = analysis.summary_for(info)  # in order: specialising reads its facts
            special = analysis.specialised(info, call, flags) if call is not None else None
            return special or general
        if Path(analysis.path).name == "__init__.py":
            # `import pkg as d2l; d2l.f(...)` where pkg/__init__.py has `from .utils import *`
            return self._reexported_summary(importer, Path(analysis.path), name, depth)
        return None

    def _reexported_summary(
        self, importer: str, init: Path, name: str, depth: int
    ) -> Optional[Summary]:
        """The summary of `name` that a package's `__init__.py` re-exports, by a relative
        (`from .misc import f`) or an absolute import (`from pkg.utils.misc import f`), as
        a direct import of the submodule would give it (a re-exported context manager is
        followed like one imported from where it is defined). The absolute module is
        located as the first importer names it, as `class_kind` does."""
        if depth <= 0:
            return None
        for submodule in imported_from(small_text(init), name):
            origin = str(init) if submodule.startswith(".") else importer
            if self._locate(origin, submodule) == init:
                continue  # `from pkg import f` in pkg/__init__.py itself
            summary = self.summary(origin, submodule, name, depth=depth - 1)
            if summary is not None:
                return summary
        return None

    def class_level_summary(
        self, importer: str, module: str, qualified: str, method: str
    ) -> Optional[Summary]:
        """The summary of `method`, a static or class method of class `qualified` of the
        project file `module` (`EncodecModel.encodec_model_24khz()`): a factory called on its
        class. A package's `__init__.py` that re-exports the class is followed."""
        name = qualified.split(".")[-1]
        analysis = self.analysis(importer, module)
        if analysis is None or name not in analysis.classes:
            located = self._locate(importer, module)
            if located is None or located.name != "__init__.py":
                return None
            for submodule in reexported_from(small_text(located), name):
                summary = self.class_level_summary(str(located), "." + submodule, name, method)
                if summary is not None:
                    return summary
            return None
        owner = analysis.classes[name]
        info = owner.methods.get(method) or analysis._inherited_method(owner, method)
        if info is None or not info.class_level:
            return None
        return analysis.summary_for(info)

    def table_summaries(self, importer: str, module: str, name: str) -> Optional[list[Summary]]:
        """For `MODELS[key]()` with `MODELS` imported from the project file `module`: the
        summaries of the factories its dict literal holds (see factory_tables), each a
        function of that file, one it imports, or a static or class method of a class it
        defines or imports. None when any of them is not found."""
        analysis = self.analysis(importer, module)
        if analysis is None:
            return None
        summaries: list[Summary] = []
        for entry in factory_entries(analysis, name.split(".")[-1], None):
            summary = self._reference_summary(analysis, entry)
            if summary is None:
                return None
            summaries.append(summary)
        return summaries or None

    def _reference_summary(
        self, analysis: FileAnalysis, entry: cst.BaseExpression
    ) -> Optional[Summary]:
        """The summary of the function `entry` names in `analysis`'s file."""
        imports = analysis.imports
        if type(entry) is cst.Name:
            info = analysis.functions.get(entry.value)
            if info is not None:
                return analysis.summary_for(info)
            if entry.value in imports.modules_from:
                qualified = imports.qualify_name(entry.value) or entry.value
                return self.summary(analysis.path, imports.modules_from[entry.value], qualified)
            return None
        if type(entry) is cst.Attribute and type(entry.value) is cst.Name:
            owner, method = entry.value.value, entry.attr.value
            found = analysis._class_level_method(owner, method)
            if found is not None:
                return analysis.summary_for(found)
            if owner in imports.modules_from:
                qualified = imports.qualify_name(owner) or owner
                return self.class_level_summary(
                    analysis.path, imports.modules_from[owner], qualified, method
                )
        return None

    def star_summary(self, importer: str, modules: list[str], name: str) -> Optional[Summary]:
        """The summary of `name` when it comes from a `from module import *` of a project
        file: the first starred module (in import order) whose text defines it at top level."""
        pattern = re.compile(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", re.M)
        for module in modules:
            found = self._source(importer, module)
            if found is not None and pattern.search(found[1]):
                return self.summary(importer, module, name)
        return None

    def root_of(self, path: str) -> tuple[Path, Path]:
        """(the resolved path, its `project_root`): asked per function and per method call,
        so the file system is asked once per lint of `path` (`remember` forgets it)."""
        found = self._roots.get(path)
        if found is None:
            resolved = Path(path).resolve()
            found = self._roots[path] = (resolved, project_root(resolved))
        return found

    # -- callers in other files (helpers judged by their real callers) -----------------------
    def callers_of(self, path: str, function: str, owner: Optional[str] = None) -> list[Path]:
        """Project files (scripts, modules, notebooks) that import `function` from the file
        at `path` and call it (`from engine import evaluate`, `import engine as e;
        e.evaluate(...)`, `from pkg import engine; engine.evaluate(...)`): at most
        MAX_CALLERS_PER_FUNCTION, in directory order. For a method, files that import its
        class `owner` and call a method of that name."""
        if path.startswith("<"):
            return []
        target, root = self.root_of(path)
        index = self._call_indexes.get(root)
        if index is None:
            index = self._call_indexes[root] = {}
        candidates = index.get(function)
        if candidates is None:
            candidates = index[function] = self._files_calling(root, function)
        found = []
        for candidate in candidates:
            if candidate != target and self._imports_function(candidate, owner or function, target):
                found.append(candidate)
                self._dependencies.setdefault(path, set()).add(str(candidate))
                if len(found) >= MAX_CALLERS_PER_FUNCTION:
                    break
        return found

    def _files_calling(self, root: Path, function: str) -> list[Path]:
        """The project files under `root` that import something and call `function` (a name
        followed by `(`), in directory order. Searched per name asked for: a full index of
        every called name cost a regular-expression scan of up to MAX_INDEXED_FILES files
        per root, though few names are ever asked for."""
        if not _CALLED.fullmatch(function + "("):
            return []  # a name the call pattern never captures
        called = WordPattern(rf"{re.escape(function)}\s*\(")  # \bNAME\s*\(
        found = []
        for candidate in self.files_under(root):
            code = self._code_of(candidate)
            if code and function in code and "import" in code and called.search(code):
                found.append(candidate)
        return found

    def project_binds(self, path: str, name: str) -> bool:
        """Whether some file of `path`'s project may bind attribute `name` (see
        bound_names.py): False means no file assigns, declares or names it, so `self.name`
        is something a base class outside the project defines. True when unsure: a project
        of MAX_INDEXED_FILES files or more is not read whole. Read once per project root."""
        if path.startswith("<"):
            return True
        root = self.root_of(path)[1]
        if root not in self._bound_names:
            files = self.files_under(root)
            self._bound_names[root] = (
                None
                if len(files) >= MAX_INDEXED_FILES
                else bound_names(code for code in map(self._code_of, files) if code)
            )
        names = self._bound_names[root]
        return names is None or name in names

    def note_dependency(self, path: str, other: Path) -> None:
        """What `path`'s analysis found depends on the text of `other` (stored_fields.py
        reads the stores of a field in every project file): its cache entry does too."""
        self._dependencies.setdefault(path, set()).add(str(other))

    def files_under(self, root: Path) -> list[Path]:
        files = self._root_files.get(root)
        if files is None:
            files = self._root_files[root] = project_files(root)
        return files

    def code_of(self, path: Path) -> Optional[str]:
        """A project file's Python text (a notebook's code cells joined), read once."""
        return self._code_of(path)

    def _code_of(self, path: Path) -> Optional[str]:
        """A project file's Python text; a notebook's code cells joined."""
        if path not in self._code:
            self._code[path] = self._file_facts(path).code
        return self._code[path]

    def _file_facts(self, path: Path) -> _FileFacts:
        """A project file's code (and, once asked, its imports), kept for the process by
        (reader, path) and the file's (mtime, size): front ends and API callers that make a
        new index per file do not re-read the project; a file changed on disk is read again."""
        key = (self._read, path)
        stamp = file_stamp(path)
        cached = _FILE_FACTS.get(key)
        if stamp is not None and cached is not None and cached.stamp == stamp:
            return cached
        text = self._read(path)
        if text is not None and path.suffix == ".ipynb":
            try:
                from evallint.source.notebook import read_notebook

                text = read_notebook(text).text
            except Exception:  # noqa: BLE001 - any unreadable notebook is no caller
                text = None
        facts = _FileFacts(stamp, text)
        if stamp is not None:
            if len(_FILE_FACTS) >= MAX_CACHED_FILE_FACTS:
                _FILE_FACTS.clear()
            _FILE_FACTS[key] = facts
        return facts

    def _imports_function(self, candidate: Path, function: str, target: Path) -> bool:
        facts = self._file_facts(candidate)
        for module, names in facts.from_imports():
            if ("*" in names or re.search(rf"\b{re.escape(function)}\b", names)) and self._locates(
                candidate, module, target
            ):
                return True
        code = facts.code or ""
        for module, alias in facts.imports():
            if f"{alias}.{function}(" in code and self._locates(candidate, module, target):
                return True
        if f".{function}(" not in code:
            return False
        for module, names in facts.from_imports():
            # `from pkg import engine` (a submodule), then `engine.evaluate(...)`
            for name, alias in imported_names(names):
                if f"{alias}.{function}(" in code and self._locates(
                    candidate, submodule_name(module, name), target
                ):
                    return True
        return False

    def _locates(self, importer: Path, module: str, target: Path) -> bool:
        found = self._locate(str(importer), module)
        if found is None:
            return False
        found = found.resolve()
        if found == target:
            return True
        if found.name != "__init__.py" or found.parent != target.parent:
            return False
        return target.stem in reexported_from(small_text(found), None)

    def adopt(self, path: str, source: str, tree: cst.Module, analysis: FileAnalysis) -> None:
        """Use a linted file's own analysis when its callers are analysed, so what they
        find inside it is placed on its own tree."""
        resolved = Path(path).resolve()
        self._make_room()
        self._sources[resolved] = source
        self._trees[resolved] = tree
        self._analyses[resolved] = analysis
        self._stamps[resolved] = file_stamp(resolved)
        self._adopted = resolved

    def analysed(self, path: str) -> Optional[FileAnalysis]:
        """The analysis of a project file this run already made (imported or adopted), if
        any: never a new one."""
        if path.startswith("<"):
            return None
        found = self._analyses.get(Path(path).resolve())
        return None if found is None or found.busy else found.completed()

    def caller_analysis(self, path: Path, lazy: bool = False) -> Optional[FileAnalysis]:
        """The analysis of a calling file, following its imports (into the adopted file).
        Kept per adopted file: a script calling the helpers of several linted files (`main.py`
        building one of ten model classes) reaches each through that file's own analysis.
        `lazy`: only some of its summaries are read (an override's, overrides.py): they are
        computed on demand, each after the ones before it in `all_functions()`, as a complete
        analysis computes them; the functions after the last one asked for and the top level
        run only when a caller asks for the analysis as a whole (`lazy` False)."""
        key = (path, self._adopted)
        if key not in self._caller_analyses:
            self._caller_analyses[key] = None
            code = self._code_of(path)
            tree = parse_module(code) if code is not None else None
            if tree is not None and not isinstance(tree, ParseFailure):
                if len(self._caller_analyses) > MAX_CACHED_ANALYSES:
                    self._caller_analyses.clear()
                self._caller_analyses[key] = self._analyse(
                    tree,
                    display_path(path),
                    source=code,
                    options=self.options,
                    project=self,
                    judge_uncalled=False,
                    lazy=lazy,
                )
        found = self._caller_analyses.get(key)
        if found is None or found.busy:
            return None  # being built or summarised: as a complete analysis being built
        if not lazy and not found.complete:
            self._caller_analyses[key] = None  # completing: reads as being built meanwhile
            try:
                found.completed()
            finally:
                self._caller_analyses[key] = found
        return found
