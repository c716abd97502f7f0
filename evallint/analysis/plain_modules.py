"""Module classes of other project files that compute like functions: deriving from nn.Module
only, they build no layer and no parameter, read no `training` flag and call no functional
form that takes one (a box decoder whose forward is tensor arithmetic, a loss wrapper keeping
the function it is given). Their mode cannot change their output, and their forward keeps no
graph of its own: the graph of their input belongs to the forward that produced it. Read with
CPython's parser from the file's text, never by analysing the file."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

from evallint.analysis.project_files import imported_from, small_text
from evallint.analysis.symbols import PASS_THROUGH_LIBRARY, STANDARD_LIBRARY
from evallint.analysis.vocabulary import FUNCTIONAL_MODE, PARAMETER_FREE_LIBRARY_CLASSES
from evallint.analysis.walk import ast_dotted
from evallint.source.parse import shared_python_tree
from evallint.torch_facts import (
    LAYERS,
    MODE_INDEPENDENT_SUFFIXES,
    TENSOR_ONLY_METHODS,
    mode_sensitive,
)

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex

_MODULE_BASES = frozenset({"nn.Module", "torch.nn.Module", "Module"})
_FUNCTIONAL_NAMES = frozenset(q.split(".")[-1] for q in FUNCTIONAL_MODE)
_REGISTERING = frozenset(
    {"add_module", "register_module", "register_parameter", "setattr", "__setattr__"}
)
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Warning")
_READ: dict[str, tuple[str, Mapping[str, Optional[bool]]]] = {}
"""Path -> (its text, class name -> verdict), for the texts read last."""


def plain_module_class(
    project: ProjectIndex, importer: str, module: str, name: str, depth: int = 2
) -> Optional[bool]:
    """None: not such a class (or not found). False: one that keeps nothing it is given.
    True: one that keeps some constructor arguments as they are (`self.loss = loss`): a
    module passed in would make it a module with parameters. A package's `__init__.py`
    that imports the class is followed to its submodule."""
    return _class_verdict(project, importer, module, name, depth, _READ, _plain_classes)


_V = TypeVar("_V")


def _class_verdict(
    project: ProjectIndex,
    importer: str,
    module: str,
    name: str,
    depth: int,
    cache: dict[str, tuple[str, Mapping[str, _V]]],
    read: Callable[[str], Mapping[str, _V]],
) -> Optional[_V]:
    """What `read` says of class `name` in the file `module` names (None: not found), read
    once per text; a package's `__init__.py` that imports the class is followed to the
    submodule that defines it, at most `depth` times."""
    found = project.located_source(importer, module)
    if found is None:
        # a package `__init__.py` with no torch text of its own that only re-exports
        # (`from .ransac import *`): followed as one with torch text is
        located = project.located(importer, module)
        if located is None or located.name != "__init__.py":
            return None
        found = (located, small_text(located))
    path, source = found
    if path.name == "__init__.py" and f"class {name}" not in source:
        for submodule in imported_from(source, name) if depth > 0 else ():
            origin = str(path) if submodule.startswith(".") else importer
            verdict = _class_verdict(project, origin, submodule, name, depth - 1, cache, read)
            if verdict is not None:
                return verdict
        return None
    cached = cache.get(str(path))
    if cached is None or cached[0] != source:
        if len(cache) > 256:
            cache.clear()
        cached = cache[str(path)] = (source, read(source))
    return cached[1].get(name)


def _plain_classes(source: str) -> dict[str, Optional[bool]]:
    try:
        tree = shared_python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    return {
        node.name: _verdict(node)
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and node.bases
        and all(ast.unparse(base) in _MODULE_BASES for base in node.bases)
    }


def _verdict(node: ast.ClassDef) -> Optional[bool]:
    keeps_arguments = False
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kept = _method_verdict(item)
            if kept is None:
                return None
            keeps_arguments = keeps_arguments or kept
        elif not isinstance(item, (ast.Expr, ast.Pass)) and not (
            isinstance(item, ast.Assign) and _constant(item.value)
        ):
            return None  # class attributes other than constants
    return keeps_arguments


def _method_verdict(method: ast.FunctionDef | ast.AsyncFunctionDef) -> Optional[bool]:
    """None: builds or registers something, or reads or passes a `training` flag; else
    whether it keeps one of its arguments on `self`."""
    params, owner = _method_parameters(method)
    raised = {id(n.exc) for n in ast.walk(method) if isinstance(n, ast.Raise) and n.exc}
    keeps = False
    for node in ast.walk(method):
        if isinstance(node, ast.Attribute) and node.attr == "training":
            return None
        if isinstance(node, ast.Call) and id(node) not in raised:
            func = node.func
            last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if (
                (last[:1].isupper() and not last.endswith(_EXCEPTION_SUFFIXES))
                or last in _REGISTERING
                or last in _FUNCTIONAL_NAMES
                or "dropout" in last.lower()
                or any(k.arg == "training" for k in node.keywords)
            ):
                return None
        targets = _owner_targets(node, owner)
        if targets is None:
            return None  # `self.a, self.b = ...`
        for _ in targets:
            value = getattr(node, "value", None)
            if isinstance(value, ast.Name) and value.id in params - {owner}:
                keeps = True
            elif value is not None and not _constant(value) and not _plain_tensor(value):
                return None
    return keeps


def _plain_tensor(value: ast.expr) -> bool:
    """`_one_hot(target).permute(2, 0, 1).unsqueeze(0)`: a value a tensor-only method
    returns (TENSOR_ONLY_METHODS: no module has it), so a tensor kept on `self`, never a
    submodule; not one asked to require grad (`requires_grad=True`, `.requires_grad_()`),
    which would bring a graph into every forward that reads it."""
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in TENSOR_ONLY_METHODS
        and not any(
            (isinstance(n, ast.keyword) and n.arg == "requires_grad")
            or (isinstance(n, ast.Attribute) and n.attr in ("requires_grad_", "Parameter"))
            for n in ast.walk(value)
        )
    )


def _method_parameters(
    method: ast.FunctionDef | ast.AsyncFunctionDef,
) -> tuple[frozenset, Optional[str]]:
    """The method's parameter names, and its first positional one (the object: `self`)."""
    arguments = method.args
    params = frozenset(
        a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
    )
    owner = next(iter(a.arg for a in (*arguments.posonlyargs, *arguments.args)), None)
    return params, owner


