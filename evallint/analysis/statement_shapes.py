"""Syntactic shapes the statement observations test: boolean constants, the variable a
backward call runs through, a loop body that rebinds a container, a call only reached when
`self.training` holds, a class whose functional calls follow its mode, and the framework hooks
that run once per batch."""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.reuse import memo
from evallint.analysis.symbols import ImportTable, dotted_name
from evallint.analysis.trained_batch import through_assignments
from evallint.analysis.vocabulary import FUNCTIONAL_MODE, words
from evallint.analysis.walk import iter_nodes
from evallint.source.literals import literal_value


def constant_bool(node: cst.BaseExpression) -> Optional[bool]:
    if type(node) is cst.Name and node.value in ("True", "False"):
        return node.value == "True"
    return None


PER_BATCH_HOOKS = frozenset(
    {
        "training_step",
        "validation_step",
        "test_step",
        "predict_step",
        "compute_loss",
        "prediction_step",
    }
)
"""Methods a framework calls once per batch (Lightning steps, HF Trainer's loss/prediction)."""

NO_GRAD_HOOKS = frozenset({"validation_step", "test_step", "predict_step"})
"""Lightning steps its evaluation loops run under `torch.inference_mode()` (or `no_grad`)."""


def backpropagated_name(call: cst.Call) -> Optional[str]:
    """The variable a backward call runs through: `loss` in `loss.backward()`,
    `accelerator.backward(loss)`, `torch.autograd.backward(loss)`, `scaler.scale(loss).backward()`."""
    func = call.func
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    receiver: Optional[cst.BaseExpression]
    if type(func) is cst.Attribute:
        receiver = func.value
        if positional and type(positional[0]) in (cst.Name, cst.Attribute):
            receiver = positional[0]  # an engine's `backward(loss)`, not a gradient argument
        elif type(receiver) is cst.Call and receiver.args:
            receiver = receiver.args[0].value  # `scaler.scale(loss).backward()`
    else:
        receiver = positional[0] if positional else None
    return dotted_name(receiver) if receiver is not None else None


CONSTANT_KEYS = (cst.SimpleString, cst.Integer, cst.Float, cst.ConcatenatedString)

SEPARATE_RECEIVERS = frozenset({"self", "cls"})
"""Names whose attributes are separate containers: `self.history` is not backpropagated
because `self.model` (read through `self`) is."""


def running_sum_operand(
    target: cst.BaseExpression, value: cst.BaseExpression
) -> Optional[cst.BaseExpression]:
    """What `total = total + v` (or `v + total`) adds to the name it rebinds: the same
    running sum as `total += v`; None for any other assignment."""
    name = dotted_name(target)
    if (
        name is None
        or type(value) is not cst.BinaryOperation
        or type(value.operator) is not cst.Add
    ):
        return None
    if dotted_name(value.left) == name:
        return value.right
    return value.left if dotted_name(value.right) == name else None


def held_list(receiver: cst.BaseExpression) -> Optional[str]:
    """`history` for `history["train"]` or `losses[0]`: the dotted name of a dict or list
    whose entry (one subscript) is the list being appended to; that outer container holds
    what the inner list keeps."""
    if type(receiver) is not cst.Subscript or len(receiver.slice) != 1:
        return None
    if type(receiver.slice[0].slice) is not cst.Index:
        return None
    return dotted_name(receiver.value)


SUBMODULE_ITERATORS = frozenset({"children", "modules", "named_children", "named_modules"})
"""nn.Module methods that iterate the module's own submodules."""

LAYER_CONTAINERS = frozenset({"torch.nn.ModuleList", "torch.nn.Sequential", "torch.nn.ModuleDict"})
"""torch.nn containers of layers: iterating one runs once per layer."""

PART_METHODS = frozenset({"unique", "split", "chunk", "unbind", "items", "keys", "values"})
"""Methods whose items are the parts of one value (a tensor's distinct ids or slices, a
dict's entries), as many as that value has."""


