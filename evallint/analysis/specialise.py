"""Context-sensitive summaries by constant flags.

A function shared by training and evaluation often takes a flag: `iteration(epoch, loader,
train=True)` backwards only under `if train:`. Its general summary cannot tell which use a
call is, so a forward in it is "training or evaluation by a flag" and the caller's region
decides. A call that passes a constant for such a flag (`iteration(epoch, test_loader,
train=False)`) gets a summary of its own, interpreted with the flag fixed: the dead branch is
skipped, and a block that trains only under the flag is an evaluation (or training) there.

The flag may also be a name of the function's own bound once to a test of a parameter
(`update = optimizer is not None`, then `if update:`): the parameter's test is what a call
fixes, and on a path that decided it the name holds the same truth (`copied_condition`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Optional

import libcst as cst

from evallint.analysis.conditions import condition_key
from evallint.analysis.few_items import _single_assignments
from evallint.analysis.lattice import Mode, PathState
from evallint.analysis.regions import Region, RegionKind
from evallint.analysis.scope import FunctionInfo
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes
from evallint.source.literals import literal_value

Flags = tuple[tuple[str, bool], ...]
"""(parameter, constant value) pairs, sorted: the context a summary is specialised for."""

MAX_FLAGS = 4
"""Flags one call may fix (each distinct combination is one more interpretation)."""

_CONSTANTS = {"True": True, "False": False}
_FALSY_OR_BOOL = {**_CONSTANTS, "None": False}
"""What a constant argument makes of a parameter tested for its truth (`if optimizer:`)."""


def tested_parameters(info: FunctionInfo) -> frozenset[str]:
    """Parameters of `info` that an `if` or a conditional expression in its body tests as a
    plain flag (`if train:`, `x if not eval_mode else y`), or that it passes on to a call
    (only those with a constant value at a call or by default are ever fixed)."""
    params = set(info.params) | set(info.keyword_only)
    tested: set[str] = set()
    copies = _copied_tests(info.node, params)
    for node in iter_nodes(info.node.body):
        if type(node) is cst.Call:
            # a flag passed on to a callee that may test it (`self.score(loader, eval_)`)
            tested.update(
                a.value.value
                for a in node.args
                if type(a.value) is cst.Name and a.value.value in params
            )
            continue
        if (
            type(node) is cst.BooleanOperation
            and type(node.operator) is cst.Or
            and type(node.left) is cst.Name
            and node.left.value in params
        ):
            tested.add(node.left.value)  # `model = model or self.model`: a test of `model`
            continue
        test = node.test if type(node) in (cst.If, cst.IfExp, cst.While) else None  # type: ignore[attr-defined]
        if test is None:
            continue
        key = condition_key(test)
        if key is not None and key[0] in copies:
            tested.add(copies[key[0]])  # `if update:` after `update = optimizer is not None`
        elif key is not None and key[0] in params:
            tested.add(key[0])
        elif key is not None and _tested_mode(key[0]) in params:
            tested.add(key[0])  # `if model.training:` the mode the caller left a module in
        elif key is not None and _compared_parameter(key[0]) in params:
            tested.add(key[0])  # `if mode == "train":` a phase given as a string
        elif key is not None and _none_tested(key[0]) in params:
            tested.add(key[0])  # `if optimizer is not None:` trains when one is given
    return frozenset(tested)


def _tested_parameter(key: str, params: set[str]) -> bool:
    """Whether the condition key tests a parameter the way `tested_parameters` reads one."""
    return key in params or any(
        read(key) in params for read in (_tested_mode, _compared_parameter, _none_tested)
    )


def _copied_tests(function: cst.FunctionDef, params: set[str]) -> dict[str, str]:
    """Names of the function's own (not parameters) bound exactly once, to a test of a
    parameter (`update = optimizer is not None`, `training = mode == "train"`) -> the
    condition key of that test."""
    found = {}
    for name, value in _single_assignments(function.body).items():
        key = condition_key(value) if name not in params else None
        if key is not None and _tested_parameter(key[0], params):
            found[name] = key[0]
    for name, value in _single_attribute_assignments(function.body).items():
        key = condition_key(value)
        if key is not None and _tested_parameter(key[0], params):
            found[name] = key[0]
    return found


def _single_attribute_assignments(body: cst.CSTNode) -> dict[str, cst.BaseExpression]:
    """`self.X` attributes assigned exactly once in a method (`self.train_mode =
    train_mode` in `__init__`, then `if self.train_mode:`): on the path after the
    assignment the attribute holds the parameter's truth, as a copied name does."""
    values: dict[str, cst.BaseExpression] = {}
    counts: dict[str, int] = {}
    for node in iter_nodes(body, enter_scopes=False):
        if type(node) is cst.Assign:
            targets = [t.target for t in node.targets]
        elif type(node) in (cst.AugAssign, cst.AnnAssign):
            targets = [node.target]  # type: ignore[attr-defined]
        else:
            continue
        for target in targets:
            name = dotted_name(target) if type(target) is cst.Attribute else None
            if name is None or not name.startswith("self.") or name.count(".") != 1:
                continue
            counts[name] = counts.get(name, 0) + 1
            if type(node) is cst.Assign:
                values[name] = node.value
    return {name: value for name, value in values.items() if counts.get(name) == 1}


