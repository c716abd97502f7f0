"""Branch conditions as comparable keys, so two `if`s on the same flag can be correlated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, Optional, Union, cast

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.source.literals import literal_value

if TYPE_CHECKING:
    from evallint.analysis.scope import FunctionInfo


def _atom(node: cst.BaseExpression) -> Optional[str]:
    name = dotted_name(node)
    if name is not None:
        return name
    if type(node) is cst.SimpleString:
        value = literal_value(node)
        return repr(value) if isinstance(value, str) else None
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
    `phase == 'train'`, `mode != "val"` (`x == None` as `x is None`); None for anything
    else."""
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
        if operator in ("==", "!=") and (left is None or right is None):
            # `mode.lower() == "train"`: of a name compared with a literal its
            # normalisation leaves as it is, the same key as `mode == "train"` (what a
            # caller's constant `"train"` decides; a differently cased phase is not told apart)
            left = left or _normalised_name(test.left, target.comparator)
            right = right or _normalised_name(target.comparator, test.left)
        if operator == "==" and (left is None or right is None):
            plus = _plus_one(test.left)
            if plus is not None:  # `i + 1 == len(steps)`
                length = _len_of(target.comparator)
                left, right = plus, f"{length}-1" if length is not None else None
            elif left is not None:  # `i == len(steps) - 1`
                right = _len_minus_one(target.comparator)
        if operator is None or left is None or right is None:
            return None
        if operator in ("==", "!=") and "None" in (left, right):
            # `model == None` is `model is None` for anything but a class that overrides
            # `__eq__` (a module does not): one key for both spellings
            operator = "is" if operator == "==" else "is not"
            left, right = (right, left) if left == "None" else (left, right)
        if operator in _NEGATED:
            operator, polarity = _NEGATED[operator], not polarity
        return f"{left} {operator} {right}", polarity
    return None


_NORMALISING: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "casefold": str.casefold,
    "strip": str.strip,
}
"""String methods that normalise a phase name (`mode.lower()`): without arguments, each
maps a literal already in its form to itself."""


def _normalised_name(node: cst.BaseExpression, other: cst.BaseExpression) -> Optional[str]:
    """`mode` for `mode.lower()` compared with a string literal `.lower()` leaves unchanged
    (`"train"`), else None."""
    if not (
        type(node) is cst.Call
        and not node.args
        and type(node.func) is cst.Attribute
        and node.func.attr.value in _NORMALISING
        and type(other) is cst.SimpleString
    ):
        return None
    text = literal_value(other)
    if not isinstance(text, str) or _NORMALISING[node.func.attr.value](text) != text:
        return None
    return _atom(node.func.value)


_OPERATORS: dict[type, str] = {
    cst.Add: "+",
    cst.Subtract: "-",
    cst.Multiply: "*",
    cst.Divide: "/",
    cst.FloorDivide: "//",
    cst.Modulo: "%",
    cst.Power: "**",
    cst.Equal: "==",
    cst.NotEqual: "!=",
    cst.LessThan: "<",
    cst.LessThanEqual: "<=",
    cst.GreaterThan: ">",
    cst.GreaterThanEqual: ">=",
    cst.Is: "is",
    cst.IsNot: "is not",
    cst.In: "in",
    cst.NotIn: "not in",
}


def _canonical(node: cst.BaseExpression, depth: int = 0) -> Optional[str]:
    """A text for an expression made only of names, attributes, literals, subscripts and
    operators (no call: evaluating it twice gives the same value while its names keep
    theirs), independent of spacing and parentheses; None for anything else."""
    if depth > 12:
        return None
    atom = _atom(node)
    if atom is not None:
        return atom
    if type(node) is cst.Float:
        return node.value
    if type(node) is cst.UnaryOperation:
        inner = _canonical(node.expression, depth + 1)
        if inner is None:
            return None
        return f"(not {inner})" if type(node.operator) is cst.Not else f"(-{inner})"
    if type(node) is cst.BinaryOperation:
        op = _OPERATORS.get(type(node.operator))
        left, right = _canonical(node.left, depth + 1), _canonical(node.right, depth + 1)
        return f"({left} {op} {right})" if op and left and right else None
    if type(node) is cst.Comparison:
        parts = [_canonical(node.left, depth + 1)]
        for target in node.comparisons:
            parts += [
                _OPERATORS.get(type(target.operator)),
                _canonical(target.comparator, depth + 1),
            ]
        return f"({' '.join(cast(list, parts))})" if all(parts) else None
    if type(node) is cst.BooleanOperation:
        left, right = _canonical(node.left, depth + 1), _canonical(node.right, depth + 1)
        op = "and" if type(node.operator) is cst.And else "or"
        return f"({left} {op} {right})" if left and right else None
    return None


