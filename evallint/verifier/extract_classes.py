"""The class part of the extractor: the layers an instance of a project class holds.

Its `self.x = ...` assignments (the live ones: `__init__`'s, else the last elsewhere), its
torch base classes built by `super().__init__(...)`, `self.add_module(...)` and functional
dropout in its methods. What a value *is* (an expression followed across assignments, calls
and parameters) is `extract.Extractor`'s, which subclasses this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Optional

import libcst as cst

from evallint.torch_facts import MODE_METHODS, MODULE_RETURNING_METHODS
from evallint.verifier.class_facts import (
    called_attributes,
    called_but_unfollowed,
    foreign_bases,
    parameter_attribute,
    reads_training,
    super_init_call,
)
from evallint.verifier.conditions import live_assignments, only_if
from evallint.verifier.extract_project import ProjectReader
from evallint.verifier.layer_spec import UNKNOWN
from evallint.verifier.resolution import (
    MAX_DEPTH,
    Bound,
    Ctx,
    Found,
    Instance,
    Value,
    functional_layer,
    last_assignment,
    literal,
)
from evallint.verifier.settings import plain_setting
from evallint.verifier.source_index import (
    NOT_MODULES,
    Assignment,
    SourceFile,
    dotted_or_none,
    init_of,
    inside,
    param_names,
)

RETURNS_MODULE = MODULE_RETURNING_METHODS | MODE_METHODS
"""Methods whose result is the module they were called on."""


class ClassReader(ProjectReader, ABC):
    """The layers of project-class instances; expressions are the subclass's."""

    @abstractmethod
    def value(self, expr: cst.BaseExpression, ctx: Ctx) -> Value: ...

    @abstractmethod
    def found(self, value: Value, ctx: Ctx) -> Found: ...

    @abstractmethod
    def factory(
        self, file: SourceFile, func: cst.FunctionDef, call: cst.Call, ctx: Ctx
    ) -> Value: ...

    @abstractmethod
    def torch_nn(self, kind: str, call: cst.Call, ctx: Ctx) -> Found: ...

    def instance_layers(
        self,
        inst: Instance,
        depth: int,
        only: Optional[set[str]] = None,
        methods: Optional[set[cst.FunctionDef]] = None,
    ) -> Found:
        """The layers of a project-class instance; with `only` (the `self.x` a method reads)
        and `methods` (the methods it runs), just those (see `method_reach`)."""
        key = (inst.file.path, inst.cls.name.value)
        root = f"class {inst.cls.name.value} ({inst.file.path.name}:{inst.file.line(inst.cls)})"
        if key in self.active:
            return Found(unresolved=[f"class {inst.cls.name.value} contains itself"], root=root)
        self.active.add(key)
        try:
            out = Found(root=root)
            built = inst.built  # the construction call reaches the first `__init__` up the chain
            for cls_file, cls in self.class_chain(inst.file, inst.cls):
                bindings = inst.bindings if cls is inst.cls else {}
                built = built if init_of(cls) is None else None
                out.extend(self.class_body(cls_file, cls, bindings, depth + 1, only, methods))
                out.extend(self.class_bases(cls_file, cls, bindings, depth + 1, built))
                out.unresolved.extend(reads_training(cls_file, cls))
            return out
        finally:
            self.active.discard(key)

    def class_bases(
        self,
        file: SourceFile,
        cls: cst.ClassDef,
        bindings: dict[str, Bound],
        depth: int,
        built: Optional[tuple[cst.Call, Ctx]] = None,
    ) -> Found:
        """A subclassed torch layer or container is built by `super().__init__(...)`, or, when
        no class up to it defines `__init__`, by the construction call itself (`built`); any
        other base that is not a project class may hold layers evallint cannot see."""
        out = Found()
        project = {
            dotted
            for base in cls.bases
            if (dotted := dotted_or_none(base.value)) is not None
            and (found := self.project_callable(dotted, Ctx(file, None, None, {}, 0, 0)))
            and isinstance(found[1], cst.ClassDef)
        }
        for qualified in foreign_bases(file, cls, project):
            kind = qualified.rsplit(".", 1)[-1]
            call = super_init_call(file, cls)
            where = f"class {cls.name.value} ({file.path.name}:{file.line(cls)})"
            if qualified.startswith("torch.nn.") and call is not None:
                ctx = Ctx(file, init_of(cls), cls, bindings, file.line(call), depth)
                out.extend(self.torch_nn(kind, call, ctx))
            elif qualified.startswith("torch.nn.") and built is not None and init_of(cls) is None:
                # `class ScaledEmbedding(nn.Embedding)` with no `__init__`: torch's constructor
                # takes the arguments of `ScaledEmbedding(n, 32)`
                out.extend(self.torch_nn(kind, built[0], built[1]))
            elif qualified.startswith("torch.nn.") and kind in ("ModuleList", "ModuleDict"):
                continue  # filled by self.append/add_module/[...] =, which class_body reads
            else:
                out.unresolved.append(
                    f"base class `{qualified}` of {where} is not a project class evallint can read"
                )
        return out

    def class_body(
        self,
        file: SourceFile,
        cls: cst.ClassDef,
        bindings: dict[str, Bound],
        depth: int,
        only: Optional[set[str]] = None,
        methods: Optional[set[cst.FunctionDef]] = None,
    ) -> Found:
        out = Found()
        init = init_of(cls)
        in_init: dict[str, list[Assignment]] = {}
        elsewhere: dict[str, Assignment] = {}
        for assign in file.assignments:
            if (
                assign.func is None
                or not assign.target.startswith("self.")
                or assign.target.count(".") != 1
                or not inside(file, assign.func, cls)
                or (only is not None and assign.target not in only)
            ):
                continue
            if assign.func is init:
                in_init.setdefault(assign.target, []).append(assign)
            else:
                elsewhere[assign.target] = assign
        # the live values: those of __init__, else the last one elsewhere
        chosen = {target: [a] for target, a in elsewhere.items()}
        chosen.update(in_init)
        called = called_attributes(file, cls)
        for assigns in chosen.values():
            ctx_of = lambda a: Ctx(  # noqa: E731
                file, a.func, cls, bindings if a.func is init else {}, a.line, depth
            )
            for assign, undecided in live_assignments(assigns, ctx_of):
                ctx = ctx_of(assign)
                found = self.attribute_value(assign, ctx)
                if not (found.layers or found.unresolved or found.root):
                    found.unresolved.extend(called_but_unfollowed(assign, file, called))
                what = f"`{assign.target}` ({file.path.name}:{assign.line})"
                out.extend(only_if(found, undecided, what))
        for call, func in file.calls:
            if func is None or not inside(file, func, cls):
                continue
            if methods is None or func in methods or func is init:
                out.extend(self.call_in_class(call, func, cls, file, bindings, depth))
        return out

    def attribute_value(self, assign: Assignment, ctx: Ctx) -> Found:
        """The layers one `self.x = value` contributes; values that are not modules add nothing."""
        value = assign.value
        if isinstance(value, cst.Call):
            dotted = dotted_or_none(value.func)
            if dotted is not None and NOT_MODULES.match(ctx.file.qualify(dotted)):
                return parameter_attribute(assign, value, ctx)
            if isinstance(value.func, cst.Attribute) and dotted_or_none(value.func.value) == "self":
                method = value.func.attr.value
                if method not in RETURNS_MODULE:
                    return self.method_factory(method, value, ctx)
            return self.found(self.value(value, ctx), ctx)
        local = isinstance(value, cst.Name) and last_assignment(
            ctx.file, value.value, ctx.func, ctx.line
        )
        if isinstance(value, cst.Name) and value.value in ctx.bindings and not local:
            if literal(value, ctx) is not UNKNOWN or plain_setting(self, value.value, ctx):
                return Found()
            return self.found(self.value(value, ctx), ctx)
        if isinstance(value, cst.Name):
            return self.named_value(assign, value.value, ctx)
        if isinstance(value, (cst.IfExp, cst.BooleanOperation)):  # either side may be it
            out = Found()
            sides = (
                (value.body, value.orelse)
                if isinstance(value, cst.IfExp)
                else (value.left, value.right)
            )
            for side in sides:
                out.extend(self.attribute_value(replace(assign, value=side), ctx))
            return out
        return Found()

    def named_value(self, assign: Assignment, name: str, ctx: Ctx) -> Found:
        """`self.x = name`, `name` a local, module-level or imported name: judged like the
        value it was given (a name imported from outside torch is unresolved)."""
        file = ctx.file
        if ctx.depth > MAX_DEPTH or name in ("None", "True", "False", "self"):
            return Found()
        local = last_assignment(file, name, ctx.func, ctx.line)
        if local is None and ctx.func is not None and name in param_names(ctx.func):
            # a parameter of a method other than the constructor: only what it certainly holds
            found = self.found(self.value(cst.Name(name), ctx), ctx)
            return found if found.layers else Found()
        if local is None:
            local = last_assignment(file, name, None, 10**9 if ctx.func is not None else ctx.line)
            if local is not None:
                ctx = Ctx(file, None, None, {}, local.line, ctx.depth + 1)
        if local is not None:
            inner = Assignment(assign.target, local.value, local.line, ctx.func)
            return self.attribute_value(inner, ctx.at(local.line))
        if name in file.imports:
            module = file.imports[name][0]
            if self.project_callable(name, ctx) is not None:
                return Found()  # a project class or function itself, not a module instance
            if module.startswith("torch.nn.") and not module.startswith("torch.nn.functional"):
                return Found()  # a class, not an instance (`self.act = nn.ReLU` is a type)
            if module.split(".")[0] in ("math", "numpy", "torch", "typing", "os", "sys"):
                return Found()
            return Found(
                unresolved=[
                    f"`{assign.target} = {name}` at {file.path.name}:{assign.line}: `{name}` is "
                    f"imported from `{module}`, and evallint does not follow imported values"
                ]
            )
        return Found()

    def method_factory(self, method: str, call: cst.Call, ctx: Ctx) -> Found:
        assert ctx.cls is not None
        for func in ctx.file.functions.get(method, []):
            if inside(ctx.file, func, ctx.cls):
                return self.found(self.factory(ctx.file, func, call, ctx), ctx)
        return Found(
            unresolved=[
                f"`self.{method}(...)` at {ctx.file.path.name}:{ctx.line} is not defined in class {ctx.cls.name.value}"
            ]
        )

    def call_in_class(
        self,
        call: cst.Call,
        func: cst.FunctionDef,
        cls: cst.ClassDef,
        file: SourceFile,
        bindings: dict[str, Bound],
        depth: int,
    ) -> Found:
        """`self.add_module(name, m)` and functional dropout/rrelu calls inside the class."""
        callee = call.func
        dotted = dotted_or_none(callee)
        if dotted in ("self.add_module", "self.register_module") and len(call.args) >= 2:
            ctx = Ctx(
                file, func, cls, bindings if func is init_of(cls) else {}, file.line(call), depth
            )
            return self.found(self.value(call.args[1].value, ctx), ctx)
        if dotted is None:
            return Found()
        return functional_layer(call, Ctx(file, func, cls, {}, file.line(call), depth), dotted)
