"""Methods of a project's classes that run the module's forward, read from their bodies.

`agent.get_action_and_value(obs)`, `model.pi(state)`, `net.forward_masks(x)`: a method that
(transitively, within its class) calls `self(...)`, `self.forward(...)` or a submodule the
class builds (`self.fc = nn.Linear(...)`; `self.fc(x)`) runs the forward, so calling it on a
module is a forward. Decided from the method bodies of the project, never from the name of
the method or from how its result is used. Read with CPython's parser, one pass per file.
"""

from __future__ import annotations

import ast
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Optional

import libcst as cst

from evallint.analysis.bound_branches import binding_keys, live_nodes, tested_constants
from evallint.analysis.eval_parts import parts_in_own_mode
from evallint.analysis.symbols import STANDARD_LIBRARY, class_of_import, dotted_name
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import (
    MODE_METHODS,
    MODULE_API,
    MODULE_RETURNING_METHODS,
    NO_GRAD_METHODS,
)

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import FunctionInfo

_NOT_SUBMODULE_SUFFIXES = ("Loss", "Criterion", "Metric", "Metrics", "Optimizer", "Scheduler")
_TRAINING_CALLS = frozenset({"backward", "step", "zero_grad"})
_NOT_FORWARDS = frozenset({"__init__", "train", "eval", "parameters", "state_dict", "to", "cuda"})


