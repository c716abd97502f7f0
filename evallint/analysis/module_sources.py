"""Calls that build a module, read off what they call (issue 16, item 1): a library factory
returns a fresh `nn.Module` whatever the variable it is assigned to is called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import libcst as cst

from evallint.analysis.symbols import ImportTable, dotted_name
from evallint.torch_facts import LIBRARY_FACTORIES, OTHER_FRAMEWORKS

if TYPE_CHECKING:
    from evallint.analysis.project import ProjectIndex


def library_factory(qualified: str, factories: tuple[str, ...] = ()) -> bool:
    """Whether `qualified` (a call's qualified name) is a library function that returns a
    fresh module: `torchvision.models.vgg16`, `timm.create_model`, `torch.hub.load`, or a
    factory the configuration names. Under a package prefix only the package's own
    functions count, not something reached through one of its attributes
    (`torchvision.models.ResNet50_Weights.DEFAULT.transforms()` builds a transform)."""
    if qualified in factories:
        return True
    for prefix in LIBRARY_FACTORIES:
        if not prefix.endswith("."):
            if qualified.startswith(prefix):
                return True
        elif qualified.startswith(prefix) and "." not in qualified[len(prefix) :]:
            return True
    return False


def other_framework_call(imports: ImportTable, call: cst.Call) -> bool:
    """`jax.jit(...)`, `tf.keras.Model(...)`: a call into another deep-learning framework
    (torch_facts.OTHER_FRAMEWORKS), whose result is that framework's function, model or
    array, never a torch module or a tensor with an autograd graph."""
    qualified = imports.qualify(call.func) or ""
    return "." in qualified and qualified.split(".")[0] in OTHER_FRAMEWORKS


def library_class(
    imports: ImportTable, project: Optional[ProjectIndex], path: str, call: cst.Call
) -> bool:
    """`WhitespaceEncoder(corpus)`, `LabelEncoder()`: a class that a package outside the
    project and outside torch defines, and no known factory. Its definition is not read, so
    whether it builds a module is not known: its name (`...Encoder`, `...Net`) and the name
    of the variable it is bound to do not make it one; its use (`.parameters()`,
    `.eval()`, an optimizer over it) does, as for any value."""
    name = dotted_name(call.func)
    if name is None or project is None or not name.split(".")[-1][:1].isupper():
        return False
    root = name.split(".")[0]
    if not imports.is_imported(root):
        return False
    qualified = imports.qualify_name(name)
    if qualified.split(".")[0] == "torch" or library_factory(qualified):
        return False
    module = (imports.modules_from.get(root) if "." not in name else None) or imports.module_path(
        root
    )
    return not module.startswith(".") and not project.is_project_module(path, module)