def _owner_targets(node: ast.AST, owner: Optional[str]) -> Optional[list[ast.Attribute]]:
    """The targets of an assignment `node` that are attributes of `owner` (`self.x = ...`);
    None when a tuple target sets one (`self.a, self.b = ...`, not followed). `loss, i = ...`
    and other targets are skipped."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return []
    found: list[ast.Attribute] = []
    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
        if isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
            if any(_on(n, owner) for n in ast.walk(target) if isinstance(n, ast.Attribute)):
                return None
        elif isinstance(target, ast.Attribute) and _on(target, owner):
            found.append(target)
    return found


def _on(attribute: ast.Attribute, owner: Optional[str]) -> bool:
    return isinstance(attribute.value, ast.Name) and attribute.value.id == owner


def _constant(value: ast.expr) -> bool:
    """A literal, or a container or arithmetic of literals."""
    if isinstance(value, ast.Constant):
        return True
    if isinstance(value, (ast.Tuple, ast.List, ast.Set)):
        return all(_constant(e) for e in value.elts)
    if isinstance(value, ast.Dict):
        return all(
            k is not None and _constant(k) and _constant(v)
            for k, v in zip(value.keys, value.values)
        )
    if isinstance(value, ast.UnaryOp):
        return _constant(value.operand)
    if isinstance(value, ast.BinOp):
        return _constant(value.left) and _constant(value.right)
    return False


def mode_free_module_class(
    project: ProjectIndex, importer: str, module: str, name: str, depth: int = 2
) -> bool:
    """Whether a module class of another project file computes the same in train and eval
    mode: deriving from nn.Module (or such a class of its file) only, it builds only torch.nn
    layers that do not depend on the mode (`nn.Linear`, `nn.ReLU`, `nn.Conv1d`, containers
    of them, a `Dropout(0.0)`) and classes of its own file that do the same, and reads no
    `training` flag. It keeps its parameters (EVL002 still applies), but `eval()` changes
    nothing it computes (EVL001, EVL003 do not). Anything it builds through another call
    (`self.body = make_layers(cfg)`) leaves it undecided: False."""
    verdict: Optional[bool] = _class_verdict(
        project, importer, module, name, depth, _MODE_FREE, _mode_free_verdicts
    )
    return bool(verdict)


_MODE_FREE: dict[str, tuple[str, Mapping[str, bool]]] = {}
"""Path -> (its text, its mode-free module classes, each mapped to True)."""
_HARMLESS_CALLS = frozenset(
    {"super", "int", "float", "bool", "len", "range", "min", "max", "sum", "abs", "round",
     "tuple", "list", "dict", "isinstance", "getattr", "hasattr", "print", "zip", "enumerate"}
)  # fmt: skip


def mode_free_classes_of(path: str, source: str) -> frozenset[str]:
    """The mode-free module classes the text of the file at `path` defines (see
    `mode_free_module_class`), read once per text."""
    cached = _MODE_FREE.get(path)
    if cached is None or cached[0] != source:
        if len(_MODE_FREE) > 256:
            _MODE_FREE.clear()
        cached = _MODE_FREE[path] = (source, _mode_free_verdicts(source))
    return frozenset(cached[1])


def _mode_free_verdicts(source: str) -> dict[str, bool]:
    return dict.fromkeys(_mode_free_classes(source), True)


def _mode_free_classes(source: str) -> frozenset[str]:
    try:
        tree = shared_python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    aliases: dict[str, str] = {}  # local name -> qualified (`nn` -> torch.nn)
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    functions = {
        n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    verdicts: dict[str, bool] = {}
    function_verdicts: dict[str, bool] = {}
    # attributes of `self` that some class of the file (a subclass too) uses as a module
    module_uses = frozenset(u for c in classes.values() for u in _module_uses(c))

    def qualify(func: ast.expr) -> str:
        head, dot, rest = ast_dotted(func).partition(".")
        return aliases.get(head, head) + dot + rest if head else ""

    def free(class_name: str) -> bool:
        if class_name not in verdicts:
            verdicts[class_name] = False  # while in progress: a class that builds itself
            verdicts[class_name] = _class_free(classes[class_name])
        return verdicts[class_name]

    def function_free(name: str) -> bool:
        """A function of the file that builds no module: it calls only functions of the
        file that build none, the standard library, numpy and torch's tensor functions, and
        methods of what those return (`torch.from_numpy(g).float()`)."""
        if name not in function_verdicts:
            function_verdicts[name] = False  # while in progress: a recursive function
            function_verdicts[name] = _builds_no_module(functions[name], classes, call_free)
        return function_verdicts[name]

    def call_free(call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Call):
            return call_free(func)  # `_to_tuple(2)(size)`: what the inner call returned
        if isinstance(func, ast.Name) and func.id in functions:
            return function_free(func.id)
        qualified = qualify(func)
        if isinstance(func, ast.Name) and func.id not in aliases:
            return func.id in _BUILTIN_CALLS
        head = qualified.split(".")[0]
        if head in aliases or (isinstance(func, ast.Attribute) and head in classes):
            return _library_function(qualified)
        return True  # a method of a value the function computed (`g.sum()`)

    def layer_free(call: ast.Call) -> bool:
        """A call that builds a mode-independent layer or container of them."""
        qualified = qualify(call.func)
        if qualified in classes:
            return free(qualified)
        if not qualified.startswith("torch.nn.") or qualified.count(".") != 2:
            return False
        if qualified.endswith(MODE_INDEPENDENT_SUFFIXES):
            return True  # `nn.KLDivLoss(reduction="none")`: a loss holds no mode-dependent layer
        fact = LAYERS.get(qualified.split(".")[-1])
        if fact is None:
            return False
        if fact.mode == "container":
            return all(_built(arg, layer_free) for arg in (*call.args, *call.keywords))
        read: dict[str, object] = {}
        for index, arg in enumerate(call.args):
            if index < len(fact.positional):
                read[fact.positional[index]] = _literal(arg)
        for keyword in call.keywords:
            if keyword.arg is not None:
                read[keyword.arg] = _literal(keyword.value)
        return mode_sensitive(fact.name, read) is False

    def independent_layer(base: ast.expr) -> bool:
        """`class Linear(nn.Linear)`: a torch layer whose output never depends on the mode,
        whatever its arguments (what the subclass adds is read like any class body)."""
        qualified = qualify(base)
        if not qualified.startswith("torch.nn.") or qualified.count(".") != 2:
            return False
        fact = LAYERS.get(qualified.split(".")[-1])
        return fact is not None and fact.mode == "independent"

    def _class_free(node: ast.ClassDef) -> bool:
        for base in node.bases:
            text = ast.unparse(base)
            if (
                text not in _MODULE_BASES
                and not (text in classes and free(text))
                and not independent_layer(base)
            ):
                return False
        settings = _settings_of(node)
        kept_rest = _kept_rest(node)
        used_as_module, used_as_setting = _uses(node)
        params = _parameters(node)
        inputs = (
            {  # the arguments of its methods but `__init__` (tensors, not settings)
                a.arg
                for m in node.body
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name != "__init__"
                for a in (*m.args.posonlyargs, *m.args.args[1:], *m.args.kwonlyargs)
            }
            - set(aliases)
            - classes.keys()
        )
        data_params = _data_parameters(node, classes)
        # a parameter kept on `self` that no class of the file uses as a module is data when
        # the class computes its own forward without it; a holder with no forward of its own
        # (`Keeps(net)`) may hand it to a forward defined elsewhere
        own_forward = any(
            isinstance(i, (ast.FunctionDef, ast.AsyncFunctionDef)) and i.name == "forward"
            for i in node.body
        )
        # `nn.Dropout(p)(x)` in a method: a new layer on every call, in training mode whatever
        # the module's mode, never a submodule (EVL004 reports it): eval() changes nothing
        on_the_spot = {
            id(n.func)
            for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Call)
        } | _kept_local(node)
        # `CHECK_SHAPE(x, ["N", "2"])` as a statement: whatever it is, its result is dropped,
        # so it builds no submodule (registering calls and functional dropout are read apart)
        discarded = {
            id(n.value)
            for n in ast.walk(node)
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
        }
        for item in ast.walk(node):
            if id(item) in on_the_spot:
                continue
            if isinstance(item, ast.Attribute) and item.attr == "training":
                return False
            if isinstance(item, (ast.Assign, ast.AnnAssign)) and item.value is not None:
                targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                on_self = any(_stored_on_object(t) for t in targets)
                if on_self and isinstance(item.value, ast.Name) and item.value.id in settings:
                    continue  # `self.n_fft = n_fft` with `n_fft=1024`: a setting
                if id(item) in kept_rest:
                    continue  # `self.kwargs = kwargs`: a dict, never a submodule
                if on_self and isinstance(item.value, ast.Name) and item.value.id in data_params:
                    continue  # `self.dims = dims` with `dims: ModelDimensions`, a plain class
                if (
                    on_self
                    and isinstance(item.value, ast.Name)
                    and item.value.id in aliases
                    and not aliases[item.value.id].startswith("torch.nn.")
                    and item.value.id not in classes
                ):
                    # `self.error_fn = transfer_error` after `from .metrics import
                    # transfer_error`: a reference to an imported definition (a function
                    # chosen by a setting), no module instance built or given to the class
                    continue
                if (
                    on_self
                    and isinstance(item.value, ast.Call)
                    and isinstance(item.value.func, ast.Name)
                    and item.value.func.id in functions
                    and all(_setting(a, settings) for a in item.value.args)
                    and all(_setting(k.value, settings) for k in item.value.keywords)
                    and function_free(item.value.func.id)
                ):
                    continue  # `self.window = _gaussian(size, sigma)`: a tensor of settings
                if (
                    on_self
                    and isinstance(item.value, (ast.Name, ast.Attribute, ast.Subscript))
                    and not any(_self_name(t) in used_as_setting - used_as_module for t in targets)
                    and not (
                        own_forward
                        and isinstance(item.value, ast.Name)
                        and item.value.id in params
                        and not any(_self_name(t) in module_uses for t in targets)
                    )
                ):
                    return False  # `self.net = net`, then `self.net(x)`: keeps a module
                if not isinstance(item.value, ast.Call):
                    continue
                if on_self and _plain_tensor(item.value):
                    continue  # `self.prediction = one_hot(y).unsqueeze(0)`: a tensor
                qualified = qualify(item.value.func)
                if (
                    on_self
                    and qualified == "functools.partial"
                    and _function_reference(item.value, aliases, functions)
                ):
                    continue  # `self.solver = partial(find_fundamental, method="7POINT")`
                if on_self and qualified.split(".")[0] in inputs and "." in qualified:
                    continue  # `self.size = input.size(1)`: read off a tensor it is given
                if (
                    on_self
                    and not layer_free(item.value)
                    and not (qualified.startswith("torch.") and qualified[6:7].islower())
                    and not _method_of_self(item.value)
                    and qualified not in _HARMLESS_CALLS
                ):
                    return False  # `self.body = make_layers(cfg)`: built elsewhere
            if isinstance(item, ast.Call):
                qualified = qualify(item.func)
                last = qualified.split(".")[-1]
                if layer_free(item):
                    continue  # `nn.Dropout(0.0)`, `nn.Linear(d, k)`
                if (
                    qualified in FUNCTIONAL_MODE
                    or "dropout" in last.lower()
                    or any(k.arg == "training" for k in item.keywords)
                    or last in _REGISTERING
                    or (
                        last[:1].isupper()
                        and not last.endswith(_EXCEPTION_SUFFIXES)
                        and qualified not in ("torch.nn.Parameter", "torch.Tensor")
                        and id(item) not in discarded
                    )
                ):
                    return False
        return True

    return frozenset(
        name
        for name, node in classes.items()
        if any(
            ast.unparse(b) in _MODULE_BASES or ast.unparse(b) in classes or independent_layer(b)
            for b in node.bases
        )
        and free(name)
    )


_BUILTIN_CALLS = _HARMLESS_CALLS | frozenset(
    {"tuple", "set", "frozenset", "str", "repr", "sorted", "reversed", "map", "filter", "any",
     "all", "pow", "divmod", "iter", "next", "callable", "issubclass", "hash", "id", "format"}
)  # fmt: skip
"""Builtins that return no module (not `getattr`, `eval`, `type`, `__import__`)."""
_OPAQUE_TORCH = ("torch.load", "torch.hub", "torch.jit", "torch.compile", "torch.package")


def _library_function(qualified: str) -> bool:
    """A function of the standard library (not `copy.deepcopy`, `pickle.load`: they hand back
    what they are given or stored), numpy, scipy or math, or a torch function that computes
    a tensor (not `torch.load`, `torch.hub.load`, `torch.jit.script`), never a class."""
    parts = qualified.split(".")
    if parts[-1][:1].isupper():
        return False
    if parts[0] == "torch":
        return not qualified.startswith(_OPAQUE_TORCH) and qualified not in FUNCTIONAL_MODE
    return parts[0] in ("numpy", "scipy", "math") or (
        parts[0] in STANDARD_LIBRARY and parts[0] not in PASS_THROUGH_LIBRARY
    )


def _builds_no_module(
    function: ast.FunctionDef | ast.AsyncFunctionDef,
    classes: Mapping[str, ast.ClassDef],
    call_free: Callable[[ast.Call], bool],
) -> bool:
    """Whether every call in the function (nested functions too) builds no module and
    returns none: no class is built (an exception raised is no module), no `training` flag
    is read or passed."""
    raised = {id(n.exc) for n in ast.walk(function) if isinstance(n, ast.Raise) and n.exc}
    for node in ast.walk(function):
        if isinstance(node, ast.Attribute) and node.attr == "training":
            return False
        if not isinstance(node, ast.Call) or id(node) in raised:
            continue
        func = node.func
        last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (
            last[:1].isupper()
            or last in classes
            or "dropout" in last.lower()
            or any(k.arg == "training" for k in node.keywords)
            or not call_free(node)
        ):
            return False
    return True


def _setting(value: ast.expr, settings: frozenset[str]) -> bool:
    """An argument that holds no module: a literal, or a parameter with a literal default."""
    return _constant(value) or (isinstance(value, ast.Name) and value.id in settings)


def _kept_rest(node: ast.ClassDef) -> set[int]:
    """`self.kwargs = kwargs` with `**kwargs` (or `*args`) of that method: a dict or tuple
    kept on `self` is never registered as a submodule, so `eval()` of the class never
    reaches what it holds."""
    found: set[int] = set()
    for method in node.body:
        if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            rest = {a.arg for a in (method.args.vararg, method.args.kwarg) if a is not None}
            for item in ast.walk(method):
                if (
                    isinstance(item, ast.Assign)
                    and isinstance(item.value, ast.Name)
                    and item.value.id in rest
                    and all(_self_name(t) is not None for t in item.targets)
                ):
                    found.add(id(item))
    return found


def _parameters(node: ast.ClassDef) -> frozenset[str]:
    """Parameters of the class's methods other than `self`: `self.name = name` keeps one."""
    found: set[str] = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = item.args
            found.update(a.arg for a in (*arguments.posonlyargs, *arguments.args)[1:])
            found.update(a.arg for a in arguments.kwonlyargs)
    return frozenset(found)


