"""Facts about torch that evallint relies on, in one table read by the analysis and the verifier.

Stdlib only, imports nothing from evallint: a leaf beside diagnostics.py. Every fact here was
read off torch 2.13 (CPU) and /work/shared/pytorch-facts.md; tests/test_torch_facts.py checks
them against the installed torch (constructor defaults, train/eval behaviour, functional
signatures) whenever torch is importable.

What is here:
- LAYERS: each torch.nn layer evallint knows, whether its output depends on the mode, which
  constructor arguments decide that, their torch defaults, its constructor parameter order and
  whether it owns parameters. Everything the verifier and the analysis derive about layers
  (the kind sets below) is computed from this one table.
- FUNCTIONAL: functional calls with a `training` argument (its keyword, position and default).
- WRAPPERS, MODULE_RETURNING_METHODS, MODE_METHODS, WRAPPED_MODULE_ATTRIBUTES: calls and
  attributes that give back the same module for mode purposes.
- GRAD_DISABLERS / GRAD_ENABLERS / GRAD_SETTERS: calls that switch autograd.
- LIBRARY_FACTORIES, PRETRAINED_LOADERS, UNKNOWN_MODE_LOADERS: calls that return modules.
- SELF_MANAGED_BASES / SELF_MANAGED_PACKAGES / SELF_MANAGED_HOOKS / NO_GRAD_METHODS: framework code that sets the mode
  or turns autograd off itself.
- GRADIENT_FUNCTIONS: functions whose results carry no graph unless `create_graph=True`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

Mode = Literal["sensitive", "independent", "container"]
Owns = Literal["always", "never", "affine", "elementwise_affine"]


@dataclass(frozen=True)
class LayerFact:
    """One layer class and what decides whether its output differs between train and eval."""

    name: str
    mode: Mode
    family: str
    """dropout, alpha_dropout, rrelu, batchnorm, instancenorm, rnn, attention, transformer,
    stochastic_depth, container, or the plain family of a mode-independent layer."""
    positional: tuple[str, ...] = ()
    """Constructor parameter order, so positional literals get their names."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """torch's defaults for the parameters that decide mode dependence or parameter ownership."""
    decides: tuple[str, ...] = ()
    """Constructor arguments that decide mode dependence: an unread one leaves it open."""
    owns: Owns = "never"
    """Does an instance own parameters: always, never, or per its affine flag."""
    stateless: bool = False
    """No mode and no state that matters: calling one is not a model forward (the analysis)."""
    module: str = "torch.nn"


_DROPOUT_ARGS = ("p", "inplace")
_BN_ARGS = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_CONV_ARGS = ("in_channels", "out_channels", "kernel_size", "stride", "padding")
_RNN_ARGS = (
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "dropout",
    "bidirectional",
)
_TRANSFORMER_LAYER_ARGS = ("d_model", "nhead", "dim_feedforward", "dropout")
_NORM_STATS = {"eps": 1e-5, "momentum": 0.1}


