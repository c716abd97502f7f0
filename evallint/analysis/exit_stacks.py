"""Managers entered through an exit stack: `stack.enter_context(manager)`.

```python
with ExitStack() as stack:
    if isinstance(model, nn.Module):
        stack.enter_context(inference_context(model))
    stack.enter_context(torch.no_grad())
    for inputs in loader:
        outputs = model(inputs)
```

A `with` item that builds `contextlib.ExitStack()` or `contextlib.AsyncExitStack()` bound by
`as stack` opens a frame; each statement `stack.enter_context(cm)` (or `await
stack.enter_async_context(cm)`, also as an assignment's value) in the block enters `cm` as a
`with` item would, from that statement to the end of the block, where the stack leaves every
manager it entered. A stack kept past its block (`stack.pop_all()`) is read the same: the
managers are left at the end of the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import libcst as cst

STACK_CLASSES = frozenset({"contextlib.ExitStack", "contextlib.AsyncExitStack"})
ENTER_METHODS = frozenset({"enter_context", "enter_async_context"})


@dataclass
class Entered:
    """What entering `with` items (or exit-stack entries) did, undone when the block ends."""

    pushed: int = 0
    exits: list = field(default_factory=list)
    managed: list = field(default_factory=list)


@dataclass
class StackFrame:
    """A `with ExitStack() as name:` block being interpreted."""

    name: str
    entered: Entered = field(default_factory=Entered)
    depth: Optional[int] = None
    grad: frozenset = frozenset()


def opened_stack(item: cst.WithItem, imports: Any) -> Optional[str]:
    """The name `with ExitStack() as name:` binds, else None."""
    expr = item.item
    if type(expr) is not cst.Call or item.asname is None or type(item.asname.name) is not cst.Name:
        return None
    if (imports.qualify(expr.func) or "") not in STACK_CLASSES:
        return None
    return item.asname.name.value


def stack_entry(value: cst.BaseExpression, frames: list) -> Optional[tuple]:
    """`(frame, manager)` when `value` is `stack.enter_context(manager)` (awaited or not) on
    the stack of an open frame, else None."""
    if type(value) is cst.Await:
        value = value.expression
    if (
        type(value) is not cst.Call
        or type(value.func) is not cst.Attribute
        or type(value.func.value) is not cst.Name
        or value.func.attr.value not in ENTER_METHODS
        or len(value.args) != 1
        or value.args[0].keyword is not None
        or value.args[0].star
    ):
        return None
    name = value.func.value.value
    for frame in reversed(frames):
        if frame.name == name:
            return frame, value.args[0].value
    return None


def mark_entry(frame: StackFrame, body_states: tuple) -> None:
    """Record the grad depth and grad of the paths entering the block (once)."""
    depths = {len(s.grad_stack) for s in body_states}
    frame.depth = depths.pop() if len(depths) == 1 else None
    frame.grad = frozenset().union(*(s.grad for s in body_states))


def left_grad(frame: StackFrame, states: tuple) -> tuple:
    """`states` with the grad switches the stack entered left: the grad each path had when
    the block began (paths that entered no switch keep theirs)."""
    if not frame.entered.pushed or frame.depth is None:
        return states
    depth = frame.depth
    result = []
    for state in states:
        stack = state.grad_stack
        if len(stack) > depth:
            result.append(replace(state, grad=stack[depth], grad_stack=stack[:depth]))
        else:  # a path joined with one that entered nothing: back to the block's grad
            result.append(replace(state, grad=frame.grad))
    return tuple(result)


def pushed_grad(depth: Optional[int], state: Any, fact: Any = None) -> Any:
    """`state` entering a grad switch (`fact`; None: a setter sets the grad after). Inside
    an exit stack's block (`depth`: the block's grad depth) a path that already entered one
    does not push again: leaving the stack restores the grad saved at `depth`."""
    if depth is None or len(state.grad_stack) <= depth:
        return state.entering(fact)
    return state if fact is None else replace(state, grad=frozenset({fact}))
