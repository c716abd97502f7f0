"""Static layer extraction: which torch layers does the module a finding names contain?

The verifier never runs a user's script to learn its model: it follows the finding's subject
through assignments, wrappers, parameters (every call site), project classes (attributes,
containers, bases, functional dropout), factories and a table of library models, and says what
stopped it when it cannot follow. Class facts read from source alone are in `class_facts`;
the layers a project-class instance holds in `extract_classes`; parses, call sites and
definitions by name in `extract_project` (the two base classes of `Extractor`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import libcst as cst

from evallint.torch_facts import (
    CONTAINERS,
    MODE_INDEPENDENT,
    MODE_INDEPENDENT_SUFFIXES,
    MODE_SENSITIVE,
    POSITIONAL,
    WRAPPER_SUFFIXES,
    WRAPPERS,
)
from evallint.verifier.alternatives import element_name, element_of, one_of_returns
from evallint.verifier.assumptions import assumed_args
from evallint.verifier.callee_subject import head_name, returned_element, through_call
from evallint.verifier.class_facts import bind, container_elements, list_elements
from evallint.verifier.conditions import only_if
from evallint.verifier.extract_classes import RETURNS_MODULE, ClassReader
from evallint.verifier.layer_spec import Extraction, LayerSpec
from evallint.verifier.library_calls import library_layers
from evallint.verifier.method_reach import method_layers
from evallint.verifier.parameters import parameter
from evallint.verifier.resolution import (
    MAX_DEPTH,
    Ctx,
    Found,
    Instance,
    Value,
    last_assignment,
    literal_args,
    not_a_module,
)
from evallint.verifier.scopes import chain_bindings, closure
from evallint.verifier.source_index import (
    SourceFile,
    call_arg,
    dotted_or_none,
    init_of,
    inside,
    param_names,
    return_statements,
)

MAX_ASSIGNMENTS = 6
"""Assignments to one `self.attr` followed."""


class Extractor(ClassReader):
    """Follows expressions across the files of one project, caching parses."""

    # entry point

    def subject(self, file: SourceFile, subject: str, line: int) -> Found:
        func = file.enclosing_function(line)
        ctx = Ctx(file, func, file.class_of(func), {}, line, 0)
        try:
            expr = cst.parse_expression(subject)
        except cst.ParserSyntaxError:
            return Found(unresolved=[f"subject `{subject}` is not an expression"])
        found = self.found(self.value(expr, ctx), ctx)
        head = head_name(expr)
        stopped = found.unresolved[0] if found.unresolved else ""
        if (
            head is not None
            and not (found.layers or found.root)
            and (
                stopped == f"no assignment to `{head}` found in {file.path.name}"
                or (  # a test class's `self`, which never sets the callee's attribute
                    head == "self"
                    and ctx.cls is not None
                    and stopped.startswith("no `self.")
                    and stopped.endswith(f"= ...` in class {ctx.cls.name.value}")
                )
            )
        ):  # the callee's name for the module, reported at the call (`callee_subject`)
            return through_call(self, expr, head, ctx) or found
        return found

    def found(self, value: Value, ctx: Ctx) -> Found:
        if isinstance(value, Instance):
            return self.instance_layers(value, ctx.depth)
        return value

    # expressions

    def value(self, expr: cst.BaseExpression, ctx: Ctx) -> Value:
        code = ctx.file.code(expr)
        if ctx.depth > MAX_DEPTH:
            return Found(unresolved=[f"gave up following `{code}` after {MAX_DEPTH} steps"])
        if not_a_module(expr):
            return Found()  # a number, text, flag or arithmetic result holds no layer
        if isinstance(expr, cst.Name):
            return self.name(expr.value, ctx)
        if (
            isinstance(expr, cst.Subscript)
            and isinstance(expr.value, cst.Call)
            and len(expr.slice) == 1
            and isinstance(expr.slice[0].slice, cst.Index)
            and isinstance(expr.slice[0].slice.value, cst.Integer)
        ):  # `a, b = build()` is recorded as `build()[0]`, `build()[1]`
            return returned_element(
                self, expr.value, int(expr.slice[0].slice.value.evaluated_value), ctx
            )
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
            return self.value(expr.elt, ctx)  # every element is built by the same expression
        listed = dotted_or_none(expr.value) if isinstance(expr, cst.Subscript) else None
        if listed is not None and (listed.count(".") == 0 or listed.startswith("self.")):
            index = expr.slice[0].slice if isinstance(expr, cst.Subscript) else None
            key = index.value if isinstance(index, cst.Index) else None
            return element_of(self, listed, ctx, key)
        if isinstance(expr, cst.Attribute):
            return self.attribute(expr, ctx)
        if isinstance(expr, cst.Call):
            return self.call(expr, ctx)
        if isinstance(expr, cst.IfExp):
            return self.either(expr, ctx)
        return Found(
            unresolved=[
                f"`{code}` at {ctx.file.path.name}:{ctx.file.line(expr)} is not a construction evallint can follow"
            ]
        )

    def either(self, expr: cst.IfExp, ctx: Ctx) -> Value:
        """`a if cond else b`: the module is one of the two, so both are followed (a
        mode-dependent layer in either branch counts; `not affected` needs both resolved)."""
        body, orelse = self.value(expr.body, ctx), self.value(expr.orelse, ctx)
        if (
            isinstance(body, Instance)
            and isinstance(orelse, Instance)
            and body.cls is orelse.cls
            and body.bindings.keys() == orelse.bindings.keys()
            and all(body.bindings[k].expr is orelse.bindings[k].expr for k in body.bindings)
        ):
            return body  # the same instance on both branches (`m.train() if t else m.eval()`)
        out = Found()
        out.extend(self.found(body, ctx))
        out.extend(self.found(orelse, ctx))
        return out

    def name(self, name: str, ctx: Ctx) -> Value:
        where = f"{ctx.file.path.name}"
        if name == "self" and ctx.instance is not None:
            return ctx.instance
        if name == "self" and ctx.cls is not None:
            return Instance(ctx.file, ctx.cls, dict(ctx.bindings))
        if name in ctx.bindings:
            bound = ctx.bindings[name]
            if bound.expr is None or bound.ctx is None:
                return Found(
                    unresolved=[f"`{name}` is a parameter with no argument or default to follow"]
                )
            return self.value(bound.expr, bound.ctx.at(bound.ctx.line))
        local = last_assignment(ctx.file, name, ctx.func, ctx.line)
        if local is not None and isinstance(local.value, (cst.List, cst.Tuple)):
            # a list of modules built here (`layers = []; layers.append(...)`; returned)
            out = Found()
            for element, test in list_elements(name, ctx):
                if isinstance(element, cst.Name) and element.value == name:
                    out.unresolved.append(
                        f"list `{name}` at {where}:{local.line} is grown in a way evallint "
                        "cannot read"
                    )
                else:
                    found = self.found(self.value(element, ctx.at(ctx.line)), ctx)
                    out.extend(only_if(found, test, element_name(element, ctx) if test else ""))
            if not (out.layers or out.unresolved):
                out.unresolved.append(f"list `{name}` at {where}:{local.line} holds no module")
            return out
        if local is not None:
            return self.value(local.value, ctx.at(local.line - 1))
        if ctx.func is not None and name in param_names(ctx.func):
            return parameter(self, name, ctx)
        closed = closure(self, name, ctx)
        if closed is not None:
            return closed
        module_level = last_assignment(
            ctx.file, name, None, ctx.line if ctx.func is None else 10**9
        )
        if module_level is not None:
            return self.value(
                module_level.value,
                Ctx(ctx.file, None, None, {}, module_level.line - 1, ctx.depth + 1),
            )
        if name in ctx.file.classes:
            return Found(unresolved=[f"`{name}` is the class itself, not an instance"])
        return Found(unresolved=[f"no assignment to `{name}` found in {where}"])

    def attribute(self, expr: cst.Attribute, ctx: Ctx) -> Value:
        owner = self.value(expr.value, ctx)
        attr = expr.attr.value
        if isinstance(owner, Instance):
            return self.instance_attribute(owner, attr, ctx.depth + 1)
        if owner.layers or owner.root:
            return Found(
                unresolved=[f"attribute `.{attr}` of a {owner.root or 'module'} is not followed"]
            )
        return owner

    def instance_attribute(self, inst: Instance, attr: str, depth: int) -> Value:
        """`self.attr`: every value the nearest class that assigns it gives it (a `None`
        placeholder is not a value); several values are followed like several callers."""
        key = (inst.file.path, f"{inst.cls.name.value}.{attr}")
        if key in self.active:
            return Found()  # `self.net = f(self.net)`: the other assignments decide
        along = chain_bindings(self, inst, depth)
        for cls_file, cls in self.class_chain(inst.file, inst.cls):
            assigns = [
                a
                for a in cls_file.assignments
                if a.target == f"self.{attr}"
                and a.func is not None
                and inside(cls_file, a.func, cls)
                and not (isinstance(a.value, cst.Name) and a.value.value == "None")
            ]
            if not assigns:
                continue
            self.active.add(key)
            try:
                values = [
                    self.value(
                        a.value,
                        Ctx(
                            cls_file,
                            a.func,
                            cls,
                            along.get(id(cls), {}),
                            a.line,
                            depth,
                            None if cls is inst.cls else inst,
                        ),
                    )
                    for a in assigns[:MAX_ASSIGNMENTS]
                ]
            finally:
                self.active.discard(key)
            kept = [
                v for v in values if isinstance(v, Instance) or v.layers or v.unresolved or v.root
            ]
            if len(kept) == 1:
                # `self.net = Net(); self.net = self.net.to(d)`: the other assignments add nothing
                return kept[0]
            out = Found()
            for value, a in zip(values, assigns):
                out.extend(self.found(value, Ctx(cls_file, a.func, cls, {}, a.line, depth)))
            return out
        reached = method_layers(self, inst, attr, depth)
        if reached is not None:  # `self.model.validation_step`: what that method reaches
            return reached
        return Found(unresolved=[f"no `self.{attr} = ...` in class {inst.cls.name.value}"])

    def call(self, call: cst.Call, ctx: Ctx) -> Value:
        callee = call.func
        file = ctx.file
        line = file.line(call)
        if isinstance(callee, cst.Attribute) and dotted_or_none(callee.value) == "self":
            method = self.own_method(callee.attr.value, ctx)
            if method is not None:  # `self.build_net(cfg)`: the project's method builds it
                return self.factory(*method, call, ctx)
        if isinstance(callee, cst.Attribute) and callee.attr.value in RETURNS_MODULE:
            return self.value(callee.value, ctx)
        if isinstance(callee, cst.Attribute) and callee.attr.value in (
            "from_pretrained",
            "from_config",
        ):
            return library_layers(file.qualify(dotted_or_none(callee.value) or ""), call, ctx)
        dotted = dotted_or_none(callee)
        if dotted is None:
            return Found(
                unresolved=[
                    f"call `{file.code(call)}` at {file.path.name}:{line} is not a named constructor"
                ]
            )
        qualified = file.qualify(dotted)
        if qualified in WRAPPERS or qualified.endswith(WRAPPER_SUFFIXES):
            first = call_arg(call, 0, "module") or call_arg(call, 0, "model")
            if first is None:
                return Found(unresolved=[f"`{dotted}(...)` wraps nothing evallint can see"])
            return self.value(first, ctx)
        if qualified.startswith("torch.nn.") and not qualified.startswith("torch.nn.functional."):
            return self.torch_nn(qualified.rsplit(".", 1)[1], call, ctx)
        if qualified.startswith(
            ("torchvision.models.", "timm.", "transformers.", "torch.hub.load")
        ):
            return library_layers(qualified, call, ctx)
        project = self.project_callable(dotted, ctx)
        if project is not None:
            target_file, node = project
            if isinstance(node, cst.ClassDef):
                bindings = bind(target_file, init_of(node), call, ctx)
                return Instance(target_file, node, bindings, (call, ctx))
            return self.factory(target_file, node, call, ctx)
        head = dotted.split(".")[0]
        if head in file.imports:
            module = file.imports[head][0]
            return Found(
                unresolved=[
                    f"`{dotted}(...)` at {file.path.name}:{line} comes from `{module}`, which is neither a project file "
                    "evallint found nor a library in its table"
                ]
            )
        return Found(
            unresolved=[
                f"`{dotted}(...)` at {file.path.name}:{line} is neither a torch.nn layer, a class or factory "
                "in this project, nor a known torchvision/timm/transformers constructor"
            ]
        )

    def torch_nn(self, kind: str, call: cst.Call, ctx: Ctx) -> Found:
        file = ctx.file
        line = file.line(call)
        if kind in ("Sequential", "ModuleList", "ModuleDict"):
            out = Found(root=f"nn.{kind} ({file.path.name}:{line})")
            for element, test in container_elements(call, ctx):
                found = self.found(self.value(element, ctx), ctx)
                out.extend(only_if(found, test, element_name(element, ctx) if test else ""))
            return out
        if kind in CONTAINERS:
            layer = call_arg(call, 0, POSITIONAL[kind][0])
            if layer is None:
                return Found(
                    unresolved=[f"nn.{kind} at {file.path.name}:{line} has no layer argument"]
                )
            return self.found(self.value(layer, ctx), ctx)
        if (
            kind in MODE_INDEPENDENT
            or kind in MODE_SENSITIVE
            or kind.endswith(MODE_INDEPENDENT_SUFFIXES)
        ):
            names = POSITIONAL.get(kind, ())
            params, unread = literal_args(call, names, ctx)
            assumed_values, assumed = assumed_args(call, names, ctx, unread)
            params.update(assumed_values)
            unread = tuple(u for u in unread if u not in assumed_values)
            spec = LayerSpec(kind, params, str(file.path), line, "source", unread, assumed=assumed)
            return Found(layers=[spec])
        return Found(
            unresolved=[f"nn.{kind} at {file.path.name}:{line} is not in evallint's layer table"]
        )

    def factory(self, file: SourceFile, func: cst.FunctionDef, call: cst.Call, ctx: Ctx) -> Value:
        """A project function that builds the model: follow its (last) return value."""
        returns = [r for r in return_statements(func) if r.value is not None]
        if not returns:
            return Found(
                unresolved=[
                    f"factory `{func.name.value}` at {file.path.name}:{file.line(func)} returns nothing evallint can follow"
                ]
            )
        bindings = bind(file, func, call, ctx)

        def returned(ret: cst.Return) -> Value:
            assert ret.value is not None
            fctx = Ctx(file, func, file.class_of(func), bindings, file.line(ret), ctx.depth + 1)
            return self.value(ret.value, fctx)

        last = returned(returns[-1])
        if len(returns) == 1:
            return last
        # several returns: the module is one of them (which one was not decided)
        others = [self.found(returned(r), ctx) for r in returns[:-1][-MAX_ASSIGNMENTS:]]
        return one_of_returns(self, func, file, others, last, ctx)


def extract_layers(
    path: Union[str, Path], subject: str, line: int, extractor: Optional[Extractor] = None
) -> Extraction:
    """The layers of the module `subject` as seen at `path:line` (where the finding points).

    `line` matters: it picks the enclosing function (for `self` and parameters) and which
    assignment to a variable is the live one. An `extractor` shared by the findings of one
    `verify` call parses each file and searches each function's callers once for all.
    """
    extractor = extractor or Extractor()
    file = extractor.file(Path(path))
    if file is None:
        return Extraction((), (f"cannot read or parse {path}",), "")
    if not subject:
        return Extraction((), ("the finding names no module (empty subject)",), "")
    found = extractor.subject(file, subject, line)
    unresolved = tuple(dict.fromkeys(found.unresolved))
    if not found.root and not found.layers and not unresolved:
        unresolved = (f"`{subject}` was not followed to any construction",)
    return Extraction(
        tuple(found.layers), unresolved, found.root, found.caller, tuple(found.parameters)
    )
