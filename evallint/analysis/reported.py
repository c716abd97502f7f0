"""Forwards recognised as evaluations by what their result does (issue 16, items 4 and 8).

A forward whose value is only printed, plotted, turned into Python numbers, NumPy arrays or
class labels, and never reaches a backward pass, an optimizer step, the caller or an object,
is an evaluation wherever it stands: a demo prediction of a pretrained model
(`print(model(**inputs).logits)`), a prediction before training (`model(x).item()`), the
clean and adversarial predictions around an attack whose other forwards need gradients.

The interpreter keeps the chain of statements it is inside (outermost first); from it, the
statements that may run after the forward's statement are read in order, and the names that
carry the forward's value are followed through assignments until they are reported, feed a
training statement, or leave the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.lattice import ENTRY_MODE, Mode
from evallint.analysis.regions import Region, RegionKind, reports_call
from evallint.analysis.reporting_helpers import imported_helper
from evallint.analysis.scope import FunctionInfo
from evallint.analysis.symbols import dotted_name
from evallint.analysis.unit_tests import is_unit_test
from evallint.analysis.walk import iter_nodes

SHAPE_ATTRIBUTES = frozenset({"shape", "size", "dim", "ndim", "dtype", "device", "ndimension"})
"""What a shape check reads: a result used only through these is a smoke test, not a report."""

_GROWING = frozenset({"append", "extend", "insert"})
_STORING = frozenset(
    {"append", "extend", "add", "insert", "push", "put", "store", "update", "remember", "record"}
)
"""Methods that keep what they are given: a local list grows, an object's buffer keeps it."""

DESCRIPTION = "a forward whose result is only reported"
DROPPED = "an inference whose result nothing uses"


def _names(node: cst.CSTNode) -> set[str]:
    return {n.value for n in iter_nodes(node) if type(n) is cst.Name}


def _value_uses(node: cst.CSTNode, names: set[str]) -> int:
    """Mentions of `names` in `node` that read the value, not only its shape (`x.shape`,
    `x.size(0)`, `len(x)`)."""
    total = 0
    shaped = 0
    for sub in iter_nodes(node):
        kind = type(sub)
        if kind is cst.Name and sub.value in names:  # type: ignore[attr-defined]
            total += 1
        elif kind is cst.Attribute and sub.attr.value in SHAPE_ATTRIBUTES:  # type: ignore[attr-defined]
            shaped += len(_names(sub.value) & names)  # type: ignore[attr-defined]
        elif (
            kind is cst.Call
            and type(sub.func) is cst.Name  # type: ignore[attr-defined]
            and sub.func.value == "len"  # type: ignore[attr-defined]
        ):
            shaped += len(_names(sub) & names)
    return total - shaped


def _reported_in(node: cst.CSTNode, names: set[str], forward: Optional[cst.Call]) -> bool:
    """Whether a reporting call in `node` reads `names` (or contains `forward`) by value."""
    for sub in iter_nodes(node):
        if type(sub) is not cst.Call or not reports_call(sub):
            continue
        if names and _value_uses(sub, names) > 0:
            return True
        if forward is not None and any(n is forward for n in iter_nodes(sub)):
            shape_checked = any(
                type(a) is cst.Attribute
                and a.attr.value in SHAPE_ATTRIBUTES
                and any(n is forward for n in iter_nodes(a.value))
                for a in iter_nodes(sub)
            )
            if not shape_checked:
                return True
    return False


