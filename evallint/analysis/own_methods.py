"""A module's own methods judged without callers (issue 16).

A method of an nn.Module class that runs its own forward (`self(x)`, `self.lstm(x)`,
`self.decode(...)`) is in the mode and grad state its caller chose: `model.eval()` and
`torch.no_grad()` are the caller's to call. Where the project calls the method, the
callers decide (calls.py applies its summary there). With no caller in the project (a
library API: `Tacotron2.inference`, a wrapper's `generate`), the method alone is an
evaluation entry point only when something in it says so:

- it switches its own module (`self`, or the `self.X` subtree the forward runs) to eval
  mode itself, directly or through an eval-switching decorator;
- the forward runs inside a loop over data the method is given or reads from the module's
  globals (a parameter `loader`, a dataset): a per-batch evaluation of the caller's data.

A loop over the module's own structure (`for conv in self.convolutions`), over a count
(`for _ in range(max_new_tokens)`) or `while` a decoding has not stopped is part of the
module's computation, not a data loop: a generation or decoding step is not an evaluation
by itself. Decided from the code's structure (receivers, loop iterables, parameters), not
from the names of the method or its variables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast

import libcst as cst

from evallint.analysis.module_backward import defines_backward
from evallint.analysis.regions import RegionKind
from evallint.analysis.symbols import ImportTable, chain_receiver, dotted_name
from evallint.analysis.vocabulary import SAME_MODULE_OR_MODE_METHODS
from evallint.analysis.walk import iter_nodes
from evallint.torch_facts import RANDOM_DRAWS

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterPart, States
    from evallint.analysis.file_analysis import FileAnalysis
    from evallint.analysis.scope import ClassInfo, FunctionInfo
    from evallint.analysis.summaries import ForwardRequirement, Summary

_LOOPS = (cst.For, cst.ListComp, cst.GeneratorExp, cst.SetComp, cst.DictComp)


def own_method(file: FileAnalysis, summary: Summary) -> Optional[FunctionInfo]:
    """The method, when the summary is of a method of one of the file's nn.Module classes."""
    if not summary.is_method:
        return None
    owner_name, _, name = summary.qualname.rpartition(".")
    owner = file.classes.get(owner_name)
    if owner is None or not owner.is_module:
        return None
    return owner.methods.get(name)


def runs_own_module(req: ForwardRequirement) -> bool:
    """The forward runs the module itself or one of its own attributes (`self`, `self.X`)."""
    return req.key == "self" or req.key.startswith("self.")


def says_it_evaluates(file: FileAnalysis, method: FunctionInfo, req: ForwardRequirement) -> bool:
    """Whether the module's own method, judged alone, is an evaluation of the forward
    `req`: it switches that module to eval itself, or runs the forward over data it is
    given (see the module docstring)."""
    if _switches_own_tree(method, req.key) or eval_switched(file, method):
        return True
    anchor = (req.via[0] if req.via else req.place).node
    return _in_a_data_loop(method, anchor)


def eval_switched(file: FileAnalysis, method: FunctionInfo) -> bool:
    """The method is decorated by one of the file's decorators that switch the module to
    eval mode around it (see forward_methods.py): it runs in eval mode whatever its caller."""
    file.forward_method_names()  # computes `eval_switched_methods` too
    return method.name in file.eval_switched_methods and bool(method.decorators)


def _switches_own_tree(method: FunctionInfo, key: str) -> bool:
    """`self.eval()`, `self.train(False)`, `self.encoder.eval()` (for a forward of
    `self.encoder...`) anywhere in the method."""
    for node in iter_nodes(method.node.body):
        if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
            continue
        attr = node.func.attr.value
        to_eval = (attr == "eval" and not node.args) or (
            attr == "train"
            and len(node.args) == 1
            and type(node.args[0].value) is cst.Name
            and node.args[0].value.value == "False"
        )
        if not to_eval:
            continue
        receiver = dotted_name(node.func.value)
        if receiver is not None and (
            receiver == "self" or key == receiver or key.startswith(receiver + ".")
        ):
            return True
    return False


def _in_a_data_loop(method: FunctionInfo, anchor: cst.CSTNode) -> bool:
    """Whether `anchor` runs inside a loop of the method over data from outside the module:
    the loop's iterable reads a parameter of the method (not `self`) or a module global, and
    is not a count (`range(n)`)."""
    params = set(method.params) - {"self", "cls"} | set(method.keyword_only)
    local_names = _assigned_names(method.node)
    for node in iter_nodes(method.node.body):
        if type(node) not in _LOOPS:
            continue
        iterable = (
            node.iter
            if type(node) is cst.For
            else cast(
                "cst.ListComp | cst.GeneratorExp | cst.SetComp | cst.DictComp", node
            ).for_in.iter
        )
        if not _over_outside_data(iterable, params, local_names):
            continue
        if any(inner is anchor for inner in iter_nodes(node)):
            return True
    return False


