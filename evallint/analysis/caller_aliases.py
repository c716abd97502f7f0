"""Parameters that every caller in the file binds to the same module global (issue 16).

`def val(net, loader): net.eval(); ... crnn(image)`, called only as `val(crnn, loader)`:
`net` and the global `crnn` are one module on every path that reaches the function, so the
switch of `net` is the switch of `crnn` (and the other way round). The function is read with
the parameter as an alias of the global. Decided from the file's call sites, never from
names: a caller that passes anything else (another global, an expression, nothing) keeps the
parameter its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import FunctionInfo


def globals_every_caller_passes(
    file: FileAnalysis, info: FunctionInfo, module_globals: set[str]
) -> dict[str, str]:
    """Parameter -> the module global (one of `module_globals`: module-level names holding
    modules that the function also uses itself) that every call of this top-level function
    in the file passes for it, by position or keyword. Empty when the function is a method
    or nested, when nothing in the file calls it, or when `module_globals` is empty (the
    file's calls are then not read)."""
    if not module_globals or info.owner is not None or info.parent is not None:
        return {}
    calls = _calls_by_name(file).get(info.name, [])
    if not calls:
        return {}
    found: dict[str, str] = {}
    for position, param in enumerate(info.params):
        passed = {_passed(call, param, position) for call in calls}
        if len(passed) == 1:
            (name,) = passed
            if name is not None and name in module_globals and name != param:
                found[param] = name
    return found


def _passed(call: cst.Call, param: str, position: int) -> str | None:
    """The bare name a call passes for the parameter, if it passes a bare name."""
    positional = [a for a in call.args if a.keyword is None]
    if any(a.star for a in call.args):
        return None
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == param:
            return arg.value.value if type(arg.value) is cst.Name else None
    if position < len(positional):
        value = positional[position].value
        return value.value if type(value) is cst.Name else None
    return None


def _calls_by_name(file: FileAnalysis) -> dict[str, list[cst.Call]]:
    """`f(...)` calls of the file by the called bare name, read once per file and only when a
    function asks (see `globals_every_caller_passes`)."""
    cached = file.__dict__.get("_calls_by_name")
    if cached is None:
        cached = {}
        for node in iter_nodes(file.module, enter_scopes=True):
            if type(node) is cst.Call and type(node.func) is cst.Name:
                cached.setdefault(node.func.value, []).append(node)
        file.__dict__["_calls_by_name"] = cached
    return cached
