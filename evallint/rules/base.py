"""A rule: one class whose docstring is its documentation page and whose VALID/INVALID
examples are tests that pin the exact (line, code) set."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import libcst as cst

from evallint.analysis.facts import EvalForward, ModuleFacts, Place
from evallint.analysis.lattice import Mode, ModeFact, Origin
from evallint.analysis.walk import iter_nodes
from evallint.diagnostics import Diagnostic, Fix, Related

DOC_SECTIONS = (
    "## What it does",
    "## Why is this bad?",
    "## Example",
    "## Use instead",
    "## Known problems",
    "## Fix safety",
)


@dataclass(frozen=True)
class Example:
    """A code example; for INVALID ones, the 1-based lines that must be reported."""

    code: str
    lines: tuple[int, ...] = ()
    also: tuple[tuple[int, str], ...] = ()
    """Findings of other rules the example also (rightly) produces."""

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).lstrip("\n")


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    VALID: ClassVar[tuple[Example, ...]] = ()
    INVALID: ClassVar[tuple[Example, ...]] = ()

    def check(self, facts: ModuleFacts) -> Iterator[Diagnostic]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return textwrap.dedent(cls.__doc__ or "").strip()

    # helpers shared by the rules -------------------------------------------------------------
    def forward_diagnostic(
        self,
        facts: ModuleFacts,
        forward: EvalForward,
        message: str,
        related: list[Related],
        module: str,
        fix: Optional[Fix],
    ) -> Diagnostic:
        """`diagnostic` for an evaluation forward (EVL001, EVL002): placed at the forward,
        the call entering the evaluation, or the call whose flag made it one."""
        return self.diagnostic(
            facts,
            forward.call,
            forward.via,
            message,
            related,
            module,
            at_call=forward.report_at_call,
            at_flag_call=reported_at_call(facts, forward),
            flag_fixed=forward.region.by_flags,
            fix=fix,
            region_node=_region_in(facts, forward),
        )

    def diagnostic(
        self,
        facts: ModuleFacts,
        place: Place,
        via: tuple[Place, ...],
        message: str,
        related: list[Related],
        subject: str,
        *,
        at_call: bool = False,
        fix: Optional[Fix] = None,
        region_node: Optional[cst.CSTNode] = None,
        inner: str = "the forward in the called function",
        at_flag_call: bool = False,
        flag_fixed: bool = False,
    ) -> Diagnostic:
        """Report at the first forward of the module in the evaluation, with the calls that
        led there (where the caller's state was wrong) as related locations. When that forward
        is in another file, report at the call in this file that enters the evaluation; so
        too when a call made a shared function an evaluation by the flag it passed
        (`at_flag_call`: `fit(model, loader, phase="valid")`), each such call once; when the
        flag was passed on through helpers (`flag_fixed`), at the call that gave it a value."""
        anchor = place
        if via and at_flag_call:
            anchor = evaluating_call(facts, via, region_node, flag_fixed) or place
        elif via and place.unit is not facts.unit:
            anchor = (
                _region_call(facts, via, region_node)
                or entering_call(facts, via, region_node)
                or place
            )
        if anchor is not place:
            where = "" if place.unit is facts.unit else " (in another file)"
            related = [_related(place, f"{inner}{where}")] + related
        related.extend(
            _related(step, "reached through this call")
            if step.unit is facts.unit
            else _related(step, "reached from this call (in another file)")
            for step in via
            if step is not anchor
        )
        line, column, end_line, end_column = anchor.position()
        return Diagnostic(
            facts.path,
            line,
            column,
            end_line,
            end_column,
            self.code,
            message,
            tuple(related),
            subject,
            fix,
        )


def _related(place: Place, message: str) -> Related:
    line, column, _, _ = place.position()
    return Related(place.path, line, column, message)


def mode_related(facts: ModuleFacts, mode_facts, what: str) -> list[Related]:
    """Where each possible mode came from, in source order (facts are a set: no order)."""
    found = [
        r for r in (related_for_mode(facts, fact, what) for fact in mode_facts) if r is not None
    ]
    return sorted(set(found), key=lambda r: (r.path, r.line, r.column, r.message))


def related_for_mode(facts: ModuleFacts, fact: ModeFact, what: str) -> Related | None:
    if fact.site is None:
        return None
    place = Place(fact.site, facts.unit)
    reason = {
        Origin.CONSTRUCTED: f"{what} is created here, in training mode",
        Origin.LOADED: f"{what} is loaded here, in eval mode (`from_pretrained()` calls `eval()`)"
        if fact.mode is Mode.EVAL
        else f"{what} is loaded here; its mode is whatever was saved",
        Origin.SWITCHED: f"mode of {what} set here",
        Origin.CALLED: f"this call leaves {what} in that mode",
    }.get(fact.origin, "mode set here")
    return _related(place, reason)


def related_at(place: Place, message: str) -> Related:
    return _related(place, message)


def region_start(facts: ModuleFacts, forward: EvalForward) -> Related:
    """Where the forward's evaluation starts, in the file the region belongs to (a caller's
    loop in another file or notebook cell, when the caller's context made it one)."""
    place = Place(forward.region.node, forward.region_unit or facts.unit)
    return _related(place, f"the {forward.region.kind.value} starts here")


def owned_elsewhere(facts: ModuleFacts, forward: EvalForward, grad: bool) -> bool:
    """A forward of another file that its own file reports whatever this file's call does
    (analysis/lifting.py): reporting it at the call again would repeat it."""
    return forward.call.unit is not facts.unit and forward.owned_elsewhere[int(grad)]


def hidden_mode_methods(facts: ModuleFacts, node: cst.CSTNode, subject: str) -> frozenset[str]:
    """The mode methods (`eval`, `train`) the class of the module `subject`, as named at
    `node`, overrides with one that switches no mode: advice must name `nn.Module`'s."""
    return facts.hidden_mode_methods.get((id(node), subject), frozenset())


def demonstrates_a_layer(facts: ModuleFacts, forward: EvalForward) -> bool:
    """A call of a single torch.nn layer shown alone (`dropout.train(); print(dropout(x))`):
    what the layer does in that mode is what the code shows, no evaluation of a model."""
    if forward.call.unit is not facts.unit:
        return False
    node = id(forward.call.node)
    return node in facts.local_layer_demonstrations or (
        not forward.via and node in facts.layer_demonstrations
    )


def first_forwards(
    facts: ModuleFacts,
    keep: Callable[[EvalForward], bool],
    statement_of: Optional[Callable[[cst.CSTNode], Optional[cst.CSTNode]]] = None,
    loop_of: Optional[Callable[[cst.CSTNode], Optional[cst.CSTNode]]] = None,
) -> Iterator[EvalForward]:
    """The first forward of each module in each evaluation region that `keep` accepts:
    a rule reports a region once per module, not once per forward. With `statement_of`
    (the statement a fix would change), the tail of a script after its training (a region
    of independent statements, in a notebook often one per cell) is reported once per
    such statement: what fixes one of them leaves the next one as it was. With `loop_of`
    (the outermost loop holding a node), a script's top-level region is reported once per
    top-level loop that runs the module: each loop (a prompt's warm-up, then the sampling
    loop) is its own evaluation, which a fix of the other leaves as it was."""
    seen: set[tuple[int, str, int, int, int, int]] = set()
    placed: set[tuple[int, str]] = set()
    bindings = _Rebindings(facts)
    for forward in sorted(facts.eval_forwards, key=lambda f: f.order):
        call = (
            evaluating_call(facts, forward.via, _region_in(facts, forward), forward.region.by_flags)
            if reported_at_call(facts, forward)
            else None
        )
        statement = 0
        if (
            statement_of is not None
            and forward.region.after_training
            and call is None
            and not forward.via
            and forward.call.unit is facts.unit
            and keep(forward)
        ):
            statement = id(statement_of(forward.call.node))
        elif (
            loop_of is not None
            and forward.region.node is facts.tree
            and call is None
            and not forward.via
            and forward.call.unit is facts.unit
            and keep(forward)
        ):
            loop = loop_of(forward.call.node)
            statement = id(loop) if loop is not None else 0
        dedupe = (
            id(forward.region.node),
            forward.subject,
            id(call.node) if call else 0,
            statement,
            # reached through a call made in the region, it is reported in the called
            # function: the region's own forwards of the module are another place (a region
            # of a function called from outside it has its own forwards reached via that
            # outer call too, so the call must be one inside the region)
            int(
                call is None and forward.call.unit is facts.unit and _entered_within(facts, forward)
            ),
            bindings.of(forward) if call is None and not forward.via else 0,
        )
        # ... but one forward is reported once, however many ways reach it
        own = (id(forward.call.node), forward.subject) if call is None else None
        if keep(forward) and dedupe not in seen and (own is None or own not in placed):
            seen.add(dedupe)
            if own is not None:
                placed.add(own)
            yield forward


class _Rebindings:
    """In a script's (or notebook's) top-level region, a name given a new module between two
    forwards (`model = blip_itm(...)` in a later cell after `model = blip_feature_extractor(
    ...)`) names another module: each is reported. Read from the top-level statements only;
    `model = model.to(device)` keeps the module."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.lines: dict[str, list[int]] = {}

    def of(self, forward: EvalForward) -> int:
        """The line of the latest top-level statement before the forward that binds its
        module's name afresh; 0 when none does or the region is not the file's top level."""
        facts = self.facts
        tree = facts.tree
        if tree is None or forward.region.node is not tree or forward.call.unit is not facts.unit:
            return 0
        name = forward.subject.partition(".")[0]
        lines = self.lines.get(name)
        if lines is None:
            lines = self.lines[name] = [
                facts.unit.locate(statement)[0]
                for statement in tree.body
                if _binds_afresh(statement, name)
            ]
        if len(lines) < 2:
            return 0
        line = forward.call.position()[0]
        return max((found for found in lines if found <= line), default=0)


def _binds_afresh(statement: cst.CSTNode, name: str) -> bool:
    """`name = Factory(...)`: a top-level assignment to `name` whose value does not read it."""
    if type(statement) is not cst.SimpleStatementLine:
        return False
    for small in statement.body:
        if type(small) is cst.Assign and any(
            type(t.target) is cst.Name and t.target.value == name for t in small.targets
        ):
            return not any(
                type(n) is cst.Name and n.value == name for n in _iter_names(small.value)
            )
    return False


def _iter_names(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    return (n for n in iter_nodes(node) if type(n) is cst.Name)


def reported_at_call(facts: ModuleFacts, forward: EvalForward) -> bool:
    """Whether an evaluation reached through calls is reported at the call that evaluates
    rather than at the forward in the called function: the call fixed the flag that makes a
    shared function evaluate (`fit(phase="valid")`), or the function's forward also serves
    training through another call (a per-batch helper shared by training and evaluation),
    so the forward's own line is no evaluation."""
    if not forward.via:
        return False
    return forward.region.by_flags or (
        forward.report_at_call and forward.call in facts.trained_forwards
    )


def entering_call(
    facts: ModuleFacts,
    via: tuple[Place, ...],
    region_node: Optional[cst.CSTNode],
    flag_fixed: bool = False,
) -> Optional[Place]:
    """The innermost call in this file that is outside the evaluation region: the call
    that starts the evaluation (calls made inside the region are part of it). For a region
    settled by a flag (`flag_fixed`), calls that only pass names on (`self._run_batch(x,
    train)` inside `_run_epoch(loader, train)`) are skipped for the outer call that gives
    a flag its value (`self._run_epoch(test_loader, train=False)`)."""
    local = [p for p in via if p.unit is facts.unit]
    outside = local
    if region_node is not None and local:
        region = facts.unit.locate(region_node)
        outside = [p for p in local if not _within(p.position(), region)] or local
    if flag_fixed:
        for place in reversed(outside):
            if _passes_a_constant(place.node):
                return place
    return outside[-1] if outside else None


def _passes_a_constant(node: cst.CSTNode) -> bool:
    """A call given `True`/`False` or a string: a flag or phase fixed here, not passed on."""
    return isinstance(node, cst.Call) and any(
        (type(arg.value) is cst.Name and arg.value.value in ("True", "False"))
        or type(arg.value) is cst.SimpleString
        for arg in node.args
    )


def evaluating_call(
    facts: ModuleFacts,
    via: tuple[Place, ...],
    region_node: Optional[cst.CSTNode],
    flag_fixed: bool = False,
) -> Optional[Place]:
    """The call in this file that makes a shared function evaluate: the first call the
    evaluation region itself makes (`self._process_one_batch(...)` in `vali()`), else the
    call that enters the region (`fit(model, loader, phase="valid")`)."""
    if region_node is not None:
        region = facts.unit.locate(region_node)
        for place in via:
            if place.unit is facts.unit and _within(place.position(), region):
                return place
    return entering_call(facts, via, region_node, flag_fixed)


def _entered_within(facts: ModuleFacts, forward: EvalForward) -> bool:
    """Whether the forward is reached through a call made inside its evaluation region (a
    helper the region calls), not sitting in the region's own body. A region of another
    unit (positions not comparable) counts every call as such, as before."""
    if not forward.via:
        return False
    region_node = _region_in(facts, forward)
    if region_node is None:
        return True
    if type(region_node) is cst.Module:
        return True  # a script's region is the whole file (the incremental parse gives no span)
    region = facts.unit.locate(region_node)
    return any(
        place.unit is not facts.unit or _within(place.position(), region) for place in forward.via
    )


def _within(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return outer[:2] <= inner[:2] and inner[2:] <= outer[2:]


def call_anchor(facts: ModuleFacts, forward: EvalForward) -> Optional[cst.CSTNode]:
    """The call in this file a finding is reported at, when it is reported at a call."""
    if forward.via and reported_at_call(facts, forward):
        anchor = evaluating_call(
            facts, forward.via, _region_in(facts, forward), forward.region.by_flags
        )
        return anchor.node if anchor is not None else None
    if forward.via and (forward.report_at_call or forward.call.unit is not facts.unit):
        region = _region_in(facts, forward)
        anchor = (
            _region_call(facts, forward.via, region)
            if forward.call.unit is not facts.unit
            else None
        )
        anchor = anchor or entering_call(facts, forward.via, region)
        return anchor.node if anchor is not None else None
    return None


def _region_call(
    facts: ModuleFacts, via: tuple[Place, ...], region_node: Optional[cst.CSTNode]
) -> Optional[Place]:
    """For a forward in another file reached from an evaluation region of this file
    (`translate_sentence()` calls `model.eval()`, then `beam_search(...)` of another file):
    the region's own call into it, where `no_grad` belongs, not the call entering the region."""
    if region_node is None:
        return None
    region = facts.unit.locate(region_node)
    inside = [p for p in via if p.unit is facts.unit and _within(p.position(), region)]
    return inside[0] if inside else None


def _region_in(facts: ModuleFacts, forward: EvalForward) -> Optional[cst.CSTNode]:
    """The region node, when it belongs to this file (positions come from this file)."""
    return forward.region.node if forward.region_unit is facts.unit else None


def where_evaluated(forward: EvalForward) -> str:
    """'the evaluation in `evaluate()`' when reported at a call, else the region itself."""
    if forward.report_at_call and forward.via:
        call = forward.via[-1].node
        if isinstance(call, cst.Call):
            return (
                f"the {forward.region.kind.value} that `{_CODEGEN.code_for_node(call.func)}()` runs"
            )
    return f"this {forward.region.kind.value} ({forward.region.description})"


_CODEGEN = cst.Module([])


def receiver_text(subject: str) -> str:
    """`model.forward` -> `model`: the expression to call eval()/train() on."""
    for suffix in (".forward", ".generate", ".predict", ".sample", ".encode", ".decode", ".module"):
        if subject.endswith(suffix):
            return subject[: -len(suffix)]
    return subject


def subject_text(facts: ModuleFacts, forward: EvalForward) -> str:
    """The module a finding names, as the code at the report names it: a forward of a
    method of another file's module class (`self.decoder` in `CharNet.sample`) reported at
    this file's call of it (`self.net.sample(...)`) is named through the call's receiver
    (`self.net.decoder`), not by the `self` of the other file."""
    subject = forward.subject
    if forward.call.unit is facts.unit or not (subject == "self" or subject.startswith("self.")):
        return receiver_text(subject)
    anchor = call_anchor(facts, forward)
    if not isinstance(anchor, cst.Call) or not isinstance(anchor.func, cst.Attribute):
        return receiver_text(subject)
    receiver = _CODEGEN.code_for_node(anchor.func.value)
    if receiver == "self":
        return receiver_text(subject)
    return receiver_text(receiver + subject[len("self") :])


def is_node(value: object) -> bool:
    return isinstance(value, cst.CSTNode)