def _over_outside_data(
    iterable: cst.BaseExpression, params: set[str], local_names: set[str]
) -> bool:
    """`loader`, `enumerate(tqdm(loader))`, `dataset.batches()`, a global `test_loader`; not
    `range(n)`, `self.convolutions`, nor a local list the method built itself."""
    while type(iterable) is cst.Call and iterable.args:
        callee = dotted_name(iterable.func) or ""
        if callee in ("range", "trange"):
            return False
        if callee.split(".")[-1] in ("enumerate", "tqdm", "zip", "iter", "reversed", "sorted"):
            iterable = iterable.args[0].value
            continue
        break
    root: cst.BaseExpression = iterable
    while type(root) in (cst.Attribute, cst.Subscript, cst.Call):
        root = (
            root.func
            if type(root) is cst.Call
            else cast("cst.Attribute | cst.Subscript", root).value
        )
    if type(root) is not cst.Name:
        return False
    name = root.value
    if name in ("self", "cls", "range"):
        return False
    return name in params or name not in local_names


def _assigned_names(function: cst.FunctionDef) -> set[str]:
    """Names the function binds itself (assignments, loop targets, with targets)."""
    found: set[str] = set()
    for node in iter_nodes(function.body):
        targets: list[cst.CSTNode] = []
        if type(node) is cst.Assign:
            targets = [t.target for t in node.targets]
        elif type(node) in (cst.AnnAssign, cst.AugAssign):
            targets = [cast("cst.AnnAssign | cst.AugAssign", node).target]
        elif type(node) is cst.For or type(node) is cst.CompFor:
            targets = [node.target]
        for target in targets:
            found.update(n.value for n in iter_nodes(target) if type(n) is cst.Name)
    return found


def module_method_call(
    part: InterpreterPart, call: cst.Call, states: States
) -> Optional[tuple[Summary, str]]:
    """`m.generate(context)`, `task.score(batch)` on a module of a class of this file (built
    here, `m = Model().to(device)` included, or a parameter annotated with the class): the
    method's summary, applied at the call with its `self.X` mapped onto `m.X`. The call
    counts as a caller of the method, so the method is judged by it (the mode and grad
    state here decide), not alone. Only methods that run the module's forward; a method
    wrapped by an eval-switching decorator keeps the forward-at-the-call reading."""
    func = call.func
    if type(func) is not cst.Attribute or not states:
        return None
    name = func.attr.value
    receiver = dotted_name(func.value)
    if receiver is None or receiver == "self" or name in ("forward", "__call__"):
        return None
    file = part.file
    if name in file.eval_switched_methods:
        return None
    runs_forward = name in file.forward_method_names()
    imported = None if runs_forward else imported_module_class(part, receiver)
    if imported is not None:
        # `gan = CycleGAN(g_ab, g_ba)` of another project file, then `gan.set_eval()`
        # whose body switches `self.g_ab`, `self.g_ba`: the modes it leaves its `self.X`
        # in reach the caller's `gan.X` (and the modules the construction stored there)
        defining_file, imported_owner = imported
        method = imported_owner.methods.get(name) or defining_file._inherited_method(
            imported_owner, name
        )
        if method is None or not any(_self_switch(n) for n in iter_nodes(method.node)):
            return None
        summary = defining_file.summary_for(method)
        if summary is None or not _leaves_self_switched(summary):
            return None
        return summary, receiver
    if not runs_forward and not _switches_self(name, file):
        return None
    key = part.resolve(func.value, states[0])
    owner = part.module_classes.get(key or "") or annotated_class(part, receiver)
    defining: FileAnalysis = file
    if owner is None:
        held = attribute_module_class(part, receiver)
        if held is None or name in file.kept_eval_methods:
            # a method that runs only parts its class keeps in eval mode is read at the
            # call (calls.py: `parts_as_built`), not through the caller's mode
            return None
        defining, owner = held
    method = owner.methods.get(name) or defining._inherited_method(owner, name)
    if method is None:
        return None
    summary = file._summary_counted(method) if defining is file else defining.summary_for(method)
    if not runs_forward:
        # `model.settle()` whose body is `self.eval()`: no forward, but the mode it leaves
        # its module in is the caller's from here on. So for `model.test(x)` that opens with
        # `self.eval()` and then runs its forward (no forward method: see
        # forward_methods._switches_itself): its forwards are judged in it, with this call
        # as their caller, and the module stays in eval mode after it
        if summary is None or not _leaves_self_switched(summary):
            return None
        return summary, receiver
    if (
        summary is None
        or not summary.forwards
        or (
            all(r.region.kind is RegionKind.NEUTRAL for r in summary.forwards)
            and any(s == "self" or s.startswith("self.") for s in summary.return_graph or ())
            and not samples_own_input(defining, method)
        )
    ):
        # it computes with its forward and hands the graph to the caller (`return
        # torch.tanh(self.body(z))`): what the caller does with it decides, so it is read
        # as a forward of the module at the call. A method that evaluates itself, or whose
        # results leave autograd inside it (sampled indices, numbers), is reported at its
        # forward, with the call that reached it. A method in which the summary sees no
        # forward at all (its parts built by a factory: `self.trunk = build_trunk(d)`) is
        # read as a forward at the call too. One that draws its forward's input from noise
        # itself (`z = torch.randn(n, d); return self.decoder(z)`) is a sampler, not a
        # forward of the caller's data: its forward is where a caller's evaluation is
        # reported (the callers still decide whether they evaluate or train with it).
        return None
    return summary, receiver


