"""How long a container filled in a loop lives, for EVL006's stores: whether it holds parts
of one call of a module's computation (per layer, per hop, per scale) or piles up values
across the iterations of a data loop. Pure queries over syntax and the project index; the
interpreter calls them only for a store it is recording."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, cast

import libcst as cst

from evallint.analysis.symbols import class_of_import, dotted_name
from evallint.analysis.walk import iter_nodes, small_statements
from evallint.source.literals import literal_value

if TYPE_CHECKING:
    from evallint.analysis.scope import ClassInfo
    from evallint.analysis.summaries import Summary
    from evallint.analysis.symbols import ImportTable

_COUNTING_BUILTINS = frozenset({"range", "len", "zip", "enumerate", "reversed", "min", "max"})


def structural_iterable(expr: cst.BaseExpression, loop_names: set[str]) -> bool:
    """The loop runs over the object's own structure, not over data: every name the
    iterable reads is `self` (its attributes: `self.layers`, `range(self.n_hop)`), a
    variable of an enclosing loop (`range(self.n_iter - i)`) or a counting builtin, and
    nothing else (a parameter such as `loader` or `x_list` may hold data)."""
    found_self = False
    stack: list[cst.CSTNode] = [expr]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is cst.Attribute:
            stack.append(node.value)  # type: ignore[attr-defined]  # `.attr` is no variable
            continue
        if kind is cst.Name:
            name = node.value  # type: ignore[attr-defined]
            if name == "self":
                found_self = True
            elif name not in loop_names and name not in _COUNTING_BUILTINS:
                return False
            continue
        if kind in (cst.Lambda, cst.ListComp, cst.GeneratorExp, cst.DictComp, cst.SetComp):
            return False
        stack.extend(node.children)
    return found_self


def rebinds(function: cst.FunctionDef, container: str) -> bool:
    """The function assigns the container (`self.h_emb_list = []`, or as one target of a
    tuple: `self.down, self.up = [], []`): each call replaces what the previous call kept."""
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign and any(
            container in _target_names(t.target) for t in node.targets
        ):
            return True
    return False


def _target_names(target: cst.BaseExpression) -> list[Optional[str]]:
    if type(target) in (cst.Tuple, cst.List):
        elements = cast("cst.Tuple | cst.List", target).elements
        return [n for e in elements for n in _target_names(e.value)]
    return [dotted_name(target)]


def class_is_module(owner: Optional[ClassInfo], imports: ImportTable, file, project) -> bool:
    """The class is an nn.Module, also through a base class of another project file
    (`class MacridVAE(GeneralRecommender)`, whose file derives it from nn.Module)."""
    if owner is None:
        return False
    if owner.is_module:
        return True
    if project is None:
        return False
    for base in owner.node.bases:
        name = dotted_name(base.value)
        if name is None:
            continue
        found = class_of_import(imports, name)
        if found is not None and project.is_module_class(file.path, *found):
            return True
    return False


def first_assignments(loop: cst.CSTNode) -> dict[str, cst.BaseExpression]:
    """Name -> the value of its first assignment in the loop body, in source order: the one
    that reads what the previous iteration left (`h = cell(x, h)`); a later one
    (`out = out.unsqueeze(0)`) reads this iteration's value."""
    found: dict[str, cst.BaseExpression] = {}
    for node in small_statements(loop.body):  # type: ignore[attr-defined]
        if type(node) is cst.Assign:
            for target in node.targets:
                for name in iter_nodes(target.target):
                    if type(name) is cst.Name:
                        found.setdefault(name.value, node.value)
    return found


def handed_to_training(
    body: cst.CSTNode,
    containers: set[str],
    closure: Callable[[set[str]], set[str]],
    resolve: Callable[[cst.Call], Optional[Summary]],
) -> set[str]:
    """The containers (or values computed from them: `values = torch.cat(values)`) passed to
    a function that trains (`update_policy(returns, log_probs, values, optimizer)`, whose
    summary steps or backwards): their graphs are needed by that backward."""
    found: set[str] = set()
    for node in iter_nodes(body):
        if type(node) is not cst.Call or not node.args:
            continue
        names = {n.value for a in node.args for n in iter_nodes(a.value) if type(n) is cst.Name}
        reached = (closure(set(names)) & containers) - found if names else set()
        if reached:
            summary = resolve(node)
            if summary is not None and summary.trains:
                found |= reached
    return found