_DATA_ANNOTATIONS = frozenset({"int", "float", "str", "bool", "bytes", "dict", "list", "tuple"})


def _data_parameters(node: ast.ClassDef, classes: Mapping[str, ast.ClassDef]) -> frozenset[str]:
    """Parameters of the class's methods annotated as data: a builtin value type or a class of
    the file that derives from nothing (`dims: ModelDimensions`, a dataclass of settings)."""
    found: set[str] = set()
    for item in node.body:
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        arguments = item.args
        for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
            annotation = a.annotation
            if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
                name = annotation.value  # `dims: "ModelDimensions"`
            elif isinstance(annotation, ast.Name):
                name = annotation.id
            else:
                continue
            held = classes.get(name)
            if name in _DATA_ANNOTATIONS or (
                held is not None
                and all(isinstance(b, ast.Name) and b.id == "object" for b in held.bases)
            ):
                found.add(a.arg)
    return frozenset(found)


def _module_uses(node: ast.ClassDef) -> set[str]:
    """Attributes of `self` used as a module may be (see `_uses`), except as arguments of a
    method of a local value (`z.view(n, self.channels)`, `text.format(self.name)`): data."""
    data_calls = set()
    for method in node.body:
        if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = method.args
            local = {a.arg for a in (*arguments.posonlyargs, *arguments.args)[1:]}
            local.update(a.arg for a in arguments.kwonlyargs)
            for item in ast.walk(method):
                if isinstance(item, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    local.update(t.id for t in targets if isinstance(t, ast.Name))
            for item in ast.walk(method):
                if (
                    isinstance(item, ast.Call)
                    and isinstance(item.func, ast.Attribute)
                    and (
                        isinstance(item.func.value, ast.Constant)
                        or (isinstance(item.func.value, ast.Name) and item.func.value.id in local)
                    )
                ):
                    data_calls.add(id(item))
    found: set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Call):
            values = [item.func]
            if id(item) not in data_calls:
                values += [*item.args, *(k.value for k in item.keywords)]
            found.update(_self_names(values))
        elif isinstance(item, (ast.Attribute, ast.Subscript)):
            if isinstance(item.value, ast.Attribute):
                found.update(_self_names([item.value]))
        elif isinstance(item, (ast.For, ast.comprehension)):
            found.update(_self_names([item.iter]))
    return found


