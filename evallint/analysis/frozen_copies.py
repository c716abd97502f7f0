"""Objects whose parameters never require grad: a library's averaged copy of a model (an EMA
wrapper that calls `requires_grad_(False)` on the copy it makes), or a class attribute that
its class's constructor freezes after building it (`self.ema = copy.deepcopy(model)` then
`self.ema.requires_grad_(False)`). A forward or method of such an object records none of
its own parameters: only a graph its inputs carry reaches the output. EVL006 reads this
through the provenance of a call's value (provenance.py)."""

from __future__ import annotations

from typing import Callable, Optional, cast

import libcst as cst

from evallint.analysis.scope import (
    ClassInfo,
    _chained_requires_grad,
    _requires_grad_flag,
    frozen_modules,
)
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import FROZEN_COPY_CLASSES, SAME_MODULE_OR_MODE_METHODS


def builds_frozen_copy(value: Optional[cst.CSTNode], qualify: Callable) -> bool:
    """`EMA(model, beta=0.99)` of a library whose averaged copy is frozen, or a chain that
    ends by freezing what it built (`copy.deepcopy(model).requires_grad_(False)`), through
    methods returning the module (`.to(device)`)."""
    if not isinstance(value, cst.BaseExpression):
        return False
    if _chained_requires_grad(value) is False:
        return True
    value = chain_receiver(value, SAME_MODULE_OR_MODE_METHODS)
    return type(value) is cst.Call and (qualify(value.func) or "") in FROZEN_COPY_CLASSES


def frozen_attribute(owner: ClassInfo, attribute: str, qualify: Callable) -> bool:
    """`self.<attribute>` of `owner` holds a frozen copy: the class assigns it only in its
    constructor, at the top level of its body, with a frozen copy or a local name the
    statements before froze, or freezes it in the statements after its last assignment there (`requires_grad_(False)`, or `for p in
    self.ema.parameters(): p.requires_grad = False`). Another assignment anywhere (a
    method that rebinds it) leaves it unknown."""
    init = owner.methods.get("__init__")
    if init is None:
        return False
    path = f"self.{attribute}"
    statements = list(init.node.body.body)
    last: Optional[int] = None
    built_frozen = False
    for index, statement in enumerate(statements):
        for value in _assigned_values(statement, path):
            last, built_frozen = (
                index,
                builds_frozen_copy(value, qualify)
                or (
                    # `for p in model.parameters(): p.requires_grad = False`, then
                    # `self.model = model`
                    type(value) is cst.Name and value.value in frozen_modules(statements[:index])
                ),
            )
    if last is None or _assigned_elsewhere(owner, init, path):
        return False
    return built_frozen or path in frozen_modules(statements[last + 1 :])


def _assigned_values(statement: cst.CSTNode, path: str) -> list[cst.BaseExpression]:
    """The values a top-level statement assigns to `path` (`self.ema = ...`)."""
    if type(statement) is not cst.SimpleStatementLine:
        return []
    found: list[cst.BaseExpression] = []
    for small in statement.body:
        if type(small) is cst.Assign:
            if any(dotted_name(t.target) == path for t in small.targets):
                found.append(small.value)
        elif type(small) is cst.AnnAssign and small.value is not None:
            if dotted_name(small.target) == path:
                found.append(small.value)
    return found


def _assigned_elsewhere(owner: ClassInfo, init, path: str) -> bool:
    """`path` is assigned in a method other than the constructor, or inside a block of
    the constructor (a branch may build something else)."""
    return path in _paths_assigned_elsewhere(owner, init)


def _paths_assigned_elsewhere(owner: ClassInfo, init) -> frozenset[str]:
    """The dotted targets (`self.ema`) assigned in a method other than `init`, or inside a
    block of `init`: one walk of the class's methods, kept on the class for every
    attribute asked (it was one walk per attribute) while its methods stay the same."""
    from evallint.analysis.walk import iter_nodes

    methods = tuple(owner.methods.values())
    cached = owner.__dict__.get("_paths_assigned_elsewhere")
    if (
        cached is not None
        and cached[1] is init
        and len(cached[0]) == len(methods)
        and all(a is b for a, b in zip(cached[0], methods))
    ):
        return cached[2]
    found: set[str] = set()
    for method in methods:
        top = set(map(id, method.node.body.body)) if method is init else set()
        for statement in method.node.body.body:
            if id(statement) in top and type(statement) is cst.SimpleStatementLine:
                continue
            for node in iter_nodes(statement):
                targets: list[cst.BaseExpression] = []
                if type(node) is cst.Assign:
                    targets = [t.target for t in node.targets]
                elif type(node) in (cst.AnnAssign, cst.AugAssign):
                    targets = [node.target]  # type: ignore[attr-defined]
                for target in targets:
                    name = dotted_name(target)
                    if name is not None:
                        found.add(name)
    paths = frozenset(found)
    owner.__dict__["_paths_assigned_elsewhere"] = (methods, init, paths)
    return paths


