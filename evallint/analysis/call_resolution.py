"""How a call of a file reaches a function: `FileAnalysis.resolve_function` and its lookups.

A call names a function of the enclosing scopes, of the file (the definition in effect where
the call stands, when a name is defined twice), a closure a factory of the file returned, a
function of another project file (imported by name, through a module, through a package's
submodule or a star import) or a method of `self`'s class and its bases (in this file or
another project file). Part of `FileAnalysis` (a mixin, like `optimizers.OptimizerFacts`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, cast

import libcst as cst

from evallint.analysis.closures import closure_bound
from evallint.analysis.file_shapes import worth_following
from evallint.analysis.scope import ClassInfo, FunctionInfo, Redefinitions
from evallint.analysis.specialise import Flags
from evallint.analysis.summaries import Summary
from evallint.analysis.symbols import ImportTable, dotted_name

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.project import ProjectIndex


class CallResolution:
    """Part of `FileAnalysis`: which function a call reaches, and its summary."""

    # set by FileAnalysis.__init__
    path: str
    project: Optional[ProjectIndex]
    imports: ImportTable
    functions: dict[str, FunctionInfo]
    classes: dict[str, ClassInfo]
    redefined: Redefinitions
    defined_now: dict[str, FunctionInfo]
    rebound_now: set[str]
    closure_calls: dict[int, tuple[FunctionInfo, cst.Call]]
    # methods of FileAnalysis
    summary_for: Callable[[FunctionInfo], Optional[Summary]]
    specialised: Callable[..., Optional[Summary]]
    _summary_counted: Callable[[FunctionInfo], Optional[Summary]]

    def resolve_function(
        self,
        call: cst.Call,
        scope: Optional[FunctionInfo],
        *,
        count: bool = True,
        passes_module: bool = False,
        flags: Flags = (),
    ) -> Optional[tuple[Optional[Summary], bool]]:
        """The summary of a called function of this file or project (None while it is being
        summarised: recursion), and whether it is a call on `self` (whose `self.X` modules
        map onto the caller's). `count` records it (the uncalled are judged on their own)."""
        base = self._summary_counted if count else self.summary_for

        def summarise(info: FunctionInfo) -> Optional[Summary]:
            general = base(info)
            return self.specialised(info, call, flags) or general

        func = call.func
        if type(func) is cst.Name:
            name = func.value
            cursor = scope
            while cursor is not None:
                if name in cursor.nested:
                    nested = cursor.nested[name]
                    return summarise(nested), _captures_self(nested)
                cursor = cursor.parent
            if name in self.functions and not (scope is None and name in self.rebound_now):
                return summarise(self._in_effect(name, scope)), False
            closure = closure_bound(cast("FileAnalysis", self), name, scope)
            if closure is not None:
                # `loop = make_loop(model, optimizer)` then `loop(is_train=False)`: the
                # function the factory returned, its captured parameters the factory's
                self.closure_calls[id(call)] = closure[1:]
                return summarise(closure[0]), False
            if (
                self.project is not None
                and name in self.imports.modules_from
                and worth_following(call, passes_module)
            ):
                summary = self.project.summary(
                    self.path,
                    self.imports.modules_from[name],
                    self.imports.qualify(func) or name,
                    call,
                    flags,
                )
                if summary is not None:
                    return summary, False
            if (
                self.project is not None
                and self.imports.star_modules
                and not self.imports.is_imported(name)
                and worth_following(call, passes_module)
            ):
                # `from utils import *` then `evaluate_model(model, loader)`
                summary = self.project.star_summary(self.path, self.imports.star_modules, name)
                if summary is not None:
                    return summary, False
            return None
        if type(func) is cst.Attribute and type(func.value) is cst.Name:
            found_method = self._class_level_method(func.value.value, func.attr.value)
            if found_method is not None:
                return summarise(found_method), False  # `Model.build_small()` of this file
            if (
                self.project is not None
                and func.value.value in self.imports.modules_from
                and func.value.value[:1].isupper()
                and worth_following(call, passes_module)
            ):
                # `EncodecModel.encodec_model_24khz()` after `from pkg.model import EncodecModel`
                summary = self.project.class_level_summary(
                    self.path,
                    self.imports.modules_from[func.value.value],
                    self.imports.qualify_name(func.value.value) or func.value.value,
                    func.attr.value,
                )
                if summary is not None:
                    return summary, False
        if (
            type(func) is cst.Attribute
            and type(func.value) is cst.Name
            and self.project is not None
            and self.imports.is_imported(func.value.value)
            and worth_following(call, passes_module)
        ):
            # `engine.train_one_epoch(...)` after `import engine` / `from . import engine`
            summary = self.project.summary(
                self.path, self.imports.module_path(func.value.value), func.attr.value, call, flags
            )
            return (summary, False) if summary is not None else None
        if (
            type(func) is cst.Attribute
            and type(func.value) is cst.Attribute
            and self.project is not None
            and worth_following(call, passes_module)
        ):
            # `pfrl.utils.evaluating(model)` after `import pfrl`: a function of a project
            # package's submodule, named through the package
            path = dotted_name(func.value)
            head = (path or "").split(".")[0]
            if path is not None and head != "self" and self.imports.is_imported(head):
                module = self.imports.module_path(head) + path[len(head) :]
                summary = self.project.summary(self.path, module, func.attr.value)
                return (summary, False) if summary is not None else None
        if (
            type(func) is cst.Attribute
            and type(func.value) is cst.Name
            and func.value.value == "self"
        ):
            owner = scope.owner if scope is not None else None
            while scope is not None and owner is None:
                scope = scope.parent
                owner = scope.owner if scope is not None else None
            if owner is not None:
                method = owner.methods.get(func.attr.value) or self._inherited_method(
                    owner, func.attr.value
                )
                if method is not None:
                    return summarise(method), True
                found = self.project and self.project.base_method(
                    cast("FileAnalysis", self), owner, func.attr.value
                )
                return (found, True) if found else None  # a base class of another project file
        return None

    def base_defines_method(self, owner: ClassInfo, name: str) -> bool:
        """Whether a base class imported from another project file defines method `name`."""
        if self.project is None:
            return False
        for base in owner.bases:
            cls = self.classes.get(base)
            if cls is not None:
                if self.base_defines_method(cls, name):
                    return True
                continue
            module = self.imports.module_of_class(base)
            if module is not None and self.project.defines_method(self.path, module, base, name):
                return True
        return False

    def _in_effect(self, name: str, scope: Optional[FunctionInfo]) -> FunctionInfo:
        """The definition of a top-level function a call in `scope` reaches: for a name
        defined more than once, the one the top-level code passed last, or for a call inside
        a function, the one in effect where the enclosing top-level definition stands."""
        if not self.redefined.by_node:
            return self.functions[name]
        if scope is None:
            return self.defined_now.get(name) or self.functions[name]
        while scope.parent is not None:
            scope = scope.parent
        node = scope.owner.node if scope.owner is not None else scope.node
        return self.redefined.before.get(id(node), {}).get(name) or self.functions[name]

    def _class_level_method(self, class_name: str, name: str) -> Optional[FunctionInfo]:
        """`name`, a `@staticmethod` or `@classmethod` of class `class_name` of this file (or
        of its bases here): `Model.build_small()` runs it like a function, a factory whose
        returned module's mode the caller learns from its summary. None for anything else
        (an instance method called on the class takes its object as first argument)."""
        owner = self.classes.get(class_name)
        if owner is None:
            return None
        method = owner.methods.get(name) or self._inherited_method(owner, name)
        if method is None or not method.class_level:
            return None
        return method

    def _inherited_method(self, owner: ClassInfo, name: str) -> Optional[FunctionInfo]:
        for base in owner.bases:
            cls = self.classes.get(base)
            if cls is not None:
                found = cls.methods.get(name) or self._inherited_method(cls, name)
                if found is not None:
                    return found
        return None

    def resolve_function_quietly(
        self, call: cst.Call, scope: Optional[FunctionInfo]
    ) -> Optional[Summary]:
        """Like resolve_function, without counting the call (evidence gathering only looks)."""
        resolved = self.resolve_function(call, scope, count=False)
        return resolved[0] if resolved else None


def _captures_self(nested: FunctionInfo) -> bool:
    """A function nested in a method that uses the method's `self` (`def run(): return
    self.validate(loader)`): its `self.X` are the caller's own, as for a call on `self`."""
    if "self" in nested.params or "self" in nested.keyword_only:
        return False
    cursor = nested.parent
    while cursor is not None:
        if cursor.owner is not None:
            return "self" in cursor.params
        cursor = cursor.parent
    return False