def forward_flag_switches(
    part: InterpreterPart, call: cst.Call, states: States
) -> Optional[tuple[Summary, dict[str, frozenset], str]]:
    """`wrapper(batch, backward=True)` (or `wrapper.forward(...)`) on a module of a class of
    this file or of another project file whose forward switches its own members under a
    test of a parameter (`if backward: self.model.train()`): the forward interpreted with
    the flags this call passes (or leaves at their defaults) fixed, and the modes it leaves
    its `self.X` in, to apply at the call as a method's are. Without constant flags the
    call is read as a forward alone (the switch may or may not run)."""
    func = call.func
    if type(func) is cst.Attribute and func.attr.value == "forward":
        func = func.value
    receiver = dotted_name(func)
    if receiver is None or receiver == "self" or not states:
        return None
    key = part.resolve(func, states[0])
    local = part.module_classes.get(key or "") or part.module_classes.get(receiver)
    defining: FileAnalysis
    if local is not None:
        defining, owner = part.file, local
    else:
        found = imported_module_class(part, receiver)
        if found is None:
            return None
        defining, owner = found
    method = owner.methods.get("forward") or defining._inherited_method(owner, "forward")
    if method is None or not any(_self_switch(n) for n in iter_nodes(method.node)):
        return None
    summary = defining.specialised(method, call)
    if summary is None:
        return None
    modes = {k: v for k, v in summary.exit_modes.items() if k == "self" or k.startswith("self.")}
    return (summary, modes, receiver) if modes else None


def samples_own_input(file: FileAnalysis, method: FunctionInfo) -> bool:
    """The method runs a forward of its own module (`self.decoder(z)`, `self(z)`) whose first
    input it drew from torch's random generators itself (`z = torch.randn(n, self.dim)`,
    moved or reshaped, the draw's shape read from a parameter or not), and never from data
    the caller handed it: a sampler of the model. A method that mixes the caller's tensors
    into that input (`xt = x0 + noise`: a denoising loss) computes on the caller's data."""
    imports = file.imports
    params = set(method.params) - {"self", "cls"} | set(method.keyword_only)
    noise: set[str] = set()
    tainted: set[str] = set(params)  # names that carry the caller's data
    assignments = [
        node
        for node in iter_nodes(method.node.body)
        if isinstance(node, cst.Assign) and len(node.targets) == 1
    ]
    for _ in range(2):  # a draw moved through a name or two (`z = z.to(device)`)
        for assign in assignments:
            target = assign.targets[0].target
            if type(target) is not cst.Name:
                continue
            kind = _input_kind(assign.value, imports, noise, tainted)
            if kind == "noise":
                noise.add(target.value)
                tainted.discard(target.value)
            elif kind == "data":
                tainted.add(target.value)
                noise.discard(target.value)
    for call in iter_nodes(method.node.body):
        if not isinstance(call, cst.Call) or not call.args or call.args[0].keyword is not None:
            continue
        receiver = dotted_name(call.func)
        if receiver is None or not (receiver == "self" or receiver.startswith("self.")):
            continue
        if _input_kind(call.args[0].value, imports, noise, tainted) == "noise":
            return True
    return False


def _input_kind(
    value: cst.BaseExpression, imports: ImportTable, noise: set[str], tainted: set[str]
) -> Optional[str]:
    """`noise` for a value drawn from torch's random generators (through names drawn so)
    with no data of the caller mixed in, "data" for one that reads a name carrying the
    caller's data outside a draw's arguments, None otherwise."""
    drawn = False
    inside: set[int] = set()
    for node in iter_nodes(value):
        if type(node) is cst.Call and imports.qualify(node.func) in RANDOM_DRAWS:
            drawn = True
            inside.update(id(n) for arg in node.args for n in iter_nodes(arg.value))
        elif type(node) is cst.IfExp:  # `randn(n, d) if n else randn(1, d)`: the test picks
            inside.update(id(n) for n in iter_nodes(node.test))
    for node in iter_nodes(value):
        if type(node) is not cst.Name or id(node) in inside:
            continue
        if node.value in tainted:
            return "data"
        if node.value in noise:
            drawn = True
    return "noise" if drawn else None