class _Follow:
    """Follows the names carrying a forward's value through statements run in order."""

    def __init__(
        self,
        trains: Callable[[cst.CSTNode], bool],
        outside: frozenset[str] = frozenset(),
        reports_through: Optional[Callable[[cst.Call, set[str]], bool]] = None,
    ) -> None:
        self.trains = trains
        self.outside = outside
        """Names whose objects the caller owns (parameters): what they keep leaves the scope."""
        self.reports_through = reports_through
        """Whether a call hands the live values to a helper of the project that only
        reports them (`save_img(out, path)`, see `helper_reports`)."""
        self.reported = False
        self.spoiled = False
        """The value fed training, left the scope, or went into an object."""
        self.shown = False
        """A reporting call mentions the value, if only its shape (a smoke test)."""

    def run(self, statements: Sequence[cst.CSTNode], live: set[str]) -> set[str]:
        for statement in statements:
            if self.spoiled or not live:
                break
            live = self.statement(statement, live)
        return live

    def statement(self, node: cst.CSTNode, live: set[str]) -> set[str]:
        kind = type(node)
        if kind in (cst.FunctionDef, cst.ClassDef):
            return live
        if kind is cst.SimpleStatementLine:
            if self.trains(node) and _names(node) & live:
                self.spoiled = True
                return live
            if any(
                type(n) is cst.Call and type(n.func) is cst.Name and n.func.value in live
                for n in iter_nodes(node)
            ):
                self.spoiled = True  # `validate = net.validater(data)` then `validate(...)`:
                return live  # the value is a function, not a forward's output
            for small in node.body:  # type: ignore[attr-defined]
                live = self.small(small, live)
            return live
        if kind is cst.If:
            if _names(node.test) & live and _reported_in(node.test, live, None):  # type: ignore[attr-defined]
                self.reported = True
            first = self.run(node.body.body, set(live))  # type: ignore[attr-defined]
            orelse = node.orelse  # type: ignore[attr-defined]
            if type(orelse) is cst.If:
                second = self.statement(orelse, set(live))
            elif orelse is not None:
                second = self.run(orelse.body.body, set(live))
            else:
                second = live
            return first | second
        if kind in (cst.For, cst.While):
            header = node.iter if kind is cst.For else node.test  # type: ignore[attr-defined]
            if _names(header) & live and self.trains(node):
                self.spoiled = True
                return live
            body = node.body.body  # type: ignore[attr-defined]
            once = self.run(body, set(live))
            return live | self.run(body, once)  # the next pass sees what the last one left
        suites = [getattr(node, "body", None), getattr(node, "finalbody", None)]
        suites += [h.body for h in getattr(node, "handlers", ()) or ()]
        for suite in suites:
            if isinstance(suite, cst.Finally):
                suite = suite.body
            if type(suite) is cst.IndentedBlock:
                live = self.run(suite.body, live)
        return live

    def small(self, node: cst.CSTNode, live: set[str]) -> set[str]:
        value = getattr(node, "value", None) if type(node) is cst.Assign else node
        reads = _names(value) & live if value is not None else set()
        if not reads:
            if type(node) is cst.Assign:
                # a fresh value: the names it binds carry the forward's no longer
                for fresh in _targets(node):
                    if isinstance(fresh, cst.Name):
                        live = live - {fresh.value}
            return live
        if type(node) in (cst.Return, cst.Global, cst.Nonlocal) or any(
            type(n) in (cst.Yield, cst.Await) for n in iter_nodes(node)
        ):
            self.spoiled = True
            return live
        if _reported_in(node, live, None):
            self.reported = True
        if any(
            type(n) is cst.Call and reports_call(n) and _names(n) & live for n in iter_nodes(node)
        ):
            self.shown = True
        if type(node) in (cst.Assign, cst.AugAssign, cst.AnnAssign):
            value = getattr(node, "value", None)
            if value is None or not (_names(value) & live):
                return live
            for target in _targets(node):
                if type(target) is cst.Attribute:
                    if _root_name(target) in live:
                        continue  # `out.data = out.data.mul(0.5)`: the value changed in place
                    self.spoiled = True  # stored on an object
                    return live
                live = live | _names(target)
            return live
        if type(node) is cst.Expr and type(node.value) is cst.Call:
            call = node.value
            if reports_call(call):
                return live
            if self.reports_through is not None and self.reports_through(call, live):
                self.reported = True
                return live
            func = call.func
            if type(func) is cst.Attribute and func.attr.value in _STORING:
                receiver = func.value
                if (
                    type(receiver) is cst.Name
                    and func.attr.value in _GROWING
                    and receiver.value not in self.outside
                ):
                    return live | {receiver.value}  # a local list of results
                self.spoiled = True  # kept by an object (a replay buffer, a cache, a caller's)
        return live