def _kept_local(node: ast.ClassDef) -> set[int]:
    """Calls bound to a local name of a method that is never put in (stored on `self` or
    anywhere, returned, yielded, handed to a constructor or a filling method): `spline =
    Spline(coeffs)` then `spline.evaluate(t)`. Such a module is built in training mode on
    every call whatever the module's mode, and is no submodule: eval() changes nothing."""
    found: set[int] = set()
    for method in node.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        bound: dict[str, list[int]] = {}
        escaping: set[str] = set()
        for item in ast.walk(method):
            if isinstance(item, ast.Assign) and _constructor(item.value):
                if all(isinstance(t, ast.Name) for t in item.targets):
                    for target in item.targets:
                        bound.setdefault(getattr(target, "id", ""), []).append(id(item.value))
            if isinstance(item, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                if not all(isinstance(t, ast.Name) for t in targets) and item.value is not None:
                    escaping.update(n.id for n in ast.walk(item.value) if isinstance(n, ast.Name))
            elif isinstance(item, (ast.Return, ast.Yield, ast.YieldFrom)) and item.value:
                escaping.update(n.id for n in ast.walk(item.value) if isinstance(n, ast.Name))
            elif isinstance(item, ast.Call):
                func = item.func
                last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if last[:1].isupper() or last in _REGISTERING or last in _FILLING:
                    for value in (*item.args, *(k.value for k in item.keywords)):
                        escaping.update(n.id for n in ast.walk(value) if isinstance(n, ast.Name))
            elif isinstance(item, (ast.Global, ast.Nonlocal)):
                escaping.update(item.names)
        for name, calls in bound.items():
            if name not in escaping:
                found.update(calls)
    return found


def _constructor(value: ast.expr) -> bool:
    """`Spline(coeffs)`, `lib.Spline(coeffs)`: a class built (not `F.dropout(x, p)`, nor
    a Dropout, nor a call given a `training` flag)."""
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        last[:1].isupper()
        and "dropout" not in last.lower()
        and not any(k.arg == "training" for k in value.keywords)
    )


