"""The class a module attribute is annotated with.

`class Pipeline: model: ChronosModel` (or `def __init__(self, model: ChronosModel)` with
`self.model = model`): what `self.model(...)` runs is `ChronosModel.forward`, when that class is
defined in the same file. EVL006 reads that forward's returns (generated token ids carry no
graph).
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.symbols import dotted_name


def annotated_attribute_type(owner: cst.ClassDef, attribute: str) -> Optional[str]:
    """The dotted annotation of `attribute` in the class body (`model: ChronosModel`) or of its
    annotated assignment in `__init__`, else of the `__init__` parameter assigned to
    `self.<attribute>` unchanged."""
    body = owner.body.body if type(owner.body) is cst.IndentedBlock else ()
    init: Optional[cst.FunctionDef] = None
    for statement in body:
        if type(statement) is cst.SimpleStatementLine:
            for small in statement.body:
                if (
                    type(small) is cst.AnnAssign
                    and type(small.target) is cst.Name
                    and small.target.value == attribute
                ):
                    return dotted_name(small.annotation.annotation)
        elif type(statement) is cst.FunctionDef and statement.name.value == "__init__":
            init = statement
    if init is None:
        return None
    annotations = {
        p.name.value: dotted_name(p.annotation.annotation)
        for p in (*init.params.params, *init.params.kwonly_params)
        if p.annotation is not None
    }
    init_body = init.body.body if type(init.body) is cst.IndentedBlock else ()
    for statement in init_body:
        if type(statement) is not cst.SimpleStatementLine:
            continue
        for small in statement.body:
            if type(small) is cst.AnnAssign and dotted_name(small.target) == f"self.{attribute}":
                return dotted_name(small.annotation.annotation)  # `self.model: Model = model`
            if (
                type(small) is cst.Assign
                and len(small.targets) == 1
                and dotted_name(small.targets[0].target) == f"self.{attribute}"
                and type(small.value) is cst.Name
            ):
                return annotations.get(small.value.value)
    return None
