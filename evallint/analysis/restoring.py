"""A function that switches to eval mode, evaluates, then switches back to train mode:
`def predict(self, x): self.eval(); out = self(x); self.train(); return out.argmax(1)`.

The `train()` there restores the mode for the caller's later training; it trains nothing.
Such a function is still a whole evaluation (see Summary.whole_evaluation). It is told
apart from a training function that also evaluates (`fit()`: `train()` at the top of each
epoch, `eval()` before validating) by where the switches stand: every `train()` switch is
in a statement of the body after every statement that switches to eval or runs a forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from evallint.analysis.symbols import dotted_name
from evallint.analysis.walk import iter_nodes


def restores_train_last(body: Sequence[cst.CSTNode], forwards: Sequence[cst.CSTNode]) -> bool:
    """Whether the body's `train()` switches all come after its `eval()` switches and the
    forwards given (their sites, or the calls that lead to them), statement by statement."""
    if not forwards:
        return False
    wanted = {id(node) for node in forwards}
    last_evaluating = -1
    first_restore = None
    for index, statement in enumerate(body):
        for node in iter_nodes(statement):
            if id(node) in wanted:
                last_evaluating = index
            if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
                continue
            attr = node.func.attr.value
            if attr == "eval" and not node.args:
                last_evaluating = index
            elif attr == "train" and not _false_argument(node):
                if first_restore is None:
                    first_restore = index
    if first_restore is None or last_evaluating < 0:
        return False
    return first_restore > last_evaluating


def _false_argument(call: cst.Call) -> bool:
    if not call.args:
        return False
    value = call.args[0].value
    return type(value) is cst.Name and value.value == "False"


def part_switched_back(body: Sequence[cst.CSTNode]) -> bool:
    """Whether every `eval()` switch of the body is of a part (`self.vocoder.codec.eval()`,
    `model.encoder.eval()`) that a later statement switches back with `train()` (the part
    itself or a module holding it), after which a statement runs that module or another
    of the same root (`self.vocoder(x)`): a frozen part used in eval mode for a while by a
    function that goes on to run the model in train mode. The `train()` restores the part's
    mode; the function does not mean to evaluate, so its eval() is no evidence that it does.
    Unlike `restores_train_last`, the train() does not end the function's work."""
    switches: list[tuple[int, str, str]] = []  # (statement index, "eval"/"train", receiver)
    called: list[tuple[int, str]] = []
    for index, statement in enumerate(body):
        for node in iter_nodes(statement):
            if type(node) is not cst.Call:
                continue
            name = dotted_name(node.func)
            if name is None:
                continue
            attr = name.rsplit(".", 1)[-1]
            receiver = name.rsplit(".", 1)[0] if "." in name else ""
            if attr == "eval" and not node.args and receiver:
                switches.append((index, "eval", receiver))
            elif attr == "train" and not _false_argument(node) and receiver:
                switches.append((index, "train", receiver))
            else:
                called.append((index, name))
    evals = [(i, r) for i, kind, r in switches if kind == "eval"]
    if not evals:
        return False
    for index, receiver in evals:
        if not _is_part(receiver):
            return False
        restores = [
            (i, r)
            for i, kind, r in switches
            if kind == "train" and i > index and (r == receiver or receiver.startswith(r + "."))
        ]
        if not any(
            i > restore and _root(name) == _root(trained)
            for restore, trained in restores
            for i, name in called
        ):
            return False
    return True


def _root(name: str) -> str:
    """`self.vocoder` of `self.vocoder.codec.encode`, `model` of `model.encoder`."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "self" and len(parts) > 1 else parts[0]


def _is_part(receiver: str) -> bool:
    """A module reached through another one: `model.encoder`, `self.vocoder.codec`."""
    return receiver != _root(receiver)


def trains_beside_a_frozen_module(body: Sequence[cst.CSTNode]) -> bool:
    """Whether the body switches one module to training mode (`self.policy.train()`) and
    only other modules to eval mode (`self.reference.eval()`), never the one it trains: it
    computes with a trained module against a frozen companion (a DPO reference model, a
    distillation teacher, a frozen discriminator), the training side of the work. The eval()
    keeps the companion's Dropout off for that computation; it is no evidence that the
    function evaluates. A function that switches the same module both ways (trains, then
    evaluates it) is not one."""
    trained: set[str] = set()
    frozen: set[str] = set()
    for statement in body:
        for node in iter_nodes(statement):
            if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
                continue
            attr = node.func.attr.value
            receiver = dotted_name(node.func.value)
            if receiver is None:
                continue
            if (attr == "eval" and not node.args) or (attr == "train" and _false_argument(node)):
                frozen.add(receiver)
            elif attr == "train":
                trained.add(receiver)
    return bool(trained) and bool(frozen) and not trained & frozen