_FILLING = frozenset({"append", "extend", "insert", "add", "update", "add_module"})


def _built(value: ast.AST, layer_free) -> bool:
    """An argument of a torch container: a built layer, or a list/tuple of them."""
    if isinstance(value, ast.keyword):
        value = value.value
    if isinstance(value, ast.Call):
        return bool(layer_free(value))
    if isinstance(value, (ast.List, ast.Tuple)):
        return all(_built(e, layer_free) for e in value.elts)
    if isinstance(value, (ast.ListComp, ast.GeneratorExp)):
        return _built(value.elt, layer_free)
    if isinstance(value, ast.Dict):
        return all(_built(v, layer_free) for v in value.values)
    return False  # `nn.Sequential(*layers)`: built elsewhere


def _stored_on_object(target: ast.expr) -> bool:
    """`self.net = ...`, `self.d[k] = ...`, `obj.x = ...`: stored on an object, which may be
    the module; `cache[key] = out` into a local container is not (the container reaches the
    module only through an assignment of its own, read like any other)."""
    if isinstance(target, ast.Attribute):
        return True
    if not isinstance(target, ast.Subscript):
        return False
    root: ast.expr = target
    while isinstance(root, ast.Subscript):
        root = root.value
    return not (isinstance(root, ast.Name) and root.id != "self")


