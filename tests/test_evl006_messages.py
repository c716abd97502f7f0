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


_EPOCH_SUMS = """
import torch

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = setup()
history = []
for epoch in range(10):
    epoch_loss = 0.0
    for x, y in loader:
        batch_loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        batch_loss.backward()
        optimizer.step()
        epoch_loss += batch_loss.item()
        KEEP
    history.append(epoch_loss)
"""


def test_sum_of_backpropagated_losses_kept_per_epoch_stays_reachable() -> None:
    # `total += batch_loss` sums the backpropagated losses: appending the sum keeps their
    # graphs, whose activations the backward already freed
    source = dedent(_EPOCH_SUMS).replace(
        "epoch_loss += batch_loss.item()", "epoch_loss += batch_loss"
    )
    messages = [d.message for d in lint_source(source.replace("KEEP", "")) if d.code == "EVL006"]
    assert len(messages) == 2 and all("stays reachable" in m for m in messages)
    assert "`history` keeps `epoch_loss`" in " ".join(messages)


def test_numbers_of_backpropagated_losses_kept_per_epoch_are_not_reported() -> None:
    source = dedent(_EPOCH_SUMS).replace("KEEP", "")
    assert [d for d in lint_source(source) if d.code == "EVL006"] == []
