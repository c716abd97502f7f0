"""Methods of a module class that run only parts whose mode the class sets itself.

`model.log_images(x)` where `log_images` runs `self.vqgan` (built in eval mode by the
constructor: `self.vqgan = self.load_vqgan(args)`, whose `load_vqgan` returns `model.eval()`)
and `self.sample(...)`, which calls `self.transformer.eval()` before running the transformer:
no forward of the method runs a part in the mode its caller left the module in. Two kinds:

- switched: every part the method (or a method of the class it calls) runs is switched to
  eval by a statement of that method before the statement that runs it (`self.X.eval()` at
  the top level of its body). It runs in eval mode whatever its caller's mode, as a method
  opening with `self.eval()` does (forward_methods._switches_itself).
- kept: the other parts it runs are ones the constructor leaves in eval mode and no method of
  the class switches back, rebinds, or reaches with a `self.train(...)` of the whole module.
  They stay in eval mode until someone calls `train()` on the whole module: a module still
  as built (not switched to training since) runs them in eval mode.

A call of `self(...)` or `self.forward(...)`, or of any part the method does not switch (nor,
for `kept`, the constructor keep in eval mode), runs in the caller's mode: the method is
neither. Read from the class's own bodies (CPython's parser), never from names.
"""

from __future__ import annotations

import ast
from typing import Optional, Union

from evallint.torch_facts import MODULE_API

_RETURNS_MODULE = frozenset({"to", "cuda", "cpu", "float", "half", "double", "requires_grad_"})
"""Module methods that return the module they were called on, keeping its mode."""

_Method = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def _self_chain(node: ast.expr) -> Optional[list[str]]:
    """`self.vqgan.encode` -> ['vqgan', 'encode']; None when not rooted at `self`."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "self" and parts:
        return parts[::-1]
    return None


def _switch(statement: ast.stmt) -> Optional[tuple[str, bool]]:
    """`self.X.eval()` -> (X, True); `self.X.train()` (any flag) -> (X, False)."""
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return None
    chain = _self_chain(statement.value.func)
    if chain is None or len(chain) != 2 or chain[1] not in ("eval", "train"):
        return None
    call = statement.value
    return chain[0], chain[1] == "eval" and not call.args and not call.keywords


def _ends_in_eval(value: ast.expr) -> bool:
    """`Model(...).eval()`, `model.eval().to(device)`: a chain of module-returning methods
    with `.eval()` in it."""
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        attribute = value.func.attr
        if attribute == "eval" and not value.args and not value.keywords:
            return True
        if attribute not in _RETURNS_MODULE:
            return False
        value = value.func.value
    return False


def _returns_eval_module(method: _Method) -> bool:
    """Every `return` of the method returns a module it left in eval mode: `return
    model.eval()`, or a name it bound to one (`model = model.eval()`) or switched with
    `model.eval()` as a statement of its own."""
    evaluated: set[str] = set()
    for node in ast.walk(method):
        if isinstance(node, ast.Assign) and _ends_in_eval(node.value):
            evaluated.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "eval"
            and isinstance(node.value.func.value, ast.Name)
        ):
            evaluated.add(node.value.func.value.id)
    returns = [n for n in ast.walk(method) if isinstance(n, ast.Return)]
    return bool(returns) and all(
        r.value is not None
        and (_ends_in_eval(r.value) or (isinstance(r.value, ast.Name) and r.value.id in evaluated))
        for r in returns
    )


def _built_in_eval(value: ast.expr, methods: dict[str, _Method]) -> bool:
    """A constructor's value for `self.X` that is a module in eval mode."""
    if _ends_in_eval(value):
        return True
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        called = value.func
        owner = called.value
        if isinstance(owner, ast.Name) and called.attr in methods and owner.id != "super":
            return _returns_eval_module(methods[called.attr])  # `self.load(...)`, `Cls.load(...)`
    return False