def frozen_when_built(owner: ClassInfo) -> frozenset[str]:
    """The attributes of `owner` (`self.identity`) that only ever hold frozen modules: every
    method that binds one freezes it in the statements after its last binding in the same
    block (`self.net = build(); for p in self.net.parameters(): p.requires_grad = False`, or
    `self.net.requires_grad_(False)`), and no method of the class unfreezes it or a part of
    it, or replaces a part of it (new parameters would train). Whichever method builds it
    (a constructor, or a `setup()` it calls), the attribute exists only frozen: a backward
    through its forward gives its parameters no gradient and no optimizer step changes them,
    so it is never trained (a loss network, a teacher), and its forward records none of its
    own parameters. One walk of the class, kept on the class while its methods stay the
    same."""
    methods = tuple(owner.methods.values())
    cached = owner.__dict__.get("_frozen_when_built")
    if cached is not None and len(cached[0]) == len(methods):
        if all(a is b for a, b in zip(cached[0], methods)):
            return cast(frozenset, cached[1])
    found = _frozen_when_built(methods)
    owner.__dict__["_frozen_when_built"] = (methods, found)
    return found


def _frozen_when_built(methods: tuple) -> frozenset[str]:
    from evallint.analysis.walk import iter_nodes

    last_binding: dict[str, list[tuple[list, int]]] = {}
    """path -> (block statements, index of the path's last binding there)"""
    spoiled: set[str] = set()
    """Paths bound otherwise (`+=`, a tuple target), or with a part replaced or thawed."""
    thawed_roots: list[str] = []
    for method in methods:
        for node in iter_nodes(method.node):
            if type(node) is cst.IndentedBlock:
                block = list(node.body)
                for index, statement in enumerate(block):
                    for path in _bound_paths(statement):
                        rows = last_binding.setdefault(path, [])
                        if rows and rows[-1][0] is block:
                            rows[-1] = (block, index)
                        else:
                            rows.append((block, index))
            elif type(node) in (cst.AugAssign, cst.AnnAssign, cst.Assign):
                targets = (
                    [t.target for t in node.targets] if type(node) is cst.Assign else [node.target]  # type: ignore[attr-defined]
                )
                for target in targets:
                    name = dotted_name(target) or ""
                    if type(node) is cst.AugAssign and name.startswith("self."):
                        spoiled.add(name)
                    if name.startswith("self.") and name.count(".") > 1:
                        spoiled.add(name.rsplit(".", 1)[0])  # `self.net.fc = nn.Linear(...)`
                    if type(target) is cst.Tuple:
                        spoiled.update(dotted_name(e.value) or "" for e in target.elements)
            thawed_roots.extend(_thawed(node))
    return frozenset(
        path
        for path, rows in last_binding.items()
        if path not in spoiled
        and not any(
            root == path or root.startswith(path + ".") or path.startswith(root + ".")
            for root in thawed_roots
        )
        and all(path in frozen_modules(block[index + 1 :]) for block, index in rows)
    )


def _bound_paths(statement: cst.CSTNode) -> list[str]:
    """`self.X` paths a simple statement binds (`self.net = ...`)."""
    if type(statement) is not cst.SimpleStatementLine:
        return []
    found: list[str] = []
    for small in statement.body:
        targets: list[cst.BaseExpression] = []
        if type(small) is cst.Assign:
            targets = [t.target for t in small.targets]
        elif type(small) is cst.AnnAssign and small.value is not None:
            targets = [small.target]
        for target in targets:
            name = dotted_name(target)
            if name is not None and name.startswith("self.") and name.count(".") == 1:
                found.append(name)
    return found


def _thawed(node: cst.CSTNode) -> list[str]:
    """The modules a node may make trainable: `x.requires_grad_()` / `(True)` / `(flag)`,
    or `for p in x.parameters(): p.requires_grad = <anything but False>`."""
    if type(node) is cst.Call:
        func = node.func
        if type(func) is cst.Attribute and func.attr.value == "requires_grad_":
            if _requires_grad_flag(node, None) is not False:
                receiver = chain_receiver(func.value, SAME_MODULE_OR_MODE_METHODS)
                return [dotted_name(receiver) or _root_of(receiver)]
        return []
    if type(node) is not cst.For:
        return []
    loop = node
    if type(loop.iter) is not cst.Call or type(loop.iter.func) is not cst.Attribute:
        return []
    if loop.iter.func.attr.value not in ("parameters", "named_parameters"):
        return []
    from evallint.analysis.walk import iter_nodes

    for inner in iter_nodes(loop.body):
        if type(inner) is cst.Assign and any(
            (dotted_name(t.target) or "").endswith(".requires_grad") for t in inner.targets
        ):
            value = inner.value
            if not (type(value) is cst.Name and value.value == "False"):
                return [dotted_name(loop.iter.func.value) or _root_of(loop.iter.func.value)]
    return []


def _root_of(expr: cst.BaseExpression) -> str:
    """`self.nets` for `self.nets[0]`: the dotted name a subscript or call starts from."""
    while type(expr) in (cst.Subscript, cst.Call, cst.Attribute):
        name = dotted_name(expr)
        if name is not None:
            return name
        expr = expr.value if type(expr) is not cst.Call else expr.func  # type: ignore[attr-defined]
    return dotted_name(expr) or ""
