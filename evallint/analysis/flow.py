"""Statements and control flow: blocks, branches joined, loops run to a fixpoint, try/with/match."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable, Optional, cast

import libcst as cst

from evallint.analysis import conditions
from evallint.analysis.bracketed import bracketed_evaluations
from evallint.analysis.configuration_loops import iterates_configurations
from evallint.analysis.context import InterpreterPart, States, code_of
from evallint.analysis.dataflow import (
    assigned_names,
    feeds_training,
    next_pass,
    unfed_prefix,
    unfed_suffix,
)
from evallint.analysis.default_fills import as_if_statement
from evallint.analysis.detached_forwards import detached_on_the_spot
from evallint.analysis.element_forwards import bind_walked_module
from evallint.analysis.exit_stacks import (
    Entered,
    StackFrame,
    left_grad,
    mark_entry,
    opened_stack,
    pushed_grad,
    stack_entry,
)
from evallint.analysis.facts import Place, StepBlock
from evallint.analysis.lattice import (
    Grad,
    GradFact,
    PathState,
    normalize,
)
from evallint.analysis.local_constants import constant_test
from evallint.analysis.loop_else import else_block, else_evaluation
from evallint.analysis.member_switches import (
    every_member_switched,
    members_switched_by_comprehension,
)
from evallint.analysis.mode_managers import enter_manager, leave_manager
from evallint.analysis.mode_tests import enter_branch, mode_test, run_branch
from evallint.analysis.regions import (
    Region,
    RegionKind,
    classify_block,
    is_loss_scaler,
    iterates_range,
    mentions_eval_data,
    reports_only,
    runs_between_training,
    split_tail,
)
from evallint.analysis.rewritten_entries import detached_container
from evallint.analysis.side_forwards import reported_only
from evallint.analysis.specialise import loop_phases, settle
from evallint.analysis.statement_shapes import (
    catches_only_interrupt,
    ends_the_process,
    iterable_words,
    iterates_submodules,
    running_sum_operand,
    sums_into_a_later_backward,
)
from evallint.analysis.step_effects import measures_the_step
from evallint.analysis.switches import flag_chosen_switches, mode_guarded_train_switches
from evallint.analysis.symbols import dotted_name
from evallint.analysis.taint import graph_free_value
from evallint.analysis.trained_batch import trained_batch_statistics
from evallint.analysis.unit_tests import is_unit_test
from evallint.analysis.vocabulary import (
    GRAD_DISABLERS,
    GRAD_ENABLERS,
    GRAD_SETTERS,
)
from evallint.analysis.walk import iter_nodes

MAX_LOOP_ITERATIONS = 8


@dataclass
class Flow:
    """Where paths go when a block ends: on, out of a loop, or out of the function."""

    normal: States = ()
    breaks: States = ()
    continues: States = ()
    returns: States = ()

    def absorb_jumps(self, other: Flow) -> None:
        self.breaks += other.breaks
        self.continues += other.continues
        self.returns += other.returns


class Statements(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    _loop_returns: States = ()
    _plans: dict
    evaluates: bool
    returns_graph: bool

    def _init_plans(self) -> None:
        self._plans = {}
        self.exit_stacks: list[StackFrame] = []
        self._else_regions: dict[int, Region] = {}

    # -- statements ----------------------------------------------------------------------------
    def block(self, statements, states: States) -> Flow:
        flow = Flow(normal=states)
        for statement in statements:
            if not flow.normal:
                break
            step = self.statement(statement, flow.normal)
            flow.absorb_jumps(step)
            flow.normal = normalize(step.normal)
        return flow

    def region_body(self, statements, states: States, region: Region) -> Flow:
        """A loop's or function's body. In a training region, code that trains nothing and
        only reports what a module computes is an evaluation of its own, recognised by what
        it does rather than by names: the statements after the last training step that
        switch to eval mode or report (`optimizer.step(); acc = (net(x_val).argmax(1) ==
        y).float().mean()`), and a periodic block among the training statements
        (`if step % 50 == 0: print(net(test_x).argmax(1))`), provided nothing they compute
        flows back into the training step."""
        plan = (
            self._evaluation_plan(statements, region.node)
            if region.kind is RegionKind.TRAIN
            and (len(statements) > 1 or else_block(statements[0]))
            else None
        )
        if not plan:
            return self.block(statements, states)
        flow = Flow(normal=states)
        start = 0
        for index, end, sub in plan:
            if not flow.normal:
                break
            if index > start:
                part = self.block(statements[start:index], flow.normal)
                flow.absorb_jumps(part)
                flow.normal = part.normal
                if not flow.normal:
                    break
            self.regions.append(sub)
            part = self.block(statements[index:end], flow.normal)
            self.regions.pop()
            flow.absorb_jumps(part)
            flow.normal = part.normal
            start = end
        if start < len(statements) and flow.normal:
            part = self.block(statements[start:], flow.normal)
            flow.absorb_jumps(part)
            flow.normal = part.normal
        return flow

    def _training_outside_loops(self) -> Optional[Region]:
        """The enclosing training region when no loop encloses this block (a loop's body is
        planned with the loop, whose next pass the plan must see). A region that trains or
        evaluates by a flag counts too: a branch of it that trains (`if do_train:
        train_model(...)`, then a test batch's accuracy) is planned as training, and the
        plan finds nothing in a branch that does not train."""
        innermost = None
        for region in self.regions:
            if type(region.node) in (cst.For, cst.While):
                return None
            if region.kind is not RegionKind.NEUTRAL:
                innermost = region
        if innermost is not None and innermost.kind is RegionKind.MIXED:
            return replace(innermost, kind=RegionKind.TRAIN)
        return innermost if innermost is not None and innermost.kind is RegionKind.TRAIN else None

    def _evaluation_plan(self, statements, owner: cst.CSTNode) -> list[tuple[int, int, Region]]:
        """(start, end, evaluation region) for each evaluation inside a training body, in
        order. Cached per body."""
        cache = self._plans
        key = id(statements[0])
        cached = cache.get(key)
        if cached is not None and cached[0] is statements[0] and cached[1] == len(statements):
            return cached[2]
        plan = self._compute_plan(statements, owner)
        cache[key] = (statements[0], len(statements), plan)
        return plan

    def _compute_plan(self, statements, owner: cst.CSTNode) -> list[tuple[int, int, Region]]:
        evidence = [self.file.statement_evidence(s, self.info) for s in statements]
        training = [bool(e.training_sites) for e in evidence]
        imported = self.imports.is_imported
        if not any(training):
            return []
        last = max(i for i, t in enumerate(training) if t)
        by_node = {id(s): t for s, t in zip(statements, training)}

        def trains(statement: cst.CSTNode) -> bool:
            return by_node.get(id(statement), False)

        plan: list[tuple[int, int, Region]] = []
        for index, statement in enumerate(statements):  # `for ...: train ... else: report`
            after = [*statements[index + 1 :], *next_pass(owner, statements[: index + 1])]
            tail_of_loop = training[index] and else_evaluation(
                statement, after, trains, lambda block: self.file.block_evidence(block, self.info)
            )
            if tail_of_loop:
                self._else_regions[id(statement)] = tail_of_loop
        for start, end in runs_between_training(statements, training):
            after = [*statements[end:], *next_pass(owner, statements[:start])]
            run = statements[
                start : start + unfed_prefix(statements[start:end], after, trains, imported)
            ]
            shown = self.file.block_evidence(run, self.info) if run else None
            if shown is not None and reports_only(shown):
                region = Region(run[0], RegionKind.EVAL, "evaluation between training steps")
                region = replace(region, needs_grad=shown.graph_needed, after_training=True)
                plan.append((start, start + len(run), region))
        plan += self._side_forwards(statements, training, last, owner, plan)
        tail = self._evaluation_tail(statements, evidence, last, owner)
        if tail is not None and self._trained_batch_only(statements, tail, len(statements), owner):
            tail = None  # `opt.step()`, then the trained batch's accuracy: training statistics
        plannable = len(statements) if tail is None else tail  # what the checks below plan
        if tail is not None and self._measures_the_step(statements, training, tail):
            tail = None  # the loss before the step computed again after it: its effect
        for index in range(plannable):
            statement = statements[index]
            if training[index] or type(statement) not in (cst.If, cst.With):
                continue
            after = [*statements[index + 1 :], *next_pass(owner, statements[:index])]
            if (
                reports_only(evidence[index])
                and not feeds_training([statement], after, trains, imported)
                and not self._trained_batch_only(statements, index, index + 1, owner)
            ):
                plan.append(
                    (
                        index,
                        index + 1,
                        Region(
                            statement,
                            RegionKind.EVAL,
                            "check inside the training loop",
                            evidence[index].graph_needed,
                        ),
                    )
                )
        covered = {i for start, stop, _ in plan for i in range(start, stop)}
        covered.update(range(plannable, len(statements)))  # the tail, or the step's effect
        plan += self._no_grad_tests(statements, evidence, last, tail, owner, covered)
        covered = {i for start, stop, _ in plan for i in range(start, stop)}
        for start, end in bracketed_evaluations(
            statements[:plannable],
            trains,
            lambda block: reports_only(self.file.block_evidence(block, self.info)),
            lambda start, end: [*statements[end:], *next_pass(owner, statements[:start])],
        ):
            if covered.isdisjoint(range(start, end)):
                shown = self.file.block_evidence(statements[start:end], self.info)
                region = Region(
                    statements[start],
                    RegionKind.EVAL,
                    "evaluation between eval() and train() in the training loop",
                    shown.graph_needed,
                    after_training=True,  # the fix wraps the evaluating statement
                )
                plan.append((start, end, region))
        plan += self._before_the_switch(statements, evidence, last, tail, owner, plan)
        if tail is not None:
            tail_evidence = self.file.block_evidence(statements[tail:], self.info)
            whole = Region(
                statements[tail],
                RegionKind.EVAL,
                "evaluation after the training step",
                tail_evidence.graph_needed,
                has_data_loop=tail_evidence.has_loop,
                after_training=True,
            )
            plan.extend(split_tail(statements, tail, evidence, whole))
        return sorted(plan, key=lambda entry: entry[0])

    def _before_the_switch(
        self, statements, evidence, last: int, tail: Optional[int], owner, plan
    ) -> list[tuple[int, int, Region]]:
        """The statements between the body's last training site and the eval() switch that
        starts its evaluation tail, when they only report and feed nothing back into
        training: an evaluation too, in the mode training left (an epoch's sample grid
        generated and logged, then `model.eval()` and the validation images)."""
        if tail is None or tail <= last + 1 or not evidence[tail].switches_to_eval:
            return []
        if any(start < tail and end > last + 1 for start, end, _ in plan):
            return []
        run = statements[last + 1 : tail]
        shown = self.file.block_evidence(run, self.info)
        if not reports_only(shown):
            return []
        trains = {id(s) for s, e in zip(statements, evidence) if e.training_sites}
        after = [*statements[tail:], *next_pass(owner, statements[: last + 1])]
        if feeds_training(run, after, lambda s: id(s) in trains, self.imports.is_imported):
            return []
        if self._trained_batch_only(statements, last + 1, tail, owner):
            return []
        region = Region(
            run[0],
            RegionKind.EVAL,
            "evaluation after the training step",
            shown.graph_needed,
            has_data_loop=shown.has_loop,
            after_training=True,
        )
        return [(last + 1, tail, region)]

    def _side_forwards(
        self, statements, training: list[bool], last: int, owner, plan
    ) -> list[tuple[int, int, Region]]:
        """Plain assignments among a training loop's statements (before its last training
        site) whose values feed no training and only leave autograd (see side_forwards.py):
        `y_test = net(x_test)` beside `y_train = net(x_train)`, its loss logged as a number.
        Each is an evaluation of its own; the training statements around it are not."""
        if type(owner) not in (cst.For, cst.While):
            return []
        covered = {i for start, end, _ in plan for i in range(start, end)}
        by_node = {id(s): t for s, t in zip(statements, training)}

        def trains(statement: cst.CSTNode) -> bool:
            return by_node.get(id(statement), False)

        found: list[tuple[int, int, Region]] = []
        for index in range(last):
            statement = statements[index]
            if (
                training[index]
                or index in covered
                or type(statement) is not cst.SimpleStatementLine
            ):
                continue
            if not reported_only(statements, index):
                continue
            after = [*statements[index + 1 :], *next_pass(owner, statements[:index])]
            if feeds_training([statement], after, trains, self.imports.is_imported):
                continue
            if self._trained_batch_only(statements, index, index + 1, owner):
                continue
            region = Region(
                statement,
                RegionKind.EVAL,
                "forward beside the training step whose results are only reported",
                after_training=True,  # the fix wraps the evaluating statement
            )
            found.append((index, index + 1, region))
        return found

    def _no_grad_tests(
        self, statements, evidence, last: int, tail: Optional[int], owner, covered: set[int]
    ) -> list[tuple[int, int, Region]]:
        """`with torch.no_grad():` blocks after the last training site and before the
        evaluation tail (an eval() further down, often of another model) that, together
        with the statements after them up to that tail, only report and feed nothing back
        into training: a test of the model just trained (`with torch.no_grad(): y_val =
        model(x_test)`, then `print(rmse)` in the next cell), judged on its own rather than
        as part of the training before it."""
        end = len(statements) if tail is None else tail
        found: list[tuple[int, int, Region]] = []
        trains = {id(s) for s, e in zip(statements, evidence) if e.training_sites}
        for index in range(last + 1, end):
            statement = statements[index]
            if index in covered or evidence[index].training_sites:
                continue
            if type(statement) is not cst.With or not any(
                type(item.item) is cst.Call
                and (self.imports.qualify(item.item.func) or "") in GRAD_DISABLERS
                for item in statement.items
            ):
                continue
            rest = statements[index:end]
            after = [*statements[end:], *next_pass(owner, statements[: last + 1])]
            if (
                reports_only(self.file.block_evidence(rest, self.info))
                and not feeds_training(
                    rest, after, lambda s: id(s) in trains, self.imports.is_imported
                )
                and not self._trained_batch_only(statements, index, index + 1, owner)
            ):
                region = Region(
                    statement,
                    RegionKind.EVAL,
                    "evaluation under no_grad after training",
                    evidence[index].graph_needed,
                    after_training=True,
                )
                found.append((index, index + 1, region))
        return found

    def _trained_batch_only(self, statements, start: int, end: int, owner) -> bool:
        """Whether `statements[start:end]`, which follow training statements of a loop
        body, run the trained modules only on the batch just trained on (see trained_batch)
        without switching to eval mode: training statistics, not an evaluation."""
        block = statements[start:end]
        if self.file.block_evidence(block, self.info).switches_to_eval:
            return False
        return trained_batch_statistics(
            block,
            statements[:start],
            owner,
            self.imports.is_imported,
            lambda name: name in self.scope_keys or name in self.evidence_names,
        )

    def _measures_the_step(self, statements, training: list[bool], tail: int) -> bool:
        """Whether `statements[tail:]`, after the body's training statements, only repeat
        what the body computed before its first one, on the data it trained on, without
        an eval() switch (see step_effects): the step's effect, not an evaluation."""
        block = statements[tail:]
        if self.file.block_evidence(block, self.info).switches_to_eval:
            return False
        first = training.index(True)
        owner = self.info.owner if self.info is not None else None
        keys = self.scope_keys | self.evidence_names

        def runs_module(callee: str) -> bool:
            if callee in keys:
                return True
            head, _, method = callee.partition(".")
            return head == "self" and owner is not None and method in owner.methods

        return measures_the_step(
            block,
            statements[:first],
            [s for s, t in zip(statements, training) if t],
            runs_module,
        )

    def _evaluation_tail(self, statements, evidence, last: int, owner) -> Optional[int]:
        """Index of the statement after the body's last training site (backward, optimizer
        step, a call that trains) from which the rest evaluates: an eval() switch, or, when
        what follows only reports and feeds nothing back into training, the next one."""
        for index in range(last + 1, len(statements)):
            if evidence[index].switches_to_eval:
                return index
        if last + 1 >= len(statements):
            return None
        rest = statements[last + 1 :]
        if not reports_only(self.file.block_evidence(rest, self.info)):
            return None
        trains = {id(s) for s, e in zip(statements, evidence) if e.training_sites}
        after = next_pass(owner, statements[: last + 1])  # the next pass of a loop
        if not feeds_training(rest, after, lambda s: id(s) in trains, self.imports.is_imported):
            return last + 1
        # `optimizer = net.update_learning_rate(optimizer, lr)` then the test loop: what
        # follows the last statement feeding the next pass is the evaluation, if it reports
        start = last + 1 + unfed_suffix(rest, after, lambda s: id(s) in trains)
        if start < len(statements) and reports_only(
            self.file.block_evidence(statements[start:], self.info)
        ):
            return start
        return None

    def statement(self, node: cst.CSTNode, states: States) -> Flow:
        if self.file.record_flow:
            self.record_flow(node, states)
        self.statement_chain.append(node)
        try:
            return self._statement(node, states)
        finally:
            self.statement_chain.pop()

    def _statement(self, node: cst.CSTNode, states: States) -> Flow:
        if type(node) is cst.SimpleStatementLine and (filled := as_if_statement(node)):
            # `model = self.model if model is None else model`: read as the `if` it is
            return self.if_statement(filled, states)
        if type(node) is cst.SimpleStatementLine:
            flow = Flow(normal=states)
            for small in node.body:
                if not flow.normal:
                    break
                step = self.small_statement(small, flow.normal)
                flow.absorb_jumps(step)
                flow.normal = step.normal
                if self.info is None and type(small) in (cst.Assign, cst.AnnAssign):
                    self.file.rebound_now |= assigned_names([small]) & self.file.functions.keys()
            return flow
        if type(node) is cst.If:
            return self.if_statement(node, states)
        if type(node) in (cst.For, cst.While):
            return self.loop(cast("cst.For | cst.While", node), states)
        if type(node) is cst.With:
            return self.with_statement(node, states)
        if type(node) is cst.Try or type(node).__name__ == "TryStar":
            return self.try_statement(node, states)
        if type(node) is cst.Match:
            return self.match_statement(node, states)
        if type(node) is cst.FunctionDef and self.info is not None:
            nested = self.info.nested.get(node.name.value)
            if nested is not None and nested.node is node:
                nested.definition_states += states
        elif type(node) is cst.FunctionDef and id(node) in self.file.redefined.by_node:
            self.file.defined_now[node.name.value] = self.file.redefined.by_node[id(node)]
        if type(node) is cst.FunctionDef and self.info is None:
            self.file.rebound_now.discard(node.name.value)
        return Flow(normal=states)

    def suite(self, suite: cst.BaseSuite, states: States) -> Flow:
        if type(suite) is cst.IndentedBlock:
            training = self._training_outside_loops()
            if training is not None and len(suite.body) > 1:
                # `if __name__ == "__main__":` / `with ...:` holding the training loop and
                # the test after it: the same evaluation plan as a function's body
                return self.region_body(suite.body, states, training)
            return self.block(suite.body, states)
        small = cast(cst.SimpleStatementSuite, suite).body
        return (
            self.block([cst.SimpleStatementLine(body=small)], states)
            if small
            else Flow(normal=states)
        )

    def small_statement(self, node: cst.BaseSmallStatement, states: States) -> Flow:
        if type(node) is cst.Return:
            if node.value is not None:
                if type(node.value) is cst.Call:
                    self.note_returned_manager(node.value, states)
                states = self.expression(node.value, states)
                self.note_return_value(node.value, states)
                self.return_states += states
                if states and not self.returns_graph:
                    self.returns_graph = self.carries_graph(node.value, states[0])
                self.note_return_graph(node.value, states)
            return Flow(returns=states)
        if type(node) is cst.Raise:
            if node.exc is not None:
                self.expression(node.exc, states)
            return Flow()
        if type(node) is cst.Break:
            return Flow(breaks=states)
        if type(node) is cst.Continue:
            return Flow(continues=states)
        if type(node) is cst.Expr:
            value = node.value
            # `cst.Await` keeps its operand in `.expression`, never read here (as before)
            if type(value) is cst.Yield and isinstance(value.value, cst.BaseExpression):
                states = self.expression(value.value, states)
            if type(value) is cst.Yield:
                self.yield_states += states
                return Flow(normal=states)
            self.observe_expression_statement(value, states)
            if type(value) is cst.Call and (self.imports.qualify(value.func) or "") in GRAD_SETTERS:
                states = self.expression(value, states)
                return Flow(normal=self.set_grad(value, states, statement=True))
            states = self.expression(value, states)
            states = members_switched_by_comprehension(self, value, states) or states
            if self.exit_stacks:
                states = self.stack_entry(value, states)
            if type(value) is cst.Call and ends_the_process(
                value, self.imports, self.file.module, self.scope_locals
            ):
                return Flow()  # as after `raise SystemExit`: nothing after it runs
            return Flow(normal=states)
        if type(node) is cst.Assign:
            self.note_construction(node)
            states = self.expression(node.value, states)
            if (
                type(node.value) is cst.Call
                and (self.imports.qualify(node.value.func) or "") in GRAD_SETTERS
            ):
                # `_ = torch.set_grad_enabled(False)`: the call switches autograd when it
                # runs, whatever its result (a context manager) is bound to
                states = self.set_grad(node.value, states, statement=True)
            # `_ = [net[k].eval() for k in net]`: every member switched
            states = members_switched_by_comprehension(self, node.value, states) or states
            if self.exit_stacks:
                states = self.stack_entry(node.value, states)
            for target in node.targets:
                self.observe_training_attribute(node, target.target, node.value, states)
                states = self.set_tree_flags(target.target, node.value, states)
                self.observe_subscript_store(node, target.target, node.value, states)
                if type(target.target) is cst.Subscript and (
                    stored := dotted_name(target.target.value)
                ):
                    self.note_stored(stored, node.value)
                self._note_graph_stored(target.target, node.value, states)
                if (added := running_sum_operand(target.target, node.value)) is not None:
                    self.observe_store(node, str(dotted_name(target.target)), added, "add", states)
                states = self.assign(target.target, node.value, states)
            return Flow(normal=states)
        if type(node) is cst.AnnAssign:
            if node.value is None:
                return Flow(normal=states)
            states = self.expression(node.value, states)
            return Flow(normal=self.assign(node.target, node.value, states))
        if type(node) is cst.AugAssign:
            states = self.expression(node.value, states)
            accumulator = dotted_name(node.target)
            if accumulator is not None and type(node.operator) is cst.AddAssign:
                self.observe_store(node, accumulator, node.value, "add", states)
            if accumulator is not None:
                self.note_graph_added(accumulator, node.value, states)
            if (
                accumulator is not None
                and states
                and any(g.grad is not Grad.OFF for s in states for g in s.grad)
            ):
                self.taint[accumulator] = self.taint.get(accumulator, frozenset()) | self.taint_of(
                    node.value, states[0]
                )
            return Flow(normal=tuple(self._forget(node.target, s) for s in states))
        if type(node) is cst.Del:
            return Flow(normal=states)
        if type(node) in (cst.Import, cst.ImportFrom, cst.Pass, cst.Global, cst.Nonlocal):
            return Flow(normal=states)
        if type(node) is cst.Assert:
            states = self.expression(node.test, states)
            tested = mode_test(self, node.test)  # `assert model.training`: holds after it
            if tested is not None:
                states = normalize(
                    enter_branch(self, tested, list(states), tested[2], node.test)[0]
                )
            return Flow(normal=states)
        return Flow(normal=states)

    def _note_graph_stored(
        self, target: cst.BaseExpression, value: cst.BaseExpression, states: States
    ) -> None:
        """`output["flow"]["loss"] = loss.mean()`: a forward's graph stored in an entry of a
        local container (nested at any depth), which holds it from then on: a `return
        output` hands the graph to the caller (a training step's losses), as after
        `outputs.append(loss)`."""
        if type(target) is not cst.Subscript or not states:
            return
        root: cst.BaseExpression = target
        while type(root) is cst.Subscript:
            root = root.value
        if type(root) is cst.Name and self.carries_known_graph(value, states[0]):
            self.graph_holders.add(root.value)

    def if_statement(self, node: cst.If, states: States) -> Flow:
        states = self.expression(node.test, states)
        checked = conditions.isinstance_module_subject(node.test)
        if states and checked is not None and self.resolve(checked, states[0]) is not None:
            # `if isinstance(net, nn.Module): net.eval()`: always true for a module
            then_flow = self.suite(node.body, states)
            then_flow.normal = normalize(then_flow.normal)
            return then_flow
        decided = constant_test(node.test, self.info.node if self.info is not None else None)
        if decided is not None:  # `classify = False` earlier, then `if classify:`
            return self.decided_branch(node, decided, states)
        then_states: list[PathState] = []
        else_states: list[PathState] = []
        self.flag_chosen.update(id(call) for call in flag_chosen_switches(node))
        guarded = mode_guarded_train_switches(node)  # `if not m.training: m.train()`
        self.flag_chosen.update(id(call) for call in guarded)
        if not self._tested_again:
            self._tested_again.append(conditions.tested_again(self.body))
        taken = conditions.implied(node.test, True, self._tested_again[0])
        skipped = conditions.implied(node.test, False, self._tested_again[0])
        for state in states:
            known = conditions.evaluate(node.test, state.assumed) if state.assumptions else None
            if known is None:
                then_states.append(state.assuming_all(dict(taken)))
                else_states.append(state.assuming_all(dict(skipped)))
            elif known:
                then_states.append(state)
            else:
                else_states.append(state)
        flow = Flow()
        tested = mode_test(self, node.test)  # `if model.training:`, `if was_training:`
        polarity = tested[2] if tested is not None else True
        if then_states:
            then_flow = run_branch(
                self,
                tested,
                then_states,
                polarity,
                node.test,
                partial(self.suite, node.body),
                guarded[0] if guarded and polarity else None,
            )
            flow.absorb_jumps(then_flow)
            flow.normal += then_flow.normal
        if else_states:
            orelse = node.orelse
            else_flow = run_branch(
                self,
                tested if type(orelse) is not cst.If else None,
                else_states,
                not polarity,
                node.test,
                (lambda s: Flow(normal=s))
                if orelse is None
                else partial(self.if_statement, orelse)
                if type(orelse) is cst.If
                else partial(self.suite, orelse.body),
                guarded[0] if guarded and not polarity else None,
            )
            flow.absorb_jumps(else_flow)
            flow.normal += else_flow.normal
        flow.normal = normalize(flow.normal)
        return flow

    def loop(self, node: cst.For | cst.While, states: States) -> Flow:
        if type(node) is cst.For:
            states = self.expression(node.iter, states)
            eval_data = mentions_eval_data(
                node.iter, self.file.options.eval_words, testing=self.file.is_pytest_file
            ) and not iterates_configurations(
                node.iter,
                self.info.node if self.info is not None else self.file.module,
                self.imports,
            )  # `for name, sched in schedulers_to_test.items()`: optimizers, not data
            description = f"loop over {code_of(node.iter)}"
            metric_loop = not iterates_range(node.iter)
        else:
            states = self.expression(cast(cst.While, node).test, states)
            eval_data = False
            description = "while loop"
            metric_loop = True
        if self.info is not None and is_unit_test(
            self.file.is_pytest_file, self.info.name, self.info.node, self.file._module_keys
        ):
            metric_loop = False  # a unit test that checks accuracy is not an evaluation
        if self.info is not None and self.info.name == "forward" and self.info.owner is not None:
            # a module's forward is the computation itself: its mode is its caller's
            metric_loop = False
        body = (
            node.body.body
            if type(node.body) is cst.IndentedBlock
            else [cst.SimpleStatementLine(body=cast(cst.SimpleStatementSuite, node.body).body)]
        )
        evidence = self.file.statement_evidence(node, self.info)
        # metrics computed inside a training function are training metrics
        # (a whole script is too coarse a region to say so)
        enclosing = self.regions[1:] if self.info is None else self.regions
        metric_loop = metric_loop and not any(
            r.kind in (RegionKind.TRAIN, RegionKind.MIXED) for r in enclosing
        )
        if (
            (eval_data or metric_loop)
            and not evidence.training_sites
            and not evidence.switches_to_eval
            and sums_into_a_later_backward(
                self.info.node if self.info is not None else self.file.module, node
            )
        ):
            # meta-learning: each task's query ("test") loss is summed into the outer loss
            # that a backward() after the loop trains from: training, whatever the data's name
            eval_data = metric_loop = False
        extracts = (
            not eval_data
            and type(node) is cst.For
            and self.info is not None
            and not evidence.training_sites
            and any(r.kind is RegionKind.TRAIN for r in self.regions)
            and self._extracts_detached_features(body, states)
        )  # inside a training function: what it trains on is the rest of its body
        region = settle(
            classify_block(
                node,
                description,
                evidence,
                eval_by_name=eval_data or extracts,
                eval_by_metrics=metric_loop,
            ),
            self.flags,
        )
        if region.kind is RegionKind.EVAL and not region.has_data_loop:
            region = replace(region, has_data_loop=True)
        self.regions.append(region)
        if region.kind is RegionKind.EVAL:
            self.evaluates = True
        self._observe_loop(node, region, evidence, eval_data)
        self.loop_depth += 1
        entry = normalize(states)
        head = entry
        exits: States = ()
        phases = loop_phases(node, self.body) if type(node) is cst.For else []
        self.phase_conditions.update(key for phase in phases for key in phase)
        for name in self._target_names(node.target) if type(node) is cst.For else ():
            self.note_reads(name, cast(cst.For, node).iter)  # `for g in grads:` reads `grads`
        unrolled = self._over_listed_modules(node, entry)
        if unrolled is None and type(node) is cst.For and entry:
            switched = every_member_switched(self, node, entry)
            unrolled = (switched, ()) if switched is not None else None
        if unrolled is not None:  # `for net in (netG, netD): net.eval()`: each in turn
            head, exits = unrolled
        working = region.kind is not RegionKind.NEUTRAL  # its body trains or evaluates
        once = unrolled is None and (
            conditions.runs_at_least_once(node, self.file.module, self.scope_locals)
            or (working and conditions.assumed_to_run(node, self.info))
        )
        after_body: States = ()
        index, last = conditions.loop_index(node), cast(States, ())
        for _ in range(MAX_LOOP_ITERATIONS if unrolled is None else 0):
            current = head
            if type(node) is cst.For:
                current = tuple(self._bind_target(node.target, s) for s in current)
                current = bind_walked_module(self, node, current)
                if phases:  # `for phase in ("train", "val"):` one path per phase
                    current = tuple(s.in_pass(p) for p in phases for s in current)
                if iterates_submodules(node.iter):
                    self.submodule_variables.update(self._target_names(node.target))
            body_flow = self.region_body(body, current, region)
            exits = body_flow.breaks
            self.return_passthrough(body_flow)
            normal, ending = conditions.split_last(body_flow.normal, index)
            last += ending  # `if i == len(steps) - 1:` paths leave the loop
            new_head = normalize(entry + normal + body_flow.continues)
            after_body = normalize(after_body + normal + body_flow.continues)
            if new_head == head:
                break
            head = new_head
        self.regions.pop()
        self.loop_depth -= 1
        detached = detached_container(node, graph_free_value) if type(node) is cst.For else None
        if detached is not None:  # `for k, t in d.items(): d[k] = t.detach().numpy()`
            self.graph.pop(detached, None)
        flow = Flow(returns=self._loop_returns)
        self._loop_returns = ()
        infinite = (
            type(node) is cst.While and type(node.test) is cst.Name and node.test.value == "True"
        )
        finished = last + (() if infinite else (after_body if once else head))
        if phases:  # its passes end with it (the assumptions stay, as after any branch)
            ended = {key for phase in phases for key in phase}
            finished = tuple(state.leaving_passes(ended) for state in finished)
        finished = normalize(finished)
        if node.orelse is not None and finished:
            evaluation = self._else_regions.get(id(node))  # see loop_else.py
            if evaluation is not None:
                self.regions.append(evaluation)
            else_flow = self.suite(node.orelse.body, finished)
            if evaluation is not None:
                self.regions.pop()
            flow.absorb_jumps(else_flow)
            finished = else_flow.normal
        flow.normal = normalize(finished + exits)
        return flow

    def _extracts_detached_features(self, body, states: States) -> bool:
        """A loop body that trains nothing and detaches the output of every module it runs
        on the spot (`features.append(model.encoder(x).detach())`): it extracts features,
        an evaluation whose graph is thrown away as soon as it is built (see
        detached_forwards.py). Asked only inside a training function (a k-means or memory
        bank initialisation before its training loop): elsewhere `.detach()` on the spot is
        what EVL006's fix writes, and the loop's region is decided as before."""
        if not states:
            return False
        detached = detached_on_the_spot(body)
        if not detached:
            return False
        forwards = 0
        for statement in body:
            for node in iter_nodes(statement):
                if type(node) is not cst.Call:
                    continue
                func = node.func
                if self.resolve(func, states[0]) is not None:
                    if id(node) not in detached:
                        return False  # a forward whose graph is kept
                    forwards += 1
                elif (
                    id(node) in detached
                    and type(func) is cst.Attribute
                    and self.resolve(func.value, states[0]) is not None
                ):
                    forwards += 1  # `model.encoder(x).detach()`: a part of a module
        return forwards > 0

    def _over_listed_modules(
        self, node: cst.For | cst.While, entry: States
    ) -> Optional[tuple[States, States]]:
        """A loop over a literal tuple/list of modules runs its body once per module, named
        by the target: (states after the last, states that broke out). None otherwise."""
        if type(node) is not cst.For or not entry:
            return None
        held = self.container_loop(node.iter, node.target)
        if held is not None:  # `for m in models.values()`: a container of modules
            name, members = held
            items: list[Any] = list(members)
            resolve: Callable[[Any, PathState], Optional[str]] = self.resolve_member
        else:
            if type(node.target) is not cst.Name:
                return None
            if type(node.iter) not in (cst.Tuple, cst.List):
                return None
            elements = cast("cst.Tuple | cst.List", node.iter).elements
            if not 0 < len(elements) <= MAX_LOOP_ITERATIONS:
                return None
            items = [element.value for element in elements]
            if any(type(element) is cst.StarredElement for element in elements):
                return None
            if any(self.resolve(item, state) is None for item in items for state in entry):
                return None
            name, resolve = node.target.value, self.resolve
        current: States = entry
        exits: States = ()
        for item in items:
            bound = tuple(
                state.forgetting(name).with_alias(name, resolve(item, state)) for state in current
            )
            body_flow = self.suite(node.body, bound)
            exits = normalize(exits + body_flow.breaks)
            self.return_passthrough(body_flow)
            current = normalize(body_flow.normal + body_flow.continues)
            if not current:
                break
        return current, exits

    def _observe_loop(self, node: cst.CSTNode, region: Region, evidence, eval_data: bool) -> None:
        """Record a loop that steps an optimizer or calls backward(): its region, whether it
        runs over evaluation data, and what it does to gradients and modes."""
        if node in self._observed_loops:
            return
        self._observed_loops.add(node)
        if not (evidence.steps or evidence.backwards):
            return
        unit = self.file.unit
        self.file.facts.step_blocks.append(
            StepBlock(
                node,
                "loop",
                region,
                Place(evidence.steps[0], unit) if evidence.steps else None,
                Place(evidence.backwards[0], unit) if evidence.backwards else None,
                clears_grad=evidence.clears_grad or self.calls_gradient_clearer(node),
                switches_to_train=bool(evidence.switches_to_train),
                evaluation_data=eval_data,
                words=iterable_words(node) if type(node) is cst.For else frozenset(),
            )
        )

    def return_passthrough(self, body_flow: Flow) -> None:
        self._loop_returns = normalize(self._loop_returns + body_flow.returns)

    def with_statement(self, node: cst.With, states: States) -> Flow:
        entered = Entered()
        before = states
        frames: list[StackFrame] = []
        for item in node.items:
            expr = item.item
            if type(expr) is cst.Call and is_loss_scaler(expr):
                states = self.expression(expr.args[0].value, states)  # scales; steps nothing
                if item.asname is not None:
                    states = self.assign(item.asname.name, expr.args[0].value, states)
                continue
            states = self.expression(expr, states)
            entering = self.enter_item(expr, states, entered)
            if entering is None:
                return Flow()  # `with torch.no_grad:` raises TypeError: the body never runs
            states = entering
            call = expr if type(expr) is cst.Call else None
            if item.asname is not None and call is not None:
                states = self.assign(item.asname.name, expr, states)
            if (name := opened_stack(item, self.imports)) is not None:
                frames.append(StackFrame(name))
        for frame in frames:
            mark_entry(frame, states)
        self.exit_stacks.extend(frames)
        try:
            flow = self.suite(node.body, states)
        finally:
            del self.exit_stacks[len(self.exit_stacks) - len(frames) :]

        def leave(out: States) -> States:
            for frame in reversed(frames):
                out = self.leave_entered(frame.entered, before, out)
                out = left_grad(frame, out)
            return self.leave_entered(entered, before, out)

        return Flow(
            leave(flow.normal), leave(flow.breaks), leave(flow.continues), leave(flow.returns)
        )

    def enter_item(
        self, expr: cst.BaseExpression, states: States, entered: Entered, frame=None
    ) -> Optional[States]:
        """The states inside a `with` item `expr` (already evaluated), recording in
        `entered` what leaving it undoes; None when the body never runs. `frame`: the exit
        stack entering it (its grad switches are left together, see exit_stacks.py)."""
        grads = frame is None or frame.depth is not None
        push = partial(pushed_grad, frame.depth if frame is not None else None)
        call = expr if type(expr) is cst.Call else None
        qualified = self.imports.qualify(call.func if call else expr) or ""
        if call is not None and type(call.func) is cst.Name:
            qualified = self.grad_manager_names.get(call.func.value, qualified)
            chosen = self.grad_chosen_names.get(call.func.value)
            if chosen is not None and not call.args:
                if not grads:
                    return states
                entered.pushed += 1
                pushed = tuple(push(s) for s in states)
                return self.set_grad(call, pushed, statement=False, chosen_by=chosen)
        if qualified in GRAD_DISABLERS or qualified in GRAD_ENABLERS or qualified in GRAD_SETTERS:
            if call is None:
                self.observe_uncalled_manager(expr, qualified)
                return None
            if not grads:
                return states
            entered.pushed += 1
            if qualified in GRAD_SETTERS:
                return self.set_grad(call, tuple(push(s) for s in states), statement=False)
            grad = Grad.OFF if qualified in GRAD_DISABLERS else Grad.ON
            return tuple(push(s, GradFact(grad, call)) for s in states)
        if call is None:
            return states
        # a context manager of another file is always read: it may turn autograd off
        resolved = self.file.resolve_function(call, self.info, passes_module=True)
        if resolved is not None and resolved[0] is not None and resolved[0].yield_modes is not None:
            summary, receiver = resolved[0], ("self" if resolved[1] else None)
            states = self.apply_modes(summary.yield_modes, summary, call, receiver, states)
            if summary.yield_grad is not None:  # `with torch.inference_mode(): yield`
                if grads:
                    entered.pushed += 1
                    states = tuple(push(s, GradFact(summary.yield_grad, call)) for s in states)
            if all(exit[2] is not call for exit in entered.exits):
                entered.exits.append((summary, receiver, call))
            return states
        # `with TrainingModeManager([encoder, head], train=False):`
        states, switched = enter_manager(self, call, states)
        entered.managed.extend(k for k in switched if k not in entered.managed)
        return states

    def leave_entered(self, entered: Entered, before: States, out: States) -> States:
        """`out` with what `entered` entered left, back to the modes of `before`."""
        result = leave_manager(entered.managed, before, out)
        for summary, receiver, call in reversed(entered.exits):
            result = self.apply_modes(
                summary.exit_modes, summary, call, receiver, result, base=before
            )
        if entered.pushed:
            popped = []
            for s in result:
                stack = s.grad_stack
                grad = s.grad
                for _ in range(min(entered.pushed, len(stack))):
                    grad = stack[-1]
                    stack = stack[:-1]
                popped.append(replace(s, grad=grad, grad_stack=stack))
            result = tuple(popped)
        return normalize(result)

    def stack_entry(self, value: cst.BaseExpression, states: States) -> States:
        """`stack.enter_context(manager)` on an open exit stack (see exit_stacks.py): the
        states with `manager` entered until the stack's block ends."""
        found = stack_entry(value, self.exit_stacks)
        if found is None:
            return states
        frame, manager = found
        entering = self.enter_item(manager, states, frame.entered, frame)
        return states if entering is None else entering

    def decided_branch(self, node: cst.If, taken: bool, states: States) -> Flow:
        """The flow of `node` whose test always has the value `taken`."""
        if taken:
            flow = self.suite(node.body, states)
        elif type(node.orelse) is cst.If:
            flow = self.if_statement(node.orelse, states)
        elif type(node.orelse) is cst.Else:
            flow = self.suite(node.orelse.body, states)
        else:
            flow = Flow(normal=states)
        flow.normal = normalize(flow.normal)
        return flow

    def try_statement(self, node, states: States) -> Flow:
        body_flow = self.suite(node.body, states)
        flow = Flow()
        flow.absorb_jumps(body_flow)
        handler_entry = normalize(states + body_flow.normal)
        stopped = normalize(body_flow.normal) if body_flow.normal else handler_entry
        normal = body_flow.normal
        if node.orelse is not None:
            else_flow = self.suite(node.orelse.body, normal)
            flow.absorb_jumps(else_flow)
            normal = else_flow.normal
        for handler in node.handlers:
            # `except KeyboardInterrupt:` around a training loop: the run was stopped by hand
            # and goes on as if the loop had ended; where inside it the key was pressed is
            # no path a reviewer judges (the state before the loop least of all)
            entry = stopped if catches_only_interrupt(handler) else handler_entry
            handler_flow = self.suite(handler.body, entry)
            flow.absorb_jumps(handler_flow)
            normal += handler_flow.normal
        if node.finalbody is not None:
            final = self.suite(node.finalbody.body, normalize(normal)) if normal else Flow()
            flow.breaks = self.suite(node.finalbody.body, flow.breaks).normal if flow.breaks else ()
            flow.continues = (
                self.suite(node.finalbody.body, flow.continues).normal if flow.continues else ()
            )
            flow.returns = (
                self.suite(node.finalbody.body, flow.returns).normal if flow.returns else ()
            )
            flow.absorb_jumps(final)
            normal = final.normal
        flow.normal = normalize(normal)
        return flow

    def match_statement(self, node: cst.Match, states: States) -> Flow:
        states = self.expression(node.subject, states)
        flow = Flow(normal=states)  # no case may match
        for case in node.cases:
            case_flow = self.suite(case.body, states)
            flow.absorb_jumps(case_flow)
            flow.normal += case_flow.normal
        flow.normal = normalize(flow.normal)
        return flow
