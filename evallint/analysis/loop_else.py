"""A training loop's `else:` block (`for x, y in train_loader: ... else: <validation>`): it
runs once the loop has finished, so inside a training body it stands after that loop's
training steps, as the statements that follow the loop would. It is an evaluation by what
it does, under the same test as an evaluation tail (flow.py `_evaluation_tail`): it switches
to eval mode, or it only reports what a module computes and feeds nothing back into the
training that runs after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import libcst as cst

from evallint.analysis.dataflow import feeds_training
from evallint.analysis.regions import Evidence, Region, RegionKind, reports_only


def else_block(statement: cst.CSTNode) -> Optional[Sequence[cst.CSTNode]]:
    """The statements of a `for`/`while` loop's `else:` block; None without one."""
    if type(statement) not in (cst.For, cst.While):
        return None
    orelse = statement.orelse  # type: ignore[attr-defined]
    if type(orelse) is not cst.Else:
        return None
    body = orelse.body
    return body.body if type(body) is cst.IndentedBlock else None  # not `else: print(x)`


def else_evaluation(
    statement: cst.CSTNode,
    after: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
    evidence_of: Callable[[Sequence[cst.CSTNode]], Evidence],
) -> Optional[Region]:
    """The evaluation region of a training loop's `else:` block, or None. `statement` is a
    statement of a training body that trains; `after` runs after it (the rest of the body,
    the start of an enclosing loop's next pass); `evidence_of` reads a block's evidence."""
    block = else_block(statement)
    if not block:
        return None
    shown = evidence_of(block)
    if shown.training_sites:
        return None
    if not shown.switches_to_eval and (
        not reports_only(shown) or feeds_training(block, after, trains)
    ):
        return None
    return Region(
        block[0],
        RegionKind.EVAL,
        "evaluation after the training loop",
        shown.graph_needed,
        has_data_loop=shown.has_loop,
        after_training=True,
    )
