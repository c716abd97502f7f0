"""Which module of the caller an argument hands to a callee's parameter (issue 16, item 3).

`sample(best.decoder, 32)`: an attribute of a module is one of its submodules when a callee
runs it as a module. It has no key of its own in the caller until something binds it, yet it
is in the mode of the module holding it (`eval()` and `train()` reach every submodule), so it
maps to the path under that module's key, as `net.decoder(h)` called in place does.
"""

from __future__ import annotations

from typing import Callable, Optional

import libcst as cst

from evallint.analysis.lattice import PathState


def submodule_argument(
    resolve: Callable[[cst.BaseExpression, PathState], Optional[str]],
    argument: cst.BaseExpression,
    state: PathState,
) -> Optional[str]:
    """The key of `argument` = `<module>.<attr>...` under the nearest receiver that `resolve`
    says holds a module; None for anything else (a name, a call, a subscript chain)."""
    if type(argument) is not cst.Attribute:
        return None
    rest: list[str] = []
    node: cst.BaseExpression = argument
    while type(node) is cst.Attribute:
        rest.append(node.attr.value)
        node = node.value
        if type(node) not in (cst.Attribute, cst.Name):
            return None
        key = resolve(node, state)
        if key is not None:
            path = f"{key}.{'.'.join(reversed(rest))}"
            return state.key_of(path) or path
    return None