def read_by_training_callee(
    body: cst.CSTNode,
    containers: set[str],
    resolve: Callable[[cst.Call], Optional[Summary]],
    function_of: Callable[[cst.Call], Optional[cst.FunctionDef]],
) -> set[str]:
    """The attribute containers (`actor_net.saved_logprobs`, `self.saved_values`) that a
    function the body calls reads while it trains (`update()` builds the episode's loss from
    them and backwards it): they outlive this function on purpose, and that backward needs
    their graphs. A local list, which no callee can read unless handed over, is not here."""
    wanted = {c for c in containers if "." in c}
    found: set[str] = set()
    if not wanted:
        return found
    for node in iter_nodes(body):
        if type(node) is not cst.Call:
            continue
        callee = function_of(node)
        if callee is None:
            continue
        read = {
            name
            for n in iter_nodes(callee.body)
            if type(n) is cst.Attribute and (name := dotted_name(n)) in wanted
        } - found
        if read:
            summary = resolve(node)
            if summary is not None and summary.trains:
                found |= read
    return found


_TENSOR_FACTORIES = frozenset({"zeros", "ones", "empty", "full", "tensor", "rand", "randn"})
"""`torch.` functions that allocate a new tensor (also `torch.zeros_like` & co.)."""


def preallocated_tensor(value: Optional[cst.CSTNode], imports: ImportTable) -> bool:
    """`value` allocates a new tensor (`torch.zeros(n)`, `torch.empty_like(x)`): writing
    into it under no_grad (`losses[i] = loss`) copies the numbers, keeping no graph."""
    if type(value) is not cst.Call:
        return False
    qualified = imports.qualify(value.func) or ""
    last = qualified.rsplit(".", 1)[-1]
    return qualified.startswith("torch.") and (
        last in _TENSOR_FACTORIES or (last.endswith("_like") and last[:-5] in _TENSOR_FACTORIES)
    )


_ARRAY_FACTORIES = frozenset({"zeros", "ones", "empty", "full"})
"""`numpy.` functions that allocate a numeric array (also `numpy.zeros_like` & co.)."""


def numeric_array(value: Optional[cst.CSTNode], imports: ImportTable) -> bool:
    """`value` allocates a numeric NumPy array (`np.zeros(n)`, `np.full_like(x, 0.0)`):
    writing a tensor into it (`losses[i] = loss`) converts it to a number, keeping no graph.
    Not an array of objects (`dtype=object` keeps the tensors themselves)."""
    if type(value) is not cst.Call:
        return False
    # a fragment of a notebook split into files uses `np` without importing it
    qualified = imports.qualify(value.func) or ""
    if qualified.startswith("np."):
        qualified = "numpy." + qualified[3:]
    last = qualified.rsplit(".", 1)[-1]
    if not qualified.startswith("numpy.") or not (
        last in _ARRAY_FACTORIES or (last.endswith("_like") and last[:-5] in _ARRAY_FACTORIES)
    ):
        return False
    return not any(
        (type(n) is cst.Name and n.value == "object")
        or (type(n) is cst.SimpleString and literal_value(n) in ("O", "object"))
        for arg in value.args
        for n in iter_nodes(arg.value)
    )


def forward_helpers(owner: ClassInfo) -> frozenset[str]:
    """The methods a module's own `forward` calls on `self` (`loss, acc = self.assm(...)`):
    each runs once per forward, for that one call's batch, so a container it fills and hands
    back holds parts of one call (what the forward's caller keeps is decided there)."""
    forward = owner.methods.get("forward")
    if forward is None:
        return frozenset()
    return frozenset(
        node.func.attr.value
        for node in iter_nodes(forward.node.body)
        if type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and type(node.func.value) is cst.Name
        and node.func.value.value == "self"
        and node.func.attr.value != "forward"
    )


def run_only_from(owner: ClassInfo, module: cst.Module, roots: frozenset[str]) -> frozenset[str]:
    """The methods of `owner` that run only under `roots` (Lightning's `predict_step` and
    the other evaluation steps): each is called in its file only as `self.<name>(...)`, from
    a root or from such a method (itself included), and at least once. A method also called
    on another receiver, or by a method outside the set, may run with autograd on."""
    calls: dict[str, set[str]] = {}
    for name, method in owner.methods.items():
        for node in iter_nodes(method.node.body):
            if (
                type(node) is cst.Call
                and type(node.func) is cst.Attribute
                and type(node.func.value) is cst.Name
                and node.func.value.value == "self"
            ):
                calls.setdefault(node.func.attr.value, set()).add(name)
    elsewhere = {
        node.func.attr.value
        for node in iter_nodes(module, enter_scopes=True)
        if type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and not (type(node.func.value) is cst.Name and node.func.value.value == "self")
    }
    found = set(roots & owner.methods.keys())
    grown = True
    while grown:
        grown = False
        for name, callers in calls.items():
            if (
                name not in found
                and name in owner.methods
                and name not in elsewhere
                and callers - {name} <= found
                and callers - {name}
            ):
                found.add(name)
                grown = True
    return frozenset(found - roots)
