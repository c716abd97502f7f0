"""Branch conditions as comparable keys, so two `if`s on the same flag can be correlated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name

if TYPE_CHECKING:
    from evallint.analysis.scope import FunctionInfo


def _atom(node: cst.BaseExpression) -> Optional[str]:
    name = dotted_name(node)
    if name is not None:
        return name
    if type(node) is cst.SimpleString:
        return repr(node.evaluated_value) if isinstance(node.evaluated_value, str) else None
    if type(node) is cst.Integer:
        return node.value
    if (
        type(node) is cst.Subscript
        and len(node.slice) == 1
        and type(node.slice[0].slice) is cst.Index
    ):
        base, index = _atom(node.value), _atom(node.slice[0].slice.value)
        return f"{base}[{index}]" if base and index else None
    return None


def _len_of(node: cst.BaseExpression) -> Optional[str]:
    """`len(steps)` -> 'len(steps)'."""
    if (
        type(node) is cst.Call
        and dotted_name(node.func) == "len"
        and len(node.args) == 1
        and _atom(node.args[0].value) is not None
    ):
        return f"len({_atom(node.args[0].value)})"
    return None


def _is_one(node: cst.BaseExpression) -> bool:
    return type(node) is cst.Integer and node.value == "1"


def _len_minus_one(node: cst.BaseExpression) -> Optional[str]:
    """`len(steps) - 1` -> 'len(steps)-1' (the index of the last iteration)."""
    if type(node) is cst.BinaryOperation and type(node.operator) is cst.Subtract:
        length = _len_of(node.left)
        return f"{length}-1" if length is not None and _is_one(node.right) else None
    return None


def _plus_one(node: cst.BaseExpression) -> Optional[str]:
    """`i + 1` -> 'i' (compared with `len(steps)`: `i == len(steps)-1`)."""
    if type(node) is cst.BinaryOperation and type(node.operator) is cst.Add:
        return _atom(node.left) if _is_one(node.right) else None
    return None


_NEGATED = {"!=": "==", "is not": "is", "not in": "in"}


def condition_key(test: cst.BaseExpression) -> Optional[tuple[str, bool]]:
    """(normalised text, polarity) for simple conditions: `flag`, `not flag`, `a.b`,
    `phase == 'train'`, `mode != "val"`; None for anything else."""
    polarity = True
    while type(test) is cst.UnaryOperation and type(test.operator) is cst.Not:
        polarity = not polarity
        test = test.expression
    atom = _atom(test)
    if atom is not None:
        return atom, polarity
    if type(test) is cst.Comparison and len(test.comparisons) == 1:
        target = test.comparisons[0]
        operator = {
            cst.Equal: "==",
            cst.NotEqual: "!=",
            cst.Is: "is",
            cst.IsNot: "is not",
            cst.In: "in",
            cst.NotIn: "not in",
        }.get(type(target.operator))
        left, right = _atom(test.left), _atom(target.comparator)
        if operator == "==" and (left is None or right is None):
            plus = _plus_one(test.left)
            if plus is not None:  # `i + 1 == len(steps)`
                length = _len_of(target.comparator)
                left, right = plus, f"{length}-1" if length is not None else None
            elif left is not None:  # `i == len(steps) - 1`
                right = _len_minus_one(target.comparator)
        if operator is None or left is None or right is None:
            return None
        if operator in _NEGATED:
            operator, polarity = _NEGATED[operator], not polarity
        return f"{left} {operator} {right}", polarity
    return None


def runs_at_least_once(
    loop: cst.CSTNode, module: cst.Module, local_names: frozenset[str] = frozenset()
) -> bool:
    """`for epoch in range(5)`, `range(1, epochs + 1)` with `epochs = 10` bound at the top
    level (a notebook's settings cell; see `_constant_int`) and not in the function: the body
    runs at least once, so the loop's exit is never the state before it."""
    if type(loop) is not cst.For or loop.orelse is not None:
        return False
    call = loop.iter
    if type(call) is not cst.Call or dotted_name(call.func) != "range":
        return False
    if not 1 <= len(call.args) <= 2 or any(a.keyword is not None or a.star for a in call.args):
        return False
    before = next((i for i, statement in enumerate(module.body) if statement is loop), None)
    bounds = [_constant_int(a.value, module, local_names, before) for a in call.args]
    if len(bounds) == 1:
        bounds.insert(0, 0)
    start, stop = bounds
    return start is not None and stop is not None and stop > start


_PASS_THROUGH = frozenset({"enumerate", "tqdm", "trange", "iter", "zip", "reversed"})


def assumed_to_run(loop: cst.CSTNode, function: Optional[FunctionInfo]) -> bool:
    """A `for` loop of a function over `range(...)` bounded by the function's parameters, or
    over an iterable it was given (`enumerate(loader)`, `tqdm(self.loader)`), is assumed to
    run at least once when its body trains or evaluates: a caller that calls a training or
    evaluation helper means it to run. Its zero-iteration path (the state before the loop
    reaching what follows) is not followed, so an `eval()` inside it is not "maybe not
    called" after it. A script's own bounds (`epochs = int(sys.argv[1])`), literal
    collections and loops with an `else` keep their zero-iteration path."""
    if type(loop) is not cst.For or loop.orelse is not None or function is None:
        return False
    parameters = frozenset((*function.params, *function.keyword_only))
    iterable = loop.iter
    while (
        type(iterable) is cst.Call
        and dotted_name(iterable.func) in _PASS_THROUGH
        and iterable.args
        and not iterable.args[0].star
    ):
        iterable = iterable.args[0].value
    if type(iterable) is cst.Call and dotted_name(iterable.func) == "range":
        roots = [_root(arg.value) for arg in iterable.args]
        return (
            bool(roots)
            and any(r in parameters for r in roots)
            and all(r is None or r in parameters for r in roots)
        )
    return _root(iterable) in parameters


def _root(node: cst.BaseExpression) -> Optional[str]:
    """The name an expression starts from (`args.epochs` -> args, `len(loader)` -> loader,
    `n + 1` -> n); None for a literal."""
    while True:
        if type(node) is cst.Name:
            return node.value
        if type(node) in (cst.Attribute, cst.Subscript):
            node = node.value  # type: ignore[attr-defined]
        elif type(node) is cst.Call and node.args:
            node = node.args[0].value
        elif type(node) is cst.BinaryOperation:
            left = _root(node.left)
            node = node.right if left is None else node.left
        elif type(node) is cst.Integer:
            return None
        else:
            return ""


def _constant_int(
    node: cst.BaseExpression,
    module: cst.Module,
    local_names: frozenset[str],
    before: Optional[int],
    depth: int = 0,
) -> Optional[int]:
    """The value of an integer expression made of literals, `+ - *`, and names bound at the
    top level to such an expression: the last binding before top-level statement `before`
    (a loop at the top level, in a script or notebook), else the only one; None otherwise."""
    if depth > 8:
        return None
    if type(node) is cst.Integer:
        value = node.evaluated_value
        return value if isinstance(value, int) else None
    if type(node) is cst.BinaryOperation:
        left = _constant_int(node.left, module, local_names, before, depth + 1)
        right = _constant_int(node.right, module, local_names, before, depth + 1)
        if left is None or right is None:
            return None
        operator = type(node.operator)
        if operator is cst.Add:
            return left + right
        if operator is cst.Subtract:
            return left - right
        if operator is cst.Multiply:
            return left * right
        return None
    if type(node) is not cst.Name or node.value in local_names:
        return None
    bound: list[cst.BaseExpression] = []
    for index, statement in enumerate(module.body):
        if before is not None and index >= before:
            break
        if type(statement) is not cst.SimpleStatementLine:
            continue
        for small in statement.body:
            if type(small) is cst.Assign and any(
                type(t.target) is cst.Name and t.target.value == node.value for t in small.targets
            ):
                bound.append(small.value)
            elif (
                type(small) in (cst.AugAssign, cst.AnnAssign)
                and type(small.target) is cst.Name  # type: ignore[attr-defined]
                and small.target.value == node.value  # type: ignore[attr-defined]
            ):
                return None
    if not bound or (before is None and len(bound) != 1):
        return None
    return _constant_int(bound[-1], module, local_names, before, depth + 1)


def isinstance_module_subject(test: cst.BaseExpression) -> Optional[cst.BaseExpression]:
    """`isinstance(net, nn.Module)`: `net` (always true for a module); None otherwise."""
    if (
        type(test) is cst.Call
        and type(test.func) is cst.Name
        and test.func.value == "isinstance"
        and len(test.args) == 2
        and "Module" in cst.Module([]).code_for_node(test.args[1].value)
    ):
        return test.args[0].value
    return None


def loop_index(node: cst.For | cst.While) -> Optional[str]:
    """`for i, batch in ...`: the index variable, the first name of a tuple target."""
    if type(node) is not cst.For:
        return None
    target = node.target
    if type(target) is cst.Tuple and target.elements:
        first = target.elements[0].value
        return first.value if type(first) is cst.Name else None
    return None


def ends_the_loop(assumptions: frozenset, index: Optional[str]) -> bool:
    """A path that took `if i == len(steps) - 1:` (or `i + 1 == len(steps)`) runs in the
    last iteration of the loop over index `i`: it leaves the loop, it never loops back."""
    return index is not None and any(
        value and text.startswith(f"{index} == len(") and text.endswith(")-1")
        for text, value in assumptions
    )


def split_last(states: tuple, index: Optional[str]) -> tuple[tuple, tuple]:
    """(paths that loop back, paths in the last iteration: see ends_the_loop)."""
    if index is None:
        return states, ()
    ending = tuple(s for s in states if ends_the_loop(s.assumptions, index))
    return (tuple(s for s in states if s not in ending), ending) if ending else (states, ())
