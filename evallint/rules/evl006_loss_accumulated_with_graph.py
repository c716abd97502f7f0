"""EVL006: a tensor is kept, once per iteration, together with its autograd graph."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import libcst as cst

from evallint.analysis.facts import ModuleFacts, TensorStore
from evallint.analysis.statement_shapes import running_sum_operand
from evallint.diagnostics import Diagnostic, Edit, Fix
from evallint.rules.base import Example, Rule


class LossAccumulatedWithGraph(Rule):
    """
    ## What it does
    Finds a loop (or a per-batch hook such as Lightning's `training_step`) that keeps a
    tensor carrying an autograd graph in a container that outlives the iteration:
    `running_loss += loss`, `losses.append(loss)`, `cache[i] = loss`,
    `self.outputs.append(out)`. A value carries a graph when it comes from a model's forward
    or a loss computed with grad on, or when `backward()` is called on it, and keeps it
    through arithmetic, tensor methods and functions of it (`loss * 2`, `loss.mean()`,
    `criterion(out, y)`); `.detach()`, `.item()`, `float()`, `.cpu().numpy()`, NumPy,
    SciPy and `math` functions, a write into a numeric NumPy array (`np.zeros(n)[i] = loss`
    stores a float) and computing it under `torch.no_grad()` remove it, as does a module
    frozen by `requires_grad_(False)` before its forward (only its inputs' graph passes; so
    do an ema-pytorch `EMA` copy, a `self.x` the constructor freezes, and a module with no
    parameters: a class of the project that builds nothing, torchaudio's spectrogram
    transforms), and handing a value to a NumPy function (which raises on a tensor that
    requires grad, so what follows holds none). A
    method whose declared return type is plain (`-> (Result, float)`, `Result` a record of
    plain values) returns no graph, whatever its overrides compute. What a call returns
    carries no graph unless the call is given such a value or is a function of the file whose
    returns carry one: a metric of arrays, an environment's reward, an `nn.ModuleList` built in
    `__init__` or an evaluator's dict are plain values, and so is what a method returns when
    every class of the file that defines it returns only plain values (`{"val_loss":
    loss.item()}`). A module built from a forward's output (`StyleLoss(features)`, a class of
    `torch.nn` or of the project) is a module, not that output, and `meter.append(loss)` on an
    object of a project class that defines `append` itself is that method, not a list's.

    Two cases, one code. When the stored tensor is backpropagated, `backward()` has freed
    its saved activations but the graph's nodes stay reachable from the container. When
    nothing backwards it (outputs or losses collected in an evaluation or logging loop with
    autograd on) every batch's activations stay alive: the out-of-memory case. Both are
    one mistake at one place with one fix (keep a detached value), so they share EVL006; a
    separate code would report the same store twice. EVL002 reports the forward of such an
    evaluation loop; this rule reports the store that makes its memory grow.

    ## Why is this bad?
    The container references every iteration's autograd graph, so none of them is freed
    until the container is: memory grows with every batch, often until the epoch runs out of
    memory, and arithmetic on the total is tracked for a backward pass that never comes.

    ## Example
    ```python
    for x, y in train_loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss
    ```

    ## Use instead
    ```python
        running_loss += loss.item()  # or loss.detach()
    ```

    ## Known problems
    Not reported when the container is itself backpropagated (gradient accumulation:
    `total += loss; total.backward()`), when the stored value was backpropagated and the
    same loop resets the container where it steps the optimizer (`running_loss = 0` after
    each `optimizer.step()` of a gradient-accumulation loop: the freed graphs of one step's
    micro-batches, no growth; a reset under a logging interval alone is still reported, as
    is a value nothing backwards, whose kept graphs hold their activations until the reset), or turned into a returned tensor
    (`return torch.cat(logps)`, which the caller may backpropagate; not when the stored
    value was already backpropagated here, whose saved tensors are freed, nor in an
    evaluation, whose caller does not backpropagate, nor for a bare
    `return losses`), when the loop rebuilds it every iteration
    (`parts = []` in the body), for a local container of a module's `forward` (it holds one
    call's parts of the output), for a local container filled only in loops over a fixed few
    items (a literal `for size in (3, 64):`, a model's own `for block in model.blocks:`, a
    loop that trains nothing over at most 32 items counted from the function's constants:
    `np.linspace(0, 180, 19)`, `np.random.choice(n, 4)`; a `zip` of such displays only),
    or for a constant key (`d["loss"] = loss` replaces the previous entry, so nothing piles
    up), for a container rebuilt per batch and filled over that batch's parts (`for chunk in
    data.chunk(4):`; a container the function returns, filled in its only loop over the
    parts of one argument, `for k in labels.unique():`, in a function that trains nothing),
    for a loop over the layers of an `nn.ModuleList`/`Sequential` (once per layer, not per
    batch), for a local container of a loop that trains nothing and either feeds
    its forwards the same input every time (Monte Carlo samples, `preds[i] = model(x)` for
    `i in range(n)`) or runs none (`q @ K.T` for the rows of embeddings built before it),
    for a container the function returns after turning grad on at its caller's request
    (`enable_grad() if use_grad else no_grad()`), or for a container the function returns
    to callers that all backpropagate what they build from it (`terms =
    self.penalty_terms(out, x)`, `loss = loss + sum(terms)`, `loss.backward()`; the calls of
    its name in its file). A forward of `self.model` annotated with a class of the file whose
    `forward` returns no graph (what `generate()` produced) keeps none. An entry updated from
    itself (`masks[i] = torch.max(masks[i], m)`) is a running update, like `+=`. `torch.autograd.grad` results carry no graph unless
    `create_graph=True`. Values are followed through assignments in the
    same function and through the returns of the file's own functions; a helper the analysis
    cannot read, given only the model, returns an unknown value, which is not reported. A
    forward of a parameter that only may hold a module, in a function its file calls, counts
    only when the value is backpropagated (callers' arguments are not followed for this rule
    yet). A running sum (`+=`)
    is reported only when the added value is backpropagated: measured on real code, sums of
    what a helper returned were mostly plain numbers the helper had already `.item()`-ed.

    ## Fix safety
    The fix appends `.detach()`, which keeps the value a tensor with the same numbers.
    """

    code = "EVL006"
    name = "loss-accumulated-with-graph"
    summary = "A loop keeps a tensor with its autograd graph (memory grows every iteration)"
    VALID = (
        Example("""
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            total = 0.0
            for x in train_loader:
                loss = model(x).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                total += loss.item()
        """),
    )
    INVALID = (
        Example(
            """
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            total, history = 0.0, []
            for x in train_loader:
                loss = model(x).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                total += loss
                history.append(loss * 2)
        """,
            (10, 11),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        for found in facts.tensor_stores:
            if not self.keeps_graph(found):
                continue
            where = f"every `{found.hook}` call" if found.hook else "every iteration"
            if found.backwarded or found.sibling_backwarded:
                consequence = (
                    f"{where} adds a graph that stays reachable until `{found.container}` is "
                    "dropped, so memory grows each step"
                )
            else:
                consequence = (
                    f"nothing backwards it, so {where} keeps that batch's activations alive "
                    "and memory grows until it runs out"
                )
            message = (
                f"`{found.container}` keeps `{found.value}` with its autograd graph: "
                f"{consequence}; store `.item()` or `.detach()`"
            )
            fix = self.fix(facts, found) if facts.want_fixes else None
            yield self.diagnostic(facts, found.place, (), message, [], found.container, fix=fix)

    @staticmethod
    def keeps_graph(found: TensorStore) -> bool:
        if found.sources_from_callers and not found.backwarded:
            return False  # `encode(tokenizer, texts)`: the parameter may hold no module
        if found.kind == "add" and not found.backwarded:
            return False  # a running sum of what a helper returned: usually plain numbers
        if found.kind == "add" and found.grad_off_at_store:
            return False  # `+=` under no_grad makes a sum with no graph
        if found.reset_in_loop and (found.backwarded or found.sibling_backwarded):
            return False  # freed graphs, dropped at every reset: a few nodes, no growth
        if found.reads_recurrent_state and not found.backwarded:
            return False  # `outs.append(h)` after `h = cell(x, h)`: h's graph holds every step
        return (
            bool(found.graph_sources or found.backwarded)
            and found.container_outlives_iteration
            and not found.container_backpropagated
            and not (
                found.container_feeds_returned_tensor
                and not found.backwarded
                and not found.in_evaluation
            )
        )

    @staticmethod
    def fix(facts: ModuleFacts, found: TensorStore) -> Optional[Fix]:
        node = found.place.node
        if isinstance(node, cst.Assign):
            # `total = total + v` adds `v`; `cache[i] = v` stores the whole value
            value = running_sum_operand(node.targets[0].target, node.value) or node.value
        elif isinstance(node, cst.AugAssign):
            value = node.value
        else:
            value = node.args[0].value  # type: ignore[attr-defined]
        if isinstance(value, (cst.Tuple, cst.List, cst.Dict)):
            return None  # `(step, loss)`: which element holds the graph is not rewritten
        simple = isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or bool(
            getattr(value, "lpar", ())
        )
        text = f"{found.value}.detach()" if simple else f"({found.value}).detach()"
        line, column, end_line, end_column = facts.unit.locate(value)
        return Fix(
            "Detach the accumulated value", (Edit(line, column, end_line, end_column, text),)
        )
