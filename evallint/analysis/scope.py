"""Per-file and per-function facts gathered before interpretation: functions, classes,
and which names hold modules by evidence (`x.eval()`, `x.parameters()`, a module name)."""

from __future__ import annotations

import ast
import weakref
from dataclasses import dataclass, field
from typing import Iterable, Optional, cast

import libcst as cst

from evallint.analysis.symbols import ImportTable, chain_receiver, dotted_name
from evallint.analysis.vocabulary import (
    MODULE_BASES,
    MODULE_EVIDENCE_METHODS,
    MODULE_NAME_WORDS,
    NON_MODULE_KEYWORDS,
    NON_MODULE_METHODS,
    NOT_MODULE_WORDS,
    SAME_MODULE_OR_MODE_METHODS,
    SELF_MANAGED_BASES,
    SELF_MANAGED_HOOKS,
    SELF_MANAGED_PACKAGES,
    words,
)
from evallint.analysis.walk import ast_dotted, ast_statements, iter_nodes
from evallint.source.parse import shared_python_tree


@dataclass
class ClassInfo:
    name: str
    node: cst.ClassDef
    bases: tuple[str, ...]
    is_module: bool = False
    self_managed: bool = False
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    module_attributes: set[str] = field(default_factory=set)
    held_containers: Optional[dict[str, tuple[str, ...]]] = None
    """`self.X` attributes that are plain lists/dicts of modules -> their element keys."""
    held_aliases: Optional[tuple[tuple[str, str], ...]] = None
    """(`self.query.generator`, `self.generator`): a module attribute stored in an object
    this class builds (`self.query = Query(self.generator)`), so one module has two paths."""
    """`self.X` paths that hold modules."""
    non_module_attributes: Optional[frozenset[str]] = None
    """`self.X` paths that only ever get tokenizer/processor use in this class's methods."""
    held_instances: Optional[dict[str, ClassInfo]] = None
    """`self.X` attributes holding an object of another plain class of the file (see
    class_members.ClassMembers._held_instances), read once per class."""
    copied_attributes: Optional[tuple[tuple[str, str], ...]] = None
    """(`self._original_model`, `self.state.model`) pairs (see
    class_members.ClassMembers._copied_attributes), read once per class."""


@dataclass
class FunctionInfo:
    """A function or method. It points back to its class and enclosing function weakly:
    the file's definition tables own them, and no reference cycle keeps a file's tree alive
    until a cyclic garbage collection has traversed all of it."""

    qualname: str
    node: cst.FunctionDef
    owner_ref: Optional[weakref.ReferenceType[ClassInfo]]
    parent_ref: Optional[weakref.ReferenceType[FunctionInfo]] = None
    params: tuple[str, ...] = ()
    keyword_only: tuple[str, ...] = ()
    decorators: tuple[str, ...] = ()
    nested: dict[str, FunctionInfo] = field(default_factory=dict)
    definition_states: tuple = ()
    """For a nested function: the enclosing function's path states where this one is
    defined and where the enclosing one exits. A closure the enclosing function never calls
    itself (a callback handed to a UI or a framework) sees its free modules in those modes."""

    @property
    def owner(self) -> Optional[ClassInfo]:
        return self.owner_ref() if self.owner_ref is not None else None

    @property
    def parent(self) -> Optional[FunctionInfo]:
        return self.parent_ref() if self.parent_ref is not None else None

    @property
    def name(self) -> str:
        return self.node.name.value

    @property
    def framework_hook(self) -> bool:
        """Called by a framework that sets the mode itself (Lightning, HF Trainer, Ignite)."""
        if self.owner is None:
            return False
        if self.owner.self_managed and self.name in SELF_MANAGED_HOOKS:
            return True
        if self.name.startswith(_EVALUATION_CALLBACK_HOOKS) and any(
            b.split(".")[-1] == "Callback" and "lightning" in b.lower() for b in self.owner.bases
        ):
            return True  # a Lightning Callback's hook run inside Lightning's evaluation loop
        return self.name in ("validation_step", "test_step", "predict_step")

    @property
    def class_level(self) -> bool:
        """A `@staticmethod` or `@classmethod`: called on its class, not on an object."""
        return any(d.split(".")[-1] in ("staticmethod", "classmethod") for d in self.decorators)

    @property
    def is_contextmanager(self) -> bool:
        return any(
            d.split(".")[-1] in ("contextmanager", "asynccontextmanager") for d in self.decorators
        )


