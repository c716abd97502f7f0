"""Properties that return one of the object's own modules: `self.unwrapped_model` defined as
`@property def unwrapped_model(self): return self.accelerator.unwrap_model(self.model)`. Reading
the property is reading that module, so `self.unwrapped_model.eval()` switches `self.model`
(for mode purposes the module inside a wrapper and the wrapper are one module: `eval()` on the
inner module sets every layer the wrapper's forward runs)."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.reuse import memo
from evallint.analysis.symbols import dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_ATTRIBUTES, UNWRAPPING_CALLS

_PROPERTY_DECORATORS = frozenset({"property", "cached_property", "functools.cached_property"})


def property_aliases(owner: cst.ClassDef) -> tuple[tuple[str, str], ...]:
    """(`self.<property>`, `self.<attribute>`) for each property of the class whose body only
    returns an attribute of `self` (through unwrapping calls and wrapper attributes)."""
    return memo("property_aliases", owner, _aliases)


def _aliases(owner: cst.ClassDef) -> tuple[tuple[str, str], ...]:
    pairs = []
    body = owner.body.body if type(owner.body) is cst.IndentedBlock else ()
    for statement in body:
        if type(statement) is not cst.FunctionDef or not any(
            dotted_name(d.decorator) in _PROPERTY_DECORATORS for d in statement.decorators
        ):
            continue
        returned = only_return(statement)
        target = _own_attribute(returned) if returned is not None else None
        if target is not None and target != f"self.{statement.name.value}":
            pairs.append((f"self.{statement.name.value}", target))
    return tuple(pairs)


def only_return(function: cst.FunctionDef) -> Optional[cst.BaseExpression]:
    """The value of a body that is (after a docstring) a single `return value`."""
    statements = list(function.body.body) if type(function.body) is cst.IndentedBlock else []
    if statements and _is_docstring(statements[0]):
        statements = statements[1:]
    if len(statements) != 1 or type(statements[0]) is not cst.SimpleStatementLine:
        return None
    small = statements[0].body
    if len(small) != 1 or type(small[0]) is not cst.Return:
        return None
    return small[0].value


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        type(statement) is cst.SimpleStatementLine
        and len(statement.body) == 1
        and type(statement.body[0]) is cst.Expr
        and isinstance(statement.body[0].value, cst.SimpleString)
    )


def _own_attribute(value: cst.BaseExpression) -> Optional[str]:
    """`self.model`, `self.model.module`, `accelerator.unwrap_model(self.model)`, and
    `a if test else b` whose branches both name the same one: the `self.X` path named."""
    if type(value) is cst.IfExp:
        body, orelse = _own_attribute(value.body), _own_attribute(value.orelse)
        return body if body is not None and body == orelse else None
    if type(value) is cst.Call:
        name = dotted_name(value.func) or ""
        if name.rsplit(".", 1)[-1] not in UNWRAPPING_CALLS or not value.args:
            return None
        if value.args[0].star or value.args[0].keyword is not None:
            return None
        return _own_attribute(value.args[0].value)
    while type(value) is cst.Attribute and value.attr.value in SAME_MODULE_ATTRIBUTES:
        value = value.value
    path = dotted_name(value)
    if path is None or not path.startswith("self.") or path.count(".") != 1:
        return None
    return path
