"""evallint/torch_facts.py checked against the installed torch (skipped without torch).

Each fact the analysis and the verifier rely on is asked of torch itself: constructor parameter
order and defaults (inspect.signature), that every layer the table calls mode-sensitive really
gives different train and eval outputs under the stated arguments and the same output when the
deciding argument switches it off, that every mode-independent layer gives the same output in
both modes, the functional signatures' `training` defaults, and the grad switches.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

import pytest

from evallint import torch_facts as T

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


def _signature(name: str) -> list[inspect.Parameter]:
    cls = getattr(nn, name)
    if T.LAYERS[name].family == "rnn":  # RNN/LSTM/GRU take *args; RNNBase holds the signature
        params = list(inspect.signature(nn.RNNBase.__init__).parameters.values())[2:]
    else:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


TORCH_NN = sorted(n for n, f in T.LAYERS.items() if f.module == "torch.nn")


@pytest.mark.parametrize("name", TORCH_NN)
def test_layer_exists_and_positional_order_and_defaults_match(name: str) -> None:
    fact = T.LAYERS[name]
    assert hasattr(nn, name), name
    if name in ("Sequential", "ModuleList", "ModuleDict"):
        return
    params = _signature(name)
    names = [p.name for p in params]
    assert tuple(names[: len(fact.positional)]) == fact.positional, names
    defaults = {p.name: p.default for p in params}
    for key, value in fact.defaults.items():
        assert key in defaults, (name, key)
        assert defaults[key] == value, (name, key, defaults[key], value)
    for key in fact.decides:
        assert key in defaults, (name, key)


def test_derived_sets_partition_the_table() -> None:
    assert not T.MODE_SENSITIVE & T.MODE_INDEPENDENT
    assert T.STATELESS <= T.MODE_INDEPENDENT
    assert T.DROPOUT_KINDS | T.BATCHNORM_KINDS | T.INSTANCENORM_KINDS <= T.MODE_SENSITIVE
    assert {"TransformerEncoder", "TransformerDecoder"} <= T.TORCH_NN_MAY_DEPEND_ON_MODE
    assert "StochasticDepth" not in T.TORCH_NN_MAY_DEPEND_ON_MODE  # torchvision.ops, not nn
    # every deciding argument has a default that torch_facts.mode_sensitive can stand in
    for name in T.MODE_SENSITIVE:
        fact = T.LAYERS[name]
        assert fact.decides and set(fact.decides) <= set(fact.defaults), name


# --- behaviour: does the output differ between train and eval? --------------------------------

x2 = (6, 4)
x3 = (6, 4, 5)
x4 = (6, 4, 5, 5)
x5 = (6, 4, 3, 3, 3)

BUILD: dict[str, tuple[Callable[..., Any], dict[str, Any], tuple[int, ...]]] = {
    # name: (constructor(**args), base args, input shape)
    "Dropout": (nn.Dropout, {}, x2),
    "Dropout1d": (nn.Dropout1d, {}, x3),
    "Dropout2d": (nn.Dropout2d, {}, x4),
    "Dropout3d": (nn.Dropout3d, {}, x5),
    "AlphaDropout": (nn.AlphaDropout, {}, x2),
    "FeatureAlphaDropout": (nn.FeatureAlphaDropout, {}, x4),
    "RReLU": (nn.RReLU, {}, x2),
    "BatchNorm1d": (nn.BatchNorm1d, {"num_features": 4}, x2),
    "BatchNorm2d": (nn.BatchNorm2d, {"num_features": 4}, x4),
    "BatchNorm3d": (nn.BatchNorm3d, {"num_features": 4}, x5),
    "SyncBatchNorm": (nn.SyncBatchNorm, {"num_features": 4}, x4),
    "LazyBatchNorm1d": (nn.LazyBatchNorm1d, {}, x2),
    "LazyBatchNorm2d": (nn.LazyBatchNorm2d, {}, x4),
    "LazyBatchNorm3d": (nn.LazyBatchNorm3d, {}, x5),
    "InstanceNorm1d": (nn.InstanceNorm1d, {"num_features": 4}, x3),
    "InstanceNorm2d": (nn.InstanceNorm2d, {"num_features": 4}, x4),
    "InstanceNorm3d": (nn.InstanceNorm3d, {"num_features": 4}, x5),
    "LazyInstanceNorm1d": (nn.LazyInstanceNorm1d, {}, x3),
    "LazyInstanceNorm2d": (nn.LazyInstanceNorm2d, {}, x4),
    "LazyInstanceNorm3d": (nn.LazyInstanceNorm3d, {}, x5),
    "RNN": (nn.RNN, {"input_size": 5, "hidden_size": 5, "num_layers": 2}, x3),
    "LSTM": (nn.LSTM, {"input_size": 5, "hidden_size": 5, "num_layers": 2}, x3),
    "GRU": (nn.GRU, {"input_size": 5, "hidden_size": 5, "num_layers": 2}, x3),
    "MultiheadAttention": (nn.MultiheadAttention, {"embed_dim": 4, "num_heads": 2}, (5, 3, 4)),
    "TransformerEncoderLayer": (
        nn.TransformerEncoderLayer,
        {"d_model": 4, "nhead": 2, "dim_feedforward": 8},
        (5, 3, 4),
    ),
    "TransformerDecoderLayer": (
        nn.TransformerDecoderLayer,
        {"d_model": 4, "nhead": 2, "dim_feedforward": 8},
        (5, 3, 4),
    ),
    "Transformer": (
        nn.Transformer,
        {
            "d_model": 4,
            "nhead": 2,
            "num_encoder_layers": 1,
            "num_decoder_layers": 1,
            "dim_feedforward": 8,
        },
        (5, 3, 4),
    ),
    "Linear": (nn.Linear, {"in_features": 4, "out_features": 3}, x2),
    "LazyLinear": (nn.LazyLinear, {"out_features": 3}, x2),
    "Bilinear": (nn.Bilinear, {"in1_features": 4, "in2_features": 4, "out_features": 3}, x2),
    "Conv1d": (nn.Conv1d, {"in_channels": 4, "out_channels": 3, "kernel_size": 3}, x3),
    "Conv2d": (nn.Conv2d, {"in_channels": 4, "out_channels": 3, "kernel_size": 3}, x4),
    "Conv3d": (nn.Conv3d, {"in_channels": 4, "out_channels": 3, "kernel_size": 3}, x5),
    "ConvTranspose2d": (
        nn.ConvTranspose2d,
        {"in_channels": 4, "out_channels": 3, "kernel_size": 3},
        x4,
    ),
    "LazyConv2d": (nn.LazyConv2d, {"out_channels": 3, "kernel_size": 3}, x4),
    "Embedding": (nn.Embedding, {"num_embeddings": 10, "embedding_dim": 3}, x2),
    "EmbeddingBag": (nn.EmbeddingBag, {"num_embeddings": 10, "embedding_dim": 3}, x2),
    "PReLU": (nn.PReLU, {}, x2),
    "GLU": (nn.GLU, {}, x2),
    "LayerNorm": (nn.LayerNorm, {"normalized_shape": 4}, x2),
    "RMSNorm": (nn.RMSNorm, {"normalized_shape": 4}, x2),
    "GroupNorm": (nn.GroupNorm, {"num_groups": 2, "num_channels": 4}, x4),
    "LocalResponseNorm": (nn.LocalResponseNorm, {"size": 2}, x4),
}
"""How to build each layer the behaviour test exercises (activations, pooling and padding
take no arguments and a 4-d input)."""

SWITCHED_OFF = {
    "dropout": {"p": 0.0},
    "alpha_dropout": {"p": 0.0},
    "rrelu": {"lower": 0.2, "upper": 0.2},
    "batchnorm": {"track_running_stats": False},
    "rnn": {"dropout": 0.0},
    "attention": {"dropout": 0.0},
    "transformer": {"dropout": 0.0},
}
"""Arguments that make a mode-sensitive layer mode-independent (per torch_facts)."""

SWITCHED_ON = {
    "instancenorm": {"track_running_stats": True},
    "rnn": {"num_layers": 2, "dropout": 0.5},
    "attention": {"dropout": 0.5},
}
"""Arguments a mode-sensitive layer needs beyond its defaults to depend on the mode."""


def _output(module: Any, shape: tuple[int, ...], name: str) -> Any:
    torch.manual_seed(1)
    if name in ("Embedding", "EmbeddingBag"):
        x = torch.randint(0, 10, shape)
    else:
        x = torch.randn(shape) * 2 + 0.5
    if name == "MultiheadAttention":
        out = module(x, x, x)[0]
    elif name in ("TransformerDecoderLayer", "Transformer") or name == "Bilinear":
        out = module(x, x)
    elif T.LAYERS.get(name) is not None and T.LAYERS[name].family == "rnn":
        out = module(x)[0]
    else:
        out = module(x)
    return out.detach().clone()


FILL = {
    "in_channels": 4,
    "out_channels": 4,
    "kernel_size": 2,
    "norm_type": 2.0,
    "output_size": 2,
    "padding": 1,
    "value": 0.0,
}
"""Arguments for layers built from their signature's required parameters."""


