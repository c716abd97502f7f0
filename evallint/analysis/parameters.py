"""What a function's parameters may hold, read from their annotations and defaults."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.vocabulary import NOT_MODULE_WORDS, words
from evallint.analysis.walk import iter_nodes

_CONSTANTS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)


def may_hold_module(name: str, param: Optional[cst.Param]) -> bool:
    """A parameter a caller may pass a module in: not named for something else (`loader`,
    `optimizer`, `cfg`), not defaulting to a number, a string or a boolean."""
    if words(name) & NOT_MODULE_WORDS:
        return False
    default = param.default if param is not None else None
    if default is None:
        return True
    if type(default) in _CONSTANTS or (
        type(default) is cst.Name and default.value in ("True", "False")
    ):
        return False
    return not (type(default) is cst.UnaryOperation and type(default.expression) in _CONSTANTS)


def mentions_module(annotation: cst.BaseExpression) -> bool:
    """`nn.Module`, `Optional[torch.nn.Module]`, `"nn.Module"`: without generating its code."""
    for node in iter_nodes(annotation):
        node_type = type(node)
        if (node_type is cst.Name and "Module" in cast(cst.Name, node).value) or (
            node_type is cst.Attribute and "Module" in cast(cst.Attribute, node).attr.value
        ):
            return True
        if node_type is cst.SimpleString and "Module" in cast(cst.SimpleString, node).value:
            return True
    return False


def callable_parameter(param: Optional[cst.Param]) -> bool:
    """A parameter that holds a plain function, whatever its name says: annotated
    `Callable[...]` (even `Callable[[nn.Module, Any], Any]`, a function taking a module) or
    defaulting to a lambda (`model_transform=lambda output: output`)."""
    if param is None:
        return False
    if type(param.default) is cst.Lambda:
        return True
    annotation = param.annotation.annotation if param.annotation is not None else None
    return annotation is not None and _names_callable(annotation)


def _names_callable(annotation: cst.BaseExpression) -> bool:
    """`Callable[...]`, `typing.Callable`, and the same made optional (`Optional[Callable[
    ..., nn.Module]]`, `Union[Callable, None]`, `Callable | None`): a factory or a hook the
    caller passes, which calling runs no module's forward of this function's."""
    if type(annotation) is cst.BinaryOperation and type(annotation.operator) is cst.BitOr:
        sides = [annotation.left, annotation.right]
        kept = [side for side in sides if not (type(side) is cst.Name and side.value == "None")]
        return len(kept) == 1 and _names_callable(kept[0])
    head = annotation.value if type(annotation) is cst.Subscript else annotation
    if type(head) is cst.Attribute:
        head = head.attr
    if type(head) is not cst.Name:
        return False
    if head.value == "Callable":
        return True
    if head.value in ("Optional", "Union") and type(annotation) is cst.Subscript:
        kept = [
            element.slice.value
            for element in annotation.slice
            if type(element.slice) is cst.Index
            and not (type(element.slice.value) is cst.Name and element.slice.value.value == "None")
        ]
        return len(kept) == 1 and _names_callable(kept[0])
    return False


def callable_parameters(node: cst.FunctionDef) -> frozenset[str]:
    """The parameters of `node` that `callable_parameter` says hold plain functions."""
    params = node.params
    return frozenset(
        p.name.value
        for p in (*params.posonly_params, *params.params, *params.kwonly_params)
        if callable_parameter(p)
    )