def _self_attribute(node: ast.expr) -> Optional[str]:
    """`self.fc` -> 'fc'."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ):
        return node.attr
    return None


def _callee_name(func: ast.expr) -> str:
    """The last name of a called expression (`nn.Linear` -> `Linear`, `build` -> `build`)."""
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _builds_module(value: ast.expr) -> bool:
    """`nn.Linear(...)`, `Encoder(...)`, `nn.Sequential(...)`: a constructor call of a class
    (a capitalised name), not a loss, an optimizer or a plain function's result. Module
    methods that return the module they are called on (`Encoder(...).to(device)`,
    `.cuda()`, `.eval()`) leave it the module the constructor built."""
    while (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in MODULE_RETURNING_METHODS | MODE_METHODS
        and isinstance(value.func.value, ast.Call)
    ):
        value = value.func.value
    if not isinstance(value, ast.Call):
        return False
    name = _callee_name(value.func)
    return name[:1].isupper() and not name.endswith(_NOT_SUBMODULE_SUFFIXES)


def _disables_grad(decorator: ast.expr) -> bool:
    """`@torch.no_grad()`, `@no_grad`, `@torch.inference_mode()`."""
    if isinstance(decorator, ast.Call):
        decorator = decorator.func
    name = decorator.attr if isinstance(decorator, ast.Attribute) else getattr(decorator, "id", "")
    return "no_grad" in name or name == "inference_mode"


def _under_grad_disabling_with(method: ast.AST) -> set[int]:
    """The ids of the nodes of `method` inside a `with torch.no_grad():` (or
    `inference_mode()`, `set_grad_enabled(False)`) block of its own."""
    found: set[int] = set()
    for node in ast.walk(method):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
            _disables_grad_block(item.context_expr) for item in node.items
        ):
            for statement in node.body:
                found.update(id(inner) for inner in ast.walk(statement))
    return found


def _disables_grad_block(expression: ast.expr) -> bool:
    """`torch.no_grad()`, `torch.inference_mode()`, `torch.set_grad_enabled(False)`."""
    if not isinstance(expression, ast.Call):
        return False
    func = expression.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name == "set_grad_enabled":
        flag = expression.args[0] if expression.args else None
        return isinstance(flag, ast.Constant) and flag.value is False
    return ("no_grad" in name or name == "inference_mode") and not expression.args


def _called_by_forward(
    forward: Optional[ast.FunctionDef | ast.AsyncFunctionDef], methods: dict
) -> set[str]:
    """`self.convnet(x)` in the class's own `forward`, whatever built `self.convnet` (a
    factory `get_convnet(args)`, a module passed in): what the forward calls on an attribute
    that is no method of the class is a part of the module."""
    found: set[str] = set()
    if forward is None:
        return found
    for node in ast.walk(forward):
        if isinstance(node, ast.Call):
            name = _self_attribute(node.func)
            if name is not None and name not in methods and name not in MODULE_API:
                found.add(name)  # not `self.parameters()`: nn.Module's own API
    return found


def _derives_from_module(node: ast.ClassDef) -> bool:
    """`class GAN(nn.Module)`, `class GAN(torch.nn.Module)`: named as nn.Module's subclass."""
    return any(
        (base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")) == "Module"
        for base in node.bases
    )


def _parts_without_forward(methods: dict) -> set[str]:
    """An nn.Module subclass with no `forward` of its own (a GAN holding
    `self.generator = make_generator(...)` and `self.discriminator`, run through
    `gen_forward(z)` and `disc_forward(x)`) computes only through its methods: an attribute
    the class binds only to what a function call returns (a factory of another file, which
    no class name describes) and that a method calls is a part of the module, as
    `_called_by_forward` reads the parts of a class that has a `forward`. An attribute bound
    to a class's object is left to `_builds_module` (`nn.MSELoss()`: a loss, no part)."""
    if "forward" in methods:
        return set()
    made: set[str] = set()
    named: set[str] = set()
    for method in methods.values():
        for inner in ast.walk(method):
            if not isinstance(inner, ast.Assign):
                continue
            for target in inner.targets:
                name = _self_attribute(target)
                if name is None:
                    continue
                callee = _callee_name(inner.value.func) if isinstance(inner.value, ast.Call) else ""
                (made if callee[:1].islower() else named).add(name)
    called: set[str] = set()
    for method in methods.values():
        called |= _called_by_forward(method, methods)
    return called & (made - named)


_NOT_CLASS_ANNOTATIONS = frozenset(
    {"Any", "Callable", "Dict", "List", "Tuple", "Set", "Sequence", "Mapping", "Iterable"}
)
"""Capitalised typing names that name no class of the object held (`Callable[...]`)."""


def _annotated_class_name(annotation: Optional[ast.expr]) -> str:
    """The class an `__init__` parameter is annotated with (`upstream: Encoder`,
    `Optional[nn.Module]`), its last name, "" when it names none (a string, a union, a
    typing alias, a builtin)."""
    if isinstance(annotation, ast.Subscript) and _callee_name(annotation.value) == "Optional":
        annotation = annotation.slice
    if not isinstance(annotation, (ast.Name, ast.Attribute)):
        return ""
    name = _callee_name(annotation)
    return "" if not name[:1].isupper() or name in _NOT_CLASS_ANNOTATIONS else name


def _annotated_parts(methods: dict) -> set[str]:
    """`def __init__(self, upstream: Encoder): self.upstream = upstream` in an nn.Module
    subclass: the attribute holds an object of the annotated class, as `self.upstream =
    Encoder(...)` would (`_builds_module`: a capitalised class, not a loss or an optimizer),
    and assigning a module to a module's attribute registers it as a part. What the class's
    methods call on it (`self.upstream(x)`, from a `predict` its `test_step` calls) runs
    that part's forward; the class may have no `forward` of its own (a task object whose
    base dispatches to `train_step`/`test_step`)."""
    init = methods.get("__init__")
    if init is None:
        return set()
    arguments = init.args
    classes = {
        argument.arg: _annotated_class_name(argument.annotation)
        for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
    }
    found: set[str] = set()
    for inner in ast.walk(init):
        if isinstance(inner, ast.Assign) and isinstance(inner.value, ast.Name):
            held = classes.get(inner.value.id, "")
            if not held or held.endswith(_NOT_SUBMODULE_SUFFIXES):
                continue
            for target in inner.targets:
                name = _self_attribute(target)
                if name is not None:
                    found.add(name)
    return found


def _submodule_walkers(
    method: ast.FunctionDef | ast.AsyncFunctionDef, submodules: set[str]
) -> set[str]:
    """The names a loop of the method binds to the parts of one of its module's submodules
    (`for layer in self.blocks`, `for i, layer in enumerate(self.blocks)`): calling one runs
    that part of the module (see element_forwards.py)."""
    found: set[str] = set()
    for node in ast.walk(method):
        if not isinstance(node, (ast.For, ast.comprehension)):
            continue
        iterable, target = node.iter, node.target
        if (
            isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "enumerate"
            and len(iterable.args) == 1
            and isinstance(target, ast.Tuple)
            and len(target.elts) == 2
        ):
            iterable, target = iterable.args[0], target.elts[1]
        if isinstance(target, ast.Name) and _self_attribute(iterable) in submodules:
            found.add(target.id)
    return found


def _switches_to_eval(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A decorator of the file whose wrapper calls `.eval()` on its own first parameter
    before calling the wrapped function (`def eval_decorator(fn): def inner(model, *a):
    model.eval(); out = fn(model, *a); model.train(was_training)`): the decorated method
    runs with its module in eval mode, whatever mode its caller left it in."""
    wrapped = {a.arg for a in function.args.args[:1]}
    for inner in function.body:
        if not isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)) or not inner.args.args:
            continue
        first = inner.args.args[0].arg
        for node in ast.walk(inner):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "eval"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == first
                and wrapped
            ):
                return True
    return False


EVAL_SWITCHED = "."
"""The key, in `forward_methods_of_text`'s answer, of the methods of the file's classes whose
decorator switches their module to eval mode around them (no class is named ".")."""

SELF_TRAINING = "+"
"""The key, in `forward_methods_of_text`'s answer, of the file's classes whose `forward`
trains the module itself: it calls `backward()` (or `torch.autograd.grad`) and an optimizer's
`step()` (MAML's meta-learner, a module that owns its optimizer). Calling one is a training
step, whatever its result is then used for (no class is named "+")."""

BACKPROPAGATING = "!"
"""The key, in `forward_methods_of_text`'s answer, of the file's classes whose `forward` runs
a backward pass itself, perhaps only while `self.training` (a trainer module whose forward
computes the loss and backpropagates it, the optimizer stepped by another method): what a
call of one returns is a training step's loss, so reporting it is no evidence of an
evaluation (no class is named "!")."""

SELF_SWITCHED = "-"
"""The key, in `forward_methods_of_text`'s answer, of the methods of the file's classes that
open with `self.eval()` (see `_switches_itself`), or switch each part they run to eval before
running it (see eval_parts.py; no class is named "-"): a call of one on an
instance of an imported class (`model.sample(cond)`) runs in eval mode whatever the caller's
mode, as a method wrapped by an eval-switching decorator does."""

KEPT_IN_EVAL = "%"
"""The key, in `forward_methods_of_text`'s answer, of the methods of the file's classes that
run only parts the class keeps in eval mode from its constructor or switches to eval itself
(see eval_parts.py; no class is named "%"): a call of one on an imported class's instance
runs them in eval mode unless the caller switched the whole module to training since it
was built."""

UNREAD_DECORATED = "?"
"""The key, in `forward_methods_of_text`'s answer, of `method\0module` entries: a forward
method of the file's classes with a decorator imported from `module` (not torch's, which are
read as the decorators they are). Whether evallint can read that module is decided with the
project (see `methods_of_file`): one it cannot read may switch the module to eval mode around
the method (`@temp_eval` of a utility package), so the method's mode is unknown, and is
taken as an eval-switched one's (no class is named "?")."""

GRAD_FREE = ""
"""The key, in `forward_methods_of_text`'s answer, of the methods of the file's classes that
run under a no_grad/inference_mode decorator (no class is named ""): calling one on a
module (`diffusion.sample(n)`) keeps no graph."""


def _class_forward_methods(
    node: ast.ClassDef,
    grad_free: set[str],
    evaluating: frozenset[str] = frozenset(),
    eval_switched: Optional[set[str]] = None,
    decorated: Optional[set[str]] = None,
    bound: Optional[dict[str, bool]] = None,
    training: Optional[set[str]] = None,
    module_class: bool = False,
) -> frozenset[str]:
    """The methods of the class that run its forward. `grad_free` receives those that run it
    only with autograd off (a no_grad decorator or block, or calls of such methods) and the
    decorated ones; `decorated`, if given, the methods with a no_grad decorator; `training`,
    if given, the methods that are a whole training step of the module (see
    `_trains_the_module`); `bound`, if
    given, per binding of a `forward` parameter to a constant its tests compare it with
    (see bound_branches.binding_keys), whether `forward` then runs its forwards only with autograd
    off."""
    methods = {
        item.name: item
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    submodules: set[str] = set()
    for method in methods.values():
        for inner in ast.walk(method):
            if isinstance(inner, ast.Assign) and _builds_module(inner.value):
                for target in inner.targets:
                    name = _self_attribute(target)
                    if name is not None:
                        submodules.add(name)
    submodules |= _called_by_forward(methods.get("forward"), methods)
    if module_class or _derives_from_module(node):
        submodules |= _parts_without_forward(methods) | _annotated_parts(methods)
    direct: set[str] = set()
    calls: dict[str, set[str]] = {}
    free_direct: set[str] = set()  # runs the forward only where autograd is off
    free_calls: dict[str, set[str]] = {}
    for name, method in methods.items():
        if name in _NOT_FORWARDS:
            continue
        runs = runs_free = False
        trains = False
        called: set[str] = set()
        called_free: set[str] = set()
        walkers = _submodule_walkers(method, submodules)
        decorated_free = any(_disables_grad(d) for d in method.decorator_list)
        shielded = _under_grad_disabling_with(method)
        for inner in ast.walk(method):
            if not isinstance(inner, ast.Call):
                continue
            off = decorated_free or id(inner) in shielded
            func = inner.func
            if isinstance(func, ast.Name) and (func.id == "self" or func.id in walkers):
                runs, runs_free = (runs, True) if off else (True, runs_free)
                # self(x); `layer(x)` for `layer in self.blocks`
            elif isinstance(func, ast.Attribute):
                if func.attr in _TRAINING_CALLS:
                    trains = True
                attribute = _self_attribute(func)
                if attribute == "forward" or (attribute is not None and attribute in submodules):
                    runs, runs_free = (runs, True) if off else (True, runs_free)
                    # self.forward(x), self.fc(x)
                elif attribute is not None and attribute in methods:
                    (called_free if off else called).add(attribute)
                elif func.attr == "forward" and _self_attribute(func.value) is not None:
                    # self.encoder.forward(x): whatever the attribute was built from (a
                    # constructor call, a module passed to __init__), `.forward` is a forward
                    runs, runs_free = (runs, True) if off else (True, runs_free)
        if trains:
            if training is not None and _trains_the_module(method):
                training.add(name)
            continue  # a training routine of the module, not a forward
        if eval_switched is not None and any(
            getattr(d, "id", None) in evaluating for d in method.decorator_list
        ):
            eval_switched.add(name)
        if decorated_free:
            grad_free.add(name)
            if decorated is not None:
                decorated.add(name)
            if name in NO_GRAD_METHODS:
                continue  # `@torch.no_grad() def generate`: as transformers' own
        if runs:
            direct.add(name)
        else:
            calls[name] = called
        if runs_free:
            free_direct.add(name)
        free_calls[name] = called_free
    found = set(direct)
    changed = True
    while changed:
        changed = False
        for name, called in calls.items():
            if name not in found and called & found:
                found.add(name)
                changed = True
    # methods whose every forward runs with autograd off (a `no_grad` decorator or block,
    # or calls of such methods): they run the forward, and keep no graph
    free = {name for name in free_direct if name not in found}
    changed = True
    while changed:
        changed = False
        for name, called in calls.items():
            if name in found or name in free:
                continue
            if (called & free) or (free_calls.get(name, set()) & (found | free)):
                free.add(name)
                changed = True
    if bound is not None and "forward" in methods:
        bound.update(_bound_forward(methods["forward"], submodules, found - free, free))
    grad_free |= free
    found |= free
    for alias, original in _method_aliases(node, methods).items():
        # `sample = sample_one`: the alias is the same function, decorators and all
        for names in (found, grad_free, eval_switched, decorated):
            if names is not None and original in names:
                names.add(alias)
        methods.setdefault(alias, methods[original])
    return frozenset(name for name in found if not _switches_itself(methods[name]))


def _trains_the_module(method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A method that backpropagates and steps an optimizer itself (`loss.backward()` and
    `self.optimizer.step()` in its body): a whole training step, whatever it returns."""
    called = {
        node.func.attr
        for node in ast.walk(method)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    return "backward" in called and "step" in called


def _method_aliases(node: ast.ClassDef, methods: dict) -> dict[str, str]:
    """Class-body assignments that give a method of the class a second name (`sample =
    sample_one`): `model.sample(...)` calls the very function object bound to `sample_one`,
    so it has that method's decorators and forward. Later assignments win, as in Python."""
    found: dict[str, str] = {}
    for item in node.body:
        if (
            isinstance(item, ast.Assign)
            and isinstance(item.value, ast.Name)
            and item.value.id in methods
        ):
            for target in item.targets:
                if isinstance(target, ast.Name) and target.id not in methods:
                    found[target.id] = item.value.id
    return found


def _bound_forward(
    forward: ast.FunctionDef | ast.AsyncFunctionDef,
    submodules: set[str],
    with_grad: set[str],
    free: set[str],
) -> dict[str, bool]:
    """Per binding of a parameter of `forward` to a constant its `if` tests compare it with
    (`model(data, mode="inference")` for `elif mode == "inference": with torch.no_grad():`),
    whether the branches that binding leaves run their forwards only with autograd off: a
    `no_grad` block or decorator, or a call of a method that runs its forward only that way
    (`free`); `self(...)`, `self.forward(...)`, a submodule or a method in `with_grad`
    outside such a block runs one with autograd on."""
    decorated_free = any(_disables_grad(d) for d in forward.decorator_list)
    shielded = _under_grad_disabling_with(forward)
    walkers = _submodule_walkers(forward, submodules)
    positional = [a.arg for a in forward.args.args[1:]]
    found: dict[str, bool] = {}
    for parameter, values in tested_constants(forward).items():
        index = positional.index(parameter) if parameter in positional else None
        for value in values:
            off = True
            for inner in live_nodes(forward, parameter, value):
                if not isinstance(inner, ast.Call) or decorated_free or id(inner) in shielded:
                    continue
                func = inner.func
                attribute = _self_attribute(func) if isinstance(func, ast.Attribute) else None
                if (
                    (isinstance(func, ast.Name) and (func.id == "self" or func.id in walkers))
                    or attribute == "forward"
                    or (
                        attribute is not None
                        and (attribute in submodules or attribute in with_grad)
                    )
                    or (
                        isinstance(func, ast.Attribute)
                        and func.attr == "forward"
                        and _self_attribute(func.value) is not None
                    )
                ):
                    off = False
                    break
            for key in binding_keys(parameter, index, value):
                found[key] = off
    return found


def _methods_by_name(node: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The class's own `def`s by name."""
    return {
        item.name: item
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _switches_itself(method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The method's body opens with `self.eval()` (or `self.train(False)`) as one of its own
    statements, before any statement that calls anything on `self` else: it runs its forward
    in the mode it sets, not in its caller's (`def build_memory(self, data): was =
    self.training; self.eval(); ...; self.train(was)`), so a call of it is no forward in the
    caller's mode. Its own body is judged as any method is (its autograd, at its forward)."""
    for statement in method.body:
        if (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Call)
            and _self_attribute(statement.value.func) in ("eval", "train")
        ):
            call = statement.value
            if call.func.attr == "eval":  # type: ignore[attr-defined]
                return not call.args and not call.keywords
            flag = (
                call.args[0]
                if call.args
                else next((k.value for k in call.keywords if k.arg == "mode"), None)
            )
            return isinstance(flag, ast.Constant) and flag.value is False
        for inner in ast.walk(statement):
            if isinstance(inner, ast.Call) and (
                (isinstance(inner.func, ast.Name) and inner.func.id == "self")
                or (
                    isinstance(inner.func, ast.Attribute)
                    and _self_attribute(inner.func) is not None
                )
                or (isinstance(inner.func, ast.Attribute) and _self_attribute(inner.func.value))
            ):
                return False  # something of the module runs before any switch
    return False


def forward_methods_of_text(source: str) -> dict[str, frozenset[str]]:
    """Class name -> the methods of that class that run its forward; GRAD_FREE -> the
    methods of the file's classes decorated to run without autograd."""
    from evallint.source.parse import python_tree

    try:
        tree = python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    from evallint.analysis.reuse import text_store

    grad_free: set[str] = set()
    eval_switched: set[str] = set()
    self_training: set[str] = set()
    backpropagating: set[str] = set()
    evaluating = frozenset(
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _switches_to_eval(node)
    )
    found: dict[str, frozenset[str]] = {}
    for name, methods, free, switched, trains, backward in _classes_of(
        tree, source, text_store(), evaluating
    ):
        grad_free |= free
        eval_switched |= switched
        if trains:
            self_training.add(name)
        if backward:
            backpropagating.add(name)
        if methods:
            found[name] = methods
    if grad_free:
        found[GRAD_FREE] = frozenset(grad_free)
    if eval_switched:
        found[EVAL_SWITCHED] = frozenset(eval_switched)
    if self_training:
        found[SELF_TRAINING] = frozenset(self_training)
    if backpropagating:
        found[BACKPROPAGATING] = frozenset(backpropagating)
    self_switched, kept_in_eval = _modes_of_classes(tree, source, text_store())
    if self_switched:
        found[SELF_SWITCHED] = self_switched
    if kept_in_eval:
        found[KEPT_IN_EVAL] = frozenset(kept_in_eval)
    unread = _imported_decorations(tree, found)
    if unread:
        found[UNREAD_DECORATED] = unread
    return found


def _modes_of_classes(
    tree: ast.Module,
    source: str,
    kept_by_text: Optional[Callable[..., Any]],
) -> tuple[frozenset[str], frozenset[str]]:
    """The methods of every class of the file that switch their own module's mode (see
    SELF_SWITCHED: `_switches_itself`, their aliases, `parts_in_own_mode`'s switched parts)
    and the parts kept in eval mode (KEPT_IN_EVAL). Each is read from its class alone, and
    the answers are sets, so they are the unions over the top-level statements: while a
    language server lints, each statement's are kept by its text (as `_classes_of` keeps its
    classes), and an edit walks only the statements it changed, not the whole tree."""
    switched: set[str] = set()
    kept: set[str] = set()
    if kept_by_text is None:
        for statement in tree.body:
            own_switched, own_kept = _modes_in_statement(statement)
            switched |= own_switched
            kept |= own_kept
        return frozenset(switched), frozenset(kept)
    lines = source.splitlines(keepends=True)
    for statement in tree.body:
        text = (
            statement.col_offset,
            statement.end_col_offset,
            "".join(lines[statement.lineno - 1 : statement.end_lineno]),
        )
        own_switched, own_kept = kept_by_text(
            "forward_methods.modes", text, partial(_modes_in_statement, statement)
        )
        switched |= own_switched
        kept |= own_kept
    return frozenset(switched), frozenset(kept)


def _modes_in_statement(statement: ast.stmt) -> tuple[frozenset[str], frozenset[str]]:
    """`_modes_of_classes` of the classes in one top-level statement (nested ones too)."""
    switched: set[str] = set()
    kept: set[str] = set()
    for node in ast.walk(statement):
        if not isinstance(node, ast.ClassDef):
            continue
        methods = _methods_by_name(node)
        switched.update(
            item.name
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _switches_itself(item)
        )
        switched.update(
            alias
            for alias, original in _method_aliases(node, methods).items()
            if _switches_itself(methods[original])
        )
        switched_parts, kept_parts = parts_in_own_mode(methods)
        switched |= switched_parts
        kept |= kept_parts
    return frozenset(switched), frozenset(kept)


def _imported_decorations(tree: ast.Module, found: dict[str, frozenset[str]]) -> frozenset[str]:
    """`method\0module` for each forward method (of `found`'s classes) decorated with a name
    the file imports at its top level from an absolute `module` other than torch's."""
    imported: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and not statement.level and statement.module:
            for alias in statement.names:
                imported[alias.asname or alias.name] = statement.module
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                imported[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
    imported = {k: m for k, m in imported.items() if m.split(".")[0] != "torch"}
    if not imported:
        return frozenset()
    entries: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef) or node.name not in found:
            continue
        methods = _methods_by_name(node)
        named = [(name, name) for name in methods]  # `sample = sample_one`: its decorators
        named += list(_method_aliases(node, methods).items())
        for name, original in named:
            if name not in found[node.name]:
                continue
            for decorator in methods[original].decorator_list:
                root = decorator.func if isinstance(decorator, ast.Call) else decorator
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in imported:
                    entries.add(f"{name}\0{imported[root.id]}")
    return frozenset(entries)


def _unreadable(file: FileAnalysis, module: str) -> bool:
    """Whether `module` (imported by the file) is neither a file of the project nor of the
    standard library: evallint cannot read what a decorator of it does."""
    project = file.project
    if project is not None and project.is_project_module(str(file.path), module):
        return False
    return module.split(".")[0] not in STANDARD_LIBRARY


_ClassMethods = tuple[str, frozenset[str], frozenset[str], frozenset[str], bool, bool]
"""A class's name, its forward methods, its grad-free methods, its eval-switched methods,
whether its `forward` trains it (see SELF_TRAINING) and whether it runs a backward pass (see
BACKPROPAGATING)."""


def _classes_of(
    tree: ast.Module,
    source: str,
    kept_by_text: Optional[Callable[..., Any]],
    evaluating: frozenset[str] = frozenset(),
) -> list[_ClassMethods]:
    """Every class of the file in `ast.walk` order (a later class of the same name wins).
    While a language server lints, each top-level statement's classes are kept by its text
    (`evallint.analysis.reuse`): they are read from the statement alone, and `ast.walk`'s
    order (breadth first) is the statements' own orders merged by depth. A statement's
    classes also depend on the file's eval-switching decorators (`evaluating`): the key
    holds them."""
    if kept_by_text is None:
        return [
            _class_methods(node, evaluating)
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
        ]
    lines = source.splitlines(keepends=True)
    found: list[tuple[int, _ClassMethods]] = []
    for statement in tree.body:
        text = (
            statement.col_offset,
            statement.end_col_offset,
            "".join(lines[statement.lineno - 1 : statement.end_lineno]),
            evaluating,
        )
        found += kept_by_text(
            "forward_methods.classes", text, partial(_classes_by_depth, statement, evaluating)
        )
    found.sort(key=lambda entry: entry[0])  # stable: statement order within a depth
    return [entry for _, entry in found]


def _classes_by_depth(
    statement: ast.stmt, evaluating: frozenset[str] = frozenset()
) -> list[tuple[int, _ClassMethods]]:
    """The classes in one top-level statement, with their depths, in `ast.walk` order."""
    found: list[tuple[int, _ClassMethods]] = []
    pending: deque[tuple[ast.AST, int]] = deque([(statement, 1)])
    while pending:
        node, depth = pending.popleft()
        if isinstance(node, ast.ClassDef):
            found.append((depth, _class_methods(node, evaluating)))
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return found


def _class_methods(node: ast.ClassDef, evaluating: frozenset[str] = frozenset()) -> _ClassMethods:
    grad_free: set[str] = set()
    eval_switched: set[str] = set()
    methods = _class_forward_methods(node, grad_free, evaluating, eval_switched)
    return (
        node.name,
        methods,
        frozenset(grad_free),
        frozenset(eval_switched),
        _trains(node),
        _backpropagates(node),
    )


def _own_forward(node: ast.ClassDef) -> Optional[ast.FunctionDef | ast.AsyncFunctionDef]:
    return next(
        (
            item
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "forward"
        ),
        None,
    )


def _trains(node: ast.ClassDef) -> bool:
    """Whether the class's own `forward` backpropagates and steps an optimizer."""
    forward = _own_forward(node)
    if forward is None:
        return False
    called = {
        inner.func.attr
        for inner in ast.walk(forward)
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
    }
    return bool(called & {"backward", "grad"}) and "step" in called


def _backpropagates(node: ast.ClassDef) -> bool:
    """Whether the class's own `forward` runs a backward pass: a `.backward(...)` call as a
    statement of its own (`loss.backward()`, `self.accelerator.backward(loss)`; autograd's
    backward returns None, so its result is never used), under a condition or not. A flow's
    inverse (`z = self.flow.backward(x)`) is used for its result and does not count."""
    forward = _own_forward(node)
    return forward is not None and any(
        isinstance(inner, ast.Expr)
        and isinstance(inner.value, ast.Call)
        and isinstance(inner.value.func, ast.Attribute)
        and inner.value.func.attr == "backward"
        for inner in ast.walk(forward)
    )


def trains_in_forward(file: FileAnalysis, call: cst.Call) -> bool:
    """Whether `call` builds a module (of this file or an imported project file) whose
    `forward` trains it (see SELF_TRAINING)."""
    name = dotted_name(call.func)
    return name is not None and class_has(file, name, SELF_TRAINING)


def class_has(file: FileAnalysis, name: str, key: str) -> bool:
    """Whether the module class `name` (of this file, or imported from a project file) is
    among the file-level `key` classes of its file (SELF_TRAINING, BACKPROPAGATING)."""
    cls = file.classes.get(name)
    if cls is not None:
        text = (str(file.path), file._source or "")
        found = _LOCAL.get(text)
        if found is None:
            if len(_LOCAL) > 64:
                _LOCAL.clear()
            found = _LOCAL[text] = forward_methods_of_text(text[1])
        return cls.is_module and cls.name in found.get(key, frozenset())
    project = file.project
    imported = class_of_import(file.imports, name) if project is not None else None
    if project is None or imported is None:
        return False
    module, class_name = imported
    return class_name in project.forward_methods(str(file.path), module, key, class_name)


_LOCAL: dict[tuple[str, str], dict[str, frozenset[str]]] = {}
"""(path, text) -> the file's forward_methods_of_text answer (its own classes)."""


def methods_of_file(
    file: FileAnalysis,
) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """The forward methods, the grad-free methods (see GRAD_FREE), the eval-switched
    methods (see EVAL_SWITCHED) of the file's module classes and of the project module
    classes it imports, and the methods of those imported classes that run only parts kept
    in eval mode (see KEPT_IN_EVAL)."""
    found: set[str] = set()
    grad_free: set[str] = set()
    eval_switched: set[str] = set()
    kept_in_eval: set[str] = set()
    if any(cls.is_module for cls in file.classes.values()):
        for name, methods in forward_methods_of_text(file._source or "").items():
            cls = file.classes.get(name)
            if cls is not None and cls.is_module:
                found |= methods
            elif name == GRAD_FREE:
                grad_free |= methods
            elif name == EVAL_SWITCHED:
                eval_switched |= methods
            elif name == UNREAD_DECORATED:
                eval_switched |= _unread(file, methods)
    project = file.project
    if project is not None:
        for local, module in file.imports.modules_from.items():
            qualified = file.imports.qualify_name(local)
            if local[:1].isupper() and project.is_module_class(file.path, module, qualified):
                found |= project.forward_methods(file.path, module, qualified)
                name = qualified.split(".")[-1]
                grad_free |= project.forward_methods(file.path, module, GRAD_FREE, name)
                eval_switched |= project.forward_methods(file.path, module, EVAL_SWITCHED, name)
                # an imported class's own methods are not followed (a local one's are, by
                # their summaries: own_methods.py), so one that opens with `self.eval()`
                # counts as eval-switched here
                eval_switched |= project.forward_methods(file.path, module, SELF_SWITCHED, name)
                kept_in_eval |= project.forward_methods(file.path, module, KEPT_IN_EVAL, name)
                eval_switched |= _unread(
                    file, project.forward_methods(file.path, module, UNREAD_DECORATED, name)
                )
    return frozenset(found), frozenset(grad_free), frozenset(eval_switched), frozenset(kept_in_eval)


def _unread(file: FileAnalysis, entries: frozenset[str]) -> set[str]:
    """The methods of `method\0module` entries (see UNREAD_DECORATED) whose decorator's module
    evallint cannot read."""
    found: set[str] = set()
    for entry in entries:
        method, module = entry.split("\0", 1)
        if _unreadable(file, module):
            found.add(method)
    return found


def backpropagating_forward(file: FileAnalysis, call: cst.Call, info: FunctionInfo) -> bool:
    """Whether `call` (`trainer(x, y)`, `trainer.forward(x, y)`) runs the forward of a module
    whose class backpropagates in its `forward` (see BACKPROPAGATING). The receiver's class is
    read from the function `info`: its parameter's annotation (`trainer: Trainer`) or an
    assignment of a constructor call in its body (`trainer = Trainer(model)`)."""
    func = call.func
    if type(func) is cst.Attribute and func.attr.value == "forward":
        func = func.value
    if type(func) is not cst.Name:
        return False
    receiver = func.value
    names: set[str] = set()
    params = info.node.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == receiver and param.annotation is not None:
            names.add(dotted_name(param.annotation.annotation) or "")
    for node in iter_nodes(info.node.body):
        if type(node) is cst.Assign and type(node.value) is cst.Call:
            if any(type(t.target) is cst.Name and t.target.value == receiver for t in node.targets):
                names.add(dotted_name(node.value.func) or "")
    return any(name and class_has(file, name, BACKPROPAGATING) for name in names)
