"""The grad state a function leaves behind for its caller.

`torch.set_grad_enabled(False)` called as a statement is not scoped: it switches autograd
off for the thread until something switches it back, also after the function that called
it returns. Reinforcement-learning code uses this as its idiom:

```python
def train_agent(args):
    torch.set_grad_enabled(False)      # off for everything from here on ...
    ...                                # ... and on only around the updates

train_agent(args)
valid_agent(actor)                     # runs with autograd off
```

A function whose body starts in its caller's grad state (no grad decorator, whose scope
ends at `return`) and leaves a state of its own on some path hands that state to the
caller; a `with torch.no_grad():` block is popped on leaving, so it leaves none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

import libcst as cst

from evallint.analysis.lattice import Grad, PathState
from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes


def sets_grad_unscoped(function: cst.CSTNode) -> bool:
    """The function's own body calls `set_grad_enabled(...)` outside a `with` item (as a
    statement, or `_ = torch.set_grad_enabled(False)`): only such a call leaves a grad state
    behind. A grad state the analysis proved otherwise (a `backward()` proves grad was on at
    the entry) is the caller's own, not one the function set."""
    managers: set[int] = set()
    for node in iter_nodes(function):
        if type(node) is cst.With:
            managers.update(id(item.item) for item in node.items)
        elif (
            type(node) is cst.Call
            and id(node) not in managers
            and (dotted_name(node.func) or "").split(".")[-1] == "set_grad_enabled"
        ):
            return True
    return False


def grad_left_set(exit_states: Iterable[PathState]) -> Optional[frozenset]:
    """The grad facts at the function's exits when some path set the state itself
    (facts from the entry stand for the caller's state); None when every path leaves the
    caller's state untouched."""
    facts: frozenset = frozenset()
    for state in exit_states:
        # a `return` inside `with torch.no_grad():` leaves the state the block was entered in
        facts |= state.grad_stack[0] if state.grad_stack else state.grad
    if not facts or all(f.grad is Grad.ENTRY for f in facts):
        return None
    return facts


def grad_after_call(left: Optional[frozenset], state: PathState) -> PathState:
    """`state` after a call of a function that leaves `left` (see grad_left_set)."""
    if left is None:
        return state
    kept = frozenset(f for f in left if f.grad is not Grad.ENTRY)
    return state.with_grad(kept | (state.grad if kept != left else frozenset()))
