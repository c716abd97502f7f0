"""Modules a plain object keeps in a dict attribute, one per key (issue 16).

```python
class Tagger:                          # a plain class: an inference API of a package
    def __init__(self, lang):
        self.nets = {}
        self.nets[lang] = TagNet()     # a module class
        self.nets[lang].eval()
    def tag(self, batch):
        return self.nets[self.lang](batch)
```

`self.nets` is bound only to empty dicts and filled by item stores of module constructions:
every value it holds is one of those modules. Which key an expression reads is not known
statically, so all of them are one abstract member, `self.nets[*]`: a store builds it, a
switch through any key switches it (each store above is followed by its own switch), and a
read through any key runs it. A dict of which any store is not a module construction, or
that is rebound to anything but an empty dict, holds no known module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes

ANY_KEY = "[*]"


def element_path(expr: cst.BaseExpression) -> Optional[str]:
    """`self.nets[*]` for `self.nets[<any one key>]`, else the dotted name (or None)."""
    if type(expr) is cst.Subscript and len(expr.slice) == 1:
        base = dotted_name(expr.value)
        if base is not None and base.startswith("self.") and base.count(".") == 1:
            return base + ANY_KEY
        return None
    return dotted_name(expr)


def _empty_dict(value: cst.BaseExpression) -> bool:
    if type(value) is cst.Dict:
        return not value.elements
    return (
        type(value) is cst.Call
        and type(value.func) is cst.Name
        and value.func.value == "dict"
        and not value.args
    )


def keyed_module_dicts(
    functions: Iterable[cst.CSTNode], builds_module: Callable[[cst.BaseExpression], bool]
) -> dict[str, tuple[str, ...]]:
    """`self.X` -> (`self.X[*]`,) for each attribute of the class bound only to empty dicts
    and filled only with module constructions (`builds_module`), at least one."""
    stores: dict[str, list[bool]] = {}
    rebound: set[str] = set()
    for function in functions:
        for node in iter_nodes(function):
            if type(node) is not cst.Assign:
                continue
            for target in node.targets:
                element = target.target
                if type(element) is cst.Subscript:
                    path = element_path(element)
                    if path is not None and path.endswith(ANY_KEY):
                        stores.setdefault(path, []).append(builds_module(node.value))
                    continue
                for name in _names(element):
                    if not _empty_dict(node.value) or element is not target.target:
                        rebound.add(name + ANY_KEY)
    return {
        path[: -len(ANY_KEY)]: (path,)
        for path, built in stores.items()
        if built and all(built) and path not in rebound
    }


def _names(target: cst.BaseExpression) -> list[str]:
    if type(target) in (cst.Tuple, cst.List):
        found: list[str] = []
        for element in target.elements:  # type: ignore[attr-defined]
            found.extend(_names(element.value))
        return found
    name = dotted_name(target)
    return [name] if name is not None else []