def literal_iterable(iterable: cst.BaseExpression) -> bool:
    """`(3, 64)`, `[1, 2]`, `("train", "val")`: a display of a fixed few items written out
    (no `*rest` unpacked into it), so the loop runs that many times whatever the data; also
    `zip([x_tr, x_te], ["train", "test"])` of such displays only."""
    if (
        type(iterable) is cst.Call
        and type(iterable.func) is cst.Name
        and iterable.func.value == "zip"
        and iterable.args
        and not any(a.star or a.keyword is not None for a in iterable.args)
    ):
        return all(literal_iterable(a.value) for a in iterable.args)
    return type(iterable) in (cst.Tuple, cst.List, cst.Set) and all(
        type(e) is cst.Element for e in cast("cst.Tuple | cst.List | cst.Set", iterable).elements
    )


def loop_rebinds(loop: cst.CSTNode, container: str) -> bool:
    """An assignment to `container` among the loop body's own statements (not a running sum
    `total = total + v`, which keeps what it had)."""
    body = loop.body  # type: ignore[attr-defined]
    for line in body.body if type(body) is cst.IndentedBlock else [body]:
        if type(line) not in (cst.SimpleStatementLine, cst.SimpleStatementSuite):
            continue
        simple = cast("cst.SimpleStatementLine | cst.SimpleStatementSuite", line)
        for small in simple.body:
            if (
                type(small) is cst.Assign
                and running_sum_operand(small.targets[0].target, small.value) is None
            ):
                for t in small.targets:
                    if dotted_name(t.target) == container or (
                        type(t.target) is cst.Tuple
                        and any(dotted_name(e.value) == container for e in t.target.elements)
                    ):
                        return True
            if type(small) is cst.AnnAssign and dotted_name(small.target) == container:
                return True
    return False


def loop_resets(loop: cst.CSTNode, container: str) -> bool:
    """The loop's body rebinds `container` (not a running sum, not in a nested function) in
    an `if` that also steps (`if (i + 1) % accumulate == 0: optimizer.step(); ...; running =
    0`): the container spans the micro-batches of one optimizer step. A reset under a
    logging condition alone (`if i % 2000 == 1999: print(...); running = 0.0`) does not
    count: it lets the values pile up for as long as the interval."""
    body = loop.body  # type: ignore[attr-defined]
    for node in iter_nodes(body):
        if type(node) is not cst.If:
            continue
        branch = node.body
        if not any(_is_step_call(n) for n in iter_nodes(branch)):
            continue
        for inner in iter_nodes(branch):
            if type(inner) is cst.Assign:
                assign = inner
                if running_sum_operand(assign.targets[0].target, assign.value) is not None:
                    continue
                if any(dotted_name(t.target) == container for t in assign.targets):
                    return True
    return False


def _is_step_call(node: cst.CSTNode) -> bool:
    return (
        type(node) is cst.Call
        and type(node.func) is cst.Attribute
        and node.func.attr.value == "step"
    )


def under_training_test(function: cst.FunctionDef, call: cst.Call) -> bool:
    """The call sits in the body of an `if` whose test requires `self.training` (`if
    self.training:`, `if self.training and p > 0:`), so it runs only in training mode."""
    for node in iter_nodes(function.body):
        if type(node) is not cst.If or not _requires_training(node.test):
            continue
        if any(inner is call for inner in iter_nodes(node.body)):
            return True
    return False


def functional_training_argument(call: cst.Call, imports: ImportTable) -> Optional[cst.Arg]:
    """The argument a functional form with a `training` flag (`F.dropout`, `F.batch_norm`)
    is given for that flag, by keyword or position; None when it is not such a call or is
    given none."""
    spec = FUNCTIONAL_MODE.get(imports.qualify(call.func) or "")
    if spec is None:
        return None
    keyword, index, _ = spec
    for argument in call.args:
        if argument.keyword is not None and argument.keyword.value == keyword:
            return argument
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[index] if index < len(positional) else None


_DROPOUT_LAYERS = frozenset(
    f"torch.nn.{name}"
    for name in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout")
)
"""Dropout layers, which follow the module's mode."""


def class_follows_mode(owner: cst.ClassDef, imports: ImportTable) -> bool:
    """The class's other dropout follows the module's mode: a functional call given an
    expression as its `training` flag (`F.dropout(w, p, training=self.training)`) or a
    dropout layer (`nn.Dropout(p)`). A literal `training=True` beside it contradicts the
    class's own code."""
    for node in iter_nodes(owner.body, enter_scopes=True):
        if type(node) is cst.Call:
            if (imports.qualify(node.func) or "") in _DROPOUT_LAYERS:
                return True
            argument = functional_training_argument(node, imports)
            if argument is not None and constant_bool(argument.value) is None:
                return True
    return False


