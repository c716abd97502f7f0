"""Containers whose only use is one picture.

`imgs.append(img)`, `recons.append(model(x))` in a loop, then `grid = torch.stack(imgs +
recons)` and `save_image(grid.data, path, nrow=len(idxs))`: everything the container holds
ends in one image, whose panels are a few chosen samples, not one per batch of a dataset.
EVL006 asks this of a local container of a function that returns none of it.
"""

from __future__ import annotations

import libcst as cst

from evallint.analysis.batch_parts import read_names
from evallint.analysis.vocabulary import IMAGE_WRITERS
from evallint.analysis.walk import iter_nodes


def _callee(call: cst.Call) -> str:
    func = call.func
    if type(func) is cst.Attribute:
        return func.attr.value
    return func.value if type(func) is cst.Name else ""


def only_pictured(function: cst.FunctionDef, container: str) -> bool:
    """Every value the function computes from `container` (through assignments) goes only
    into an image writer's arguments (`save_image`, `make_grid`, `imshow`), at least once;
    none is returned, stored elsewhere or handed to any other call."""
    nodes = list(iter_nodes(function.body))
    if not any(type(n) is cst.Call and _callee(n) in IMAGE_WRITERS for n in nodes):
        return False
    derived = {container}
    changed = True
    assignments = [n for n in nodes if type(n) is cst.Assign]
    while changed:
        changed = False
        for assign in assignments:
            if read_names(assign.value) & derived:
                for target in assign.targets:
                    for name in iter_nodes(target.target):
                        if type(name) is cst.Name and name.value not in derived:
                            derived.add(name.value)
                            changed = True
    # where each read of a derived name sits: its nearest enclosing call or statement
    pictured = False
    allowed: set[int] = set()
    for node in nodes:
        if type(node) is cst.Call and _callee(node) in IMAGE_WRITERS:
            if any(read_names(a.value) & derived for a in node.args):
                pictured = True
                allowed.update(id(n) for a in node.args for n in iter_nodes(a.value))
        elif type(node) is cst.Assign and read_names(node.value) & derived:
            allowed.update(id(n) for n in iter_nodes(node.value) if type(n) is cst.Name)
            allowed.update(id(n) for t in node.targets for n in iter_nodes(t.target))
        elif type(node) is cst.Call and type(node.func) is cst.Attribute:
            receiver = node.func.value
            if type(receiver) is cst.Name and receiver.value == container:
                allowed.add(id(receiver))  # `imgs.append(img)`: the stores themselves
        elif type(node) is cst.Return and node.value is not None:
            if read_names(node.value) & derived:
                return False
    if not pictured:
        return False
    for node in nodes:
        if type(node) is cst.Name and node.value in derived and id(node) not in allowed:
            if _is_binding(assignments, node, container, nodes):
                continue
            return False
    return True


def _is_binding(
    assignments: list[cst.Assign], name: cst.Name, container: str, nodes: list[cst.CSTNode]
) -> bool:
    """`imgs = []`: the container's own creation (a target, not a read)."""
    for assign in assignments:
        if any(n is name for t in assign.targets for n in iter_nodes(t.target)):
            return True  # `imgs = []`, `imgs, recons = [], []`, `imgs[i] = img`
    return name.value == container and any(
        type(n) is cst.AugAssign and n.target is name for n in nodes
    )