def _shape(name: str) -> tuple[int, ...]:
    for suffix, shape in (("1d", x3), ("2d", x4), ("3d", x5)):
        if name.endswith(suffix):
            return shape
    return x4


def _differs(name: str, args: dict[str, Any]) -> bool:
    """Build `name(**args)` and compare its eval output with its train output (same seed)."""
    build, base, shape = BUILD.get(name, (getattr(nn, name, None), {}, _shape(name)))
    torch.manual_seed(0)
    module = build(**{**base, **args})
    with torch.no_grad():
        _output(module, shape, name)  # materialise lazy layers
        module.eval()
        evaluated = _output(module, shape, name)
        module.train()
        trained = _output(module, shape, name)
    return not torch.allclose(evaluated, trained, atol=1e-5, rtol=1e-4)


SENSITIVE_NN = sorted(n for n in T.MODE_SENSITIVE if T.LAYERS[n].module == "torch.nn")


@pytest.mark.parametrize("name", SENSITIVE_NN)
def test_mode_sensitive_layers_differ_and_their_switch_turns_that_off(name: str) -> None:
    fact = T.LAYERS[name]
    on = SWITCHED_ON.get(fact.family, {})
    assert T.mode_sensitive(name, on) is True
    assert _differs(name, on), f"{name}({on}) gives the same output in train and eval"
    off = SWITCHED_OFF.get(fact.family)
    if off is not None:
        assert T.mode_sensitive(name, {**on, **off}) is False
        assert not _differs(name, {**on, **off}), f"{name}({off}) still depends on the mode"
    if fact.family == "instancenorm" and not name.startswith("Lazy"):
        # the default: no running stats, no mode dependence (the Lazy ones track by default)
        assert T.mode_sensitive(name, {}) is False and not _differs(name, {})
    if fact.family == "rnn":  # dropout acts only between stacked layers
        args = {**on, "num_layers": 1}
        assert T.mode_sensitive(name, args) is False and not _differs(name, args)