def _requires_training(test: cst.BaseExpression) -> bool:
    if type(test) is cst.Attribute:
        return dotted_name(test) == "self.training"
    if type(test) is cst.BooleanOperation and type(test.operator) is cst.And:
        return _requires_training(test.left) or _requires_training(test.right)
    return False


def backpropagated_names(region: cst.CSTNode) -> frozenset[str]:
    """Names a `backward()` in this block is computed from, transitively through its
    assignments (read syntactically)."""
    reads = assignment_reads(region)
    found: set[str] = set()
    for node in iter_nodes(region):
        if (
            type(node) is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value == "backward"
        ):
            root = dotted_name(node.func.value)
            if root:
                found.add(root.split(".")[0])
            else:  # `(value_loss * coef).backward()`: through every variable it reads
                found.update(_bare_names(node.func.value))
            for arg in node.args:
                found.update(n.value for n in iter_nodes(arg.value) if type(n) is cst.Name)
    return frozenset(through_assignments(found, reads))


def assignment_reads(region: cst.CSTNode) -> dict[str, set[str]]:
    """Each name the block assigns -> the names its assigned values read (syntactically)."""
    reads: dict[str, set[str]] = {}
    for node in iter_nodes(region):
        if type(node) is cst.Assign:
            sources = {n.value for n in iter_nodes(node.value) if type(n) is cst.Name}
            for target in node.targets:
                for name in iter_nodes(target.target):
                    if type(name) is cst.Name:
                        reads.setdefault(name.value, set()).update(sources)
    return reads


def _bare_names(expr: cst.CSTNode) -> set[str]:
    """Variables an expression reads, not the objects whose attributes it reads (`self` of
    `self.coef`): the values a backward through it is computed from."""
    receivers = {id(n.value) for n in iter_nodes(expr) if type(n) is cst.Attribute}
    return {n.value for n in iter_nodes(expr) if type(n) is cst.Name and id(n) not in receivers}


def calls_in_branches(expr: cst.IfExp) -> bool:
    """Whether a branch of `a if c else b` calls something (else there are no two paths
    to keep apart: only the value differs)."""
    return any(
        type(node) is cst.Call for branch in (expr.body, expr.orelse) for node in iter_nodes(branch)
    )


def backward_roots(block: cst.CSTNode) -> frozenset[tuple[str, int]]:
    """(name, id of the call) of each `name.backward()` in the block (a dotted receiver by
    its first name): the values a backward pass is run from."""
    found = set()
    for node in iter_nodes(block):
        if (
            type(node) is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value == "backward"
        ):
            root = dotted_name(node.func.value)
            if root:
                found.add((root.split(".")[0], id(node)))
    return frozenset(found)


def _sums_into(loop: cst.CSTNode, names: frozenset[str]) -> bool:
    """Whether the loop adds something computed by a call into one of `names` (`outer_loss
    += F.cross_entropy(model(x), y)`, or `total = total + ...`)."""
    for node in iter_nodes(loop):
        if type(node) is cst.AugAssign and type(node.operator) is cst.AddAssign:
            target, value = node.target, node.value
        elif type(node) is cst.Assign and len(node.targets) == 1:
            target = node.targets[0].target
            operand = running_sum_operand(target, node.value)
            if operand is None:
                continue
            value = operand
        else:
            continue
        name = dotted_name(target)
        if (
            name is not None
            and name.split(".")[0] in names
            and any(type(n) is cst.Call for n in iter_nodes(value))
        ):
            return True
    return False


def sums_into_a_later_backward(scope: cst.CSTNode, loop: cst.CSTNode) -> bool:
    """The loop adds call results into a name that a `backward()` of `scope` outside the loop
    runs from: meta-learning's query ("test") losses summed into the outer loss, which trains.
    The scans are kept per node (`reuse.memo`)."""
    everywhere = memo("backward_roots", scope, backward_roots)
    if not everywhere:
        return False
    roots = everywhere - memo("backward_roots", loop, backward_roots)
    return bool(roots) and _sums_into(loop, frozenset(name for name, _ in roots))


