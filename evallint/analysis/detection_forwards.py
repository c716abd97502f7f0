"""Forwards of a torchvision detection model given its targets: the training call (issue 16).

torchvision's detection models (`torchvision.models.detection.fasterrcnn_resnet50_fpn()`,
`maskrcnn_...`, `retinanet_...`) document two call forms: `model(images, targets)` in
training mode, which returns the dict of losses to backpropagate, and `model(images)` in eval
mode, which returns the detections. A call given the targets (a second positional argument or
`targets=`) is the training form: the author means the model to be in training mode there,
whatever region the call sits in (a smoke test that runs both forms, `test_forward()`), so it
is no evaluation in training mode. Decided from the constructor the variable is bound to in
its scope (every binding a `torchvision.models.detection` factory) and the call's arguments.
"""

from __future__ import annotations

import libcst as cst

from evallint.analysis.symbols import ImportTable
from evallint.analysis.walk import iter_nodes

_DETECTION_FACTORIES = "torchvision.models.detection."


def detection_training_call(call: cst.Call, scope: cst.CSTNode, imports: ImportTable) -> bool:
    """`model(images, targets)` of a torchvision detection model bound in `scope`."""
    positional = [a for a in call.args if a.keyword is None and not a.star]
    given_targets = len(positional) >= 2 or any(
        a.keyword is not None and a.keyword.value == "targets" for a in call.args
    )
    if not given_targets or type(call.func) is not cst.Name:
        return False
    name = call.func.value
    bound = []
    for node in iter_nodes(scope):
        if type(node) is cst.Assign:
            for target in node.targets:
                if type(target.target) is cst.Name and target.target.value == name:
                    bound.append(node.value)
        elif type(node) in (cst.AugAssign, cst.AnnAssign, cst.For, cst.With):
            if any(type(n) is cst.Name and n.value == name for n in _targets(node)):
                return False
    return bool(bound) and all(
        type(value) is cst.Call
        and (imports.qualify(value.func) or "").startswith(_DETECTION_FACTORIES)
        for value in bound
    )


def _targets(node: cst.CSTNode) -> list[cst.CSTNode]:
    if type(node) is cst.With:
        return [
            n
            for item in node.items
            if item.asname is not None
            for n in iter_nodes(item.asname.name)
        ]
    return list(iter_nodes(node.target))  # type: ignore[attr-defined]