def _condition(test: cst.BaseExpression) -> Optional[tuple[str, bool]]:
    """`condition_key`, or for another condition without calls (`step % k == 0 or
    last_step`) its canonical text: the same test written again is the same key."""
    key = condition_key(test)
    if key is not None:
        return key
    polarity = True
    while type(test) is cst.UnaryOperation and type(test.operator) is cst.Not:
        polarity = not polarity
        test = test.expression
    text = _canonical(test)
    return (text, polarity) if text is not None else None


def _junction(test: cst.BaseExpression) -> tuple[Optional[cst.BooleanOperation], bool]:
    """The and/or under any `not`s, with the polarity the `not`s give it."""
    polarity = True
    while type(test) is cst.UnaryOperation and type(test.operator) is cst.Not:
        polarity = not polarity
        test = test.expression
    return (test if type(test) is cst.BooleanOperation else None), polarity


def evaluate(
    test: cst.BaseExpression, assumed: Callable[[str], Optional[bool]], depth: int = 0
) -> Optional[bool]:
    """The value of a branch condition on paths that assumed what `assumed` answers (three
    values: None when unknown); `a and b` is false once either part is, and so on."""
    key = _condition(test)
    if key is not None:
        known = assumed(key[0])
        if known is not None:
            return known == key[1]
    junction, polarity = _junction(test)
    if junction is None or depth > 12:
        return None
    left = evaluate(junction.left, assumed, depth + 1)
    right = evaluate(junction.right, assumed, depth + 1)
    absorbing = type(junction.operator) is not cst.And  # `or`: True decides it
    if left is absorbing or right is absorbing:
        value: Optional[bool] = absorbing
    elif left is not None and right is not None:
        value = not absorbing
    else:
        return None
    return value if polarity else not value


def implied(
    test: cst.BaseExpression, value: bool, kept: frozenset[str], depth: int = 0
) -> list[tuple[str, bool]]:
    """What a path that found `test` equal to `value` knows: the condition itself and, for
    `a and b` taken (or `a or b` not taken), each part. A canonical key (see `_condition`)
    is kept only if it is in `kept`: one more assumption splits the paths, which pays only
    where another test reads it (`tested_again`)."""
    simple = condition_key(test)
    key = simple or _condition(test)
    known = (
        [(key[0], key[1] == value)]
        if key is not None and (simple is not None or key[0] in kept)
        else []
    )
    junction, polarity = _junction(test)
    if junction is None or depth > 12:
        return known
    value = value == polarity
    if value == (type(junction.operator) is cst.And):
        known += implied(junction.left, value, kept, depth + 1)
        known += implied(junction.right, value, kept, depth + 1)
    return known


def _canonical_parts(test: cst.BaseExpression, found: set[str], depth: int = 0) -> None:
    if condition_key(test) is None:
        key = _condition(test)
        if key is not None:
            found.add(key[0])
    junction, _ = _junction(test)
    if junction is not None and depth <= 12:
        _canonical_parts(junction.left, found, depth + 1)
        _canonical_parts(junction.right, found, depth + 1)


