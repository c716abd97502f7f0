"""Values that are tensors by how they are built, whatever the name they are bound to.

`p_model = (torch.ones(n) / n).cuda()` holds a tensor (a class-prior estimate), not a model:
a `torch.` function in the top namespace (`torch.ones`, `torch.mean`, `torch.cat`; not
`torch.load` or `torch.compile`, which may return a module), a functional call
(`F.softmax`), arithmetic on such a value or on a number (modules have no arithmetic), and
the same with `.to()`/`.cuda()`/`.float()` chained on. The name fallback of
`constructions.py` (a call we cannot follow into a name like `model`) must not make a module
of it."""

from __future__ import annotations

import libcst as cst

from evallint.analysis.symbols import ImportTable
from evallint.analysis.vocabulary import SAME_MODULE_METHODS
from evallint.torch_facts import UNKNOWN_MODE_LOADERS, WRAPPERS

_ARITHMETIC = (
    cst.Add,
    cst.Subtract,
    cst.Multiply,
    cst.Divide,
    cst.FloorDivide,
    cst.Power,
    cst.MatrixMultiply,
    cst.Modulo,
)


def builds_tensor(value: cst.BaseExpression, imports: ImportTable) -> bool:
    """Whether `value` is a tensor by construction (see the module docstring)."""
    if type(value) is cst.BinaryOperation:
        if type(value.operator) not in _ARITHMETIC:
            return False
        sides = (value.left, value.right)
        if any(type(side) in (cst.List, cst.Tuple, cst.ListComp) for side in sides):
            return False  # `[a, b] * n`: a repeated list
        return any(
            builds_tensor(side, imports) or type(side) in (cst.Integer, cst.Float) for side in sides
        )
    if type(value) is cst.UnaryOperation:
        return builds_tensor(value.expression, imports)
    if type(value) is not cst.Call:
        return False
    func = value.func
    qualified = imports.qualify(func) or ""
    if qualified.startswith("torch.nn.functional."):
        return True
    if qualified.startswith("torch.") and qualified.count(".") == 1:
        last = qualified[len("torch.") :]
        return (
            last[:1].islower()
            and qualified not in UNKNOWN_MODE_LOADERS
            and qualified not in WRAPPERS
        )
    if type(func) is cst.Attribute and func.attr.value in SAME_MODULE_METHODS:
        return builds_tensor(func.value, imports)
    return False