def imported_module_class(
    part: InterpreterPart, receiver: str
) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """`gan` after `gan = CycleGAN(...)` (through `.to(device)` chains) with `CycleGAN` an
    nn.Module class of another project file: the analysis of that file, and the class."""
    found = part.imported_module_classes.get(receiver)
    project = part.file.project
    if found is None or project is None:
        return None
    defined = project.defining_class(part.file.path, *found)
    if defined is None or not defined[1].is_module:
        return None
    return defined


def attribute_module_class(
    part: InterpreterPart, receiver: str
) -> Optional[tuple[FileAnalysis, ClassInfo]]:
    """`self.net` of a class whose methods assign it only modules of one nn.Module class
    (`self.net = Net(...).to(device)` in `__init__`), of this file or imported from another
    project file: the analysis of the file defining that class, and the class. What
    `net = Net()` in the same function gives `note_module_class`, for an attribute that
    another method of the class built."""
    if not receiver.startswith("self.") or receiver.count(".") != 1:
        return None
    owner = part._owner()
    if owner is None:
        return None
    from evallint.analysis.instances import imported_class

    file = part.file
    found: Optional[tuple[FileAnalysis, ClassInfo]] = None
    for method in owner.methods.values():
        for name, value in file.scope(method.node).attribute_assignments:
            if name != receiver:
                continue
            value = chain_receiver(value, SAME_MODULE_OR_MODE_METHODS)
            if type(value) is not cst.Call:
                return None
            local = part._local_class(value)
            held = (
                (file, local)
                if local is not None
                else imported_class(file, value, module_class=True)
            )
            if held is None or not held[1].is_module:
                return None
            if found is not None and (found[0] is not held[0] or found[1] is not held[1]):
                return None
            found = held
    return found


def _switches_self(name: str, file: FileAnalysis) -> bool:
    """Some class of the file has a method `name` whose text switches its own module's mode
    (`self.eval()`, `self.train(...)`): the cheap gate before a summary is asked for."""
    for cls in file.classes.values():
        method = cls.methods.get(name) if cls.is_module else None
        if method is not None and any(_self_switch(n) for n in iter_nodes(method.node)):
            return True
    return False


def _self_switch(node: cst.CSTNode) -> bool:
    """`self.eval()`, `self.train(False)`, `self.encoder.eval()`."""
    if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
        return False
    if node.func.attr.value not in ("eval", "train"):
        return False
    receiver = dotted_name(node.func.value)
    return receiver is not None and (receiver == "self" or receiver.startswith("self."))


def _leaves_self_switched(summary: Summary) -> bool:
    return any(key == "self" or key.startswith("self.") for key in summary.exit_modes)


def note_module_class(part: InterpreterPart, name: str, value: cst.BaseExpression) -> None:
    """`name = Model(...)` (through `.to(device)`/`.cuda()` chains) with `Model` an
    nn.Module class of this file: the name holds a module of that class."""
    value = chain_receiver(value, SAME_MODULE_OR_MODE_METHODS)
    owner = part._local_class(value) if type(value) is cst.Call else None
    if owner is not None and owner.is_module:
        part.module_classes[name] = owner
    else:
        part.module_classes.pop(name, None)
    if owner is not None:  # a module by a base of another file, too (see mode_overrides.py)
        part.built_classes[name] = owner
    else:
        part.built_classes.pop(name, None)


def annotated_class(part: InterpreterPart, receiver: str) -> Optional[ClassInfo]:
    """A parameter annotated with an nn.Module class of this file (`task: Task`)."""
    info = part.info
    if info is None or "." in receiver or receiver not in info.params:
        return None
    for param in info.node.params.params:
        if param.name.value == receiver and param.annotation is not None:
            owner = part.file.classes.get(dotted_name(param.annotation.annotation) or "")
            return owner if owner is not None and owner.is_module else None
    return None


def own_backward_module(part: InterpreterPart, call: cst.Call, states: States) -> bool:
    """`flow.backward(z)` on a module whose class (this file's; see module_backward.py) has a
    `backward` of its own computation: a method call of the module, not autograd's."""
    func = call.func
    if type(func) is not cst.Attribute or func.attr.value != "backward" or not states:
        return False
    receiver = dotted_name(func.value)
    if receiver is None:
        return False
    key = part.resolve(func.value, states[0])
    owner = part.module_classes.get(key or "") or annotated_class(part, receiver)
    return owner is not None and defines_backward(part.file, owner)