def _table() -> dict[str, LayerFact]:
    out: list[LayerFact] = []
    add = out.append
    for name in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d"):
        add(LayerFact(name, "sensitive", "dropout", _DROPOUT_ARGS, {"p": 0.5}, ("p",)))
    for name in ("AlphaDropout", "FeatureAlphaDropout"):
        add(LayerFact(name, "sensitive", "alpha_dropout", _DROPOUT_ARGS, {"p": 0.5}, ("p",)))
    add(
        LayerFact(
            "RReLU",
            "sensitive",
            "rrelu",
            ("lower", "upper", "inplace"),
            {"lower": 1.0 / 8.0, "upper": 1.0 / 3.0},
            ("lower", "upper"),
        )
    )
    bn = {**_NORM_STATS, "affine": True, "track_running_stats": True}
    for d in (1, 2, 3):
        add(
            LayerFact(
                f"BatchNorm{d}d",
                "sensitive",
                "batchnorm",
                _BN_ARGS,
                bn,
                ("track_running_stats",),
                owns="affine",
            )
        )
        add(
            LayerFact(
                f"LazyBatchNorm{d}d",
                "sensitive",
                "batchnorm",
                _BN_ARGS[1:],
                bn,
                ("track_running_stats",),
                owns="affine",
            )
        )
    add(
        LayerFact(
            "SyncBatchNorm",
            "sensitive",
            "batchnorm",
            _BN_ARGS,
            bn,
            ("track_running_stats",),
            owns="affine",
        )
    )
    inorm = {**_NORM_STATS, "affine": False, "track_running_stats": False}
    for d in (1, 2, 3):
        # the Lazy variants default to affine=True, track_running_stats=True (like BatchNorm)
        for name, positional, defaults in (
            (f"InstanceNorm{d}d", _BN_ARGS, inorm),
            (f"LazyInstanceNorm{d}d", _BN_ARGS[1:], bn),
        ):
            add(
                LayerFact(
                    name,
                    "sensitive",
                    "instancenorm",
                    positional,
                    defaults,
                    ("track_running_stats",),
                    owns="affine",
                )
            )
    for name in ("RNN", "LSTM", "GRU"):
        add(
            LayerFact(
                name,
                "sensitive",
                "rnn",
                _RNN_ARGS,
                {"num_layers": 1, "dropout": 0.0},
                ("num_layers", "dropout"),
                owns="always",
            )
        )
    add(
        LayerFact(
            "MultiheadAttention",
            "sensitive",
            "attention",
            ("embed_dim", "num_heads", "dropout", "bias"),
            {"dropout": 0.0},
            ("dropout",),
            owns="always",
        )
    )
    for name in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        add(
            LayerFact(
                name,
                "sensitive",
                "transformer",
                _TRANSFORMER_LAYER_ARGS,
                {"dropout": 0.1},
                ("dropout",),
                owns="always",
            )
        )
    add(
        LayerFact(
            "Transformer",
            "sensitive",
            "transformer",
            (
                "d_model",
                "nhead",
                "num_encoder_layers",
                "num_decoder_layers",
                "dim_feedforward",
                "dropout",
            ),
            {"dropout": 0.1},
            ("dropout",),
            owns="always",
        )
    )
    add(
        LayerFact(
            "StochasticDepth",
            "sensitive",
            "stochastic_depth",
            ("p", "mode"),
            {"p": 0.0},
            ("p",),
            module="torchvision.ops",
        )
    )
    # containers: their mode dependence is that of what they hold
    add(LayerFact("TransformerEncoder", "container", "container", ("encoder_layer", "num_layers")))
    add(LayerFact("TransformerDecoder", "container", "container", ("decoder_layer", "num_layers")))
    for name in ("Sequential", "ModuleList", "ModuleDict"):
        add(LayerFact(name, "container", "container"))
    # mode-independent layers that own parameters (always or per an affine flag)
    add(
        LayerFact(
            "Linear",
            "independent",
            "linear",
            ("in_features", "out_features", "bias"),
            owns="always",
        )
    )
    add(LayerFact("LazyLinear", "independent", "linear", ("out_features", "bias"), owns="always"))
    add(
        LayerFact(
            "Bilinear",
            "independent",
            "linear",
            ("in1_features", "in2_features", "out_features", "bias"),
            owns="always",
        )
    )
    for d in (1, 2, 3):
        for name in (f"Conv{d}d", f"ConvTranspose{d}d"):
            add(LayerFact(name, "independent", "conv", _CONV_ARGS, owns="always"))
        add(LayerFact(f"LazyConv{d}d", "independent", "conv", _CONV_ARGS[1:], owns="always"))
    add(
        LayerFact(
            "Embedding",
            "independent",
            "embedding",
            ("num_embeddings", "embedding_dim", "padding_idx"),
            owns="always",
        )
    )
    add(
        LayerFact(
            "EmbeddingBag",
            "independent",
            "embedding",
            ("num_embeddings", "embedding_dim"),
            owns="always",
        )
    )
    add(
        LayerFact(
            "PReLU",
            "independent",
            "activation",
            ("num_parameters", "init"),
            owns="always",
            stateless=True,
        )
    )
    add(
        LayerFact(
            "LayerNorm",
            "independent",
            "norm",
            ("normalized_shape", "eps", "elementwise_affine", "bias"),
            {"eps": 1e-5, "elementwise_affine": True},
            owns="elementwise_affine",
        )
    )
    add(
        LayerFact(
            "RMSNorm",
            "independent",
            "norm",
            ("normalized_shape", "eps", "elementwise_affine"),
            {"elementwise_affine": True},
            owns="elementwise_affine",
        )
    )
    add(
        LayerFact(
            "GroupNorm",
            "independent",
            "norm",
            ("num_groups", "num_channels", "eps", "affine"),
            {"eps": 1e-5, "affine": True},
            owns="affine",
        )
    )
    add(LayerFact("LocalResponseNorm", "independent", "norm", ("size",)))
    # mode-independent layers without parameters
    for family, names, stateless in (
        (
            "activation",
            "ReLU ReLU6 LeakyReLU ELU SELU CELU GELU SiLU Mish Sigmoid Tanh Softmax Softmin"
            " LogSoftmax Softplus Softsign Softshrink Hardtanh Hardswish Hardsigmoid Hardshrink"
            " Tanhshrink Threshold GLU LogSigmoid",
            True,
        ),
        ("activation", "Softmax2d", False),
        ("identity", "Identity Flatten Unflatten Upsample PixelShuffle", True),
        (
            "reshape",
            "UpsamplingNearest2d UpsamplingBilinear2d PixelUnshuffle ChannelShuffle",
            False,
        ),
        (
            "pool",
            "MaxPool1d MaxPool2d MaxPool3d AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d"
            " AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool2d",
            True,
        ),
        ("pool", "AdaptiveMaxPool1d AdaptiveMaxPool3d LPPool1d LPPool2d", False),
        (
            "pad",
            "ZeroPad1d ZeroPad2d ZeroPad3d ConstantPad1d ConstantPad2d ConstantPad3d"
            " ReflectionPad1d ReflectionPad2d ReflectionPad3d ReplicationPad1d ReplicationPad2d"
            " ReplicationPad3d CircularPad2d",
            False,
        ),
        ("distance", "CosineSimilarity PairwiseDistance", True),
    ):
        for name in names.split():
            add(
                LayerFact(
                    name,
                    "independent",
                    family,
                    _PLAIN_POSITIONAL.get(name, ()),
                    stateless=stateless,
                )
            )
    return {fact.name: fact for fact in out}