_EVALUATION_CALLBACK_HOOKS = ("on_validation_", "on_test_", "on_predict_")
"""Lightning runs these Callback hooks between its `eval()` of the LightningModule and the
restore of its modes, under no_grad / inference_mode (the evaluation loop's `run`)."""


def looks_like_module_name(name: str) -> bool:
    last = name.split(".")[-1]
    tokens = words(last)
    return bool(tokens & MODULE_NAME_WORDS) and not (tokens & NOT_MODULE_WORDS)


def _params(node: cst.FunctionDef) -> tuple[tuple[str, ...], tuple[str, ...]]:
    positional = [p.name.value for p in (*node.params.posonly_params, *node.params.params)]
    keyword_only = [p.name.value for p in node.params.kwonly_params]
    return tuple(positional), tuple(keyword_only)


def _decorator_names(node: cst.FunctionDef, imports: ImportTable) -> tuple[str, ...]:
    names = []
    for decorator in node.decorators:
        expr = decorator.decorator
        if type(expr) is cst.Call:
            expr = expr.func
        names.append(imports.qualify(expr) or "")
    return tuple(names)


def collect_definitions(
    module: cst.Module, imports: ImportTable
) -> tuple[dict[str, FunctionInfo], dict[str, ClassInfo]]:
    """Top-level functions (by name), classes (by name) and their methods, nested functions."""
    functions: dict[str, FunctionInfo] = {}
    classes: dict[str, ClassInfo] = {}
    for statement in module.body:
        for node in _compound_top_level(statement):
            if type(node) is cst.FunctionDef:
                functions[node.name.value] = _function_info(node, None, None, "", imports)
            elif type(node) is cst.ClassDef:
                _collect_class(node, "", imports, classes)
    return functions, classes


@dataclass
class Redefinitions:
    """Top-level functions defined more than once (a notebook cell redefines a helper of an
    earlier cell): which definition a name holds at each point of the program."""

    earlier: list[FunctionInfo] = field(default_factory=list)
    """The definitions a later one replaces, each under its own qualname (`name<1>`)."""
    by_node: dict[int, FunctionInfo] = field(default_factory=dict)
    """The `def` statement (by id) -> its FunctionInfo, for every definition of such names."""
    before: dict[int, dict[str, FunctionInfo]] = field(default_factory=dict)
    """A top-level function or class (by id) -> the redefined names' definitions in effect
    where it is defined (its calls run later, but in a notebook usually before the next
    redefinition)."""


def redefinitions(
    module: cst.Module, imports: ImportTable, functions: dict[str, FunctionInfo]
) -> Redefinitions:
    """The top-level `def`s of names defined more than once, in program order (one pass over
    the module's top-level statements)."""
    found = Redefinitions()
    defs = [node for statement in module.body for node in _compound_top_level(statement)]
    counts: dict[str, int] = {}
    for node in defs:
        if type(node) is cst.FunctionDef:
            counts[node.name.value] = counts.get(node.name.value, 0) + 1
    if not any(count > 1 for count in counts.values()):
        return found
    seen: dict[str, int] = {}
    current: dict[str, FunctionInfo] = {}
    for node in defs:
        found.before[id(node)] = dict(current)
        if type(node) is not cst.FunctionDef or counts[node.name.value] < 2:
            continue
        name = node.name.value
        seen[name] = seen.get(name, 0) + 1
        info = functions[name]
        if seen[name] < counts[name]:
            info = _function_info(node, None, None, "", imports)
            _rename(info, name, f"{name}<{seen[name]}>")  # nested: `name<1>.<locals>.f`
            found.earlier.append(info)
        found.by_node[id(node)] = current[name] = info
    return found