def kept_in_eval(methods: dict[str, _Method]) -> frozenset[str]:
    """The parts `X` the constructor leaves in eval mode (`self.X = <a module in eval
    mode>`, or `self.X.eval()` after binding it) and no other method switches back, rebinds
    or reaches through `self.train(...)` (see the module doc)."""
    init = methods.get("__init__")
    if init is None:
        return frozenset()
    found: dict[str, bool] = {}
    for statement in init.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            chain = _self_chain(statement.targets[0])
            if chain is not None and len(chain) == 1:
                found[chain[0]] = _built_in_eval(statement.value, methods)
            continue
        switched = _switch(statement)
        if switched is not None and switched[0] in found:
            found[switched[0]] = switched[1]
    kept = {name for name, in_eval in found.items() if in_eval}
    for name, method in methods.items():
        if name == "__init__" or not kept:
            continue
        for node in ast.walk(method):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                chain = _self_chain(node.func)
                if chain == ["train"]:
                    return frozenset()  # the whole module back to training, its parts too
                if chain is not None and len(chain) == 2 and chain[1] == "train":
                    kept.discard(chain[0])
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    chain = _self_chain(target)
                    if chain is not None:
                        kept.discard(chain[0])
    return frozenset(kept)


class _Reader:
    """The parts each method runs in its caller's mode (memoised, recursion-safe)."""

    def __init__(self, methods: dict[str, _Method]):
        self.methods = methods
        self.known: dict[str, Optional[tuple[frozenset[str], bool]]] = {}

    def needs(self, name: str) -> Optional[tuple[frozenset[str], bool]]:
        """(the parts `name` runs without switching them first, whether it runs any part);
        None when it runs the whole module (`self(...)`, `self.forward(...)`)."""
        if name in self.known:
            return self.known[name]
        self.known[name] = None  # a recursive call: the whole module, unknown
        method = self.methods[name]
        switched: set[str] = set()
        needed: set[str] = set()
        runs = False
        for statement in method.body:
            switch = _switch(statement)
            if switch is not None:
                (switched.add if switch[1] else switched.discard)(switch[0])
                continue
            for node in ast.walk(statement):
                used = self._used(node)
                if used is None:
                    return None
                for part in used:
                    if part.startswith("()"):
                        callee = self.needs(part[2:])
                        if callee is None:
                            return None
                        needed |= callee[0] - switched
                        runs = runs or callee[1]
                    else:
                        runs = True
                        if part not in switched:
                            needed.add(part)
        found = self.known[name] = (frozenset(needed), runs)
        return found

    def _used(self, node: ast.AST) -> Optional[set[str]]:
        """The parts `node` runs (`()m` for a method of the class it calls); None for a
        forward of the whole module."""
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "self":
                return None
            chain = _self_chain(node.func)
            if chain is None:
                return set()
            if chain[0] == "forward":
                return None
            if len(chain) == 1:
                if chain[0] in self.methods:
                    return {"()" + chain[0]}
                return set() if chain[0] in MODULE_API else {chain[0]}
            if chain[-1] in ("eval", "train"):
                return set()  # a switch under a condition: its part is used elsewhere, if run
            return {chain[0]}
        if isinstance(node, (ast.For, ast.comprehension, ast.Assign)):
            value = node.iter if not isinstance(node, ast.Assign) else node.value
            chain = _self_chain(value)
            if chain is not None and chain[0] not in self.methods:
                return {chain[0]}  # `for block in self.blocks`, `net = self.net`: run later
        return set()


def parts_in_own_mode(methods: dict[str, _Method]) -> tuple[frozenset[str], frozenset[str]]:
    """The class's (switched, kept) methods (see the module doc)."""
    reader = _Reader(methods)
    kept_parts: Optional[frozenset[str]] = None
    switched: set[str] = set()
    kept: set[str] = set()
    for name in methods:
        if name.startswith("__") or name == "forward":
            continue
        found = reader.needs(name)
        if found is None or not found[1]:
            continue
        needed = found[0]
        if not needed:
            switched.add(name)
            continue
        if kept_parts is None:
            kept_parts = kept_in_eval(methods)
        if needed <= kept_parts:
            kept.add(name)
    return frozenset(switched), frozenset(kept)