def _self_name(target: ast.expr) -> Optional[str]:
    """`self.x` -> "x"; a subscript (`self.d[k] = v`) counts as a use of `self.d` too."""
    while isinstance(target, ast.Subscript):
        target = target.value
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        return target.attr if target.value.id == "self" else None
    return None


def _uses(node: ast.ClassDef) -> tuple[frozenset[str], frozenset[str]]:
    """Attributes of `self` that the class uses as a module may be used (called:
    `self.net(x)`; asked for an attribute: `self.net.fc`; subscripted, iterated, or handed
    to a call: `run(self.net)`), and those it uses as a setting is used (compared, tested,
    computed with: `self.mask_type == "A"`, `if self.residual:`, `self.dim * 2`). One kept
    only as a setting is no module the class may have been given."""
    module: set[str] = set()
    setting: set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Call):
            module.update(_self_names([item.func, *item.args, *(k.value for k in item.keywords)]))
        elif isinstance(item, (ast.Attribute, ast.Subscript)):
            module.update(
                _self_names([item.value]) if isinstance(item.value, ast.Attribute) else ()
            )
        elif isinstance(item, (ast.For, ast.comprehension)):
            module.update(_self_names([item.iter]))
        elif isinstance(item, ast.Compare):
            setting.update(_self_names([item.left, *item.comparators]))
        elif isinstance(item, ast.BinOp):
            setting.update(_self_names([item.left, item.right]))
        elif isinstance(item, (ast.If, ast.IfExp, ast.While)):
            setting.update(_self_names([item.test]))
        elif isinstance(item, ast.BoolOp):
            setting.update(_self_names(item.values))
    return frozenset(module), frozenset(setting)