_MAXPOOL = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
_AVGPOOL = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
_PLAIN_POSITIONAL: dict[str, tuple[str, ...]] = {
    **{f"MaxPool{d}d": _MAXPOOL for d in (1, 2, 3)},
    "AvgPool1d": _AVGPOOL,
    **{f"AvgPool{d}d": (*_AVGPOOL, "divisor_override") for d in (2, 3)},
    **{f"AdaptiveAvgPool{d}d": ("output_size",) for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": ("output_size", "return_indices") for d in (1, 2, 3)},
    **{f"LPPool{d}d": ("norm_type", "kernel_size", "stride", "ceil_mode") for d in (1, 2)},
    **{
        f"{kind}Pad{d}d": ("padding",)
        for kind in ("Zero", "Reflection", "Replication")
        for d in (1, 2, 3)
    },
    **{f"ConstantPad{d}d": ("padding", "value") for d in (1, 2, 3)},
    "CircularPad2d": ("padding",),
    "Flatten": ("start_dim", "end_dim"),
    "Upsample": ("size", "scale_factor", "mode", "align_corners"),
    "PixelShuffle": ("upscale_factor",),
    "PixelUnshuffle": ("downscale_factor",),
    "ChannelShuffle": ("groups",),
    "Softmax": ("dim",),
    "Softmin": ("dim",),
    "LogSoftmax": ("dim",),
    "GLU": ("dim",),
    "LeakyReLU": ("negative_slope", "inplace"),
    "ELU": ("alpha", "inplace"),
    "CELU": ("alpha", "inplace"),
    "Hardtanh": ("min_val", "max_val", "inplace"),
    "ReLU6": ("inplace",),
    "ReLU": ("inplace",),
    "Threshold": ("threshold", "value", "inplace"),
    "GELU": ("approximate",),
}
"""Constructor parameter order of the mode-independent layers without parameters, so their
positional arguments (a pooling's kernel size) are read and not replaced by assumed sizes."""


LAYERS: dict[str, LayerFact] = _table()
"""Every layer class evallint knows, by class name."""

MODE_INDEPENDENT_SUFFIXES = ("Loss", "Loss2d")
"""Class-name endings of mode-independent torch.nn classes (the losses, the deprecated
`NLLLoss2d` too): they hold no parameters."""

POSITIONAL: dict[str, tuple[str, ...]] = {
    n: f.positional for n, f in LAYERS.items() if f.positional
}
DEFAULTS: dict[str, dict[str, Any]] = {n: dict(f.defaults) for n, f in LAYERS.items() if f.defaults}


def _kinds(*families: str) -> frozenset[str]:
    return frozenset(n for n, f in LAYERS.items() if f.family in families)


DROPOUT_KINDS = _kinds("dropout", "alpha_dropout")
ALPHA_DROPOUT_KINDS = _kinds("alpha_dropout")
BATCHNORM_KINDS = _kinds("batchnorm")
INSTANCENORM_KINDS = _kinds("instancenorm")
RNN_KINDS = _kinds("rnn")
TRANSFORMER_KINDS = _kinds("transformer")
MODE_SENSITIVE = frozenset(n for n, f in LAYERS.items() if f.mode == "sensitive")
"""Kinds whose mode dependence `mode_sensitive` decides from their constructor arguments."""
MODE_INDEPENDENT = frozenset(n for n, f in LAYERS.items() if f.mode == "independent")
CONTAINERS = frozenset(n for n, f in LAYERS.items() if f.mode == "container")
TORCH_NN_MAY_DEPEND_ON_MODE = frozenset(
    n for n, f in LAYERS.items() if f.module == "torch.nn" and f.mode != "independent"
) - {"Sequential", "ModuleList", "ModuleDict"}
"""torch.nn classes whose instance may behave differently in train and eval mode (the layers
themselves and the Transformer stacks that hold them)."""
STATELESS = frozenset(n for n, f in LAYERS.items() if f.stateless)
"""Layers with no mode whose call is not a model forward (activations, pooling, reshaping)."""


def owns_parameters(kind: str, read: dict[str, Any]) -> bool:
    """Does a `kind` built with arguments `read` own parameters (torch defaults stand in)?"""
    fact = LAYERS.get(kind)
    if fact is None or fact.owns == "never":
        return False
    if fact.owns == "always":
        return True
    return bool(read.get(fact.owns, fact.defaults.get(fact.owns, True)))


def mode_sensitive(kind: str, read: dict[str, Any]) -> Optional[bool]:
    """Does a `kind` built with the arguments `read` differ between train and eval mode?

    `read` holds the arguments that were read; torch defaults stand in for the others. A
    deciding argument whose value is not a plain number/bool gives None (undecided).
    """
    fact = LAYERS.get(kind)
    if fact is None or fact.mode != "sensitive":
        return False
    args = {**fact.defaults, **{k: v for k, v in read.items() if k in fact.decides}}
    family = fact.family

    def number(name: str) -> Optional[float]:
        value = args.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    if family in ("dropout", "alpha_dropout", "stochastic_depth", "attention", "transformer"):
        rate = number("p" if "p" in fact.decides else "dropout")
        return None if rate is None else rate != 0
    if family == "rrelu":
        lower, upper = number("lower"), number("upper")
        return None if lower is None or upper is None else lower != upper
    if family in ("batchnorm", "instancenorm"):
        tracked = args.get("track_running_stats")
        return tracked if isinstance(tracked, bool) else None
    if family == "rnn":
        layers, rate = number("num_layers"), number("dropout")
        if (layers is not None and layers <= 1) or (rate is not None and rate == 0):
            return False
        return None if layers is None or rate is None else True
    return None


def undecided_arguments(kind: str, unread: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The deciding arguments of `kind` that were present in the source but not read."""
    fact = LAYERS.get(kind)
    if fact is None:
        return ()
    starred = any(u.startswith("*") for u in unread)
    return tuple(d for d in fact.decides if d in unread or starred)


@dataclass(frozen=True)
class FunctionalFact:
    """A functional call whose behaviour depends on a `training` argument."""

    qualified: str
    parameters: tuple[str, ...]
    keyword: str
    default: Optional[bool]
    """None: the argument is required."""
    layer: Optional[str]
    """The layer class that behaves like this call when `training` follows the module mode."""

    @property
    def position(self) -> int:
        return self.parameters.index(self.keyword)


def _functional() -> dict[str, FunctionalFact]:
    out: list[FunctionalFact] = []
    drop = ("input", "p", "training", "inplace")
    for name, layer in (
        ("dropout", "Dropout"),
        ("dropout1d", "Dropout1d"),
        ("dropout2d", "Dropout2d"),
        ("dropout3d", "Dropout3d"),
    ):
        out.append(FunctionalFact(f"torch.nn.functional.{name}", drop, "training", True, layer))
    for name, layer in (
        ("alpha_dropout", "AlphaDropout"),
        ("feature_alpha_dropout", "FeatureAlphaDropout"),
    ):
        out.append(FunctionalFact(f"torch.nn.functional.{name}", drop, "training", False, layer))
    out.append(
        FunctionalFact(
            "torch.nn.functional.rrelu",
            ("input", "lower", "upper", "training", "inplace"),
            "training",
            False,
            "RReLU",
        )
    )
    out.append(
        FunctionalFact(
            "torch.nn.functional.batch_norm",
            (
                "input",
                "running_mean",
                "running_var",
                "weight",
                "bias",
                "training",
                "momentum",
                "eps",
            ),
            "training",
            False,
            None,
        )
    )
    out.append(FunctionalFact("torch.dropout", ("input", "p", "train"), "train", None, "Dropout"))
    return {fact.qualified: fact for fact in out}


FUNCTIONAL: dict[str, FunctionalFact] = _functional()
"""Functional calls with a `training` argument, by qualified name (torch 2.13 signatures)."""

WRAPPERS = frozenset(
    {
        "torch.nn.DataParallel",
        "torch.nn.parallel.DataParallel",
        "torch.nn.parallel.DistributedDataParallel",
        "torch.nn.parallel.distributed.DistributedDataParallel",
        "DistributedDataParallel",
        "DataParallel",
        "DDP",
        "torch.compile",
        "torch.nn.SyncBatchNorm.convert_sync_batchnorm",
        "FullyShardedDataParallel",
        "FSDP",
        "torch.distributed.fsdp.FullyShardedDataParallel",
        "torch.distributed.fsdp.FSDP",
        "torch.nn.utils.weight_norm",
        "torch.nn.utils.spectral_norm",
        "torch.jit.freeze",
        "torch.jit.optimize_for_inference",
        "torch.jit.script",
        "torch.jit.trace",
    }
)
"""Calls whose first argument is the module and whose result is the same module for mode
purposes (its train()/eval() reach the inner one)."""

TUPLE_WRAPPERS: dict[str, tuple[int, str, int]] = {
    "deepspeed.initialize": (0, "model", 1),
}
"""Calls that return a tuple one of whose items wraps a module they are given, by qualified
name -> (the item's index, the module's keyword, its position among the arguments): the
item is the same module for mode purposes, as a WRAPPERS result is. `engine, optimizer, _,
_ = deepspeed.initialize(args=args, model=model, ...)`: the DeepSpeedEngine is an nn.Module
holding `model`, and its train()/eval() switch the wrapped model (deepspeed 0.16)."""

MODE_KEEPING_COPIES = frozenset(
    {
        "torch.ao.quantization.prepare",
        "torch.quantization.prepare",
        "torch.fx.symbolic_trace",
    }
)
"""Calls whose first argument is the module and whose result is a copy of it (or a traced
graph of it) with every submodule in the mode the module had at the call, like
`copy.deepcopy`: a later `eval()` of the original does not reach it (the observers `prepare`
inserts are its own). Not `quantization.convert` or `quantize_dynamic`, whose swapped-in
layers are new modules."""

WRAPPER_SUFFIXES = ("DataParallel", "DistributedDataParallel")
"""Class-name endings of wrappers under any import spelling."""

MODULE_RETURNING_METHODS = frozenset(
    {
        "to",
        "cuda",
        "cpu",
        "float",
        "half",
        "double",
        "bfloat16",
        "requires_grad_",
        "share_memory",
        "to_empty",
        "type",
        "apply",
    }
)
"""Module methods that return the module they were called on, leaving its mode alone
(`zero_grad` is not one: it returns None)."""

MODULE_API = frozenset(
    {
        "add_module", "apply", "bfloat16", "buffers", "children", "compile", "cpu", "cuda",
        "double", "eval", "extra_repr", "float", "get_buffer", "get_extra_state",
        "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia",
        "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
        "register_backward_hook", "register_buffer", "register_forward_hook",
        "register_forward_pre_hook", "register_full_backward_hook",
        "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook", "register_module", "register_parameter",
        "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
        "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty",
        "train", "type", "xpu", "zero_grad",
    }
)  # fmt: skip
"""The public methods every `nn.Module` has besides `forward` (torch 2.13): `self.parameters()`
or `self.register_buffer(...)` in a module's own code is none of its parts."""

TENSOR_ONLY_METHODS = frozenset(
    {
        "permute", "unsqueeze", "squeeze", "view", "view_as", "reshape", "reshape_as",
        "transpose", "flatten", "expand", "expand_as", "repeat", "contiguous", "clone",
        "detach", "scatter", "gather", "masked_fill", "index_select", "narrow", "numpy",
        "tolist", "argmax", "argmin", "cumsum", "clamp", "roll", "flip",
    }
)  # fmt: skip
"""`torch.Tensor` methods that `nn.Module` does not have (MODULE_API): what such a call
returns (`one_hot(y).permute(2, 0, 1).unsqueeze(0)`) is a tensor, never a module."""

MODE_METHODS = frozenset({"train", "eval"})
"""Module methods that set the mode and return the module."""

WRAPPED_MODULE_ATTRIBUTES = frozenset({"module", "_orig_mod", "_module"})
"""Attributes of a wrapper that are the wrapped module itself."""

UNWRAPPING_CALLS = frozenset({"unwrap_model"})
"""Functions and methods that return the module inside the wrapper they are given, as its
first argument (accelerate's `Accelerator.unwrap_model(model)`, transformers'
`modeling_utils.unwrap_model(model)`): the same module for mode purposes."""

FORWARD_RUNNERS = frozenset(
    {
        "torch.nn.parallel.data_parallel",
        "torch.nn.parallel.data_parallel.data_parallel",
        "torch.func.functional_call",
        "torch.nn.utils.stateless.functional_call",
    }
)
"""Functions that run the forward of the module given as their first argument on the inputs
that follow (`nn.parallel.data_parallel(net, inputs, gpus)` is `net(*inputs)` replicated on
each device; `torch.func.functional_call(net, params, args)` is `net(*args)` with the given
parameters): the call is that module's forward, in its mode and under the caller's autograd."""

GRAD_DISABLERS = frozenset(
    {
        "torch.no_grad",
        "torch.inference_mode",
        "torch.autograd.no_grad",
        "torch.autograd.grad_mode.no_grad",
        "torch.autograd.grad_mode.inference_mode",
    }
)
GRAD_ENABLERS = frozenset({"torch.enable_grad", "torch.autograd.enable_grad"})
GRAD_SETTERS = frozenset(
    {
        "torch.set_grad_enabled",
        "torch.autograd.set_grad_enabled",
        "torch.autograd.grad_mode.set_grad_enabled",
    }
)

LIBRARY_FACTORIES = (
    "torchvision.models.",
    "timm.create_model",
    "timm.models.",
    "torch.hub.load",
    "segmentation_models_pytorch.",
    "transformers.AutoModel",
    "torchaudio.models.",
    "torchvision.models.detection.",
    "torchvision.models.segmentation.",
)
"""Qualified-name prefixes of calls that return a fresh nn.Module (in training mode)."""

LIBRARY_EVALUATORS = frozenset({"transformers.pipeline", "transformers.pipelines.pipeline"})
"""Library calls that return an object, not an nn.Module, that evaluates its model itself:
a transformers `Pipeline` loads the model with `from_pretrained` (eval mode) and runs
each call's forward under `torch.no_grad()` (`Pipeline.forward`, inference context)."""

PRETRAINED_LOADERS = frozenset({"from_pretrained"})
"""Methods that return a module already in eval mode (transformers, diffusers)."""

UNKNOWN_MODE_LOADERS = frozenset(
    {"torch.load", "torch.jit.load", "torch.export.load", "load_checkpoint", "load_model"}
)
"""Calls that return a module in whatever mode it was saved in."""

SELF_MANAGED_BASES = frozenset(
    {
        "LightningModule",
        "pytorch_lightning.LightningModule",
        "lightning.LightningModule",
        "lightning.pytorch.LightningModule",
        "pl.LightningModule",
        "L.LightningModule",
        "transformers.Trainer",
        "Trainer",
        "Seq2SeqTrainer",
        "transformers.Seq2SeqTrainer",
    }
)
"""Classes whose framework puts the model in the right mode around their hooks."""

SELF_MANAGED_PACKAGES = frozenset({"transformers", "trl", "pytorch_lightning", "lightning"})
"""Packages whose trainer and module classes (and their subclasses, such as trl's SFTTrainer,
a transformers.Trainer) set the mode around their hooks: a base of these names imported from
anywhere else (a project's own `Trainer`) is not one of them."""

SELF_MANAGED_HOOKS = frozenset(
    {
        "training_step",
        "validation_step",
        "test_step",
        "predict_step",
        "validation_epoch_end",
        "test_epoch_end",
        "on_validation_epoch_end",
        "on_test_epoch_end",
        "evaluation_loop",
        "prediction_step",
        "compute_loss",
        "evaluate",
        "predict",
        "eval_step",
        "evaluation_step",
    }
)
"""Framework hooks called in the right mode (and, for evaluation, under no_grad) by the
framework (Lightning, HF Trainer, Ignite)."""

NO_GRAD_METHODS = frozenset({"generate"})
"""Forward-like methods that disable autograd themselves (transformers' generate)."""

GRADIENT_FUNCTIONS = frozenset(
    {
        "torch.autograd.grad",
        "torch.autograd.functional.jacobian",
        "torch.autograd.functional.hessian",
        "torch.autograd.functional.vjp",
        "torch.autograd.functional.jvp",
        "torch.autograd.functional.vhp",
        "torch.autograd.functional.hvp",
    }
)
"""Functions that compute gradients and return them detached (no graph, `requires_grad`
False), with every other value they return, unless given `create_graph=True`."""

OTHER_FRAMEWORKS = (
    "tensorflow",
    "keras",
    "tf_keras",
    "jax",
    "flax",
    "haiku",
    "paddle",
    "mxnet",
    "mindspore",
    "oneflow",
)
"""Deep-learning frameworks with their own train/eval switches and autograd (Keras'
`training=` argument, TensorFlow's GradientTape, JAX's functional gradients). A file that
imports one of them and never mentions torch is that framework's code: a `model(x)` loop in
it says nothing about PyTorch's modes."""


RANDOM_DRAWS = frozenset(
    f"torch.{name}"
    for name in (
        "randn",
        "rand",
        "randint",
        "randn_like",
        "rand_like",
        "randint_like",
        "normal",
        "multinomial",
        "bernoulli",
    )
)
"""torch's random draws: a tensor made from one is noise, not data (a method drawing its
forward's input from one is a sampler: analysis/own_methods.py)."""


SYNTHETIC_TENSOR_FACTORIES = (RANDOM_DRAWS - {"torch.multinomial", "torch.bernoulli"}) | frozenset(
    f"torch.{name}"
    for name in (
        "zeros",
        "ones",
        "zeros_like",
        "ones_like",
        "full",
        "empty",
    )
)
"""torch functions that make a tensor up (random or constant) rather than read data: a
module run only on such inputs is probed, not evaluated (analysis/probes.py)."""


RESHAPING_METHODS = frozenset(
    {
        "view",
        "reshape",
        "unsqueeze",
        "squeeze",
        "flatten",
        "permute",
        "transpose",
        "expand",
        "contiguous",
        "float",
        "double",
        "half",
        "long",
        "int",
        "detach",
        "clone",
        "requires_grad_",
    }
)
"""Tensor methods that reshape, cast or copy a tensor without reading anything else: one of
a made-up tensor is made up too (analysis/probes.py)."""
