"""Which module a name built here holds: new modules, and modules that only carry others.

A parameter rebound to a new module is a new key (see `fresh_key`).


`sampler = Sampler(net, steps)` with `Sampler` a module class of another project file that
builds no layer of its own (no submodule, no parameter, no functional form with a `training`
flag; buffers and settings are fine: see plain_modules.py) and keeps its constructor
arguments (`self.net = net`): whatever mode the new object is in, its forward runs the kept
networks, each in its own mode. Its mode for EVL001 is theirs: `net.eval()` before or after
the wrapper is built is what counts, and a kept network in training mode is still found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from evallint.analysis.lattice import PathState
    from evallint.analysis.scope import FunctionInfo


def fresh_key(info: Optional[FunctionInfo], name: str, state: PathState) -> str:
    """The key of a module built afresh into `name`. A parameter's name rebound to a new
    module (`model = deepcopy(model)`, then `model.eval()` on the copy) no longer names the
    caller's module: the new one gets a key of its own, so what is done to it (a switch, a
    submodule replaced: `model.fc = nn.Identity()`) is not summarised as done to the
    caller's argument."""
    if info is None:
        return name
    root, dot, rest = name.partition(".")
    if (root not in info.params and root not in info.keyword_only) or root == "self":
        return name
    if not dot:
        return f"{name}'"
    renamed = f"{root}'"
    return f"{renamed}.{rest}" if state.key_of(root) == renamed else name


def kept_members(carried: list[tuple[str, str]]) -> tuple[str, ...]:
    """The attributes through which a freshly built module reaches the modules it was given
    (`carried`: (attribute, key of the module passed in), for a class that only carries)."""
    return tuple(dict.fromkeys(attribute for attribute, _ in carried))


def kept_mode_facts(state: PathState, key: str, members: tuple[str, ...]) -> Optional[frozenset]:
    """The mode facts of the modules `key` keeps (`sampler.net` -> `net`), or None when
    some member is no longer known on this path (then `key`'s own facts stand)."""
    facts: frozenset = frozenset()
    for attribute in members:
        held = state.key_of(f"{key}.{attribute}")
        found = state.mode_in_tree(held) if held is not None else None
        if found is None:
            return None
        facts |= found
    return facts or None