def _self_names(values: list) -> list[str]:
    found = []
    for value in values:
        if isinstance(value, ast.Starred):
            value = value.value
        name = _self_name(value) if isinstance(value, ast.Attribute) else None
        if name is not None:
            found.append(name)
    return found


def _settings_of(node: ast.ClassDef) -> frozenset[str]:
    """Parameters of the class's methods whose default is a number, string or boolean
    (`n_fft=1024`, `mode="mel"`): settings, not modules it may be given (a `None` default
    says nothing)."""
    found: set[str] = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            positional = [*item.args.posonlyargs, *item.args.args]
            pairs = [
                *zip(positional[len(positional) - len(item.args.defaults) :], item.args.defaults),
                *((a, d) for a, d in zip(item.args.kwonlyargs, item.args.kw_defaults) if d),
            ]
            for arg, default in pairs:
                if isinstance(default, ast.Constant) and isinstance(
                    default.value,
                    (int, float, str),  # bool is an int
                ):
                    found.add(arg.arg)
            found.update(
                a.arg
                for a in (*positional, *item.args.kwonlyargs)
                if a.annotation is not None and _scalar_annotation(a.annotation)
            )
    return frozenset(found)


def _function_reference(call: ast.Call, aliases: Mapping[str, str], functions: Mapping) -> bool:
    """`partial(f, ...)` of a function of the file or an imported name outside torch.nn:
    a function with some arguments fixed, no module."""
    if not call.args or not isinstance(call.args[0], ast.Name):
        return False
    name = call.args[0].id
    return name in functions or (
        name in aliases and not aliases[name].startswith("torch.nn.") and name[:1].islower()
    )


_SCALAR_TYPES = frozenset({"int", "float", "str", "bool"})


def _scalar_annotation(annotation: ast.expr) -> bool:
    """`seed: Optional[int]`, `th: float`, `name: str | None`: a parameter declared to
    take a number or a string (or None) is a setting, never a module."""
    if isinstance(annotation, ast.Name):
        return annotation.id in _SCALAR_TYPES
    if isinstance(annotation, ast.Constant):
        return annotation.value is None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _scalar_annotation(annotation.left) and _scalar_annotation(annotation.right)
    if isinstance(annotation, ast.Subscript):
        head = annotation.value
        name = head.attr if isinstance(head, ast.Attribute) else getattr(head, "id", "")
        if name not in ("Optional", "Union"):
            return False
        inner = annotation.slice
        parts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        return all(_scalar_annotation(p) for p in parts)
    return False