def copied_condition(value: cst.BaseExpression, state: PathState) -> Optional[bool]:
    """The truth a name bound to `value` holds on this path: `value` is a simple condition
    (`optimizer is not None`, `not train`) that the path has already decided (a branch
    taken, or a flag a call fixed); None otherwise."""
    key = condition_key(value)
    if key is None:
        return None
    known = state.assumed(key[0])
    return None if known is None else known == key[1]


def _none_tested(key: str) -> Optional[str]:
    """`optimizer` for the condition key `optimizer is None`."""
    name, is_none, rest = key.partition(" is None")
    return name if is_none and not rest and name.isidentifier() else None


def _tested_mode(key: str) -> Optional[str]:
    """`model` for the condition key `model.training` (a parameter's mode read as a flag)."""
    name, dot, attribute = key.rpartition(".")
    return name if dot and attribute == "training" and name.isidentifier() else None


def _compared_parameter(key: str) -> Optional[str]:
    """`mode` for the condition key `mode == 'train'` (a name compared with a string)."""
    name, equals, literal = key.partition(" == ")
    return name if equals and literal[:1] in ("'", '"') and name.isidentifier() else None


def phase_assumptions(name: str, value: str, keys: Iterable[str]) -> dict[str, bool]:
    """What a string constant bound to `name` decides among the condition keys: for
    `mode = "valid"`, `mode == 'train'` is False and `mode == 'valid'` True."""
    prefix = f"{name} == "
    return {key: key[len(prefix) :] == repr(value) for key in keys if key.startswith(prefix)}


def _defaults(info: FunctionInfo, tested: frozenset[str]) -> dict[str, bool]:
    params = info.node.params
    found = {}
    for param in (*params.params, *params.kwonly_params):
        name, default = param.name.value, param.default
        if name in tested and type(default) is cst.Name and default.value in _FALSY_OR_BOOL:
            found[name] = _FALSY_OR_BOOL[default.value]
        if f"{name} is None" in tested and type(default) is cst.Name and default.value == "None":
            found[f"{name} is None"] = True
    return found


def constant_flags(
    info: FunctionInfo,
    call: Optional[cst.Call],
    tested: frozenset[str],
    known: Flags = (),
) -> Flags:
    """The tested parameters a call fixes: passed a constant `True`/`False`, passed a flag
    the caller's own context fixes (`known`), or left at a constant default. With no call,
    the defaults alone (a function judged by itself: its plain use)."""
    if not tested:
        return ()
    flags = _defaults(info, tested)
    if call is None:
        return tuple(sorted(flags.items()))[:MAX_FLAGS]
    positional_params = [p for p in info.params if p not in ("self", "cls")]
    if info.owner is not None and info.params[:1] != ("self",) and info.params[:1] != ("cls",):
        positional_params = list(info.params)  # a static method
    fixed = dict(known)
    explicit: set[str] = set()
    index = 0
    for arg in call.args:
        if arg.star:
            # `*args` / `**kwargs` may set any later parameter: only what is explicit holds
            flags = {k: v for k, v in flags.items() if k in explicit}
            if arg.keyword is None:
                break
            continue
        name: Optional[str]
        if arg.keyword is not None:
            name = arg.keyword.value
        else:
            name = positional_params[index] if index < len(positional_params) else None
            index += 1
        value = arg.value
        if name is not None and f"{name} is None" in tested:
            # `run_epoch(model, val_loader, None)`: no optimizer given, nothing trains
            flags.pop(f"{name} is None", None)
            explicit.add(f"{name} is None")
            if type(value) is cst.Name and value.value == "None":
                flags[f"{name} is None"] = True
        if name in tested:
            flags.pop(name, None)
            explicit.add(name)
            if type(value) is cst.Name and value.value in _FALSY_OR_BOOL:
                # `if optimizer:` given `None`: false, as `if optimizer is not None:` is
                flags[name] = _FALSY_OR_BOOL[value.value]
            elif type(value) is cst.Name and value.value in fixed:
                flags[name] = fixed[value.value]
        if name is not None and f"{name}.training" in tested:
            # a module whose mode the caller knows: `pass_epoch(model, ...)` after eval()
            path = dotted_name(value)
            if path is not None and f"{path}.training" in fixed:
                flags[f"{name}.training"] = fixed[f"{path}.training"]
        if name is not None and type(value) is cst.SimpleString:
            # a phase also passed on (`print(mode, loss)`) is tested as a name too
            text = literal_value(value)
            if isinstance(text, str):
                flags.update(phase_assumptions(name, text, tested))
        elif name is not None and type(value) is cst.Name:
            # a phase the caller's own context fixes, passed on (`self._step(mode)`)
            outer = f"{value.value} == "
            for key, known_value in fixed.items():
                if key.startswith(outer) and f"{name} == {key[len(outer) :]}" in tested:
                    flags[f"{name} == {key[len(outer) :]}"] = known_value
    return tuple(sorted(flags.items()))[:MAX_FLAGS]