def tested_again(body: Sequence[cst.CSTNode]) -> frozenset[str]:
    """Canonical keys of conditions (or their and/or parts) that two `if`/`while` tests of
    these statements share (`if step % k == 0 or last:` ... `if (step % k == 0 or last) and
    not compiled:`). Statements only: nested functions and classes are not entered."""
    seen: set[str] = set()
    again: set[str] = set()
    pending: list[cst.CSTNode] = list(body)
    while pending:
        node = pending.pop()
        if type(node) in (cst.FunctionDef, cst.ClassDef, cst.SimpleStatementLine):
            continue
        test = getattr(node, "test", None) if type(node) in (cst.If, cst.While) else None
        if test is not None:
            parts: set[str] = set()
            _canonical_parts(test, parts)
            again |= parts & seen
            seen |= parts
        for field in ("body", "orelse", "finalbody", "handlers"):
            child = getattr(node, field, None)
            if child is None:
                continue
            if isinstance(child, (tuple, list)):
                pending.extend(child)
            elif type(child) in (cst.IndentedBlock, cst.SimpleStatementSuite):
                pending.extend(getattr(child, "body", ()))
            else:
                pending.append(child)
    return frozenset(again)


def runs_at_least_once(
    loop: cst.CSTNode, module: cst.Module, local_names: frozenset[str] = frozenset()
) -> bool:
    """`for epoch in range(5)`, `range(1, epochs + 1)` with `epochs = 10` bound at the top
    level or in the `if __name__ == "__main__":` block (a notebook's settings cell, a script's
    settings; see `_constant_int`) and not in the function: the body
    runs at least once, so the loop's exit is never the state before it. So does a loop over
    `model.modules()` (the tree holds `model` itself)."""
    if type(loop) is not cst.For or loop.orelse is not None:
        return False
    call = loop.iter
    if type(call) is cst.Call and dotted_name(call.func) == "enumerate" and call.args:
        walked = call.args[0].value
    else:
        walked = call
    if (
        type(walked) is cst.Call
        and type(walked.func) is cst.Attribute
        and walked.func.attr.value in ("modules", "named_modules")
        and not walked.args
    ):
        return True  # a module's tree holds at least the module itself
    if type(call) is not cst.Call or dotted_name(call.func) != "range":
        return False
    if not 1 <= len(call.args) <= 2 or any(a.keyword is not None or a.star for a in call.args):
        return False
    statements = _script_statements(module)
    before = next((i for i, statement in enumerate(statements) if statement is loop), None)
    bounds = [_constant_int(a.value, statements, local_names, before) for a in call.args]
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
    called" after it. So is a loop over `range(...)` bounded by a setting read from a
    configuration object (`range(1, args.max_epoch + 1)`, `range(cfg["epochs"])`), in a
    function or a script: a run of zero epochs is not the one its author means. A bound
    converted at run time (`epochs = int(sys.argv[1])`), literal collections and loops with
    an `else` keep their zero-iteration path. A loop over data the code holds (`for x, y in
    val_loader:`, `tqdm(self.loader)`) runs too."""
    if type(loop) is not cst.For or loop.orelse is not None:
        return False
    parameters = (
        frozenset((*function.params, *function.keyword_only))
        if function is not None
        else frozenset()
    )
    iterable = loop.iter
    if type(iterable) is cst.Name and function is not None:
        # `progress = tqdm(range(args.epochs))` then `for epoch in progress:`: the loop runs
        # over what that one assignment of the function's own body made
        iterable = _assigned_once(function.node, iterable.value) or iterable
    while (
        type(iterable) is cst.Call
        and dotted_name(iterable.func) in _PASS_THROUGH
        and iterable.args
        and not iterable.args[0].star
    ):
        iterable = iterable.args[0].value
    if type(iterable) is cst.Call and dotted_name(iterable.func) == "range":
        roots = [_root(arg.value) for arg in iterable.args]
        return bool(roots) and (
            (
                any(r in parameters for r in roots)
                and all(r is None or r in parameters for r in roots)
            )
            or _setting_bounds(iterable)
        )
    # a loop over data the code holds (`for x, y in val_loader:`,
    # `enumerate(data["val"].get_iterator())`): an empty validation set is not the run its
    # author means either
    return _root(iterable) in parameters or _built_data(iterable)


def _built_data(iterable: cst.BaseExpression) -> bool:
    """A name, or an attribute, subscript or method result of one (`loaders["val"]`,
    `data.get_iterator()`): data the code holds, not a literal collection or a count."""
    node = iterable
    while True:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            node = node.func.value
        elif type(node) in (cst.Attribute, cst.Subscript):
            node = node.value  # type: ignore[attr-defined]
        else:
            return type(node) is cst.Name


def _assigned_once(function: cst.FunctionDef, name: str) -> Optional[cst.BaseExpression]:
    """The value of `name = value` when that is the only binding of `name` among the
    function's own top-level statements (a name bound in a nested block is not followed)."""
    found: Optional[cst.BaseExpression] = None
    body = function.body.body if type(function.body) is cst.IndentedBlock else ()
    for statement in body:
        if type(statement) is not cst.SimpleStatementLine:
            continue
        for small in statement.body:
            if type(small) is cst.Assign and any(
                type(t.target) is cst.Name and t.target.value == name for t in small.targets
            ):
                if found is not None or len(small.targets) != 1:
                    return None
                found = small.value
    return found


