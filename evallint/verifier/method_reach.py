"""A method of a model taken as the model: `self.model.validation_step(x)`,
`self._net.user_representation(u)`, `self.predict_on_generator(...)`.

Such a call runs only the submodules the method reaches, so the verdict covers exactly those:
the `self.x` the method reads, and, for each `self.m(...)` / `self.m` of a method or property
of the same class, what that method reads in turn. `self.x.f(...)` with `self.x` a project
class instance and `f` one of its methods reaches only what `f` reads; any other use of
`self.x` (called, passed on, returned) reaches all of it. `self(...)` reaches `forward`. A
`super()` call is not followed: the verdict stays open, named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

import libcst as cst

from evallint.verifier.resolution import Found, Instance, Value
from evallint.verifier.source_index import SourceFile, inside

MAX_METHODS = 24
"""Methods of one class followed from one call (a method graph larger than this stays open)."""


class Extractor(Protocol):
    """What this module asks of `extract.Extractor` (which imports this module)."""

    def class_chain(
        self, file: SourceFile, cls: cst.ClassDef
    ) -> list[tuple[SourceFile, cst.ClassDef]]: ...

    def instance_attribute(self, inst: Instance, attr: str, depth: int) -> Value: ...

    def instance_layers(
        self,
        inst: Instance,
        depth: int,
        only: Optional[set[str]] = None,
        methods: Optional[set[cst.FunctionDef]] = None,
    ) -> Found: ...


@dataclass
class _Reads:
    whole: set[str] = field(default_factory=set)
    """`x` of each `self.x` used other than as `self.x.f(...)`."""
    through: set[tuple[str, str]] = field(default_factory=set)
    """(x, f) of each `self.x.f(...)`."""
    calls_self: bool = False
    """`self(...)`: the module's own forward."""
    supers: list[int] = field(default_factory=list)
    """Lines of `super()` uses."""
    bare: bool = False
    """`self` used other than as `self.x` or `self(...)` (passed on, returned): it may reach
    every submodule."""


class _Collector(cst.CSTVisitor):
    def __init__(self, file: SourceFile) -> None:
        self.file = file
        self.reads = _Reads()
        self.receivers: set[int] = set()  # ids of `self.x` nodes read as `self.x.f(...)`
        self.seen_self: set[int] = set()  # ids of `self` names in `self.x` or `self(...)`

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return True  # a nested function's reads count: it may be called by the method

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value == "self":
            self.reads.calls_self = True
            self.seen_self.add(id(func))
        if isinstance(func, cst.Name) and func.value == "super":
            self.reads.supers.append(self.file.line(node))
        if (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Attribute)
            and isinstance(func.value.value, cst.Name)
            and func.value.value.value == "self"
        ):
            self.reads.through.add((func.value.attr.value, func.attr.value))
            self.receivers.add(id(func.value))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name) and node.value.value == "self":
            self.seen_self.add(id(node.value))
            if id(node) not in self.receivers:
                self.reads.whole.add(node.attr.value)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "self" and id(node) not in self.seen_self:
            self.reads.bare = True


def _reads(file: SourceFile, func: cst.FunctionDef) -> _Reads:
    collector = _Collector(file)
    func.body.visit(collector)
    return collector.reads


def find_method(
    ext: Extractor, inst: Instance, name: str
) -> Optional[tuple[SourceFile, cst.FunctionDef]]:
    """The method `name` of the instance's class (the subclass's override first)."""
    for cls_file, cls in ext.class_chain(inst.file, inst.cls):
        for func in cls_file.functions.get(name, []):
            if inside(cls_file, func, cls) and cls_file.class_of(func) is cls:
                return cls_file, func
    return None


def method_layers(ext: Extractor, inst: Instance, name: str, depth: int) -> Optional[Found]:
    """The layers the method `name` of `inst` reaches, or None when it has no such method."""
    start = find_method(ext, inst, name)
    if start is None:
        return None
    where = f"{start[0].path.name}:{start[0].line(start[1])}"
    root = f"method {inst.cls.name.value}.{name} ({where})"
    out = Found(root=root)
    queue, seen = [name], set()
    whole: set[str] = set()
    through: set[tuple[str, str]] = set()
    reached: set[cst.FunctionDef] = set()
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if len(seen) > MAX_METHODS:
            out.unresolved.append(f"{root} calls more than {MAX_METHODS} methods")
            break
        method = find_method(ext, inst, current)
        if method is None:
            whole.add(current)  # an attribute, not a method
            continue
        file, func = method
        reached.add(func)
        reads = _reads(file, func)
        if reads.bare:  # `helper(self, x)`: whatever the helper reads, so all of it
            out.extend(ext.instance_layers(inst, depth))
            out.root = root
            return out
        for line in reads.supers[:1]:
            out.unresolved.append(
                f"`super()` in {inst.cls.name.value}.{current} at {file.path.name}:{line} "
                "is not followed"
            )
        queue.extend(sorted(reads.whole))
        if reads.calls_self:
            queue.append("forward")
        for attr, called in sorted(reads.through):
            if find_method(ext, inst, attr) is not None:
                queue.append(attr)  # `self.m(...).f(...)`-like: the method runs
            else:
                through.add((attr, called))
    for attr, called in sorted(through):
        if attr in whole:
            continue
        value = ext.instance_attribute(inst, attr, depth + 1)
        inner = (
            method_layers(ext, value, called, depth + 1) if isinstance(value, Instance) else None
        )
        if inner is None:
            whole.add(attr)  # not a project method (`self.net.to(x)`, a library call): all of it
        else:
            out.extend(inner)
    out.extend(ext.instance_layers(inst, depth, {f"self.{a}" for a in whole}, reached))
    out.root = root
    return out
