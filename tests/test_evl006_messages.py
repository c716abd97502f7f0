"""EVL006's consequence follows what was backpropagated (issue 21): a value kept after a
backward of its own forward's graph (a sibling output, or through an engine's
`backward(loss)`) has had its activations freed, so the message says its graph stays
reachable; a forward output nothing backwards keeps its activations alive."""

from __future__ import annotations

from textwrap import dedent

from evallint import lint_source

_LOOP = """
import torch

model, optimizer, loader = setup()
engine = torch.nn.Linear(4, 2)
kept = []
for batch in loader:
    outputs = engine(batch)
    kept.append(outputs.logits.to("cpu"))
    loss = outputs.loss
    BACKWARD
    optimizer.step()
"""


def _evl006(backward: str) -> list[str]:
    source = dedent(_LOOP).replace("BACKWARD", backward)
    return [d.message for d in lint_source(source) if d.code == "EVL006"]


def test_sibling_output_of_a_backpropagated_loss_stays_reachable() -> None:
    messages = _evl006("loss.backward()")
    assert len(messages) == 1 and "stays reachable" in messages[0]


def test_engine_backward_of_the_loss_frees_the_shared_graph() -> None:
    # a DeepSpeed engine (a module) backpropagates its argument, not itself
    messages = _evl006("engine.backward(loss)")
    assert len(messages) == 1 and "stays reachable" in messages[0]


def test_output_whose_forward_nothing_backwards_keeps_activations() -> None:
    messages = _evl006("other = torch.ones(1, requires_grad=True).sum()\n    other.backward()")
    assert len(messages) == 1 and "keeps that batch's activations alive" in messages[0]