def _rename(info: FunctionInfo, old: str, new: str) -> None:
    info.qualname = new + info.qualname[len(old) :]
    for nested in info.nested.values():
        _rename(nested, old, new)


def _function_info(
    node: cst.FunctionDef,
    owner: Optional[ClassInfo],
    parent: Optional[FunctionInfo],
    prefix: str,
    imports: ImportTable,
) -> FunctionInfo:
    params, keyword_only = _params(node)
    info = FunctionInfo(
        f"{prefix}{node.name.value}",
        node,
        weakref.ref(owner) if owner is not None else None,
        weakref.ref(parent) if parent is not None else None,
        params,
        keyword_only,
        _decorator_names(node, imports),
    )
    for statement in _block(node.body):
        if type(statement) is cst.FunctionDef:
            info.nested[statement.name.value] = _function_info(
                statement, None, info, f"{info.qualname}.<locals>.", imports
            )
    return info


def _collect_class(
    node: cst.ClassDef, prefix: str, imports: ImportTable, classes: dict[str, ClassInfo]
) -> None:
    """Add the class (and the classes nested in it) to `classes`."""
    bases = tuple(imports.qualify(_generic_origin(arg.value)) or "" for arg in node.bases)
    info = ClassInfo(f"{prefix}{node.name.value}", node, bases)
    info.is_module, info.self_managed = class_kind(
        bases, {name: (c.is_module, c.self_managed) for name, c in classes.items()}
    )
    classes[info.name] = info
    for statement in _block(node.body):
        if type(statement) is cst.FunctionDef:
            info.methods[statement.name.value] = _function_info(
                statement, info, None, f"{info.name}.", imports
            )
        elif type(statement) is cst.ClassDef:
            _collect_class(statement, f"{info.name}.", imports, classes)


def collect_local_class(
    node: cst.ClassDef, function: FunctionInfo, imports: ImportTable
) -> ClassInfo:
    """A class defined in a function's body (`class Net(nn.Module):` inside `get_model()`),
    named after the function's qualname so that each definition is its own class."""
    classes: dict[str, ClassInfo] = {}
    _collect_class(node, f"{function.qualname}.<locals>.", imports, classes)
    return classes[f"{function.qualname}.<locals>.{node.name.value}"]


def class_kind(bases: tuple[str, ...], known: dict[str, tuple[bool, bool]]) -> tuple[bool, bool]:
    """(is an nn.Module, sets its own mode: Lightning & co.) for a class with these qualified
    bases; `known` holds the same pair for the file's classes defined before it."""
    is_module = any(
        known[b][0]  # a class of the file named `Module` (a NumPy layer library's) is its own
        if b in known
        else b in MODULE_BASES or b.endswith("nn.Module") or _torch_container(b)
        for b in bases
    )
    self_managed = any(_framework_base(b) or (b in known and known[b][1]) for b in bases)
    return is_module or (self_managed and any("Lightning" in b for b in bases)), self_managed


def _torch_container(base: str) -> bool:
    """`nn.Sequential`, `nn.ModuleList`, `nn.ModuleDict` (a class deriving from one is an
    nn.Module: `class Ensemble(nn.ModuleList)`)."""
    head, _, name = base.rpartition(".")
    return name in ("Sequential", "ModuleList", "ModuleDict") and head in ("torch.nn", "nn")