def may_hold_comprehension(expr: cst.BaseExpression) -> bool:
    """Cheap pre-check: comprehensions sit at the top or inside a call's arguments."""
    if type(expr) in (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp):
        return True
    if type(expr) is cst.Call:
        return any(
            type(a.value) in (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp, cst.Call)
            for a in expr.args
        )
    return False


def iterates_submodules(iterable: cst.BaseExpression) -> bool:
    return any(
        type(n) is cst.Call
        and type(n.func) is cst.Attribute
        and n.func.attr.value
        in (
            "modules",
            "children",
            "named_modules",
            "named_children",
            "parameters",
            "named_parameters",
        )
        for n in iter_nodes(iterable)
    )


def iterable_words(loop: cst.For) -> frozenset:
    found: set[str] = set()
    for node in iter_nodes(loop.iter):
        if type(node) is cst.Name:
            found |= words(node.value)
        elif type(node) is cst.SimpleString and isinstance(literal_value(node), str):
            found |= words(literal_value(node))
    return frozenset(found)


def catches_only_interrupt(handler: cst.ExceptHandler) -> bool:
    """`except KeyboardInterrupt:` (alone or with others of its kind in a tuple): a handler
    for a run stopped by hand, not for an error of the code."""
    caught = handler.type
    if caught is None:
        return False
    names = [e.value for e in caught.elements] if type(caught) is cst.Tuple else [caught]
    return bool(names) and all(
        dotted_name(n) in ("KeyboardInterrupt", "builtins.KeyboardInterrupt") for n in names
    )


_CONTAINER_BUILDERS = frozenset({"list", "tuple", "dict", "set", "sorted", "reversed", "copy"})
"""Calls that hand back a container of the same items (`xs = sorted(xs)`): still the list."""


def rebound_from_itself(function: cst.FunctionDef, name: str) -> list[cst.BaseExpression]:
    """The values `name` is rebound to outside every loop of `function`, computed from
    itself into something that is no container (`jac = torch.cat(jac, 1)`, `losses =
    sum(losses) / n`): returning `name` then hands back one tensor built from the list."""
    in_loops: set[int] = set()
    for node in iter_nodes(function.body):
        if type(node) in (cst.For, cst.While) and id(node) not in in_loops:
            in_loops.update(id(n) for n in iter_nodes(node))
    found: list[cst.BaseExpression] = []
    for node in iter_nodes(function.body):
        if type(node) is not cst.Assign or id(node) in in_loops:
            continue
        assign = node
        target = assign.targets[0].target if len(assign.targets) == 1 else None
        value = assign.value
        if not (type(target) is cst.Name and target.value == name):
            continue
        if type(value) in (cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp):
            continue
        if type(value) is cst.Call and dotted_name(value.func) in _CONTAINER_BUILDERS:
            continue
        if type(value) is cst.BinaryOperation and any(
            type(side) in (cst.List, cst.Tuple) for side in (value.left, value.right)
        ):
            continue
        if any(type(n) is cst.Name and n.value == name for n in iter_nodes(value)):
            found.append(value)
    return found


PROCESS_ENDERS = frozenset({"sys.exit", "os._exit", "os.abort"})
"""Library calls that end the process: the statements after them never run."""
SITE_ENDERS = frozenset({"exit", "quit"})
"""The `site` builtins that raise `SystemExit`, unless the module or scope binds the name."""


def ends_the_process(
    call: cst.Call, imports: ImportTable, module: cst.Module, scope_locals: frozenset[str]
) -> bool:
    """`sys.exit()`, `os._exit(1)`, `quit()` or `exit()` as a statement: like `raise
    SystemExit`, no path goes on after it."""
    qualified = imports.qualify(call.func)
    if qualified in PROCESS_ENDERS:
        return True
    if qualified not in SITE_ENDERS or type(call.func) is not cst.Name:
        return False
    name = call.func.value
    return name not in scope_locals and not _module_binds(module, name)


def _module_binds(module: cst.Module, name: str) -> bool:
    """A top-level `def exit(...)`, `class quit`, or `exit = ...` hides the builtin."""
    for statement in module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            if statement.name.value == name:
                return True
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign) and any(
                    isinstance(t.target, cst.Name) and t.target.value == name for t in small.targets
                ):
                    return True
    return False
