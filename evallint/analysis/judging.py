"""Functions nobody in the file calls, judged without callers: a library function's entry
state is unknown; a decorated callback runs after the module's own code."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.facts import EvalForward
from evallint.analysis.file_shapes import attribute_calls
from evallint.analysis.lattice import Grad, GradFact, Mode, ModeFact, Origin
from evallint.analysis.lifting import owned_elsewhere
from evallint.analysis.lightning_hooks import after_training_epoch_hook
from evallint.analysis.own_methods import (
    eval_switched,
    own_method,
    runs_own_module,
    says_it_evaluates,
)
from evallint.analysis.project_forwards import project_module_class
from evallint.analysis.regions import RegionKind
from evallint.analysis.summaries import ForwardRequirement, Summary
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_METHODS
from evallint.analysis.walk import iter_nodes
from evallint.source.word_pattern import WordPattern

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import FunctionInfo


def judge_alone(
    file: FileAnalysis,
    summary: Summary,
    requirements: Optional[list[ForwardRequirement]] = None,
    callback: bool = False,
) -> None:
    """A function nobody here calls: its entry state is unknown, so a forward that
    depends on it is judged as possibly in training mode with autograd on, provided the
    function runs a data loop itself (a per-batch helper is left to its callers),
    evaluates after its own training step (which needs autograd on), or is a whole
    evaluation (switches to eval mode itself and hands its results out of autograd)."""
    if summary.framework_hook or summary.qualname.split(".")[-1] in file.options.framework_hooks:
        return
    if _dispatched_override(file, summary.qualname):
        return
    method = own_method(file, summary) or _method_of_module_subclass(file, summary)
    # Lightning's caller is known: the fit loop, after the training epoch, autograd on
    epoch_hook = method is not None and after_training_epoch_hook(method)
    for req in summary.forwards if requirements is None else requirements:
        if callback and judged_after_module(file, req):
            continue
        if (
            method is not None
            and runs_own_module(req)
            and not epoch_hook
            and not says_it_evaluates(file, method, req)
        ):
            continue  # a module's own method: its caller decides (see own_methods.py)
        judged = (
            epoch_hook
            or (req.region.has_data_loop and _in_a_loop(req))
            or req.region.after_training
            or summary.whole_evaluation
            or req.whole
        )
        held = (
            not judged
            and _held_prediction(summary, method, req)
            and not _module_subclass(file, summary.qualname.rpartition(".")[0])
            and not _called_by_name(file, summary.qualname.rpartition(".")[2])
        )
        if req.conditional == 2 or req.region.kind is not RegionKind.EVAL or not (judged or held):
            continue  # (a parameter only a caller's module would make one: no caller)
        if req.parts_as_built and _built_and_never_trained(file, summary, req.key):
            continue  # its parts stay in the eval mode their class gave them (eval_parts.py)
        entry = (
            frozenset({ModeFact(Mode.ENTRY, Origin.ENTRY)})
            if req.mode_from_entry
            and not held
            and not epoch_hook  # Lightning runs it in the mode training left: train
            and not (method is not None and runs_own_module(req) and eval_switched(file, method))
            else frozenset()
        )
        grad = frozenset({GradFact(Grad.ENTRY)}) if req.grad_from_entry else frozenset()
        if not entry and not grad:
            continue
        _record(file, req, entry, grad)


def optional_path_forwards(general: Summary, plain: Summary) -> list[ForwardRequirement]:
    """The forwards a function nobody calls reaches only with a flag off its default
    (`def posdep(self, text, is_sent=False)`: `if is_sent: return self._tag_sent(text)`)
    where its plain use (the defaults, judged first) runs the same module in the same state:
    autograd as the caller had it, the module in the mode the object keeps it in, nothing
    switched on the way. A caller outside the project may pass either value; a flag that
    only picks another route to the same evaluation (the input's shape, not the behaviour)
    makes that route's forward no more deliberate than the default one's. A flag path that
    puts the module in another state (`if mc_dropout: self.net.train()`, `if explain:
    torch.enable_grad()`), or runs a module the plain use does not run so, is an opt-in left
    to whoever opts in: not judged."""

    def entered(req: ForwardRequirement) -> bool:
        return (
            req.grad_from_entry
            and not req.grad_facts
            and not req.train_facts
            and not req.mode_from_entry
        )

    plain_places = {id(req.place.node) for req in plain.forwards}
    plain_keys = {req.key for req in plain.forwards if entered(req)}
    return [
        req
        for req in general.forwards
        if id(req.place.node) not in plain_places and req.key in plain_keys and entered(req)
    ]


def _held_prediction(summary: Summary, method: Optional[object], req: ForwardRequirement) -> bool:
    """`def numpy_predict(self, X): return self.net(X).detach().numpy()` of a plain object
    (not a module, nor a subclass of a module class of another project file) that no caller
    in the project reaches: the object's own network runs
    with autograd on in the caller's grad state, and nothing it hands out keeps a graph, so
    the graph is wasted whoever calls it. Judged for autograd only: the network's mode is
    whatever the object's other methods left it in, which the method alone cannot tell."""
    if not req.grad_from_entry or not summary.hands_out_no_graph or req.via:
        return False  # only its own forward: a helper it calls is decided by that call
    if not summary.is_method:
        # `def evaluate(model, x_test, y_test): ... return accuracy` that no file calls: an
        # evaluation (its region says so) of the module it is given, handing out numbers
        # only; its graph is wasted whoever calls it, as a held prediction's is
        return req.region.kind is RegionKind.EVAL and req.key in summary.params
    return method is None and req.key.startswith("self.")


def _called_by_name(file: FileAnalysis, name: str) -> bool:
    """Whether this file calls a method of that name (`self.inference_step(batch)` in a base
    class whose override this is): a caller that dispatch reaches decides its grad state."""
    return name in attribute_calls(file.module)[0]


def _dispatched_override(file: FileAnalysis, qualname: str) -> bool:
    """A method overriding one its class inherits that the class family calls on `self`
    (`self._inference(batch)` in the base's `step()` and `validation()`): dispatch makes those
    methods its callers, and they decide its state; it is no uncalled library function."""
    owner_name, _, name = qualname.rpartition(".")
    owner = file.classes.get(owner_name)
    if owner is None or not owner.bases:
        return False
    if file._inherited_method(owner, name) is None and not file.base_defines_method(owner, name):
        return False
    if name in attribute_calls(file.module)[1]:
        return True
    return _called_on_self_by_bases(file, owner, name)


def _called_on_self_by_bases(file: FileAnalysis, owner, name: str) -> bool:
    """Whether the file of a base class imported from the project calls `self.<name>(`."""
    if file.project is None:
        return False
    called = WordPattern(rf"self\.{re.escape(name)}\s*\(")  # \bself.NAME\s*\(
    pending, seen = list(owner.bases), set()
    while pending:
        base = pending.pop()
        if base in seen:
            continue
        seen.add(base)
        inner = file.classes.get(base)
        if inner is not None:
            pending.extend(inner.bases)
            continue
        module = file.imports.module_of_class(base)
        found = file.project.located_source(file.path, module) if module else None
        if found is not None and called.search(found[1]):
            return True
    return False


def _method_of_module_subclass(file: FileAnalysis, summary: Summary) -> Optional[FunctionInfo]:
    """The method, when the summary is of a method of a class of this file that derives from
    a module class of another project file (`class Tagger(flair_nn.Model)`): a module's own
    method like those of the file's own module classes (see own_methods.py)."""
    if not summary.is_method or file.project is None:
        return None
    owner_name, _, name = summary.qualname.rpartition(".")
    owner = file.classes.get(owner_name)
    if owner is None or owner.is_module or not _module_subclass(file, owner_name):
        return None
    return owner.methods.get(name)


def _module_subclass(file: FileAnalysis, owner: str) -> bool:
    """Whether the class `owner` of this file derives, through its bases here, from a module
    class of another project file (`class TransE(Model)`, `Model(BaseModule)` elsewhere)."""
    pending, seen = [owner], {owner}
    while pending:
        cls = file.classes.get(pending.pop())
        if cls is None:
            continue
        if cls.is_module:
            return True
        for base in cls.bases:
            if base in file.classes:
                if base not in seen:
                    seen.add(base)
                    pending.append(base)
            elif project_module_class(file.project, file.path, base.split(".")[-1]):
                return True
    return False


def _in_a_loop(req: ForwardRequirement) -> bool:
    """Whether the forward (or the call that leads to it) runs inside a loop of its function:
    a loop elsewhere in it (plotting the matches found) makes no per-batch helper a data
    loop of its own. A module held by the object (`self.model`) is in the state its other
    methods leave it in, not its caller's: any loop of the method counts."""
    function = req.region.node
    if type(function) is not cst.FunctionDef or req.key.split(".")[0] == "self":
        return True
    # the call that leads to the forward, or the forward itself when the region is the
    # callee's own (a helper that evaluates by itself, reached from an uncalled caller)
    anchors = {id((req.via[0] if req.via else req.place).node), id(req.place.node)}
    for node in iter_nodes(function.body):
        if type(node) in _LOOPS and any(id(inner) in anchors for inner in iter_nodes(node)):
            return True
    return False


_LOOPS = (cst.For, cst.While, cst.ListComp, cst.GeneratorExp, cst.SetComp, cst.DictComp)


def judged_after_module(file: FileAnalysis, req: ForwardRequirement) -> bool:
    """A decorated function nobody here calls (`@app.route`, `@bot.command`) is called
    back after the module's code ran: an evaluation in it of a module global is judged
    in the state the module's code left that global in (built and `eval()`ed under
    `__main__`, autograd on)."""
    key = req.key
    if req.region.kind is not RegionKind.EVAL or key.split(".")[0] not in file._module_keys:
        return False
    states = file.top_exit_states
    modes = frozenset().union(*(s.mode_in_tree(key) or frozenset() for s in states))
    if not modes or any(f.mode is Mode.ENTRY for f in modes):
        return False
    train = (
        frozenset(f for f in modes if f.mode is Mode.TRAIN) if req.mode_from_entry else frozenset()
    )
    grad = (
        frozenset(g for s in states for g in s.grad if g.grad is Grad.ON)
        if req.grad_from_entry and req.affects_grad
        else frozenset()
    )
    if train or grad:
        # the global's facts are the top level's, read after the function was summarised:
        # `net = models.SimpleQ(n, k)` of Linear layers only is one whose mode is moot
        _record(file, req, train, grad, f"::{key}" not in file.mode_independent)
    return True


def _record(
    file: FileAnalysis,
    req: ForwardRequirement,
    modes: frozenset,
    grad: frozenset,
    mode_matters: bool = True,
) -> None:
    """The requirement's forward as an evaluation forward of the file, in `modes` and `grad`."""
    file.facts.eval_forwards.append(
        EvalForward(
            req.place,
            req.subject,
            req.region,
            modes,
            grad,
            req.affects_grad,
            req.mode_matters and mode_matters,
            req.via,
            next(file._order),
            req.report_at_call,
            req.region_unit,
            owned_elsewhere(file, req, False, req.region, req.region_unit),
        )
    )


def _built_and_never_trained(file: FileAnalysis, summary: Summary, key: str) -> bool:
    """`self.model` of the method's class that the class's constructor builds itself (a
    constructor call, through `.to(device)`-style chains) and no method of the class switches
    to training (`self.model.train()`) or binds again: whatever method runs first, the module
    is as built, so a method of it that runs only parts kept in eval mode (see eval_parts.py)
    runs them in eval mode."""
    owner_name, _, _ = summary.qualname.rpartition(".")
    owner = file.classes.get(owner_name) if summary.is_method else None
    if owner is None or not key.startswith("self.") or key.count(".") != 1:
        return False
    init = owner.methods.get("__init__")
    if init is None:
        return False
    built = False
    for method in owner.methods.values():
        for node in iter_nodes(method.node.body):
            if type(node) is cst.Assign:
                for target in node.targets:
                    if dotted_name(target.target) != key:
                        continue
                    value = chain_receiver(node.value, SAME_MODULE_METHODS)
                    if method is not init or type(value) is not cst.Call or built:
                        return False  # bound again, or to something not built here
                    name = dotted_name(value.func) or ""
                    built = name.split(".")[-1][:1].isupper()
            elif (
                type(node) is cst.Call
                and type(node.func) is cst.Attribute
                and node.func.attr.value == "train"
                and dotted_name(node.func.value) == key
            ):
                return False
    return built
