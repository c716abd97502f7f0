"""What a name or expression holds, as far as modules are concerned: aliases, fresh modules and
their mode facts (`from_pretrained()` loads in eval mode), forward targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional, cast

import libcst as cst

from evallint.analysis.arguments import submodule_argument
from evallint.analysis.assembled_parts import common_key, container_parts, part_of
from evallint.analysis.built_modes import built_class, constructed_modes
from evallint.analysis.class_aliases import class_alias
from evallint.analysis.class_chains import Chain
from evallint.analysis.closures import functions_bound
from evallint.analysis.context import code_of
from evallint.analysis.factory_tables import factory_entries
from evallint.analysis.forward_methods import trains_in_forward
from evallint.analysis.instances import imported_class
from evallint.analysis.lattice import (
    ENTRY_MODE,
    Mode,
    ModeFact,
    Origin,
    PathState,
)
from evallint.analysis.mode_matters import ModeMatters, built_mode_sensitive
from evallint.analysis.mode_overrides import unbound_switch_receiver
from evallint.analysis.module_sources import library_class
from evallint.analysis.plain_modules import mode_free_module_class
from evallint.analysis.plain_objects import (
    annotated_plain,
    attribute_holds_no_module,
    builds_plain_object,
    imported_factory_builds_plain_object,
    parameter_named,
)
from evallint.analysis.project_forwards import (
    project_defines_method,
    project_forward_disputed,
    project_method_trains,
    project_runs_forward,
)
from evallint.analysis.scope import (
    ClassInfo,
    framework_trainer,
    looks_like_module_name,
)
from evallint.analysis.summaries import Summary
from evallint.analysis.symbols import chain_receiver, dotted_name
from evallint.analysis.vocabulary import (
    CLASS_NAME_MODULE_WORDS,
    CONTAINER_LAYERS,
    FORWARD_METHODS,
    LIBRARY_FACTORIES,
    MODE_DEPENDENT_LAYERS,
    MODE_INDEPENDENT_SUFFIXES,
    MODULE_NAME_WORDS,
    NON_MODULE_METHODS,
    NOT_MODULE_WORDS,
    PRETRAINED_LOADERS,
    SAME_MODULE_ATTRIBUTES,
    SAME_MODULE_METHODS,
    STATELESS_LAYERS,
    UNKNOWN_MODE_LOADERS,
    UNWRAPPING_CALLS,
    WRAPPERS,
    words,
)
from evallint.analysis.walk import iter_nodes
from evallint.source.literals import literal_value
from evallint.torch_facts import FORWARD_RUNNERS, MODE_KEEPING_COPIES, MODULE_API, NO_GRAD_METHODS


# -- values ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleValue:
    """What an expression evaluates to, as far as modules are concerned."""

    key: Optional[str] = None
    """An existing module (alias)."""
    fresh: Optional[frozenset] = None
    """A new module with these mode facts."""
    mode_matters: bool = True
    copy_of: Optional[str] = None


_NOT_MODULE_PRETRAINED = (
    "Tokenizer",
    "Processor",
    "Config",
    "Extractor",
    "Scheduler",
    "Pipeline",
    "tokenizer",
    "processor",
    "config",
)
"""`from_pretrained` owners that load something other than a model."""


_PRETRAINED_MODULE_WORDS = CLASS_NAME_MODULE_WORDS | {"for", "lm", "head", "peft"}
"""Words of library classes whose `from_pretrained` loads a module (`AutoModelForCausalLM`,
`LlamaForCausalLM`, `GPT2LMHeadModel`, `UNet2DConditionModel`, `PeftModel`)."""


_NOT_MODULE_CLASS_SUFFIXES = ("Loss", "Criterion", "Metric", "Metrics")
"""Module classes that compute a loss or a metric: calling one is not a model forward."""


_FORWARD_WORDS = frozenset(
    {
        "forward",
        "predict",
        "encode",
        "decode",
        "generate",
        "embed",
        "infer",
        "inference",
        "sample",
        "logits",
        "features",
    }
)


_NOT_FORWARD_WORDS = frozenset(
    {
        "parameters",
        "state",
        "dict",
        "load",
        "save",
        "register",
        "init",
        "config",
        "num",
        "print",
        "resize",
        "get",
        "set",
        "freeze",
        "unfreeze",
        "hook",
        "weights",
        "to",
        "apply",
        "named",
        "buffers",
        "modules",
        "children",
        "zero",
        "grad",
        "train",
        "eval",
        "pretrained",
        "gradient",
        "checkpointing",
        "tie",
        "prune",
        "half",
        "float",
        "cuda",
        "cpu",
    }
)


_FORWARD_OR_MODULE_WORDS = _FORWARD_WORDS | MODULE_NAME_WORDS


@lru_cache(maxsize=4096)
def _names_a_forward(attribute: str) -> bool:
    """`decoder`, `forward_features`, `encode_text` run a forward; `state_dict`,
    `num_parameters`, `save_pretrained` do not."""
    found = words(attribute)
    return bool(found & _FORWARD_OR_MODULE_WORDS) and not found & _NOT_FORWARD_WORDS


class Values(ModeMatters):
    """Part of the interpreter (see interpreter.py)."""

    def _key_id(self, key: str) -> str:
        """Identity of a key for flow-insensitive facts: `self.X` belongs to its class."""
        owner = self._owner()
        if key.startswith("self.") and owner is not None:
            return f"{owner.name}::{key}"
        return f"{self.info.qualname if self.info else ''}::{key}"

    def _non_module(self, name: str) -> bool:
        """Whether a name is used only as a tokenizer or processor is (see NON_MODULE_METHODS)
        and never as a module: evidence that it holds no module, which outweighs its name
        (`self.encoder_tokenizer`). `self.X` is judged over all methods of its class."""
        owner = self._owner()
        if name.startswith("self.") and owner is not None:
            if owner.non_module_attributes is None:
                used_as_tokenizer: set[str] = set()
                used_as_module: set[str] = set()
                built = self._library_built_attributes(owner)
                for method in owner.methods.values():
                    scope = self.file.scope(method.node)
                    used_as_tokenizer |= scope.non_module
                    used_as_module |= scope.evidence
                owner.non_module_attributes = frozenset(
                    (used_as_tokenizer | built) - used_as_module
                )
            return name in owner.non_module_attributes
        body = self.info.node if self.info is not None else self.file.module
        return name in self.file.scope(body).non_module and name not in self.evidence_names

    def _library_built_attributes(self, owner: ClassInfo) -> set[str]:
        """`self.X` paths that every assignment in the class binds to an object of a class of
        a package outside torch and the project (`self.bpe_model = youtokentome.BPE(...)`,
        see module_sources.library_class): their names say nothing; only a use as a module
        (`.parameters()`, `.eval()`) makes them one."""
        project = self.file.project or self.file.reader
        built: set[str] = set()
        other: set[str] = set()
        for method in owner.methods.values():
            for node in iter_nodes(method.node):
                if type(node) is not cst.Assign:
                    continue
                for target in node.targets:
                    name = dotted_name(target.target)
                    if name is None or not name.startswith("self.") or name.count(".") != 1:
                        continue
                    value = node.value
                    if type(value) is cst.Call and library_class(
                        self.imports, project, self.file.path, value
                    ):
                        built.add(name)
                    else:
                        other.add(name)
        return built - other

    def _builds_plain_object(self, value: cst.BaseExpression) -> bool:
        """`Encoder(...)`, or `get_encoder()` whose every `return` builds one: an object of a
        class of this file that is not a module (its attribute's name says nothing)."""
        if type(value) is not cst.Call:
            return False
        cls = self._local_class(value)
        if cls is not None:
            return not cls.is_module
        if builds_plain_object(self.file, value):
            return True  # `TextEncoder(...)` of a project file: its class derives from nothing
        if framework_trainer(self.imports.qualify(value.func) or ""):
            return True  # `trainer = transformers.Trainer(model=model, ...)`: no module
        if imported_factory_builds_plain_object(self.file, value):
            return True  # `build_tracker(cfg)` of a project file, returning such objects
        name = dotted_name(value.func)
        function = self.file.functions.get(name or "")
        if function is None:
            return False
        nodes = list(iter_nodes(function.node.body))
        built = {
            t.target.value: n.value
            for n in nodes
            if type(n) is cst.Assign
            for t in n.targets
            if type(t.target) is cst.Name
        }
        returned = [
            built.get(n.value.value, n.value) if type(n.value) is cst.Name else n.value
            for n in nodes
            if type(n) is cst.Return and n.value is not None
        ]
        return bool(returned) and all(
            type(r) is cst.Call
            and (
                not cast(ClassInfo, self._local_class(r)).is_module
                if self._local_class(r) is not None
                else builds_plain_object(self.file, r)  # `return WanderPolicy()` of the project
            )
            for r in returned
        )

    def _trains_itself(self, key: str, state: PathState) -> bool:
        """Whether every fact of `key` says it was built (here) by a module class whose
        `forward` trains it (see forward_methods.SELF_TRAINING)."""
        sites = [fact.site for fact in state.mode_of(key) or ()]
        for index, site in enumerate(sites):
            site = chain_receiver(site, SAME_MODULE_METHODS)  # `Meta(args).to(device)`
            sites[index] = site
        return bool(sites) and all(
            type(site) is cst.Call and trains_in_forward(self.file, site) for site in sites
        )

    def _no_module(self, value: cst.BaseExpression) -> bool:
        """A value built as an object of a plain class, or loaded by a loader whose class is
        not known to be a module (`AutoTokenizer.from_pretrained(...)`)."""
        return self._builds_plain_object(value) or self._weakly_loaded(value)

    def _weakly_loaded(self, value: cst.BaseExpression) -> bool:
        """`tokenizer_class.from_pretrained(...)`, `RagRetriever.from_pretrained(...)`: a
        loader whose class is not known to be a module (a variable, or a library class not
        named as Hugging Face names its models: `...Model`, `...ForX`, `...LMHead...`). What
        it returns is a module only if the code uses it as one."""
        if type(value) is not cst.Call or type(value.func) is not cst.Attribute:
            return False
        if value.func.attr.value not in PRETRAINED_LOADERS:
            return False
        owner = self.imports.qualify(value.func.value) or dotted_name(value.func.value) or ""
        if owner in self.file.classes:
            return not self.file.classes[owner].is_module
        last = owner.split(".")[-1]
        return not (last[:1].isupper() and words(last) & _PRETRAINED_MODULE_WORDS)

    def _local_class(self, call: cst.Call) -> Optional[ClassInfo]:
        name = dotted_name(call.func)
        return self.file.classes.get(name) if name else None

    # -- values --------------------------------------------------------------------------------
    def resolve(self, expr: cst.BaseExpression, state: PathState) -> Optional[str]:
        """The module key an expression names, if it names a module."""
        while type(expr) is cst.Attribute and expr.attr.value in SAME_MODULE_ATTRIBUTES:
            expr = expr.value
        if type(expr) is cst.Subscript:
            return self._member(expr, state)
        name = dotted_name(expr)
        if name is None or name in self.opaque_variables:
            return None
        key = state.key_of(name)
        if key is not None:
            return key
        if name in self.scope_keys:
            return name
        root = name.split(".", 1)[0]
        if (
            root != name
            and (root in self.instances or root in self.imported_instances)
            and state.mode_of(name) is not None
        ):
            return name  # `engine.model` of a plain trainer whose methods switch its model
        return None

    def held_path(self, expr: cst.BaseExpression, state: PathState) -> Optional[str]:
        """`context.model` with `context` a parameter object, or a module bound here
        (`net = ranker.model` after `ranker = Ranker(...)`): the module its attribute holds,
        keyed under the object (a callee that switches `context.model` reaches it)."""
        name = dotted_name(expr) if type(expr) is cst.Attribute else None
        if name is None or name.startswith("self."):
            return None
        root, _, rest = name.partition(".")
        info = self.info
        parameter = info is not None and root in info.params + info.keyword_only
        if not parameter and state.key_of(root) is None:
            return None
        key = self.resolve(cst.Name(root), state)
        if key is None:
            return None
        return state.key_of(f"{key}.{rest}") or f"{key}.{rest}"

    def _member(self, expr: cst.Subscript, state: PathState) -> Optional[str]:
        """`nets[0]`, `models["g"]`: the module a container holds there (the only one, for
        an index that is not a constant)."""
        members = self.containers.get(dotted_name(expr.value) or "")
        if not members or len(expr.slice) != 1:
            return None
        index = expr.slice[0].slice
        if type(index) is not cst.Index:
            return None
        label = None
        if type(index.value) is cst.Integer:
            label = index.value.value
        elif type(index.value) is cst.SimpleString:
            label = repr(literal_value(index.value))
        base = dotted_name(expr.value)
        for member in members:
            if label is not None and member == f"{base}[{label}]":
                return state.key_of(member) or member
        if label is not None and type(index.value) is cst.Integer:
            position = int(label)
            if 0 <= position < len(members):
                return state.key_of(members[position]) or members[position]
        return state.key_of(members[0]) or members[0] if len(members) == 1 else None

    def passes_module(self, call: cst.Call, state: PathState) -> bool:
        """Whether a call passes a module (a parameter that is one only if some caller
        passes one does not count: following the call costs a parse of another file)."""
        for arg in call.args:
            key = self.resolve(arg.value, state) or submodule_argument(
                self.resolve, arg.value, state
            )
            if key is not None and self.candidate_keys.get(key, 0) != 2:
                return True
        return False

    def value_of(
        self, expr: cst.BaseExpression, state: PathState, holder: Optional[str] = None
    ) -> ModuleValue:
        """What `expr` holds; `holder` is the name it is assigned to, if any."""
        key = self.resolve(expr, state)
        if key is not None:
            return ModuleValue(key=key)
        if type(expr) is cst.IfExp:
            # `model.train() if training else model.eval()`: the same module either way
            then, other = self.value_of(expr.body, state), self.value_of(expr.orelse, state)
            return then if then.key is not None and then.key == other.key else ModuleValue()
        if type(expr) is not cst.Call:
            return ModuleValue()
        if holder is not None and self._weakly_loaded(expr) and self._non_module(holder):
            return ModuleValue()  # `tok = tokenizer_class.from_pretrained(p)`, used as one
        assembled = self._assembled_from(expr, state)
        if assembled is not None:
            return ModuleValue(key=assembled)  # `nn.Sequential(*list(net.children())[:-1])`
        if expr in self.constructor_calls:
            facts = self._constructor_facts(expr)  # an nn.Linear-only class: mode is moot
            fresh = frozenset({ModeFact(Mode.TRAIN, Origin.CONSTRUCTED, expr)})
            if facts is not None and any(f.origin is Origin.SWITCHED for f in facts[0]):
                fresh = facts[0]  # its constructor calls `self.eval()` (see built_modes.py)
            return ModuleValue(fresh=fresh, mode_matters=facts is None or facts[1])
        func = expr.func
        if type(func) is cst.Attribute:
            attr = func.attr.value
            if attr in SAME_MODULE_METHODS or attr in ("eval", "train"):
                inner = self.value_of(func.value, state, holder)
                if (
                    attr == "eval"
                    and not expr.args
                    and inner.fresh is None
                    and inner.key is None
                    and type(func.value) is cst.Call
                    and type(func.value.func) is cst.Subscript
                ):
                    # `return registry[name](pretrained=True).eval()`: whatever the registry
                    # builds, it is returned in eval mode
                    return ModuleValue(
                        fresh=frozenset({ModeFact(Mode.EVAL, Origin.SWITCHED, expr)})
                    )
                if inner.fresh is not None and attr in ("eval", "train"):
                    mode = self._mode_argument(expr) if attr == "train" else Mode.EVAL
                    if mode is not None:
                        return replace(
                            inner, fresh=frozenset({ModeFact(mode, Origin.SWITCHED, expr)})
                        )
                return inner
        qualified = self.imports.qualify(func) or ""
        if qualified in WRAPPERS or (
            qualified.split(".")[-1] in ("DataParallel", "DistributedDataParallel", "compile")
            and qualified.startswith("torch")
        ):
            if expr.args:
                return self.value_of(expr.args[0].value, state, holder)
        if qualified.rsplit(".", 1)[-1] in UNWRAPPING_CALLS and expr.args and not expr.args[0].star:
            # `accelerator.unwrap_model(self.policy)`: the module inside the wrapper
            return self.value_of(expr.args[0].value, state, holder)
        if qualified in ("copy.deepcopy", "deepcopy") or qualified in MODE_KEEPING_COPIES:
            if expr.args:
                inner = self.value_of(expr.args[0].value, state)
                if inner.key is not None:
                    return ModuleValue(fresh=state.mode_in_tree(inner.key) or ENTRY_MODE)
                return inner
        if (
            type(func) is cst.Attribute
            and func.attr.value == "prepare"
            and len(expr.args) == 1
            and expr.args[0].keyword is None
            and not expr.args[0].star
        ):
            # accelerate: `model = accelerator.prepare(model)` (as binding reads the tuple
            # form): the module it is given, wrapped for its devices, in its mode
            return self.value_of(expr.args[0].value, state, holder)
        chosen = self._chosen_function_value(expr, state, holder) or self._table_value(
            expr, state, holder
        )
        if chosen is not None:
            return chosen
        # a project function (a loader that calls eval() before returning the model) is
        # read before the names of library loaders are trusted
        project_function = (
            type(func) is cst.Name
            and not func.value[:1].isupper()
            and (func.value in self.file.functions or func.value in self.imports.modules_from)
        )
        resolved = (
            self._returned_by(expr, holder)
            if project_function or self._constructor_facts(expr) is None
            else None
        )
        facts = self._constructor_facts(expr) if resolved is None else None
        if facts is not None:
            return ModuleValue(fresh=facts[0], mode_matters=facts[1])
        if (
            resolved is None
            and holder in self.evidence_names
            and library_class(self.imports, self.file.project, self.file.path, expr)
        ):
            # `net = RetinaNet()` of a library, then `net.load_state_dict(...)`: a module by
            # its use, built here in training mode
            return ModuleValue(fresh=frozenset({ModeFact(Mode.TRAIN, Origin.CONSTRUCTED, expr)}))
        if resolved is not None:
            if resolved.return_facts:
                return ModuleValue(
                    fresh=frozenset(
                        ModeFact(f.mode, f.origin, expr)
                        for f in resolved.return_facts
                        if f.mode is not Mode.ENTRY
                    )
                    or None,
                    mode_matters=not resolved.return_mode_free,
                )
            if resolved.return_key is not None:
                mapped = self._map_argument(resolved, resolved.return_key, expr, None, state)
                if mapped is not None:
                    return ModuleValue(key=mapped)
        elif self._rebinds_its_module(expr, holder):
            # `model = fabric.setup(model)`: the module the call we cannot follow was given
            return self.value_of(expr.args[0].value, state, holder)
        return ModuleValue()

    @staticmethod
    def _rebinds_its_module(call: cst.Call, holder: Optional[str]) -> bool:
        """`model = fabric.setup(model)`, `model = ipex.optimize(model, dtype=d)`: a call we
        cannot follow (a library function or method, not a class), given the module as
        its only positional argument, whose result the code binds to the module's own name.
        The code takes the result for that module (wrapped for devices or precision, or the
        module itself): a module's mode lives on its layers and only their train()/eval()
        changes it, so a wrapper built around them computes in the mode they were in."""
        args = call.args
        if holder is None or not args or args[0].keyword is not None or args[0].star:
            return False
        if any(a.keyword is None or a.star for a in args[1:]):
            return False
        callee = dotted_name(call.func) or ""
        return (
            bool(callee)
            and not callee.split(".")[-1][:1].isupper()
            and dotted_name(args[0].value) == holder
        )

    def _chosen_function_value(
        self, call: cst.Call, state: PathState, holder: Optional[str]
    ) -> Optional[ModuleValue]:
        """`model = load_func(path)` with `load_func` bound only to functions of the file
        (`load_checkpoint` or `load_pretrained`, chosen by a flag): the module one of them
        returns, when each returns a new one (the union of their mode facts: both
        `return net.eval()` is eval mode)."""
        func = call.func
        if type(func) is not cst.Name or func.value in self.file.functions:
            return None
        choices = functions_bound(self.file, func.value, self.info)
        if not choices:
            return None
        facts: set = set()
        matters = False
        for choice in choices:
            value = self.value_of(call.with_changes(func=cst.Name(choice)), state, holder)
            if value.fresh is None or value.key is not None:
                return None
            facts.update(ModeFact(f.mode, f.origin, call) for f in value.fresh)
            matters = matters or value.mode_matters
        return ModuleValue(fresh=frozenset(facts), mode_matters=matters)

    def _table_value(
        self, call: cst.Call, state: PathState, holder: Optional[str]
    ) -> Optional[ModuleValue]:
        """`model = MODELS[name]()` with `MODELS` a dict of factories (see factory_tables):
        the module its values return, when each returns a new one (the union of their mode
        facts: all of them `return model.eval()` is eval mode)."""
        func = call.func
        if type(func) is not cst.Subscript or type(func.value) is not cst.Name:
            return None
        name = func.value.value
        entries = factory_entries(self.file, name, self.info)
        facts: set = set()
        matters = False
        if not entries:
            project = self.file.project
            if name not in self.imports.modules_from or project is None:
                return None
            summaries = project.table_summaries(
                self.file.path,
                self.imports.modules_from[name],
                self.imports.qualify_name(name) or name,
            )  # `from .compress import MODELS`
            for summary in summaries or ():
                if not summary.return_facts or any(
                    f.mode is Mode.ENTRY for f in summary.return_facts
                ):
                    return None
                facts.update(ModeFact(f.mode, f.origin, call) for f in summary.return_facts)
                matters = matters or not summary.return_mode_free
            return ModuleValue(fresh=frozenset(facts), mode_matters=matters) if facts else None
        for entry in entries:
            value = self.value_of(call.with_changes(func=entry), state, holder)
            if value.fresh is None or value.key is not None:
                return None
            facts.update(ModeFact(f.mode, f.origin, call) for f in value.fresh)
            matters = matters or value.mode_matters
        return ModuleValue(fresh=frozenset(facts), mode_matters=matters)

    def _assembled_from(self, call: cst.Call, state: PathState) -> Optional[str]:
        """`nn.Sequential(net.conv, net.bn)`, `nn.Sequential(*parts)` with `parts = [net.x,
        net.y]`: a torch container holding parts of a module that exists (see
        assembled_parts), plus layers with no mode, runs them in that module's mode. The
        key of the module they are all parts of; None for anything else (a mode-dependent
        layer built here keeps the container a new module in training mode)."""
        qualified = self.imports.qualify(call.func) or ""
        if not qualified.startswith("torch.nn.") or qualified.split(".")[-1] not in (
            CONTAINER_LAYERS
        ):
            return None
        body = self.info.node if self.info is not None else self.file.module
        parts = container_parts(call, body)
        if parts is None:
            return None
        keys: list[str] = []
        for part in parts:
            key = None
            for expr in (part, part_of(part)):
                key = (
                    key
                    or self.resolve(expr, state)
                    or submodule_argument(self.resolve, expr, state)
                )
            if key is not None:
                keys.append(key)
            elif type(part) is not cst.Call or self._mode_dependent_layer(part):
                return None
        return common_key(keys)

    def _mode_dependent_layer(self, call: cst.Call) -> bool:
        """Whether a construction builds a layer whose output depends on the mode."""
        facts = self._constructor_facts(call)
        if facts is not None:
            return facts[1]
        return not (self.imports.qualify(call.func) or "").startswith("torch.nn.")

    def _own_loader_mode(
        self, owner: cst.BaseExpression, method: str, call: cst.Call
    ) -> Optional[frozenset]:
        """`GPT.from_pretrained(...)` where the project defines that classmethod itself: it is
        not Hugging Face's (which calls `eval()`); read it. A new module built there is in
        training mode unless the method calls `eval()`."""
        name = self.imports.qualify(owner) or dotted_name(owner) or ""
        cls = self.file.classes.get(name)
        if cls is not None:
            info = cls.methods.get(method) or self.file._inherited_method(cls, method)
            if info is None:
                return None
            switches = any(
                type(n) is cst.Call
                and type(n.func) is cst.Attribute
                and n.func.attr.value == "eval"
                and not n.args
                for n in iter_nodes(info.node)
            )
            mode = Mode.EVAL if switches else Mode.TRAIN
            return frozenset({ModeFact(mode, Origin.CONSTRUCTED, call)})
        project = self.file.project
        if (
            project is not None
            and type(owner) is cst.Name
            and owner.value in self.imports.modules_from
            and project.defines_method(
                self.file.path, self.imports.modules_from[owner.value], name, method
            )
        ):
            return frozenset({ModeFact(Mode.TRAIN, Origin.CONSTRUCTED, call)})
        return None

    def _returned_by(self, call: cst.Call, holder: Optional[str]) -> Optional[Summary]:
        """The summary of the project function `call` calls. One in another file is read
        only when what it returns is assigned to a module (used as one here, or named
        like one) or it is named for building one (`load_model`, `restore_net`): reading a
        file costs a parse."""
        name = dotted_name(call.func) or ""
        follow = holder is not None and (
            holder in self.evidence_names
            or looks_like_module_name(holder)
            or bool(words(name.split(".")[-1]) & MODULE_NAME_WORDS)
        )
        resolved = self.file.resolve_function(call, self.info, count=False, passes_module=follow)
        return resolved[0] if resolved else None

    def _constructor_facts(
        self, call: cst.Call, scope: Optional[cst.CSTNode] = None
    ) -> Optional[tuple[frozenset, bool]]:
        """Mode facts of a freshly built or loaded module, and whether its mode matters.
        `scope` is the function the call is in (default: the one interpreted)."""
        if type(call.func) is cst.Name and call.func.value[:1].islower():
            function = scope if scope is not None else (self.info.node if self.info else None)
            alias = class_alias(function, call.func.value)
            if alias is not None:  # `model = DGCNN; ...; model(k=30)`: a call of the class
                facts = self._facts_of_constructor(call.with_changes(func=alias))
                if facts is None:
                    return None
                sites = frozenset(replace(f, site=call) for f in facts[0])
                return sites, facts[1]
        return self._facts_of_constructor(call)

    def _facts_of_constructor(self, call: cst.Call) -> Optional[tuple[frozenset, bool]]:
        func = call.func
        qualified = self.imports.qualify(func) or ""
        last = qualified.split(".")[-1]
        fresh = frozenset({ModeFact(Mode.TRAIN, Origin.CONSTRUCTED, call)})
        if type(func) is cst.Attribute and func.attr.value in PRETRAINED_LOADERS:
            owner = dotted_name(func.value) or ""
            if any(part in owner for part in _NOT_MODULE_PRETRAINED):
                return None
            own = self._own_loader_mode(func.value, func.attr.value, call)
            if own is not None:
                return own, True
            return frozenset({ModeFact(Mode.EVAL, Origin.LOADED, call)}), True
        if last.endswith(_NOT_MODULE_CLASS_SUFFIXES):
            return None
        if qualified.startswith("torch.nn.") and qualified.count(".") == 2:
            if (
                last in STATELESS_LAYERS
                or last.endswith(MODE_INDEPENDENT_SUFFIXES)
                or not last[:1].isupper()
            ):
                return None
            if last in CONTAINER_LAYERS:
                return fresh, not self._holds_only_mode_independent(call)
            if last in MODE_DEPENDENT_LAYERS:
                return fresh, built_mode_sensitive(last, call)
            return fresh, False
        if (
            qualified.startswith(LIBRARY_FACTORIES)
            or qualified in self.file.options.module_factories
        ):
            return fresh, True
        if qualified in self.file.classes and self.file.classes[qualified].is_module:
            built = self._built(call, qualified, fresh, None)
            return built, self._class_mode_matters(self.file.classes[qualified])
        if qualified in self.file.classes and all(
            base in ("", "object") or base in self.file.classes
            for base in self.file.classes[qualified].bases
        ):
            return None  # `class Encoder:` of this file, a plain class: not a module by name
        chain = self._chain_of(call, qualified)
        if chain is Chain.MODULE:
            # `class Tagger(BaseTagger)`, nn.Module two files up
            return self._built(call, qualified, fresh, self._imported_class_of(call)), True
        if chain in (Chain.PLAIN, Chain.OUTSIDE):
            return None  # its bases end in `object` or a library's class: not one by name
        if qualified in UNKNOWN_MODE_LOADERS or last in UNKNOWN_MODE_LOADERS:
            return frozenset(
                {
                    ModeFact(Mode.TRAIN, Origin.LOADED, call),
                    ModeFact(Mode.EVAL, Origin.LOADED, call),
                }
            ), True
        if (
            self.file.project is not None
            and type(func) is cst.Name
            and func.value in self.imports.modules_from
        ):
            kind = self.file.project.class_kind(
                self.file.path, self.imports.modules_from[func.value], qualified
            )
            if kind is True:  # a class keeping no argument and building nothing: mode is moot
                built = self._built(
                    call,
                    qualified,
                    fresh,
                    (self.imports.modules_from[func.value], qualified.split(".")[-1]),
                )
                return built, (
                    self._plain_imported(call) is not False and not self._mode_free_imported(call)
                )
            if kind is None:
                return None  # a plain class of another project file: not a module by name
        if self.file.project is None and self.file.reader is not None:
            # a file read for what its functions return (`psnr = PSNR(); return psnr, ssim`):
            # a module class of another project file built only of mode-independent layers
            # is a module whose mode is moot
            found = self._imported_class_of(call)
            if (
                found is not None
                and self.file.reader.class_kind(self.file.path, *found) is True
                and mode_free_module_class(self.file.reader, self.file.path, *found)
            ):
                return fresh, False
        imported = self._imported_class_of(call) if type(func) is cst.Attribute else None
        if self.file.project is not None and imported is not None:
            # `models.SimpleFFDQN(n, k)` after `from lib import models`: a module class of
            # that file is a module whatever its name; its mode is moot if it holds only
            # mode-independent layers
            kind = self.file.project.class_kind(self.file.path, imported[0], imported[1])
            if kind is True:
                built = self._built(call, qualified, fresh, imported)
                return built, not self._mode_free_imported(call)
        if (
            last[:1].isupper()
            and words(last) & CLASS_NAME_MODULE_WORDS
            and not words(last) & NOT_MODULE_WORDS
            and not self.file.functions.get(last)
            and imported_class(self.file, call) is None  # a plain class of the project
            and not builds_plain_object(self.file, call)  # one of a file with no torch text
            and not library_class(self.imports, self.file.project, self.file.path, call)
        ):
            return fresh, True
        return None

    def _built(
        self,
        call: cst.Call,
        qualified: str,
        fresh: frozenset,
        imported: Optional[tuple[str, str]],
    ) -> frozenset:
        """The mode a project module class's constructor leaves the new module in (eval
        when its `__init__` calls `self.eval()`, see built_modes.py); else `fresh`."""
        found = built_class(self.file, qualified, imported)
        return (constructed_modes(*found, call) if found is not None else None) or fresh

    def _chain_of(self, call: cst.Call, qualified: str) -> Optional[Chain]:
        """Where the base chain of the project class `call` builds ends, when the class's own
        file does not say whether it is a module (a base imported from another file): read
        across the project's files (see class_chains.py). None for other calls."""
        project = self.file.project
        if project is None or not qualified.split(".")[-1][:1].isupper():
            return None
        local = self.file.classes.get(qualified)
        if local is not None:
            return project.local_class_chain(self.file, local)
        found = self._imported_class_of(call)
        if found is None or project.class_kind(self.file.path, *found) is not False:
            return None
        if not project.is_project_module(self.file.path, found[0]):
            return None  # a library's class: see `library_class`
        return project.class_chain(self.file.path, *found)

    def _mode_arguments(self, call: cst.Call) -> Sequence[cst.Arg]:
        """The arguments of a mode switch after the module: all of `model.train(False)`'s,
        those after `model` in `nn.Module.train(model, False)`."""
        return call.args[1:] if unbound_switch_receiver(call, self.imports) else call.args

    def _mode_argument(self, call: cst.Call) -> Optional[Mode]:
        """train() / train(True) / train(False) / train(mode=False); None if not constant."""
        args = self._mode_arguments(call)
        if not args:
            return Mode.TRAIN
        value = args[0].value
        if type(value) is cst.Name and value.value in ("True", "False"):
            return Mode.TRAIN if value.value == "True" else Mode.EVAL
        return None

    def _own_forward(self, key: str, subject: str, state: PathState) -> tuple[str, str]:
        """In a method of a module class, a forward of one of its own submodules (`self.fc`)
        that is in the same mode as the module is part of the module's own forward: its mode
        follows the parent's, which only the caller of the parent decides."""
        if not key.startswith("self."):
            return key, subject
        owner = self._owner()
        if owner is None or not owner.is_module:
            return key, subject
        if state.mode_in_tree(key) != state.mode_in_tree("self"):
            return key, subject  # switched on its own (a frozen backbone, a teacher)
        return "self", "self"

    def _switched_part(self, receiver: cst.BaseExpression, state: PathState) -> Optional[str]:
        """`model.model` after `model.model.eval()` here, `model` being a module: the part
        switched on its own is the module that `model.model.generate(...)` runs."""
        name = dotted_name(receiver) if type(receiver) is cst.Attribute else None
        if name is None or state.mode_of(name) is None:
            return None
        root = self.resolve(cst.Name(name.split(".", 1)[0]), state)
        return None if root is None else name

    def _forward_target(self, call: cst.Call, state: PathState) -> Optional[tuple[str, str]]:
        found = self._called_module(call, state)
        if found is not None and self.info is not None and "." not in found[0]:
            if annotated_plain(self.file, parameter_named(self.info.node, found[0])):
                return None  # `decoder.decode(out)` with `decoder: GreedyDecoder`: no module
        return found

    def _built_submodule(self, attribute: str) -> bool:
        """A module class of this file binds `self.<attribute>` to a module it builds
        (`self.G = Generator()`, `self.enc = nn.Sequential(...)`): `model.G(z)` runs that
        submodule's forward, whatever its name says. The class's own binding decides."""
        found = self.file.__dict__.setdefault("_built_submodules", {})
        if attribute not in found:
            path = f"self.{attribute}"
            found[attribute] = any(
                name == path
                and type(value) is cst.Call
                and (
                    self._constructor_facts(value, method.node) is not None
                    or self._returns_built_module(value)
                )
                for owner in self.file.classes.values()
                if owner.is_module and attribute not in owner.methods
                for method in owner.methods.values()
                for name, value in self.file.scope(method.node).attribute_assignments
            )
        return bool(found[attribute])

    def _returns_built_module(self, call: cst.Call) -> bool:
        """`self.encod = encoder(hidden, dim)` with `encoder` a function of this file whose
        every return is a module it builds (`return nn.Sequential(...)`): a submodule too."""
        if type(call.func) is not cst.Name:
            return False
        info = self.file.functions.get(call.func.value)
        summary = self.file.summary_for(info) if info is not None else None
        return (
            summary is not None
            and bool(summary.return_facts)
            and all(f.origin is Origin.CONSTRUCTED for f in summary.return_facts or ())
        )

    def _own_module_method(self, name: str) -> bool:
        """A module class of this file defines `name` (and, not being among the file's
        forward methods, it runs no forward): `net.loss(y, t)` is that method, not a forward
        method of the same name in some other project class."""
        return name in self.file.module_class_method_names()

    def _method_not_submodule(self, name: str) -> bool:
        """`gan.EMA()` where a module class of this file (or, for a module of a class the
        file does not see, of the project) defines `EMA` as a method that runs no forward in
        its caller's mode, and no class of the file holds a submodule of that name: the
        method, not a submodule named like a module."""
        if any(name in c.module_attributes for c in self.file.classes.values()):
            return False
        if self._own_module_method(name):
            return name not in self.file.forward_method_names()
        return self._defined_elsewhere(name)  # `model.sample(n)`, a parameter's method

    def _defined_elsewhere(self, method: str) -> bool:
        """`model.sample(n)` where the project's module classes define `sample` and none runs
        its forward in the caller's mode by it (each switches itself to eval or runs under
        no_grad inside): the project's definitions decide what the call is, not its name.
        A method of this file's own classes is left to the readings below."""
        return (
            method not in self.file.forward_method_names()
            and method not in NO_GRAD_METHODS  # transformers' `generate`: a forward all the same
            and project_defines_method(self.file.class_index, self.file.path, method)
            and not project_runs_forward(self.file.class_index, self.file.path, method)
        )

    def _called_module(self, call: cst.Call, state: PathState) -> Optional[tuple[str, str]]:
        # `model.cuda()(x)`, `net.to(device)(x)`: the chain returns the module it starts
        # from, so the call is that module's forward (`m.train()(x)` / `m.eval()(x)` set
        # the mode for that very forward on purpose: a probe of each mode, left alone)
        if type(call.func) is cst.Attribute and call.func.attr.value in UNWRAPPING_CALLS:
            return None  # `self.accelerator.unwrap_model(net)` hands `net` back, runs nothing
        if call.args and not call.args[0].star and call.args[0].keyword is None:
            if (self.imports.qualify(call.func) or "") in FORWARD_RUNNERS:
                # `nn.parallel.data_parallel(net, inputs, gpus)`: the forward of `net`
                key = self.resolve(call.args[0].value, state)
                return (key, code_of(call.args[0].value)) if key is not None else None
        func = chain_receiver(call.func, SAME_MODULE_METHODS)
        key = self.resolve(func, state)
        if key is not None:
            if self._trains_itself(key, state):
                return None  # `maml(x_spt, y_spt, x_qry, y_qry)`: a training step
            return key, code_of(func)
        if type(func) is cst.Attribute and func.attr.value in MODULE_API:
            return None  # `self.body.add_module(name, layer)`: nn.Module's own API, no forward
        if (
            type(func) is cst.Attribute
            and func.attr.value in FORWARD_METHODS
            and not self._defined_elsewhere(func.attr.value)
        ):
            key = self.resolve(func.value, state)
            if key is not None:
                return key, code_of(func.value)
        if (
            type(func) is cst.Attribute
            and func.attr.value in self.file.forward_method_names()
            and func.attr.value not in SAME_MODULE_METHODS
        ):
            # `agent.get_action_and_value(obs)`: a method whose body runs the forward
            key = self.resolve(func.value, state)
            if key is not None:
                return key, code_of(func.value)
        if (
            type(func) is cst.Attribute
            and func.attr.value not in SAME_MODULE_METHODS
            and func.attr.value not in NON_MODULE_METHODS
            and not _names_a_forward(func.attr.value)
            and not self._own_module_method(func.attr.value)
        ):
            # `model.loss(sample)` on a module of a class this file does not see (a
            # parameter, a registry's model): a forward method of a project module class
            key = self.resolve(func.value, state)
            if (
                key is not None
                and project_runs_forward(self.file.class_index, self.file.path, func.attr.value)
                and not (
                    all(a.keyword is not None for a in call.args)
                    and project_forward_disputed(
                        self.file.class_index, self.file.path, func.attr.value
                    )
                )  # `net.update(force=True)`: no input given, and not every `update` forwards
                and not project_method_trains(self.file.project, self.file.path, func.attr.value)
                # `model.training_step(batch, loss_fn)`: some class's `training_step` is a
                # whole training step (backward and step inside), the call may reach it
            ):
                return key, code_of(func.value)
        if (
            type(func) is cst.Attribute
            and call.args  # a forward takes its input: `model.update_ema()` is a method
            and (_names_a_forward(func.attr.value) or self._built_submodule(func.attr.value))
            and func.attr.value not in NON_MODULE_METHODS
            and not self._method_not_submodule(func.attr.value)
        ):
            # `net.decoder(h)`, `model.backbone.layer4(x)`, `net.forward_features(x)`: part of the
            # module's forward, in the module's mode (eval() reached every submodule)
            part = self._switched_part(func, state)
            if part is not None:
                return part, part  # `model.D.train(); model.D(x)`: the part, in its own mode
            receiver: cst.BaseExpression = func.value
            while True:
                key = self.resolve(receiver, state) or self._switched_part(receiver, state)
                if key is not None:
                    if receiver is not func.value and self._hands_over(call, key, state):
                        return None  # `model.sampler.p_sample(model, x)`: a helper object
                    return key, key
                if type(receiver) is not cst.Attribute:
                    return None
                if attribute_holds_no_module(self.file, receiver.attr.value, self._no_module):
                    return None  # `model.tokenizer.decode(t)`: a plain object's method
                receiver = receiver.value
        return None

    def _hands_over(self, call: cst.Call, key: str, state: PathState) -> bool:
        """`model.sampler.p_sample(model, x)`: the call is given the very module its receiver
        is reached from. A submodule's forward takes inputs, never the module that holds it
        (that module is its caller), so the receiver is an object kept on the module that
        runs the module it is handed (a sampler, a diffusion schedule), not part of the
        module's forward; what it runs is its own method's business."""
        return any(self.resolve(arg.value, state) == key for arg in call.args)