def _root_name(node: cst.BaseExpression) -> Optional[str]:
    """`out.data.x` -> 'out'; None when the chain does not start at a name."""
    while type(node) in (cst.Attribute, cst.Subscript):
        node = node.value  # type: ignore[attr-defined]
    return node.value if type(node) is cst.Name else None


def _targets(node: cst.CSTNode) -> list[cst.BaseExpression]:
    if isinstance(node, cst.Assign):
        return [t.target for t in node.targets]
    if isinstance(node, (cst.AugAssign, cst.AnnAssign)):
        return [node.target]
    return []


def _suite_holding(parent: cst.CSTNode, child: cst.CSTNode) -> Optional[Sequence[cst.CSTNode]]:
    suites = [getattr(parent, "body", None)]
    orelse = getattr(parent, "orelse", None)
    if type(orelse) is cst.Else:
        suites.append(orelse.body)
    final = getattr(parent, "finalbody", None)
    if type(final) is cst.Finally:
        suites.append(final.body)
    suites += [h.body for h in getattr(parent, "handlers", ()) or ()]
    suites += [c.body for c in getattr(parent, "cases", ()) or ()]
    for suite in suites:
        if type(suite) is cst.IndentedBlock and any(s is child for s in suite.body):
            return suite.body
    return None


def _after(body: Sequence[cst.CSTNode], chain: Sequence[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """The statements that may run after the innermost statement of `chain`, in order: the
    rest of its suite, a loop's next pass, then the rest of each enclosing suite."""
    for level in range(len(chain) - 1, -1, -1):
        child = chain[level]
        suite = body if level == 0 else _suite_holding(chain[level - 1], child)
        if suite is None:
            continue
        index = next((i for i, s in enumerate(suite) if s is child), None)
        if index is None:
            return
        yield from suite[index + 1 :]
        parent = chain[level - 1] if level else None
        if isinstance(parent, (cst.For, cst.While)) and suite is parent.body.body:
            yield from suite[: index + 1]


def small_statement_index(statement: cst.SimpleStatementLine) -> dict[int, int]:
    """id of every node of a simple statement line -> the index of its small statement."""
    return {id(n): i for i, small in enumerate(statement.body) for n in iter_nodes(small)}


def only_reported(
    call: cst.Call,
    body: Sequence[cst.CSTNode],
    chain: Sequence[cst.CSTNode],
    trains: Callable[[cst.CSTNode], bool],
    outside: frozenset[str] = frozenset(),
    small_index: Optional[dict[int, int]] = None,
    reports_through: Optional[Callable[[cst.Call, set[str]], bool]] = None,
    dropped: bool = False,
) -> bool:
    """Whether the forward `call`, in the simple statement innermost in `chain`, has a
    result that is reported and never feeds training or leaves the scope; with `dropped`,
    also one bound to names that nothing reports, not even their shape (an inference whose
    output the script keeps for nothing, see `dropped_region`). `small_index`
    (id of a node -> index of the small statement holding it, see `small_statement_index`)
    finds the call's small statement without walking the line once per call: a line of n
    `;`-separated forwards would cost n^2 otherwise."""
    if not chain or type(chain[-1]) is not cst.SimpleStatementLine:
        return False
    statement = chain[-1]
    if trains(statement):
        return False
    follow = _Follow(trains, outside, reports_through)
    live: set[str] = set()
    assert isinstance(statement, cst.SimpleStatementLine)
    if small_index is None:
        small_index = small_statement_index(statement)
    position = small_index.get(id(call))
    for small in statement.body[position : position + 1] if position is not None else ():
        if type(small) is cst.Expr:
            follow.reported = _reported_in(small, set(), call)
            dropped = False  # `model(x)` alone: run for its hooks or buffers, not its value
            break
        if type(small) not in (cst.Assign, cst.AugAssign, cst.AnnAssign):
            return False  # returned, yielded, asserted: not a report
        targets = _targets(small)
        if any(type(t) is cst.Attribute for t in targets):
            return False
        live = set().union(*(_names(t) for t in targets))
        follow.reported = _reported_in(small, set(), call)
        break
    else:
        return False
    if live:
        follow.run(list(_after(body, chain)), live)
    if dropped and not follow.reported and not follow.shown and live:
        return not follow.spoiled
    return follow.reported and not follow.spoiled


_TRAINING_METHODS = frozenset({"backward", "step"})


def _trains_syntactically(node: cst.CSTNode) -> bool:
    return any(
        type(n) is cst.Call
        and type(n.func) is cst.Attribute
        and n.func.attr.value in _TRAINING_METHODS
        for n in iter_nodes(node)
    )


def helper_reports(helper: cst.FunctionDef, call: cst.Call, live: set[str]) -> bool:
    """Whether `call` of the plain function `helper` passes the live values only to
    parameters that the helper reports (prints, saves, turns into NumPy arrays) and that
    feed no training, are not returned and are kept by nothing (`def save_img(t, path):
    Image.fromarray(t.numpy()).save(path)`)."""
    params = helper.params
    positional = [p.name.value for p in (*params.posonly_params, *params.params)]
    named = set(positional) | {p.name.value for p in params.kwonly_params}
    carried: list[str] = []
    for index, argument in enumerate(call.args):
        if not (_names(argument.value) & live):
            continue
        if argument.star:
            return False
        if argument.keyword is not None:
            if argument.keyword.value not in named:
                return False
            carried.append(argument.keyword.value)
        elif index < len(positional):
            carried.append(positional[index])
        else:
            return False
    if not carried:
        return False
    body = helper.body.body if type(helper.body) is cst.IndentedBlock else ()
    reported = False
    for param in carried:
        follow = _Follow(_trains_syntactically, frozenset(named - {param}))
        follow.run(list(body), {param})
        if follow.spoiled:
            return False
        reported = reported or follow.reported
    return reported


def reports_by_itself(helper: cst.FunctionDef) -> bool:
    """Whether a plain function reports something (prints, saves, plots, turns a tensor into
    numbers) and trains nothing: a block that calls it hands values to a person or a file
    through it, as one that calls `save_image` itself does."""
    return not _trains_syntactically(helper) and any(
        type(n) is cst.Call and reports_call(n) for n in iter_nodes(helper)
    )


def plain_helper(file, func: cst.BaseExpression) -> Optional[cst.FunctionDef]:
    """The top-level function a call's `func` names: a function of the file `file` (a
    FileAnalysis), one imported from a project file (`save_img`), or one named through an
    imported project module (`utils.show_prob(p)`); None for methods, nested functions and
    anything else."""
    if type(func) is cst.Attribute and type(func.value) is cst.Name:
        module = func.value.value
        if file.project is None or not file.imports.is_imported(module):
            return None
        if module in file.imports.modules_from or module in file.functions:
            return None  # `from pkg import obj` then `obj.method()`: not a module's function
        return imported_helper(
            file.project, file.path, file.imports.module_path(module), func.attr.value
        )
    if type(func) is not cst.Name:
        return None
    name = func.value
    info = file.functions.get(name)
    if info is not None:
        return info.node if info.owner is None and info.parent is None else None
    if file.project is not None and name in file.imports.modules_from:
        return imported_helper(
            file.project,
            file.path,
            file.imports.modules_from[name],
            file.imports.qualify_name(name).split(".")[-1],
        )
    return None


def held_exit_modes(
    info: FunctionInfo, exit_states: States, scope_keys: set[str]
) -> dict[str, frozenset]:
    """Exit modes of modules held by a parameter object (`validate(context)` ->
    `predict(context.model)` -> `eval()`): the caller maps `context.model` to its argument."""
    params = set(info.params + info.keyword_only) - {"self", "cls"}
    held = {k for s in exit_states for k, _ in s.modes if "[" not in k and "." in k}
    return {
        key: frozenset().union(*(s.mode_of(key) or ENTRY_MODE for s in exit_states))
        for key in sorted(held - scope_keys)
        if key.partition(".")[0] in params
    }


class Reported(InterpreterPart):
    """Mixed into the interpreter; `self` is an `_Interpreter`."""

    def _init_reported(self) -> None:
        self.statement_chain: list[cst.CSTNode] = []
        self._reported_cache: dict[tuple[int, bool], Optional[Region]] = {}
        self._small_indexes: dict[int, dict[int, int]] = {}
        """id of a simple statement line -> its `small_statement_index` (built once per line)."""
        self.phase_conditions: set[str] = set()
        """Conditions on the variable of a loop over literal phases (see loop_phases)."""

    def record_flow(self, node: cst.CSTNode, states: States) -> None:
        """Note the states a statement is reached with (`--show-flow`)."""
        region = next((r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL), None)
        self.file.facts.flow.append(
            (
                self.info.qualname if self.info else "<module>",
                node,
                states,
                f"{region.kind.value}: {region.description}" if region else "neutral",
            )
        )

    def _trains_statement(self, node: cst.CSTNode) -> bool:
        evidence = self.file.statement_evidence(node, self.info)
        return bool(evidence.training_sites or evidence.backwards or evidence.needs_grad)

    def _reports_through(self, call: cst.Call, live: set[str]) -> bool:
        """`save_img(out, path)`: a plain function of this file, or imported from a project
        file, that only reports what it is given (see `helper_reports`)."""
        helper = plain_helper(self.file, call.func)
        return helper is not None and helper_reports(helper, call, live)

    def _small_index_of(self, statement: cst.CSTNode) -> Optional[dict[int, int]]:
        if type(statement) is not cst.SimpleStatementLine:
            return None
        index = self._small_indexes.get(id(statement))
        if index is None:
            index = self._small_indexes[id(statement)] = small_statement_index(statement)
        return index

    def reported_region(self, call: cst.Call) -> Optional[Region]:
        """An evaluation region of its own for a forward outside any evaluation (or inside
        one whose other statements need gradients) whose result is only reported."""
        return self._result_region(call, False)

    def dropped_region(self, call: cst.Call, key: str, states: States) -> Optional[Region]:
        """An evaluation region of its own for a forward at a script's top level of a
        module in eval mode on every path (switched by `eval()`, or loaded by a library
        loader that returns it so, as `from_pretrained` does) whose result is bound to names
        that nothing reports, trains on, stores or returns: an inference whose output is
        looked at, if at all, by hand (`outputs = model(**inputs)`, then
        `h = outputs.last_hidden_state`). Nothing trains the module there and its value
        reaches no backward pass, so autograd keeps the graph for nothing. A module in
        training mode is left alone (a forward for its statistics or a smoke test)."""
        if self.info is not None or not states:
            return None
        for state in states:
            facts = state.mode_in_tree(key)
            if not facts or any(fact.mode is not Mode.EVAL for fact in facts):
                return None
        return self._result_region(call, True)

    def _result_region(self, call: cst.Call, dropped: bool) -> Optional[Region]:
        innermost = next(
            (r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL), None
        )
        if innermost is not None and not (
            innermost.kind is RegionKind.TRAIN
            or (innermost.kind is RegionKind.EVAL and innermost.needs_grad)
        ):
            return None
        info = self.info
        if info is not None and innermost is None:
            return None  # a function that only reports is one evaluation (_evaluation_by_results)
        if info is not None:
            owner = info.owner
            if owner is not None and owner.is_module:
                return None  # a module's own method runs in the mode its caller set
            if is_unit_test(self.file.is_pytest_file, info.name, info.node, self.file._module_keys):
                return None
        chain = self.statement_chain
        if any(type(s) in (cst.For, cst.While) and self._trains_statement(s) for s in chain[:-1]):
            return None  # inside a training loop: the loop's own plan decides
        cache_key = (id(call), dropped)
        if cache_key in self._reported_cache:
            return self._reported_cache[cache_key]
        region = None
        if dotted_name(call.func) is not None and only_reported(
            call,
            self.body,
            chain,
            self._trains_statement,
            frozenset(info.params + info.keyword_only) if info is not None else frozenset(),
            self._small_index_of(chain[-1]),
            self._reports_through,
            dropped,
        ):
            region = Region(chain[-1], RegionKind.EVAL, DROPPED if dropped else DESCRIPTION)
        self._reported_cache[cache_key] = region
        return region