def _method_of_self(call: ast.Call) -> bool:
    """`self._get_conv_out(shape)`: a method of the class, read with it."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and (func.value.id == "self")
    )


def _literal(value: ast.expr) -> object:
    if isinstance(value, ast.Constant) and isinstance(value.value, (bool, int, float)):
        return value.value
    return "?"  # not a literal: undecided


def parameter_free_module_class(
    project: ProjectIndex, importer: str, module: str, name: str, depth: int = 2
) -> Optional[bool]:
    """A module class of another project file that holds no parameter, whatever else it
    does (see `parameter_free_classes`): None when it is no such class (or is not found),
    else whether it keeps constructor arguments as they are (a module passed in would bring
    its parameters). Its forward records no graph of its own: only its inputs' reaches the
    output."""
    return _class_verdict(project, importer, module, name, depth, _PARAMETER_FREE, _free_classes)


def parameter_free_classes(source: str) -> Mapping[str, Optional[bool]]:
    """`parameter_free_module_class` for every class of a text, read once per text (a
    class of the linted file itself is read from its own text)."""
    return _free_classes(source)


_PARAMETER_FREE: dict[str, tuple[str, Mapping[str, Optional[bool]]]] = {}
"""Path -> (its text, class name -> parameter-free verdict)."""


def _free_classes(source: str) -> dict[str, Optional[bool]]:
    """Classes deriving from nn.Module only that build nothing (no call of a class, a
    `register_parameter` or `add_module`) and set on `self` only constants, their own
    arguments and functions of their file (`self.extractor = stft_mel`): a feature
    extractor or a loss with no weights. `register_buffer` adds a buffer, which requires
    no grad. The functions they hold compute from what they are given; a function of the
    file that builds a layer (an uppercase call) leaves the class undecided."""
    try:
        tree = shared_python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    aliases = _import_aliases(tree)
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and not _builds_object(node, aliases)
    }
    return {
        node.name: _free_verdict(node, functions, aliases)
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and node.bases
        and all(ast.unparse(base) in _MODULE_BASES for base in node.bases)
    }


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Top-level import names -> what they name (`T` -> `torchaudio.transforms`)."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                found[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return found


def _builds_object(node: ast.AST, aliases: Mapping[str, str]) -> bool:
    """A call of a class (`nn.Linear(...)`, not an exception raised nor a library module
    known to hold no parameter, see PARAMETER_FREE_LIBRARY_CLASSES) or of
    `add_module`/`register_parameter` anywhere under `node`."""
    raised = {id(n.exc) for n in ast.walk(node) if isinstance(n, ast.Raise) and n.exc}
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and id(inner) not in raised:
            func = inner.func
            last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if last in _REGISTERING:
                return True
            if not last[:1].isupper() or last.endswith(_EXCEPTION_SUFFIXES):
                continue
            head, _, rest = ast.unparse(func).partition(".")
            qualified = aliases.get(head, head) + (f".{rest}" if rest else "")
            if qualified not in PARAMETER_FREE_LIBRARY_CLASSES:
                return True
    return False


def _free_verdict(
    node: ast.ClassDef, functions: Mapping[str, ast.AST], aliases: Mapping[str, str]
) -> Optional[bool]:
    """(`functions`: the file's top-level functions that build nothing.)"""
    keeps_arguments = False
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kept = _free_method_verdict(item, functions, aliases)
            if kept is None:
                return None
            keeps_arguments = keeps_arguments or kept
        elif not isinstance(item, (ast.Expr, ast.Pass)) and not (
            isinstance(item, ast.Assign) and _constant(item.value)
        ):
            return None
    return keeps_arguments


def _free_method_verdict(
    method: ast.FunctionDef | ast.AsyncFunctionDef,
    functions: Mapping[str, ast.AST],
    aliases: Mapping[str, str],
) -> Optional[bool]:
    """None: builds something, or sets on `self` a value other than a constant, one of its
    arguments or a function of the file that builds nothing; else whether it keeps one of
    its arguments on `self`."""
    if _builds_object(method, aliases):
        return None
    params, owner = _method_parameters(method)
    keeps = False
    for node in ast.walk(method):
        targets = _owner_targets(node, owner)
        if targets is None:
            return None
        for _ in targets:
            value = getattr(node, "value", None)
            if value is None or _constant(value):
                continue
            if isinstance(value, ast.Name) and value.id in params - {owner}:
                keeps = True
            elif not (isinstance(value, ast.Name) and value.id in functions):
                return None
    return keeps
