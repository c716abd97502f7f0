"""Which layers of a live module behave differently in train and eval mode (torch)."""

from __future__ import annotations

import weakref
from typing import Optional

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.instancenorm import _InstanceNorm

CANDIDATES = (_DropoutNd, nn.RReLU, _BatchNorm, _InstanceNorm, nn.RNNBase, nn.MultiheadAttention)


def is_mode_dependent(layer: nn.Module) -> bool:
    """True when this layer's own output differs between train and eval mode.

    Dropout-family layers with p > 0, RReLU, BatchNorm with running statistics, InstanceNorm
    with `track_running_stats=True`, RNNs with dropout between layers, MultiheadAttention with
    dropout. Transformer layers are covered through their Dropout and attention children.
    """
    if not isinstance(layer, CANDIDATES):
        return False
    if isinstance(layer, _DropoutNd):
        return float(layer.p) > 0
    if isinstance(layer, (_BatchNorm, _InstanceNorm)):
        return bool(layer.track_running_stats) and layer.running_mean is not None
    if isinstance(layer, nn.RNNBase):
        return float(layer.dropout) > 0 and int(layer.num_layers) > 1
    if isinstance(layer, nn.MultiheadAttention):
        return float(layer.dropout) > 0
    return True  # RReLU


def describe(layer: nn.Module) -> str:
    """`Dropout(p=0.5)`, `BatchNorm2d(momentum=0.1)`: the settings that make it mode-dependent."""
    name = type(layer).__name__
    if isinstance(layer, _DropoutNd):
        return f"{name}(p={layer.p:g})"
    if isinstance(layer, (_BatchNorm, _InstanceNorm)):
        return f"{name}(momentum={layer.momentum})"
    if isinstance(layer, (nn.RNNBase, nn.MultiheadAttention)):
        return f"{name}(dropout={layer.dropout:g})"
    return name


class LayerIndex:
    """Each top-level module's mode-dependent layers, computed once per module object."""

    def __init__(self) -> None:
        self._layers: weakref.WeakKeyDictionary[nn.Module, list[tuple[str, nn.Module]]] = (
            weakref.WeakKeyDictionary()
        )
        self._names: weakref.WeakKeyDictionary[nn.Module, dict[int, str]] = (
            weakref.WeakKeyDictionary()
        )

    def layers(self, module: nn.Module) -> list[tuple[str, nn.Module]]:
        found = self._layers.get(module)
        if found is None:
            found = [(name, sub) for name, sub in module.named_modules() if is_mode_dependent(sub)]
            self._layers[module] = found
            self._names[module] = {id(sub): name for name, sub in found}
        return found

    def name_of(self, module: nn.Module, layer: nn.Module) -> Optional[str]:
        self.layers(module)
        return self._names[module].get(id(layer))
