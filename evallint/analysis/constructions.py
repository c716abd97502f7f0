"""Calls that build a value the interpreter cannot follow: `agent = Model(envs)` with `Model` a
class passed in (a construction, it runs no forward), and `model = get_model(cfg)` into a
name the code treats as a module (its mode unknown) unless the callee is a class, a standard
library call or a plain object's builder. Moved out of `binding`."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.lattice import Origin, PathState
from evallint.analysis.module_sources import other_framework_call
from evallint.analysis.scope import looks_like_module_name
from evallint.analysis.symbols import (
    PASS_THROUGH_LIBRARY,
    STANDARD_LIBRARY,
    chain_receiver,
    dotted_name,
)
from evallint.analysis.tensor_values import builds_tensor
from evallint.analysis.vocabulary import SAME_MODULE_OR_MODE_METHODS
from evallint.torch_facts import LIBRARY_EVALUATORS


class Constructions(InterpreterPart):
    """The interpreter part that notes constructions and calls of unknown modules."""

    def note_construction(self, node: cst.Assign) -> None:
        """`agent = Model(envs).to(device)` with `agent` then used as a module
        (`agent.eval()`, `agent.load_state_dict(...)`) and `Model` a parameter or variable:
        `Model` is a class passed in and the call builds a module, it runs no forward."""
        self.assigning = frozenset(
            name for target in node.targets for name in self._target_names(target.target)
        )
        inner = node.value
        inner = chain_receiver(inner, SAME_MODULE_OR_MODE_METHODS)
        if type(inner) is not cst.Call or not (
            type(inner.func) is cst.Name
            or self._class_of_an_object(inner.func)
            or self._class_held_by_self(inner.func)
        ):
            return
        # `ae = variant.Autoencoder(d)`: a class read from a variable, not a method
        if type(inner.func) is cst.Name and (
            inner.func.value in self.file.functions or self._returns_its_module(inner)
        ):
            return  # `model = fuse_conv_bn(model)`: a function, read for what it returns
        if not any(self._used_as_module(dotted_name(target.target)) for target in node.targets):
            return
        self.constructor_calls.add(inner)

    def _class_of_an_object(self, func: cst.BaseExpression) -> bool:
        """`variant.Autoencoder` with `variant` a variable of the code (a Python module
        loaded by path, an object), not an import: a capitalised attribute names a class,
        and a call of it whose result is used as a module builds one; it runs no forward
        of `variant`."""
        if type(func) is not cst.Attribute or not func.attr.value[:1].isupper():
            return False
        root = func.value
        while type(root) is cst.Attribute:
            root = root.value
        return type(root) is cst.Name and not self.imports.is_imported(root.value)

    def _used_as_module(self, name: Optional[str]) -> bool:
        """`name` is used as a module here, or a part of it is (`self.ac.v.parameters()`
        given to an optimizer: what holds a module with parameters is a module, no tensor)."""
        if name is None:
            return False
        return name in self.evidence_names or any(
            known.startswith(name + ".") for known in self.evidence_names
        )

    def _class_held_by_self(self, func: cst.BaseExpression) -> bool:
        """`self.ac = self.actor_critic(obs_space, act_space)` with `self.actor_critic` a
        class the object was given or looked up (no method of its class): a call whose
        result the code then uses as a module (its parameters given to an optimizer, its
        mode switched) builds that module; it runs no forward of `self.actor_critic`."""
        if type(func) is not cst.Attribute or dotted_name(func.value) != "self":
            return False
        owner = self.info.owner if self.info is not None else None
        return owner is None or func.attr.value not in owner.methods

    def _returns_its_module(self, call: cst.Call) -> bool:
        """`fuse(model)` of another project file that returns the module it was given, or
        `attempt_load(weights)` of another project file that returns a module it built or
        loaded in a mode it read (`return ensemble` filled with `net.eval()`): a function,
        not a class passed in; its summary says what the caller gets. Also for a name that
        may come from a `from helpers import *` of a project file (the summary is looked up
        in the starred modules)."""
        name = call.func.value  # type: ignore[attr-defined]
        starred = bool(self.imports.star_modules) and not self.imports.is_imported(name)
        if name not in self.imports.modules_from and not starred:
            return False
        passes_key = any(
            type(a.value) is cst.Name and a.value.value in self.scope_keys for a in call.args
        )
        resolved = self.file.resolve_function(call, self.info, count=False, passes_module=True)
        summary = resolved[0] if resolved else None
        if summary is None:
            return False
        if passes_key and summary.return_key is not None:
            return True
        facts = summary.return_facts or frozenset()
        return any(f.origin is not Origin.CONSTRUCTED for f in facts)

    def _unknown_module_source(self, name: str, value: cst.Call, state: PathState) -> bool:
        """`model = get_model(cfg)`: a call we cannot follow, into a variable that the code
        treats as a module (`model.parameters()` elsewhere) or names like one. Its mode is
        unknown: it may be in training mode."""
        if not (
            name in self.evidence_names
            or (looks_like_module_name(name) and "." not in name and not self._non_module(name))
        ):
            return False  # no use or name of a module: the call's kind cannot matter (the
            # only side effects of the tests below are caches; asked first, they were ~7% of
            # the assignments' interpretation on the torch-heavy sample)
        if self._forward_target(value, state) is not None:
            return False
        if type(value.func) is cst.Name and value.func.value == "getattr":
            return False  # `getattr(self, name)`: one of several modules, switched opaquely
        callee = (dotted_name(value.func) or "").split(".")[-1]
        if callee[:1].isupper():
            return False  # a class that is not known to be a module: its name says what it is
        if self._standard_library_call(value):
            return False  # `ModelPrediction = namedtuple(...)`: a tuple type, whatever its name
        if other_framework_call(self.imports, value):
            return False  # `apply_resnet = jax.jit(...)`: another framework's function
        if self._builds_plain_object(value):
            return False  # `transformer = dataset.resizeNormalize(size)`: a plain class's object
        if self._makes_a_function(value):
            return False  # `encoder = onehot_embedding(10)`: the function it defines, no module
        # `p_model = torch.ones(n) / n`: a tensor, whatever its name
        return not builds_tensor(value, self.imports)

    def _makes_a_function(self, value: cst.Call) -> bool:
        """A call of a function of this file or project whose every `return` gives a function
        it defines (a nested `def`, a lambda): `onehot_encoder = torch_ops.onehot_embedding(
        num_classes=10)` binds a function, whatever the name says; calling it runs no module."""
        resolved = self.file.resolve_function(value, self.info, count=False, passes_module=True)
        summary = resolved[0] if resolved else None
        return summary is not None and summary.returns_function

    def _standard_library_call(self, value: cst.Call) -> bool:
        """A call of something imported from the standard library that builds an object of
        its own (`namedtuple`, `json.load`; not `copy.deepcopy` or `pickle.load`, see
        PASS_THROUGH_LIBRARY): no torch module. A project file of the same name (`code.py`)
        is the project's. So is a library call that returns an object evaluating its model
        itself (torch_facts.LIBRARY_EVALUATORS: a transformers `pipeline(...)`)."""
        name = dotted_name(value.func)
        if name == "__import__" and name not in self.file.functions:
            return True  # `model = __import__(config["model"])`: a Python module of classes
        if name is None or not self.imports.is_imported(name.split(".")[0]):
            return False
        if self.imports.qualify_name(name) == "importlib.import_module":
            return True  # a Python module too
        if self.imports.qualify_name(name) in LIBRARY_EVALUATORS:
            return True  # `classifier = pipeline(...)`: a Pipeline, which evaluates itself
        root = self.imports.qualify_name(name).split(".")[0]
        if root not in STANDARD_LIBRARY or root in PASS_THROUGH_LIBRARY:
            return False
        project = self.file.project
        return project is None or not project.is_project_module(self.file.path, root)