INDEPENDENT_NN = sorted(
    n
    for n in T.MODE_INDEPENDENT
    if T.LAYERS[n].module == "torch.nn" and (n in BUILD or T.LAYERS[n].family != "norm")
)


@pytest.mark.parametrize("name", INDEPENDENT_NN)
def test_mode_independent_layers_give_the_same_output(name: str) -> None:
    if name in ("CosineSimilarity", "PairwiseDistance"):
        module = getattr(nn, name)()
        a, b = torch.randn(3, 4), torch.randn(3, 4)
        module.train()
        trained = module(a, b)
        module.eval()
        assert torch.equal(trained, module(a, b))
        return
    if name in ("Unflatten", "ChannelShuffle", "PixelUnshuffle", "PixelShuffle", "Threshold"):
        args = {
            "Unflatten": {"dim": 1, "unflattened_size": (2, 2)},
            "ChannelShuffle": {"groups": 2},
            "PixelUnshuffle": {"downscale_factor": 5},
            "PixelShuffle": {"upscale_factor": 2},
            "Threshold": {"threshold": 0.1, "value": 0.0},
        }[name]
        assert not _differs(name, args)
        return
    if name not in BUILD:
        cls = getattr(nn, name)
        required = [
            p.name
            for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
            if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        args = {key: FILL[key] for key in required}
        if name.startswith(("Upsampl", "Upsample")):
            args["scale_factor"] = 2
        assert not _differs(name, args), name
        return
    assert not _differs(name, {}), name


# --- functional calls, grad switches, wrappers, methods ---------------------------------------


@pytest.mark.parametrize("qualified", sorted(T.FUNCTIONAL))
def test_functional_training_argument(qualified: str) -> None:
    fact = T.FUNCTIONAL[qualified]
    module, _, name = qualified.rpartition(".")
    function = getattr(importlib.import_module(module), name)
    if qualified == "torch.dropout":  # a builtin: check by calling with the keywords
        x = torch.ones(100)
        assert torch.equal(function(input=x, p=0.5, train=False), x)
        assert not torch.equal(function(input=x, p=0.5, train=True), x)
        return
    params = inspect.signature(function).parameters
    assert tuple(params)[: len(fact.parameters)] == fact.parameters
    assert params[fact.keyword].default is fact.default
    assert fact.position == list(params).index(fact.keyword)
    if fact.layer is not None:
        assert fact.layer in T.MODE_SENSITIVE


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    try:  # attributes first: torch.nn.utils.spectral_norm is a function and a module
        obj = torch
        for part in parts[1:]:
            obj = getattr(obj, part)
        return obj
    except AttributeError:
        pass
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def test_grad_switches_switch_grad() -> None:
    for name in T.GRAD_DISABLERS:
        with _resolve(name)():
            assert not torch.is_grad_enabled(), name
    for name in T.GRAD_ENABLERS:
        with torch.no_grad(), _resolve(name)():
            assert torch.is_grad_enabled(), name
    for name in T.GRAD_SETTERS:
        with _resolve(name)(False):
            assert not torch.is_grad_enabled(), name
    assert torch.is_grad_enabled()
    # eval() does not disable autograd
    layer = nn.Linear(3, 3).eval()
    assert layer(torch.ones(1, 3)).requires_grad


def test_gradient_functions_return_detached_values_unless_create_graph() -> None:
    weight = torch.randn(3, requires_grad=True)

    def function(w: torch.Tensor) -> torch.Tensor:
        return (w * w).sum() ** 2

    for name in sorted(T.GRADIENT_FUNCTIONS):
        compute = _resolve(name)
        for create_graph in (False, True):
            if name == "torch.autograd.grad":
                results = compute(function(weight), weight, create_graph=create_graph)
            elif name.endswith("vjp"):  # `v` has the (scalar) output's shape
                results = compute(function, weight, None, create_graph=create_graph)
            elif name.endswith(("jvp", "vhp", "hvp")):  # `v` has the input's shape
                results = compute(function, weight, torch.ones(3), create_graph=create_graph)
            else:
                results = (compute(function, weight, create_graph=create_graph),)
            tensors = [r for r in results if isinstance(r, torch.Tensor)]
            assert tensors, name
            assert all(t.requires_grad == create_graph for t in tensors), (name, create_graph)


def test_torch_wrappers_exist() -> None:
    for name in sorted(T.WRAPPERS):
        if name.startswith("torch.") and "fsdp" not in name:
            assert callable(_resolve(name)), name


def test_methods_return_the_module() -> None:
    layer = nn.Linear(2, 2)
    calls = {
        "to": ("cpu",),
        "cpu": (),
        "float": (),
        "double": (),
        "half": (),
        "bfloat16": (),
        "requires_grad_": (),
        "share_memory": (),
        "to_empty": (),
        "type": (torch.float32,),
        "apply": (lambda m: None,),
    }
    for method in T.MODULE_RETURNING_METHODS:
        assert hasattr(layer, method), method
        if method == "cuda":
            continue
        kwargs = {"device": "cpu"} if method == "to_empty" else {}
        assert getattr(layer, method)(*calls[method], **kwargs) is layer, method
    for method in T.MODE_METHODS:
        assert getattr(layer, method)() is layer
    assert layer.eval().training is False and layer.train().training is True


def test_mode_keeping_copies_keep_every_submodule_mode() -> None:
    import warnings

    for name in sorted(T.MODE_KEEPING_COPIES):
        for training in (False, True):
            model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Linear(3, 2))
            model.train(training)
            model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                copy = _resolve(name)(model)
            assert copy is not model, name
            layers = [copy, *(m for m in copy.modules() if isinstance(m, (nn.Linear, nn.Dropout)))]
            assert len(layers) == 4, name  # the observers prepare inserts are its own
            assert all(m.training is training for m in layers), (name, training)
    # not `convert`: the layers it swaps in are new modules in training mode
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = torch.ao.quantization.prepare(model)
        converted = torch.ao.quantization.convert(prepared)
    assert any(m.training for m in converted.modules())


def test_module_api_is_exactly_nn_modules_public_methods() -> None:
    """`MODULE_API` (what a module's own code may call on `self` that is none of its parts)
    is the public callable surface of `nn.Module` in the installed torch, minus `forward`."""
    public = {
        name
        for name in dir(nn.Module)
        if not name.startswith("_") and callable(getattr(nn.Module, name))
    }
    assert set(T.MODULE_API) <= public
    assert public - set(T.MODULE_API) <= {"forward"}
