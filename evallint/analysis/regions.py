"""What kind of code a loop or function is: evaluation, training, both under a flag, or
neither. Decided from evidence in the code, never from one name alone."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Optional, cast

import libcst as cst

from evallint.analysis.conditions import condition_key
from evallint.analysis.symbols import ImportTable, dotted_name
from evallint.analysis.vocabulary import (
    EVAL_DATA_WORDS,
    METRIC_WORDS,
    OPTIMIZER_WORDS,
    REPORTING_FUNCTIONS,
    REPORTING_METHODS,
    words,
)
from evallint.analysis.walk import iter_nodes


class RegionKind(enum.Enum):
    EVAL = "evaluation"
    TRAIN = "training"
    MIXED = "training or evaluation by a flag"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class Region:
    node: cst.CSTNode
    kind: RegionKind
    description: str
    needs_grad: bool = False
    """Something in the region uses gradients (backward, autograd.grad, .grad, requires_grad_)."""
    condition: Optional[str] = None
    """For MIXED: the flag under which the region trains (normalised text)."""
    trains_when: bool = True
    has_data_loop: bool = False
    after_training: bool = False
    """An evaluation that follows a training step in the same body (so autograd is on)."""
    by_results: bool = False
    """A function judged an evaluation only by what its forwards' results become (see
    `_evaluation_by_results`): its callers may use those results for training instead."""
    by_flags: bool = False
    """An evaluation only because a call fixed the flag it trains under (`fit(model, loader,
    phase="valid")`): that call is what evaluates, so a finding is reported there."""


@dataclass
class Evidence:
    """What a block of statements contains, gathered in one lean walk."""

    training_sites: list[tuple[cst.CSTNode, tuple[tuple[str, bool], ...]]] = field(
        default_factory=list
    )
    metric: bool = False
    needs_grad: bool = False
    graph_needed: bool = False
    """Something needs a graph of the block's own (a backward, `autograd.grad`,
    `requires_grad_()`, a step over inputs): `needs_grad` less a `.grad` read alone, which
    reads gradients computed before the block (a training step's, logged every N steps)."""
    has_loop: bool = False
    steps: list[cst.Call] = field(default_factory=list)
    """`optimizer.step()` calls (a training step proper)."""
    backwards: list[cst.Call] = field(default_factory=list)
    input_steps: list[cst.Call] = field(default_factory=list)
    """`step()` of optimizers over inputs (an attack's perturbation, a style-transfer image)."""
    input_grads: bool = False
    """`x.grad` read of a tensor the file made require grad (an input, not a parameter)."""
    clears_grad: bool = False
    """`zero_grad()` on anything, `p.grad = None`, `p.grad.zero_()`."""
    switches_to_train: bool = False
    """A `.train()` call: the block puts something into training mode itself."""
    switches_to_eval: bool = False
    """An `.eval()` / `.train(False)` call: the block means to evaluate."""
    grad_guards: list[tuple[tuple[str, bool], ...]] = field(default_factory=list)
    """The `if` conditions (with their polarity) each gradient use of `needs_grad` sits
    under: a block that trains under a flag needs gradients on its other side only for a use
    outside the flag's training branch (see `classify_block`)."""
    reports: bool = False
    """A value leaves autograd for a person or a file: printed, logged, plotted, saved,
    turned into Python numbers (`.item()`, `.tolist()`, `.numpy()`) or into class labels
    (`argmax`, `topk`, `max`). A block that forwards a module only to do this evaluates."""

    def absorb(self, other: Evidence, guard: Optional[tuple[str, bool]] = None) -> None:
        """Add a nested block's evidence; `guard` is the `if` condition it sits under."""
        if guard is None:
            self.training_sites.extend(other.training_sites)
            self.grad_guards.extend(other.grad_guards)
        else:
            self.training_sites.extend(
                (site, (guard,) + guards) for site, guards in other.training_sites
            )
            self.grad_guards.extend((guard,) + guards for guards in other.grad_guards)
        self.steps.extend(other.steps)
        self.backwards.extend(other.backwards)
        self.input_steps.extend(other.input_steps)
        self.input_grads = self.input_grads or other.input_grads
        self.metric = self.metric or other.metric
        self.needs_grad = self.needs_grad or other.needs_grad
        self.graph_needed = self.graph_needed or other.graph_needed
        self.has_loop = self.has_loop or other.has_loop
        self.clears_grad = self.clears_grad or other.clears_grad
        self.switches_to_train = self.switches_to_train or other.switches_to_train
        self.switches_to_eval = self.switches_to_eval or other.switches_to_eval
        self.reports = self.reports or other.reports


def is_optimizer_receiver(node: cst.BaseExpression) -> bool:
    name = dotted_name(node)
    if name is None:
        return type(node) is cst.Subscript and is_optimizer_receiver(node.value)
    return bool(words(name.split(".")[-1]) & OPTIMIZER_WORDS)


def training_call_kind(call: cst.Call, imports: ImportTable) -> Optional[str]:
    """'backward' or 'step' when the call is (part of) a training step, else None.
    `zero_grad()` is not: the torchvision idiom calls it in the evaluation phase too."""
    func = call.func
    if type(func) is cst.Attribute:
        attr = func.attr.value
        if attr == "backward":
            return "backward"
        if attr == "step" and (
            is_optimizer_receiver(func.value) or _is_scaler_step(func.value, call)
        ):
            return "step"
    qualified = imports.qualify(func)
    if qualified in ("torch.autograd.backward",):
        return "backward"
    if _steps_given_optimizer(call):
        return "step"  # torch_xla's `xm.optimizer_step(optimizer)`
    if _passes_loss_and_optimizer(call):
        return "step"  # timm's NativeScaler: `loss_scaler(loss, optimizer, parameters=...)`
    return None


def is_loss_scaler(call: cst.Call) -> bool:
    """A call given a loss and an optimizer: a step (timm's NativeScaler) unless it is the
    context manager of a `with` (apex's `amp.scale_loss`), which only scales the loss."""
    return _passes_loss_and_optimizer(call)


def _passes_loss_and_optimizer(call: cst.Call) -> bool:
    callee = (dotted_name(call.func) or "").split(".")[-1]
    if callee[:1].isupper():
        return False  # `PyTorchClassifier(model, loss=loss_fn, optimizer=opt)` builds a wrapper
    names = [a.value.value for a in call.args if type(a.value) is cst.Name]
    return any("loss" in words(n) for n in names) and any(words(n) & OPTIMIZER_WORDS for n in names)


def _steps_given_optimizer(call: cst.Call) -> bool:
    """A function named for a step (`optimizer_step`, `step_optimizer`) given an optimizer,
    first or by keyword (Lightning's hook signature, `model.optimizer_step(epoch=epoch,
    batch_idx=i, optimizer=optimizer)`): it steps that optimizer."""
    callee = (dotted_name(call.func) or "").split(".")[-1]
    if "step" not in words(callee) or callee == "step" or not call.args:
        return False
    if is_optimizer_receiver(call.args[0].value):
        return True
    return any(
        arg.keyword is not None
        and words(arg.keyword.value) & OPTIMIZER_WORDS
        and is_optimizer_receiver(arg.value)
        for arg in call.args
    )


def _is_scaler_step(receiver: cst.BaseExpression, call: cst.Call) -> bool:
    """`scaler.step(optimizer)` (AMP) steps the optimizer it is given."""
    return bool(call.args) and is_optimizer_receiver(call.args[0].value)


_NEEDS_GRAD_QUALIFIED = frozenset(
    {
        "torch.autograd.grad",
        "torch.autograd.functional.jacobian",
        "torch.autograd.functional.hessian",
        "torch.func.grad",
        "torch.func.vjp",
        "torch.func.jacrev",
    }
)


class EvidenceCollector:
    """Evidence per statement, computed once and combined upwards: a loop's evidence is the
    union of its statements', so nested loops cost no second walk. Training sites carry the
    `if` conditions between them and the statement they are cached under."""

    def __init__(
        self,
        imports: ImportTable,
        call_trains: Callable[[cst.Call], bool],
        backward_trains: Callable[[cst.Call], bool],
        steps_input: Callable[[cst.Call], bool] = lambda call: False,
        is_grad_input: Callable[[str], bool] = lambda name: False,
        call_reports: Callable[[cst.Call], bool] = lambda call: False,
        reads_function: Callable[[cst.Call], bool] = lambda call: False,
        own_backward: Callable[[cst.Call], bool] = lambda call: False,
    ) -> None:
        self._own_backward = own_backward
        """`flow.backward(z)` on a module with a `backward` method of its own (see
        module_backward.py): a method call, not a backward pass."""
        self._call_reports = call_reports
        self._reads_function = reads_function
        """A call of a function of the file or project that the analysis reads: given a loss
        and an optimizer (`one_step(model, batch, loss_fn, optimizer, training=False)`), what
        it trains is its summary's to say (for this call's constant flags), not a guess."""
        """A call of a plain project helper that reports what it is given (`save_results(n,
        samples.detach(), epoch)` saving an image grid): the block reports through it."""
        self._imports = imports
        self._call_trains = call_trains
        self._backward_trains = backward_trains
        self._steps_input = steps_input
        self._is_grad_input = is_grad_input
        self._cache: dict[int, Evidence] = {}

    def block(self, statements) -> Evidence:
        evidence = Evidence()
        for statement in statements:
            evidence.absorb(self.statement(statement))
        return _without_input_gradients(evidence)

    def statement(self, node: cst.CSTNode) -> Evidence:
        cached = self._cache.get(id(node))
        if cached is None:
            # an `elif` chain is computed from its last link up, so hundreds of branches
            # never recurse hundreds deep
            chain = [node]
            while (
                type(chain[-1]) is cst.If
                and type(chain[-1].orelse) is cst.If
                and id(chain[-1].orelse) not in self._cache
            ):
                chain.append(chain[-1].orelse)
            for link in reversed(chain):
                self._cache[id(link)] = self._compute(link)
            cached = self._cache[id(node)]
        return cached

    def _compute(self, node: cst.CSTNode) -> Evidence:
        evidence = Evidence()
        if type(node) in (cst.FunctionDef, cst.ClassDef):
            return evidence
        if type(node) is cst.SimpleStatementLine:
            for small in node.body:
                self._scan(small, evidence)
                if type(small) is cst.Expr and type(small.value) in _SHOWN:
                    evidence.reports = True  # a bare value: what a notebook cell displays
            return evidence
        if type(node) is cst.If:
            self._scan(node.test, evidence)
            key = condition_key(node.test)
            evidence.absorb(self._suite(node.body), key)
            if type(node.orelse) is cst.If:
                evidence.absorb(self.statement(node.orelse), (key[0], not key[1]) if key else None)
            elif node.orelse is not None:
                evidence.absorb(
                    self._suite(node.orelse.body), (key[0], not key[1]) if key else None
                )
            return evidence
        if type(node) in (cst.For, cst.While):
            evidence.has_loop = True
        for header in _headers(node):
            if type(node) is cst.With and type(header) is cst.Call and is_loss_scaler(header):
                continue  # `with amp.scale_loss(loss, opt) as scaled:` scales; it steps nothing
            self._scan(header, evidence)
        for block in _blocks(node):
            evidence.absorb(
                self._suite(block) if isinstance(block, cst.BaseSuite) else self.statement(block)
            )
        if type(node) is cst.For:
            for step in _element_steps(node):
                evidence.steps.append(step)
                evidence.training_sites.append((step, ()))
        if type(node) in (cst.For, cst.While):
            evidence = _without_input_gradients(evidence)
        return evidence

    def _suite(self, suite: cst.CSTNode) -> Evidence:
        if type(suite) in (cst.IndentedBlock, cst.SimpleStatementSuite):
            if type(suite) is cst.SimpleStatementSuite:
                evidence = Evidence()
                for small in suite.body:
                    self._scan(small, evidence)
                return evidence
            return self.block(cast(cst.IndentedBlock, suite).body)
        return self.statement(suite)

    def _scan(self, root: cst.CSTNode, evidence: Evidence) -> None:
        found = Evidence()
        _scan_expression(
            root,
            found,
            self._imports,
            self._call_trains,
            (),
            self._backward_trains,
            self._steps_input,
            self._is_grad_input,
            self._call_reports,
            self._reads_function,
            self._own_backward,
        )
        if found.needs_grad:
            found.grad_guards.append(())  # a gradient use of this statement, unguarded here
        evidence.absorb(found)


_SHOWN = (cst.Name, cst.Attribute, cst.Subscript, cst.Tuple)
"""A statement that is only one of these values does nothing in a script; in a notebook, as
a cell's last line, Jupyter displays it: it reports the value."""


def reports_only(evidence: Evidence) -> bool:
    """A block that trains nothing and reports, computes a metric or switches to eval."""
    return not evidence.training_sites and (
        evidence.reports or evidence.metric or evidence.switches_to_eval
    )


_PLAIN = (cst.SimpleStatementLine, cst.FunctionDef, cst.ClassDef)


def split_tail(
    statements: Sequence[cst.CSTNode], tail: int, evidence: Sequence[Evidence], whole: Region
) -> list[tuple[int, int, Region]]:
    """The evaluation after a body's last training step (`whole`, from `tail` on), split so
    that a block of it that needs no gradients is judged on its own when another part needs
    them (`whole.needs_grad`, from `graph_needed`: a `.grad` read alone reads the step's
    gradients and needs no graph): a periodic sample grid saved as an image (autograd
    wasted) next to a block that backpropagates for a saliency map."""
    if not whole.needs_grad:
        return [(tail, len(statements), whole)]
    plan: list[tuple[int, int, Region]] = []
    start = tail
    for index in range(tail, len(statements)):
        shown = evidence[index]
        if type(statements[index]) not in (cst.If, cst.With) or shown.graph_needed:
            continue
        if not reports_only(shown):
            continue
        if index > start:
            plan.append((start, index, replace(whole, node=statements[start])))
        plan.append((index, index + 1, replace(whole, node=statements[index], needs_grad=False)))
        start = index + 1
    if start < len(statements):
        plan.append((start, len(statements), replace(whole, node=statements[start])))
    return plan


def runs_between_training(
    statements: Sequence[cst.CSTNode], training: Sequence[bool]
) -> list[tuple[int, int]]:
    """(start, end) of each run of plain statements (no block: a periodic `if` or a `with`
    is judged on its own) that starts right after a training statement and ends right
    before the next one: a notebook that trains, shows a prediction, then sets up and runs
    another training. A block before the next training (a plotting loop) ends the run
    there: the plain statements before it are judged as a run all the same."""
    found = []
    start: Optional[int] = None
    for index, (statement, trains) in enumerate(zip(statements, training)):
        if trains:
            if start is not None and index > start:
                found.append((start, index))
            start = index + 1
        elif start is not None and type(statement) not in _PLAIN:
            if index > start and any(training[index:]):
                found.append((start, index))
            start = None
    return found


def _element_steps(loop: cst.For) -> list[cst.Call]:
    """`for o in self.optims: o.step()`: `step()` of each element of a container named for
    optimizers (`optimizers`, `optims`) is an optimizer step, whatever the element's name."""
    name = dotted_name(loop.iter)
    target = loop.target
    if name is None or type(target) is not cst.Name:
        return []
    last = words(name.split(".")[-1])
    if not (last | {w[:-1] for w in last if w.endswith("s")}) & OPTIMIZER_WORDS:
        return []
    return [
        node
        for node in iter_nodes(loop.body)
        if type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and node.func.attr.value == "step"
        and type(node.func.value) is cst.Name
        and node.func.value.value == target.value
    ]


def only_input_gradients(evidence: Evidence) -> bool:
    """A block whose backward passes serve an input, not the parameters: it steps no
    parameter optimizer, and steps an optimizer over inputs or reads an input's `.grad`
    (an adversarial attack, saliency, style transfer)."""
    return bool(
        evidence.backwards and not evidence.steps and (evidence.input_steps or evidence.input_grads)
    )


def _without_input_gradients(evidence: Evidence) -> Evidence:
    """The block's evidence with backward passes that serve an input (see
    only_input_gradients) no longer counted as training: the block needs grad instead."""
    if not only_input_gradients(evidence):
        return evidence
    backwards = {id(call) for call in evidence.backwards}
    evidence.training_sites = [
        site for site in evidence.training_sites if id(site[0]) not in backwards
    ]
    evidence.needs_grad = True
    evidence.graph_needed = True
    evidence.grad_guards.append(())
    return evidence


def _headers(node: cst.CSTNode) -> list[cst.CSTNode]:
    if type(node) is cst.For:
        return [node.iter]
    if type(node) is cst.While:
        return [node.test]
    if type(node) is cst.With:
        return [item.item for item in node.items]
    if type(node) is cst.Match:
        return [node.subject]
    return []


def _blocks(node: cst.CSTNode) -> list[cst.CSTNode]:
    blocks: list[cst.CSTNode] = []
    for attr in ("body", "orelse", "finalbody"):
        value = getattr(node, attr, None)
        if isinstance(value, (cst.BaseSuite, cst.Else, cst.Finally)):
            blocks.append(
                cast("cst.Else | cst.Finally", value).body
                if type(value) in (cst.Else, cst.Finally)
                else value
            )
        elif isinstance(value, (list, tuple)):
            blocks.extend(v for v in value if isinstance(v, cst.CSTNode))
    for handler in getattr(node, "handlers", ()) or ():
        blocks.append(handler.body)
    for case in getattr(node, "cases", ()) or ():
        blocks.append(case.body)
    return blocks


def _scan_expression(
    root,
    evidence,
    imports,
    call_trains,
    guards,
    backward_trains,
    steps_input,
    is_grad_input,
    call_reports=lambda call: False,
    reads_function=lambda call: False,
    own_backward=lambda call: False,
) -> None:
    for node in iter_nodes(root):
        node_type = type(node)
        if node_type is cst.Call:
            node = cast(cst.Call, node)
            kind = training_call_kind(node, imports)
            if kind == "backward" and own_backward(node):
                kind = None
            if (
                kind == "step"
                and type(node.func) is cst.Name
                and is_loss_scaler(node)
                and reads_function(node)
            ):
                # a function the analysis reads: its summary for this call's constant flags
                # says whether it steps (`one_step(..., training=False)` does not)
                kind = "step" if call_trains(node) else None
            if steps_input(node):
                kind = None
                evidence.input_steps.append(node)
                evidence.needs_grad = True
                evidence.graph_needed = True
            if kind == "step":
                evidence.steps.append(node)
            elif kind == "backward":
                if backward_trains(node):
                    evidence.backwards.append(node)
                else:
                    kind = "gradient"  # no parameter step serves it: it needs grad only
            if type(node.func) is cst.Attribute:
                attr = node.func.attr.value
                if attr == "zero_grad" or (
                    attr == "zero_"
                    and type(node.func.value) is cst.Attribute
                    and node.func.value.attr.value == "grad"
                ):
                    evidence.clears_grad = True
                elif attr == "train" and not _is_false_arg(node):
                    evidence.switches_to_train = True
                if (attr == "eval" and not node.args) or (attr == "train" and _is_false_arg(node)):
                    evidence.switches_to_eval = True
            if not evidence.reports and (reports_call(node) or call_reports(node)):
                evidence.reports = True
            if kind == "gradient":
                evidence.needs_grad = True
                evidence.graph_needed = True
            elif kind is not None or call_trains(node):
                evidence.training_sites.append((node, guards))
                evidence.needs_grad = evidence.needs_grad or kind == "backward"
                evidence.graph_needed = evidence.graph_needed or kind == "backward"
            elif imports.qualify(node.func) in _NEEDS_GRAD_QUALIFIED or (
                type(node.func) is cst.Attribute
                and node.func.attr.value == "requires_grad_"
                and not _is_false_arg(node)
            ):
                evidence.needs_grad = True
                evidence.graph_needed = True
        elif node_type is cst.Attribute:
            node = cast(cst.Attribute, node)
            attr = node.attr.value
            if attr == "grad":
                evidence.needs_grad = True
                if type(node.value) is cst.Name and is_grad_input(node.value.value):
                    evidence.input_grads = True
                    evidence.graph_needed = True  # an input's gradient: from a backward here
            elif _names_a_metric(attr):
                evidence.metric = True
        elif node_type is cst.Name:
            if _names_a_metric(cast(cst.Name, node).value):
                evidence.metric = True
        elif node_type is cst.Assign or node_type is cst.AugAssign:
            node = cast("cst.Assign | cst.AugAssign", node)
            target_names = (
                [t.target for t in node.targets]
                if type(node) is cst.Assign
                else [cast(cst.AugAssign, node).target]
            )
            for target in target_names:
                if (
                    type(target) is cst.Attribute
                    and target.attr.value == "requires_grad"
                    and _is_true(node.value)
                ):
                    evidence.needs_grad = True
                    evidence.graph_needed = True
                if (
                    type(target) is cst.Attribute
                    and target.attr.value == "grad"
                    and type(node.value) is cst.Name
                    and node.value.value == "None"
                ):
                    evidence.clears_grad = True


def reports_call(call: cst.Call) -> bool:
    """A call that hands a value to a person or a file (see Evidence.reports)."""
    func = call.func
    if type(func) is cst.Name:
        return func.value in REPORTING_FUNCTIONS
    if type(func) is cst.Attribute:
        return func.attr.value in REPORTING_METHODS
    return False


_LOGGING_WORDS = frozenset(
    {"logger", "log", "logging", "writer", "meter", "meters", "tracker", "wandb", "tb", "summary"}
)


@lru_cache(maxsize=4096)
def _names_a_metric(identifier: str) -> bool:
    """`correct`, `val_acc`, `f1_score` compute a metric; `metric_logger` only logs one."""
    found = words(identifier)
    return bool(found & METRIC_WORDS) and not (found & _LOGGING_WORDS)


def _is_true(node: cst.BaseExpression) -> bool:
    return type(node) is cst.Name and node.value == "True"


def _is_false_arg(call: cst.Call) -> bool:
    return (
        bool(call.args)
        and type(call.args[0].value) is cst.Name
        and call.args[0].value.value == "False"
    )


def mentions_eval_data(
    expression: cst.BaseExpression,
    extra_words: frozenset[str] = frozenset(),
    *,
    testing: bool = False,
) -> bool:
    """True when a loop's iterable names evaluation data (val_loader, loaders['test'], ...).
    In a test suite `test` names test cases, not test data."""
    vocabulary = EVAL_DATA_WORDS | extra_words if extra_words else EVAL_DATA_WORDS
    if testing:
        vocabulary = vocabulary - {"test", "tests", "testing"}
    for node in iter_nodes(expression):
        if type(node) is cst.Name and words(node.value) & vocabulary:
            return True
        if type(node) is cst.Attribute and words(node.attr.value) & vocabulary:
            return True
        if type(node) is cst.SimpleString:
            text = node.value.strip("'\"bruBRU")
            if words(text) & vocabulary:
                return True
    return False


def iterates_range(expression: cst.BaseExpression) -> bool:
    return (
        type(expression) is cst.Call
        and type(expression.func) is cst.Name
        and expression.func.value in ("range", "trange")
    )


def classify_block(
    node: cst.CSTNode,
    description: str,
    evidence: Evidence,
    *,
    eval_by_name: bool,
    eval_by_metrics: bool,
) -> Region:
    """Training evidence wins over names; a block that trains only under one flag is MIXED."""
    if evidence.training_sites:
        common = set(evidence.training_sites[0][1])
        for _, guards in evidence.training_sites[1:]:
            common &= set(guards)
        # `if __name__ == "__main__":` says the file runs as a script, not train-or-evaluate
        common = {guard for guard in common if "__name__" not in guard[0]}
        if common:
            condition, polarity = sorted(common)[0]
            # a script's flag is its user's choice (a constant, a command-line argument): its
            # other side is a run of its own, which needs gradients only for a use outside the
            # training branch (the backward and `.grad` reads under the flag serve training).
            # A function's flag is its caller's: the caller's call settles the region.
            other_side_needs_grad = evidence.needs_grad and (
                type(node) is not cst.Module
                or any((condition, polarity) not in guards for guards in evidence.grad_guards)
            )
            return Region(
                node,
                RegionKind.MIXED,
                description,
                other_side_needs_grad,
                condition,
                polarity,
                evidence.has_loop,
            )
        return Region(node, RegionKind.TRAIN, description, True, has_data_loop=evidence.has_loop)
    if eval_by_name or (eval_by_metrics and evidence.metric) or evidence.switches_to_eval:
        return Region(
            node, RegionKind.EVAL, description, evidence.needs_grad, has_data_loop=evidence.has_loop
        )
    return Region(
        node, RegionKind.NEUTRAL, description, evidence.needs_grad, has_data_loop=evidence.has_loop
    )