def _framework_base(base: str) -> bool:
    """A Lightning module or a Hugging Face trainer: named so and imported from the framework
    (`transformers.Trainer`, `trl.SFTTrainer`), or written as the frameworks' documentation
    writes it with its import out of sight (`pl.LightningModule`; a bare `Trainer` of a star
    import). A `Trainer` imported from the project is the project's own class."""
    if base in SELF_MANAGED_BASES:
        return True
    name = base.rsplit(".", 1)[-1]
    return base.split(".")[0] in SELF_MANAGED_PACKAGES and (
        name == "LightningModule" or name.endswith("Trainer")
    )


def framework_trainer(qualified: str) -> bool:
    """A trainer class of a framework that owns the modes and autograd of the model it is
    given (`transformers.Trainer`, `trl.SFTTrainer`, Lightning's `Trainer`): its `train()`
    trains in training mode and its `evaluate()`/`predict()` run in eval mode under no_grad.
    The trainer is no nn.Module: calling its methods runs no forward of its own."""
    root, _, name = qualified.partition(".")
    return root in SELF_MANAGED_PACKAGES and name.rsplit(".", 1)[-1].endswith("Trainer")


def module_classes_of_text(source: str) -> Optional[dict[str, Optional[bool]]]:
    """Class name -> whether it subclasses nn.Module (None: it derives from nothing, a plain
    class), read with CPython's parser (a tenth of LibCST's cost): all an importer asks of
    most imported files. None if CPython cannot parse it. Same rules and scopes as
    `collect_definitions`."""
    try:
        tree = shared_python_tree(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    imports = ImportTable()
    for node in ast_statements(tree):  # as ast.walk: imports are statements, in its order
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports.bind_import(alias.name, alias.asname)
        elif isinstance(node, ast.ImportFrom) and not any(
            alias.name == "*" for alias in node.names
        ):
            for alias in node.names:
                imports.bind_from(node.module or "", node.level, alias.name, alias.asname)
    known: dict[str, tuple[bool, bool]] = {}
    plain: set[str] = set()

    def visit_class(node: ast.ClassDef, prefix: str) -> None:
        bases = tuple(_qualified(base, imports) for base in node.bases)
        name = f"{prefix}{node.name}"
        known[name] = class_kind(bases, known)
        if all(base == "object" for base in bases):
            plain.add(name)
        for inner in node.body:
            if isinstance(inner, ast.ClassDef):
                visit_class(inner, f"{name}.")

    def visit_top(statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.ClassDef):
                visit_class(statement, "")
            elif isinstance(statement, (ast.If, ast.Try)):
                visit_top(statement.body)  # as `_compound_top_level`: the guarded body only

    visit_top(tree.body)
    return {name: None if name in plain else kind[0] for name, kind in known.items()}


def _generic_origin(base: cst.BaseExpression) -> cst.BaseExpression:
    """`Collector[CollectStats]` -> `Collector`: a generic base is still that class."""
    return base.value if type(base) is cst.Subscript else base


def _qualified(expr: ast.expr, imports: ImportTable) -> str:
    if isinstance(expr, ast.Subscript):
        expr = expr.value  # a generic base: `Collector[CollectStats]`
    dotted = ast_dotted(expr)
    return imports.qualify_name(dotted) if dotted else ""


def _block(suite: cst.BaseSuite) -> list[cst.CSTNode]:
    return list(suite.body) if type(suite) is cst.IndentedBlock else []


def _compound_top_level(statement: cst.CSTNode) -> list[cst.CSTNode]:
    """Definitions at module level, including those under `if`/`try` (import guards)."""
    if type(statement) in (cst.FunctionDef, cst.ClassDef):
        return [statement]
    found: list[cst.CSTNode] = []
    if type(statement) in (cst.If, cst.Try):
        compound = cast("cst.If | cst.Try", statement)
        for block in (compound.body, getattr(compound, "orelse", None)):
            if type(block) is cst.IndentedBlock:
                for inner in block.body:
                    found.extend(_compound_top_level(inner))
    return found


@dataclass(frozen=True)
class ScopeNames:
    """What one walk of a function body (nested scopes excluded) finds."""

    evidence: frozenset[str]
    """Dotted names that receive a call only modules answer (`x.eval()`, `x.parameters()`)."""
    names: frozenset[str]
    """Every bare name read or written."""
    assigned: frozenset[str]
    """Bare names assigned to (`x = ...`)."""
    attribute_assignments: tuple[tuple[str, cst.BaseExpression], ...]
    """(`self.x`, value) for every `self.x = value`: a class's module attributes."""
    called_attributes: frozenset[str]
    """`self.x` called directly (`self.x(...)`)."""
    non_module: frozenset[str] = frozenset()
    """Dotted names that receive a call only a tokenizer or processor answers
    (`x.batch_decode(...)`, `x(texts, return_tensors="pt")`): see NON_MODULE_METHODS."""
    declared_outer: frozenset[str] = frozenset()
    """Names declared `global` or `nonlocal`: assigning them binds no local."""

    @property
    def locals(self) -> frozenset[str]:
        """Names this scope binds for itself: another scope's module of the same name is
        not what they hold (`gen = torch.zeros_like` in a test helper)."""
        return self.assigned - self.declared_outer


_MODULE_ONLY_WRAPPERS = frozenset(
    {"DataParallel", "DistributedDataParallel", "FullyShardedDataParallel", "DDP", "FSDP"}
)
"""Wrapper classes that accept only an `nn.Module`: what they are given is a module, whatever
its name (`torch.compile` and `torch.jit.script` also take plain functions)."""


def _wraps_a_module(value: cst.BaseExpression) -> bool:
    if type(value) is not cst.Call:
        return False
    func = value.func
    name = (
        func.attr.value
        if type(func) is cst.Attribute
        else func.value
        if type(func) is cst.Name
        else ""
    )
    return name in _MODULE_ONLY_WRAPPERS


def _wrapped_evidence(call: cst.Call, evidence: set[str]) -> None:
    """`DistributedDataParallel(base, ...)`: `base` is a module."""
    first = next((a for a in call.args if a.keyword is None and not a.star), None)
    if first is None:
        first = next((a for a in call.args if a.keyword and a.keyword.value == "module"), None)
    name = dotted_name(first.value) if first is not None else None
    if name is not None:
        evidence.add(name)


def _module_arity(call: cst.Call) -> bool:
    """`x.eval()`, `x.train()`, `x.train(False)`: called as `nn.Module` takes them. A plain
    trainer's `engine.eval(x, y)` / `engine.train(x, y)` (a step of an object that holds a
    model) is no evidence that `engine` is a module."""
    name = cast(cst.Attribute, call.func).attr.value
    limit = 0 if name == "eval" else 1 if name == "train" else None
    return limit is None or len(call.args) <= limit


def _is_self_attribute(target: cst.BaseExpression) -> bool:
    return (
        type(target) is cst.Attribute
        and type(target.value) is cst.Name
        and target.value.value == "self"
    )


def _self_attributes(
    target: cst.BaseExpression, value: cst.BaseExpression
) -> list[tuple[str, cst.BaseExpression]]:
    """`self.x = v` -> [("self.x", v)]; `self.model, self.config = self.load()` -> each
    attribute with the call (`self.a, self.b = u, v`: each with its own value)."""
    if _is_self_attribute(target):
        return [(f"self.{cast(cst.Attribute, target).attr.value}", value)]
    if type(target) not in (cst.Tuple, cst.List):
        return []
    elements = [e.value for e in cast("cst.Tuple | cst.List", target).elements]
    values = (
        [e.value for e in cast("cst.Tuple | cst.List", value).elements]
        if type(value) in (cst.Tuple, cst.List)
        else None
    )
    if values is not None and len(values) != len(elements):
        return []
    found = []
    for index, element in enumerate(elements):
        if _is_self_attribute(element):
            held = values[index] if values is not None else value
            found.append((f"self.{cast(cst.Attribute, element).attr.value}", held))
    return found


def scope_names(body: cst.CSTNode) -> ScopeNames:
    """One lean walk of a scope (its nested scopes excluded)."""
    evidence: set[str] = set()
    names: set[str] = set()
    assigned: set[str] = set()
    attribute_assignments: list[tuple[str, cst.BaseExpression]] = []
    called_attributes: set[str] = set()
    non_module: set[str] = set()
    declared_outer: set[str] = set()
    for node in iter_nodes(body):
        node_type = type(node)
        if node_type is cst.Name:
            names.add(node.value)  # type: ignore[attr-defined]
        elif node_type is cst.Global or node_type is cst.Nonlocal:
            declared_outer.update(n.name.value for n in node.names)  # type: ignore[attr-defined]
        elif node_type is cst.AssignTarget and type(node.target) is cst.Name:  # type: ignore[attr-defined]
            assigned.add(node.target.value)  # type: ignore[attr-defined]
        elif node_type is cst.Assign:
            if _wraps_a_module(node.value):  # type: ignore[attr-defined]
                # `wrapped = DistributedDataParallel(base)`: the wrapper is a module too
                for target in node.targets:  # type: ignore[attr-defined]
                    name = dotted_name(target.target)
                    if name is not None:
                        evidence.add(name)
            for target in node.targets:  # type: ignore[attr-defined]
                attribute_assignments.extend(_self_attributes(target.target, node.value))  # type: ignore[attr-defined]
        elif node_type is cst.Call and type(node.func) is cst.Attribute:  # type: ignore[attr-defined]
            func = node.func  # type: ignore[attr-defined]
            keyword = _takes_non_module_keyword(cast(cst.Call, node))
            if func.attr.value in NON_MODULE_METHODS or (
                keyword and func.attr.value in ("encode", "decode")
            ):
                name = dotted_name(func.value)  # `tok.batch_decode(ids)`
            else:
                name = dotted_name(func) if keyword else None  # `self.tok(s, truncation=True)`
            if name is not None:
                non_module.add(name)
            if func.attr.value in _MODULE_ONLY_WRAPPERS:
                _wrapped_evidence(node, evidence)  # type: ignore[arg-type]
            elif func.attr.value in MODULE_EVIDENCE_METHODS and _module_arity(node):  # type: ignore[arg-type]
                name = dotted_name(func.value)
                if name is not None and not (words(name.split(".")[-1]) & NOT_MODULE_WORDS):
                    evidence.add(name)
            elif type(func.value) is cst.Name and func.value.value == "self":
                called_attributes.add(f"self.{func.attr.value}")
        elif (
            node_type is cst.Call
            and type(node.func) is cst.Name  # type: ignore[attr-defined]
            and node.func.value in _MODULE_ONLY_WRAPPERS  # type: ignore[attr-defined]
        ):
            _wrapped_evidence(node, evidence)  # type: ignore[arg-type]
        elif node_type is cst.Call and _takes_non_module_keyword(cast(cst.Call, node)):
            name = dotted_name(node.func)  # type: ignore[attr-defined]
            if name is not None:
                non_module.add(name)  # `tokenizer(texts, return_tensors="pt")`
        elif node_type is cst.Call and _tests_callable(cast(cst.Call, node)):
            # `d() if callable(d) else d`: a value or a factory; a module is always callable
            name = dotted_name(node.args[0].value)  # type: ignore[attr-defined]
            if name is not None:
                non_module.add(name)
    return ScopeNames(
        frozenset(evidence),
        frozenset(names),
        frozenset(assigned),
        tuple(attribute_assignments),
        frozenset(called_attributes),
        frozenset(non_module),
        frozenset(declared_outer),
    )


def _tests_callable(call: cst.Call) -> bool:
    """`callable(x)`: a test that only makes sense for a value that may be no function."""
    return (
        type(call.func) is cst.Name
        and call.func.value == "callable"
        and len(call.args) == 1
        and call.args[0].keyword is None
    )


def _takes_non_module_keyword(call: cst.Call) -> bool:
    return any(
        arg.keyword is not None and arg.keyword.value in NON_MODULE_KEYWORDS for arg in call.args
    )


def frozen_modules(statements: Iterable[cst.CSTNode]) -> frozenset[str]:
    """Dotted names whose parameters these statements freeze, by either idiom:
    `x.requires_grad_(False)`, or `for p in x.parameters(): p.requires_grad = False`. A
    module with a part unfrozen again (`x.fc.requires_grad_(True)`, `x[2].requires_grad_()`)
    or replaced (`x.fc = nn.Linear(...)`: new parameters train) is not frozen, nor is a name
    bound afresh twice (`model = backbone()` on one branch, `model = Ensemble()` on another:
    which of the two the freeze reached depends on the path)."""
    switched: dict[str, set[bool]] = {}
    replaced: set[str] = set()
    fresh: dict[str, int] = {}
    statements = list(statements)
    last = max(
        (i for i, statement in enumerate(statements) if not _only_returns(statement)), default=-1
    )
    thawed_early: set[str] = set()
    """Names unfrozen before the last statement (a freeze the function does not undo last)."""
    frozen_early: set[str] = set()
    for index, statement in enumerate(statements):
        before = {name: set(flags) for name, flags in switched.items()}
        for node in iter_nodes(statement):
            node_type = type(node)
            if node_type is cst.Call:
                switch = _requires_grad_flag(node, None)
                if switch is not None:
                    # the flag test proved `node.func` is an attribute (`x.requires_grad_`)
                    func = cast(cst.Attribute, cast(cst.Call, node).func)
                    # `sampler.eval().requires_grad_(False)`: the chain's module, `sampler`
                    receiver = chain_receiver(func.value, SAME_MODULE_OR_MODE_METHODS)
                    switched.setdefault(_root_name(receiver), set()).add(switch)
            elif node_type is cst.Assign:
                assign = cast(cst.Assign, node)
                replaced.update(
                    _root_name(target.target)
                    for target in assign.targets
                    if type(target.target) is not cst.Name
                )
                chained = _chained_requires_grad(assign.value)
                for target in assign.targets:
                    name = target.target.value if type(target.target) is cst.Name else None
                    if name is not None and not _reads(assign.value, name):
                        fresh[name] = fresh.get(name, 0) + 1
                    if name is not None and chained is not None:
                        # `clip_model = load(name)[0].eval().requires_grad_(False)`
                        switched.setdefault(name, set()).add(chained)
                    elif name is not None and switched.get(_copied(assign.value) or "") == {False}:
                        # `ema = copy.deepcopy(model).eval()` of a frozen model: a deep copy
                        # keeps each parameter's `requires_grad`
                        switched.setdefault(name, set()).add(False)
            elif node_type is cst.For:
                loop = cast(cst.For, node)
                if type(loop.iter) is not cst.Call or type(loop.iter.func) is not cst.Attribute:
                    continue
                method = loop.iter.func
                parameter = (
                    loop.target.elements[-1].value
                    if type(loop.target) is cst.Tuple and loop.target.elements
                    else loop.target
                )
                if (
                    method.attr.value in ("parameters", "named_parameters")
                    and type(parameter) is cst.Name
                ):
                    for inner in iter_nodes(loop.body):
                        flag = _requires_grad_flag(inner, parameter.value)
                        if flag is not None:
                            switched.setdefault(_root_name(method.value), set()).add(flag)
        if index < last:
            frozen_early.update(name for name, flags in switched.items() if False in flags)
            thawed_early.update(
                name
                for name, flags in switched.items()
                if True in flags and True not in before.get(name, ())
            )
    # `for p in model.parameters(): p.requires_grad = False`, an evaluation, then the same
    # loop with `True` as the function's last statement: frozen while the function runs,
    # trainable again for its caller (a helper that preserves the caller's grad state)
    restored = {
        name
        for name, flags in switched.items()
        if flags == {False, True} and name in frozen_early and name not in thawed_early
    }
    for name in restored:
        switched[name] = {False}
    thawed = [name for name, flags in switched.items() if True in flags] + list(replaced)
    thawed += [name for name, count in fresh.items() if count > 1 and name in switched]
    return frozenset(
        name
        for name, flags in switched.items()
        if flags == {False}
        and name
        and not any(
            other == name or other.startswith(name + ".") or name.startswith(other + ".")
            for other in thawed
        )
    )


def _chained_requires_grad(value: cst.BaseExpression) -> Optional[bool]:
    """The flag of a `requires_grad_(flag)` that a chain of methods returning the module
    ends with (`load(name)[0].eval().requires_grad_(False).to(device)`), else None."""
    while type(value) is cst.Call and type(value.func) is cst.Attribute:
        if value.func.attr.value == "requires_grad_":
            return _requires_grad_flag(value, None)
        if value.func.attr.value not in SAME_MODULE_OR_MODE_METHODS:
            return None
        value = value.func.value
    return None


def _copied(value: cst.BaseExpression) -> Optional[str]:
    """The name `copy.deepcopy(name)` copies, under a chain of methods returning the module
    (`copy.deepcopy(G).eval().to(device)`), else None."""
    while (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value in SAME_MODULE_OR_MODE_METHODS
    ):
        value = value.func.value
    if (
        type(value) is cst.Call
        and dotted_name(value.func) in ("copy.deepcopy", "deepcopy")
        and len(value.args) == 1
        and type(value.args[0].value) is cst.Name
    ):
        return value.args[0].value.value
    return None


def _only_returns(statement: cst.CSTNode) -> bool:
    return type(statement) is cst.SimpleStatementLine and all(
        type(small) is cst.Return for small in statement.body
    )


def _reads(value: cst.BaseExpression, name: str) -> bool:
    """Whether `value` reads the variable `name` (`FLAGS.name` reads `FLAGS`, not `name`;
    `f(name=x)` reads `x`)."""
    attributes = {id(n.attr) for n in iter_nodes(value) if type(n) is cst.Attribute}
    attributes |= {id(n.keyword) for n in iter_nodes(value) if type(n) is cst.Arg and n.keyword}
    return any(
        type(n) is cst.Name and n.value == name and id(n) not in attributes
        for n in iter_nodes(value)
    )


def _root_name(expr: cst.BaseExpression) -> str:
    """The dotted name an expression starts from: `model.fc` for `model.fc[0].weight`."""
    while type(expr) in (cst.Subscript, cst.Call):
        expr = expr.value if type(expr) is cst.Subscript else expr.func  # type: ignore[attr-defined]
    name = dotted_name(expr)
    if name is not None:
        return name
    return _root_name(expr.value) if type(expr) is cst.Attribute else ""


def _requires_grad_flag(node: cst.CSTNode, parameter: Optional[str]) -> Optional[bool]:
    """The constant that `x.requires_grad_(flag)` (for `parameter` None: any `x`) or
    `parameter.requires_grad = flag` sets, else None."""
    if (
        type(node) is cst.Assign
        and parameter is not None
        and type(node.value) is cst.Name
        and node.value.value in ("True", "False")
    ):
        if any(
            dotted_name(target.target) == f"{parameter}.requires_grad" for target in node.targets
        ):
            return node.value.value == "True"
        return None
    if (
        type(node) is not cst.Call
        or type(node.func) is not cst.Attribute
        or node.func.attr.value != "requires_grad_"
    ):
        return None
    if parameter is not None and dotted_name(node.func.value) != parameter:
        return None
    if not node.args:
        return True
    value = node.args[0].value
    return (
        value.value == "True"
        if type(value) is cst.Name and value.value in ("True", "False")
        else None
    )
