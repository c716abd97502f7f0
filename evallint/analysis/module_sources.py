"""Calls that build a module, read off what they call (issue 16, item 1): a library factory
returns a fresh `nn.Module` whatever the variable it is assigned to is called."""

from __future__ import annotations

from evallint.torch_facts import LIBRARY_FACTORIES


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