def _setting_bounds(call: cst.Call) -> bool:
    """`range(1, args.max_epoch + 1)`: bounds made of literals and at least one setting
    read from an object (an attribute or a subscript of a name), and nothing else."""
    found = False
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            return False
        pending = [arg.value]
        while pending:
            node = pending.pop()
            if type(node) is cst.BinaryOperation:
                pending.extend((node.left, node.right))
            elif type(node) in (cst.Attribute, cst.Subscript):
                base = node
                while type(base) in (cst.Attribute, cst.Subscript):
                    base = base.value  # type: ignore[attr-defined]
                if type(base) is not cst.Name:
                    return False
                found = True
            elif type(node) is not cst.Integer:
                return False
    return found


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


def ring_operation(
    operator: cst.BaseBinaryOp, left: Union[int, float], right: Union[int, float]
) -> Optional[Union[int, float]]:
    """`left + right`, `left - right` or `left * right` for those operators, else None (the
    constant folders of conditions.py and few_items.py share it)."""
    kind = type(operator)
    if kind is cst.Add:
        return left + right
    if kind is cst.Subtract:
        return left - right
    if kind is cst.Multiply:
        return left * right
    return None


def _is_main_guard(statement: cst.CSTNode) -> bool:
    """`if __name__ == "__main__":` (either operand order)."""
    if type(statement) is not cst.If or type(statement.test) is not cst.Comparison:
        return False
    test = statement.test
    if len(test.comparisons) != 1 or type(test.comparisons[0].operator) is not cst.Equal:
        return False
    operands = (test.left, test.comparisons[0].comparator)
    names = [o for o in operands if type(o) is cst.Name and o.value == "__name__"]
    texts = [o for o in operands if type(o) is cst.SimpleString and literal_value(o) == "__main__"]
    return len(names) == 1 and len(texts) == 1


def _script_statements(module: cst.Module) -> list[cst.CSTNode]:
    """The module's top-level statements in the order a script runs them, with the body of
    `if __name__ == "__main__":` in place of the `if`: when the file runs as a script that
    body runs unconditionally, so a loop in it and the settings bound before it are one
    sequence (its `else` runs only on import and is left out)."""
    statements: list[cst.CSTNode] = []
    for statement in module.body:
        if _is_main_guard(statement):
            body = cast(cst.If, statement).body
            if type(body) is cst.IndentedBlock:
                statements.extend(body.body)
                continue
        statements.append(statement)
    return statements


def _constant_int(
    node: cst.BaseExpression,
    statements: Sequence[cst.CSTNode],
    local_names: frozenset[str],
    before: Optional[int],
    depth: int = 0,
) -> Optional[int]:
    """The value of an integer expression made of literals, `+ - *`, and names bound at the
    top level (see `_script_statements`) to such an expression: the last binding before
    statement `before` of `statements` (a loop at the top level, in a script or notebook),
    else the only one; None otherwise."""
    if depth > 8:
        return None
    if type(node) is cst.Integer:
        value = literal_value(node)
        return value if isinstance(value, int) else None
    if type(node) is cst.BinaryOperation:
        left = _constant_int(node.left, statements, local_names, before, depth + 1)
        right = _constant_int(node.right, statements, local_names, before, depth + 1)
        if left is None or right is None:
            return None
        result = ring_operation(node.operator, left, right)
        return result if isinstance(result, int) else None
    if type(node) is not cst.Name or node.value in local_names:
        return None
    bound: list[cst.BaseExpression] = []
    for index, statement in enumerate(statements):
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
    return _constant_int(bound[-1], statements, local_names, before, depth + 1)


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