def settle(region: Region, flags: Flags) -> Region:
    """A block that trains only under a flag, with the flag fixed by the context: training
    when the flag says so, else an evaluation (the gradients its training branch needed are
    not needed on this path)."""
    if region.kind is not RegionKind.MIXED or not flags:
        return region
    for name, value in flags:
        if region.condition == name:
            if value == region.trains_when:
                return replace(region, kind=RegionKind.TRAIN, needs_grad=True)
            return replace(region, kind=RegionKind.EVAL, needs_grad=False, by_flags=True)
    return region


def loop_phases(loop: cst.For, scope: Iterable[cst.CSTNode] = ()) -> list[dict[str, bool]]:
    """For a loop over a literal tuple or list of phases (`for phase in ("train", "val"):`,
    `for training in (True, False):`), or over a variable its scope binds once to one
    (`splits = ["train", "valid"] + (["test"] if args.test else [])`; `scope`: the
    scope's top-level statements), what each pass decides among the body's conditions on
    the loop variable; empty for any other loop (it runs as usual)."""
    target, iterable = loop.target, loop.iter
    if type(iterable) is cst.Name:
        iterable = _bound_once(iterable.value, scope) or iterable
    values = _literal_values(iterable)
    if type(target) is not cst.Name or not values:
        return []
    name = target.value
    keys: set[str] = set()
    for node in iter_nodes(loop.body):
        test = node.test if type(node) in (cst.If, cst.IfExp, cst.While) else None  # type: ignore[attr-defined]
        key = condition_key(test) if test is not None else None
        if key is not None and (key[0] == name or _compared_parameter(key[0]) == name):
            keys.add(key[0])
    if not keys or len(values) < 2:
        return []
    return [
        phase_assumptions(name, value, keys)
        if isinstance(value, str)
        else ({name: bool(value)} if name in keys else {})
        for value in values
    ]


def _literal_values(expr: cst.BaseExpression) -> Optional[list[object]]:
    """The constants a literal sequence may hold: a list or tuple of strings or booleans,
    concatenations of such, and a conditional choosing between two (both sides may run)."""
    kind = type(expr)
    if kind is cst.BinaryOperation and type(expr.operator) is cst.Add:  # type: ignore[attr-defined]
        left = _literal_values(expr.left)  # type: ignore[attr-defined]
        right = _literal_values(expr.right)  # type: ignore[attr-defined]
        return None if left is None or right is None else left + right
    if kind is cst.IfExp:
        body = _literal_values(expr.body)  # type: ignore[attr-defined]
        orelse = _literal_values(expr.orelse)  # type: ignore[attr-defined]
        return None if body is None or orelse is None else body + orelse
    if kind not in (cst.Tuple, cst.List):
        return None
    values: list[object] = []
    for element in expr.elements:  # type: ignore[attr-defined]
        value = element.value
        if type(value) is cst.SimpleString and isinstance(literal_value(value), str):
            values.append(literal_value(value))
        elif type(value) is cst.Name and value.value in _CONSTANTS:
            values.append(_CONSTANTS[value.value])
        else:
            return None
    return values


def _bound_once(name: str, scope: Iterable[cst.CSTNode]) -> Optional[cst.BaseExpression]:
    """The value of the only top-level `name = value` among the scope's statements."""
    found = None
    for statement in scope:
        if type(statement) is not cst.SimpleStatementLine:
            continue
        for small in statement.body:
            if type(small) is cst.Assign and any(
                type(t.target) is cst.Name and t.target.value == name for t in small.targets
            ):
                if found is not None:
                    return None
                found = small.value
    return found


def argument_modes(
    resolve: Callable[[cst.BaseExpression, PathState], Optional[str]],
    call: cst.Call,
    states: Iterable[PathState],
) -> Flags:
    """`("model.training", False)` for a module argument in eval mode on every path at the
    call (True in train mode): a callee that trains only `if model.training:` is then an
    evaluation or a training at this call (known flags for `constant_flags`)."""
    found = []
    states = tuple(states)
    for arg in call.args:
        value = arg.value
        if type(value) not in (cst.Name, cst.Attribute) or arg.star:
            continue
        path = dotted_name(value)
        modes: set[Mode] = set()
        for state in states:
            key = resolve(value, state)
            facts = state.mode_in_tree(key) if key is not None else None
            if facts:
                modes.update(f.mode for f in facts)
            else:
                modes.add(Mode.ENTRY)  # not a module, or its mode unknown here
        if path is not None and len(modes) == 1 and Mode.ENTRY not in modes:
            found.append((f"{path}.training", Mode.TRAIN in modes))
    return tuple(found)
