"""Static layer extraction: which torch layers does the module a finding names contain?

Why static: the verifier must never run a user's script to learn its model. A finding names
its module (`Diagnostic.subject`, e.g. ``model`` or ``self.net``); this module follows that
name through assignments, wrappers (``.to()``, ``DataParallel``, ``torch.compile``), function
parameters (via call sites in the same file), project classes (``__init__`` assignments,
``nn.Sequential``/``ModuleList``/``ModuleDict`` contents, nested submodule classes, base
classes, ``F.dropout(..., training=self.training)`` in ``forward``) and factory functions, or
into a table of library model families. When it cannot follow, it says what stopped it.
It parses files with LibCST on its own and never imports evallint's analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

MAX_DEPTH = 16
"""How many hops (assignment, call site, class, factory) one extraction may take."""

_BN = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding")
_DROPOUT = ("p", "inplace")
_TRANSFORMER_LAYER = ("d_model", "nhead", "dim_feedforward", "dropout")

POSITIONAL: dict[str, tuple[str, ...]] = {
    **{
        k: _DROPOUT
        for k in (
            "Dropout",
            "Dropout1d",
            "Dropout2d",
            "Dropout3d",
            "AlphaDropout",
            "FeatureAlphaDropout",
        )
    },
    "RReLU": ("lower", "upper", "inplace"),
    **{f"BatchNorm{d}d": _BN for d in (1, 2, 3)},
    **{f"InstanceNorm{d}d": _BN for d in (1, 2, 3)},
    **{f"LazyBatchNorm{d}d": _BN[1:] for d in (1, 2, 3)},
    **{f"LazyInstanceNorm{d}d": _BN[1:] for d in (1, 2, 3)},
    "SyncBatchNorm": _BN,
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine", "bias"),
    "RMSNorm": ("normalized_shape", "eps", "elementwise_affine"),
    "GroupNorm": ("num_groups", "num_channels", "eps", "affine"),
    "Linear": ("in_features", "out_features", "bias"),
    "LazyLinear": ("out_features", "bias"),
    "Bilinear": ("in1_features", "in2_features", "out_features", "bias"),
    **{f"Conv{d}d": _CONV for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": _CONV for d in (1, 2, 3)},
    "Embedding": ("num_embeddings", "embedding_dim", "padding_idx"),
    **{
        k: (
            "input_size",
            "hidden_size",
            "num_layers",
            "bias",
            "batch_first",
            "dropout",
            "bidirectional",
        )
        for k in ("RNN", "LSTM", "GRU")
    },
    "MultiheadAttention": ("embed_dim", "num_heads", "dropout", "bias"),
    "TransformerEncoderLayer": _TRANSFORMER_LAYER,
    "TransformerDecoderLayer": _TRANSFORMER_LAYER,
    "Transformer": (
        "d_model",
        "nhead",
        "num_encoder_layers",
        "num_decoder_layers",
        "dim_feedforward",
        "dropout",
    ),
    "PReLU": ("num_parameters", "init"),
}
"""torch.nn constructor parameter order (torch 2.13), so positional literals get their names."""

DEFAULTS: dict[str, dict[str, Any]] = {
    **{
        k: {"p": 0.5}
        for k in (
            "Dropout",
            "Dropout1d",
            "Dropout2d",
            "Dropout3d",
            "AlphaDropout",
            "FeatureAlphaDropout",
        )
    },
    "RReLU": {"lower": 1.0 / 8.0, "upper": 1.0 / 3.0},
    **{
        k: {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}
        for k in (
            "BatchNorm1d",
            "BatchNorm2d",
            "BatchNorm3d",
            "SyncBatchNorm",
            "LazyBatchNorm1d",
            "LazyBatchNorm2d",
            "LazyBatchNorm3d",
        )
    },
    **{
        k: {"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False}
        for k in (
            "InstanceNorm1d",
            "InstanceNorm2d",
            "InstanceNorm3d",
            "LazyInstanceNorm1d",
            "LazyInstanceNorm2d",
            "LazyInstanceNorm3d",
        )
    },
    **{k: {"num_layers": 1, "dropout": 0.0} for k in ("RNN", "LSTM", "GRU")},
    "MultiheadAttention": {"dropout": 0.0},
    "TransformerEncoderLayer": {"dropout": 0.1},
    "TransformerDecoderLayer": {"dropout": 0.1},
    "Transformer": {"dropout": 0.1},
    "LayerNorm": {"eps": 1e-5, "elementwise_affine": True},
    "GroupNorm": {"eps": 1e-5, "affine": True},
    "StochasticDepth": {"p": 0.0},
}
"""torch defaults for the parameters that decide mode dependence or parameter ownership."""

_DROPOUT_KINDS = frozenset(
    ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")
)
_BATCHNORM_KINDS = frozenset(
    (
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "SyncBatchNorm",
        "LazyBatchNorm1d",
        "LazyBatchNorm2d",
        "LazyBatchNorm3d",
    )
)
_INSTANCENORM_KINDS = frozenset(
    (
        "InstanceNorm1d",
        "InstanceNorm2d",
        "InstanceNorm3d",
        "LazyInstanceNorm1d",
        "LazyInstanceNorm2d",
        "LazyInstanceNorm3d",
    )
)
_TRANSFORMER_KINDS = frozenset(
    ("TransformerEncoderLayer", "TransformerDecoderLayer", "Transformer")
)
_RNN_KINDS = frozenset(("RNN", "LSTM", "GRU"))

MODE_INDEPENDENT = frozenset(
    (
        "Linear",
        "LazyLinear",
        "Bilinear",
        "Identity",
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "ConvTranspose3d",
        "LazyConv1d",
        "LazyConv2d",
        "LazyConv3d",
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "SELU",
        "CELU",
        "GELU",
        "SiLU",
        "Mish",
        "Sigmoid",
        "Tanh",
        "Softmax",
        "Softmin",
        "LogSoftmax",
        "Softmax2d",
        "Softplus",
        "Softsign",
        "Softshrink",
        "Hardtanh",
        "Hardswish",
        "Hardsigmoid",
        "Hardshrink",
        "Tanhshrink",
        "Threshold",
        "GLU",
        "LogSigmoid",
        "LayerNorm",
        "GroupNorm",
        "RMSNorm",
        "LocalResponseNorm",
        "Embedding",
        "EmbeddingBag",
        "MaxPool1d",
        "MaxPool2d",
        "MaxPool3d",
        "AvgPool1d",
        "AvgPool2d",
        "AvgPool3d",
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "AdaptiveAvgPool3d",
        "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d",
        "AdaptiveMaxPool3d",
        "LPPool1d",
        "LPPool2d",
        "Flatten",
        "Unflatten",
        "Upsample",
        "UpsamplingNearest2d",
        "UpsamplingBilinear2d",
        "PixelShuffle",
        "PixelUnshuffle",
        "ChannelShuffle",
        "ZeroPad1d",
        "ZeroPad2d",
        "ZeroPad3d",
        "ConstantPad1d",
        "ConstantPad2d",
        "ConstantPad3d",
        "ReflectionPad1d",
        "ReflectionPad2d",
        "ReflectionPad3d",
        "ReplicationPad1d",
        "ReplicationPad2d",
        "ReplicationPad3d",
        "CircularPad2d",
        "CosineSimilarity",
        "PairwiseDistance",
    )
)
"""torch.nn layers whose output is the same in train and eval mode (pytorch-facts.md)."""

MODE_DEPENDENT_CANDIDATES = (
    _DROPOUT_KINDS
    | _BATCHNORM_KINDS
    | _INSTANCENORM_KINDS
    | _TRANSFORMER_KINDS
    | _RNN_KINDS
    | {"RReLU", "MultiheadAttention", "StochasticDepth"}
)
"""Kinds whose mode dependence `is_mode_dependent` decides from their parameters."""

_WITH_PARAMETERS = frozenset(
    (
        "Linear",
        "LazyLinear",
        "Bilinear",
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "ConvTranspose3d",
        "LazyConv1d",
        "LazyConv2d",
        "LazyConv3d",
        "Embedding",
        "EmbeddingBag",
        "PReLU",
        "RNN",
        "LSTM",
        "GRU",
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerDecoderLayer",
        "Transformer",
        "RMSNorm",
    )
)
"""Kinds that always own parameters; norm layers depend on affine/elementwise_affine."""

_FUNCTIONAL_AS_LAYER = {
    "dropout": "Dropout",
    "dropout1d": "Dropout1d",
    "dropout2d": "Dropout2d",
    "dropout3d": "Dropout3d",
    "alpha_dropout": "AlphaDropout",
    "feature_alpha_dropout": "FeatureAlphaDropout",
    "rrelu": "RReLU",
}
"""torch.nn.functional calls in `forward` that act like a mode-dependent layer."""

_MODULE_METHODS_RETURNING_SELF = frozenset(
    (
        "to",
        "cuda",
        "cpu",
        "float",
        "double",
        "half",
        "bfloat16",
        "train",
        "eval",
        "requires_grad_",
        "share_memory",
        "to_empty",
        "type",
        "apply",
        "zero_grad",
    )
)
_WRAPPERS = frozenset(
    (
        "torch.nn.DataParallel",
        "torch.nn.parallel.DataParallel",
        "torch.nn.parallel.DistributedDataParallel",
        "torch.compile",
        "torch.jit.script",
        "torch.jit.trace",
        "torch.nn.SyncBatchNorm.convert_sync_batchnorm",
        "torch.nn.utils.spectral_norm",
        "torch.nn.utils.weight_norm",
    )
)
"""Calls whose first argument is the module (they wrap it; `.eval()` reaches it)."""

_NOT_MODULES = re.compile(
    r"^(torch\.(?!nn\.)\w+|torch\.nn\.(Parameter|init\..*|functional\..*)|math\..*|numpy\..*|np\..*|"
    r"(int|float|str|bool|len|range|list|dict|tuple|set|max|min|sum|abs|round|getattr|super|print|isinstance))$"
)
"""Calls in `__init__` that build values other than modules; such assignments are skipped."""


# --- the library table ------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryFamily:
    """A family of library models and the mode-dependent layers every member contains."""

    library: str
    pattern: str
    layers: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    source: str


def _fam(
    library: str, pattern: str, source: str, *layers: tuple[str, dict[str, Any]]
) -> LibraryFamily:
    return LibraryFamily(library, pattern, tuple((k, tuple(p.items())) for k, p in layers), source)


_BN2D = ("BatchNorm2d", {})
LIBRARY_TABLE: tuple[LibraryFamily, ...] = (
    _fam(
        "torchvision",
        r"resnet\d+|resnext\d+_\w+|wide_resnet\d+_2",
        "torchvision/models/resnet.py: norm_layer defaults to nn.BatchNorm2d; no dropout",
        _BN2D,
    ),
    _fam(
        "torchvision",
        r"vgg\d+_bn",
        "torchvision/models/vgg.py: batch_norm=True adds BatchNorm2d; classifier has two Dropout(p=0.5)",
        _BN2D,
        ("Dropout", {"p": 0.5}),
    ),
    _fam(
        "torchvision",
        r"vgg\d+",
        "torchvision/models/vgg.py: classifier has two Dropout(p=0.5)",
        ("Dropout", {"p": 0.5}),
    ),
    _fam(
        "torchvision",
        r"alexnet",
        "torchvision/models/alexnet.py: classifier has two Dropout(p=0.5)",
        ("Dropout", {"p": 0.5}),
    ),
    _fam(
        "torchvision",
        r"densenet\d+",
        "torchvision/models/densenet.py: BatchNorm2d throughout; drop_rate defaults to 0",
        _BN2D,
    ),
    _fam(
        "torchvision",
        r"mobilenet_v[23](_large|_small)?",
        "torchvision/models/mobilenetv2.py, mobilenetv3.py: BatchNorm2d; classifier Dropout(p=0.2)",
        _BN2D,
        ("Dropout", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"efficientnet_b[01]",
        "torchvision/models/efficientnet.py: BatchNorm2d, Dropout(p=0.2), StochasticDepth(0.2)",
        _BN2D,
        ("Dropout", {"p": 0.2}),
        ("StochasticDepth", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"efficientnet_b[23]",
        "torchvision/models/efficientnet.py: BatchNorm2d, Dropout(p=0.3), StochasticDepth(0.2)",
        _BN2D,
        ("Dropout", {"p": 0.3}),
        ("StochasticDepth", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"efficientnet_b[45]",
        "torchvision/models/efficientnet.py: BatchNorm2d, Dropout(p=0.4), StochasticDepth(0.2)",
        _BN2D,
        ("Dropout", {"p": 0.4}),
        ("StochasticDepth", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"efficientnet_b[67]",
        "torchvision/models/efficientnet.py: BatchNorm2d, Dropout(p=0.5), StochasticDepth(0.2)",
        _BN2D,
        ("Dropout", {"p": 0.5}),
        ("StochasticDepth", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"inception_v3",
        "torchvision/models/inception.py: BasicConv2d uses BatchNorm2d; Dropout(p=0.5)",
        _BN2D,
        ("Dropout", {"p": 0.5}),
    ),
    _fam(
        "torchvision",
        r"googlenet",
        "torchvision/models/googlenet.py: BatchNorm2d; Dropout(p=0.2)",
        _BN2D,
        ("Dropout", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"squeezenet1_[01]",
        "torchvision/models/squeezenet.py: classifier Dropout(p=0.5)",
        ("Dropout", {"p": 0.5}),
    ),
    _fam(
        "torchvision",
        r"shufflenet_v2_x\d_\d|regnet_[xy]_\w+",
        "torchvision/models/shufflenetv2.py, regnet.py: BatchNorm2d; no dropout",
        _BN2D,
    ),
    _fam(
        "torchvision",
        r"mnasnet\d_\d+",
        "torchvision/models/mnasnet.py: BatchNorm2d; classifier Dropout(p=0.2)",
        _BN2D,
        ("Dropout", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"convnext_\w+",
        "torchvision/models/convnext.py: LayerNorm; StochasticDepth (0.1 for tiny)",
        ("LayerNorm", {}),
        ("StochasticDepth", {"p": 0.1}),
    ),
    _fam(
        "torchvision",
        r"swin_(v2_)?[tsb]",
        "torchvision/models/swin_transformer.py: LayerNorm; StochasticDepth (0.2 for t)",
        ("LayerNorm", {}),
        ("StochasticDepth", {"p": 0.2}),
    ),
    _fam(
        "torchvision",
        r"vit_[bhl]_\d+",
        "torchvision/models/vision_transformer.py: LayerNorm; dropout and attention_dropout default to 0.0",
        ("LayerNorm", {}),
        ("Dropout", {"p": 0.0}),
    ),
    _fam(
        "timm",
        r"(tv_)?resnet\w*|resnext\w*|efficientnet\w*|mobilenet\w*|regnet\w*|densenet\w*",
        "timm/models: BatchNorm2d in every conv block; drop_rate (classifier Dropout) defaults to 0",
        _BN2D,
        ("Dropout", {"p": 0.0}),
    ),
    _fam(
        "timm",
        r"vit_\w+|deit\w*|beit\w*|swin\w*|convnext\w*",
        "timm/models/vision_transformer.py: LayerNorm; drop_rate and attn_drop_rate default to 0",
        ("LayerNorm", {}),
        ("Dropout", {"p": 0.0}),
    ),
    _fam(
        "transformers",
        r"(bert|roberta|distilbert|electra|xlm[-_]?roberta|camembert|deberta)[\w.-]*",
        "transformers BertConfig & co.: hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, LayerNorm",
        ("Dropout", {"p": 0.1}),
        ("LayerNorm", {}),
    ),
    _fam(
        "transformers",
        r"(gpt2|distilgpt2|openai-gpt)[\w.-]*",
        "transformers GPT2Config: resid_pdrop=embd_pdrop=attn_pdrop=0.1, LayerNorm",
        ("Dropout", {"p": 0.1}),
        ("LayerNorm", {}),
    ),
    _fam(
        "transformers",
        r"(t5|bart|mbart|marian|pegasus)[\w.-]*",
        "transformers T5Config/BartConfig: dropout 0.1, LayerNorm",
        ("Dropout", {"p": 0.1}),
        ("LayerNorm", {}),
    ),
    _fam(
        "transformers",
        r"(llama|mistral|qwen\d*|gemma)[\w.-]*",
        "transformers LlamaConfig & co.: attention_dropout=0.0, RMSNorm",
        ("Dropout", {"p": 0.0}),
        ("RMSNorm", {}),
    ),
)
"""Library families → mode-dependent content. Never imported: read off the libraries' sources."""

_LIBRARY_KWARG_TO_DROPOUT = ("drop_rate", "dropout", "hidden_dropout_prob")
"""Literal keyword arguments of a library constructor that override its Dropout p."""


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """One torch layer found in the source (or in the library table), with its literal args."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    line: int = 0
    origin: str = "source"
    """``source``, ``forward`` (a functional call) or ``table: <where the fact comes from>``."""
    unread: tuple[str, ...] = ()
    """Arguments that were present but not literal; torch defaults stand in for them."""

    def param(self, name: str) -> Any:
        """The literal argument, else torch's default, else None."""
        if name in self.params:
            return self.params[name]
        return DEFAULTS.get(self.kind, {}).get(name)

    @property
    def mode_dependent(self) -> bool:
        return is_mode_dependent(self)

    @property
    def has_parameters(self) -> bool:
        if self.kind in _WITH_PARAMETERS:
            return True
        if self.kind in _BATCHNORM_KINDS | _INSTANCENORM_KINDS | {"GroupNorm"}:
            return bool(self.param("affine"))
        if self.kind == "LayerNorm":
            return bool(self.param("elementwise_affine"))
        return False

    @property
    def location(self) -> str:
        return f"{Path(self.path).name}:{self.line}"

    def label(self) -> str:
        """`Dropout(p=0.5)`, `BatchNorm2d(64)`: how a reader recognises the line it came from."""
        if self.kind in _DROPOUT_KINDS or self.kind == "StochasticDepth":
            return f"{self.kind}(p={self.param('p')})"
        first = POSITIONAL.get(self.kind, ("",))[0]
        if first in self.params and isinstance(self.params[first], (int, float)):
            return f"{self.kind}({self.params[first]})"
        return f"{self.kind}()"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "path": self.path,
            "line": self.line,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "mode_dependent": self.mode_dependent,
            "origin": self.origin,
            "unread": list(self.unread),
        }


@dataclass(frozen=True)
class Extraction:
    """Every layer found for a subject, and why extraction stopped short, if it did."""

    layers: tuple[LayerSpec, ...]
    unresolved: tuple[str, ...]
    root: str
    """What the subject was followed to: ``class Net (net.py:5)``, ``torchvision resnet18``."""

    @property
    def complete(self) -> bool:
        return not self.unresolved and bool(self.root)

    @property
    def mode_dependent(self) -> tuple[LayerSpec, ...]:
        return tuple(layer for layer in self.layers if layer.mode_dependent)


def is_mode_dependent(layer: LayerSpec) -> bool:
    """Does the layer's output differ between train and eval mode (pytorch-facts.md)?"""
    kind = layer.kind
    if kind in _DROPOUT_KINDS or kind == "StochasticDepth":
        return layer.param("p") != 0
    if kind == "RReLU":
        return layer.param("lower") != layer.param("upper")
    if kind in _BATCHNORM_KINDS:
        return layer.param("track_running_stats") is not False
    if kind in _INSTANCENORM_KINDS:
        return layer.param("track_running_stats") is True
    if kind in _RNN_KINDS:
        return _gt(layer.param("num_layers"), 1) and _gt(layer.param("dropout"), 0)
    if kind == "MultiheadAttention":
        return _gt(layer.param("dropout"), 0)
    return kind in _TRANSFORMER_KINDS


def _gt(value: Any, bound: float) -> bool:
    return isinstance(value, (int, float)) and value > bound


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return repr(value)


# --- parsed files -----------------------------------------------------------------------------


class _Unknown:
    """Marker for a value that is not a literal."""


UNKNOWN = _Unknown()


@dataclass
class _Assignment:
    target: str
    value: cst.BaseExpression
    line: int
    func: Optional[cst.FunctionDef]


class _File:
    """One parsed source file with what extraction looks up in it."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
        self.positions: Any = self.wrapper.resolve(PositionProvider)
        self.imports: dict[str, tuple[str, int]] = {}
        self.classes: dict[str, cst.ClassDef] = {}
        self.functions: dict[str, list[cst.FunctionDef]] = {}
        self.assignments: list[_Assignment] = []
        self.calls: list[tuple[cst.Call, Optional[cst.FunctionDef]]] = []
        self.wrapper.module.visit(_Collector(self))

    def line(self, node: cst.CSTNode) -> int:
        pos: CodeRange = self.positions[node]
        return pos.start.line

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        pos: CodeRange = self.positions[node]
        return pos.start.line, pos.end.line

    def code(self, node: cst.CSTNode) -> str:
        return self.wrapper.module.code_for_node(node)

    def qualify(self, dotted: str) -> str:
        """Map a dotted name through the file's imports: `nn.Dropout` → `torch.nn.Dropout`."""
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            full = self.imports[head][0]
        elif head == "nn":
            full = "torch.nn"
        elif head == "F":
            full = "torch.nn.functional"
        else:
            return dotted
        return f"{full}.{rest}" if rest else full

    def enclosing_function(self, line: int) -> Optional[cst.FunctionDef]:
        best: Optional[cst.FunctionDef] = None
        for defs in self.functions.values():
            for func in defs:
                start, end = self.span(func)
                if start <= line <= end and (best is None or start >= self.span(best)[0]):
                    best = func
        return best

    def class_of(self, func: Optional[cst.FunctionDef]) -> Optional[cst.ClassDef]:
        if func is None:
            return None
        start = self.span(func)[0]
        best: Optional[cst.ClassDef] = None
        for cls in self.classes.values():
            c_start, c_end = self.span(cls)
            if c_start <= start <= c_end and (best is None or c_start >= self.span(best)[0]):
                best = cls
        return best


class _Collector(cst.CSTVisitor):
    """One pass that indexes imports, classes, functions, assignments and calls."""

    def __init__(self, file: _File) -> None:
        super().__init__()
        self.file = file
        self.funcs: list[cst.FunctionDef] = []

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = _dotted(alias.name)
            if alias.asname is not None:
                local = _dotted(alias.asname.name)
                self.file.imports[local] = (name, 0)
            else:
                head = name.split(".")[0]
                self.file.imports.setdefault(head, (head, 0))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = _dotted(node.module) if node.module is not None else ""
        level = len(node.relative)
        for alias in node.names:
            name = _dotted(alias.name)
            local = _dotted(alias.asname.name) if alias.asname is not None else name
            self.file.imports[local] = (f"{module}.{name}" if module else name, level)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.file.classes[node.name.value] = node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.file.functions.setdefault(node.name.value, []).append(node)
        self.funcs.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.funcs.pop()

    def _current(self) -> Optional[cst.FunctionDef]:
        return self.funcs[-1] if self.funcs else None

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._record(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._record(node.target, node.value)

    def _record(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        text = _dotted_or_none(target)
        if text is not None:
            self.file.assignments.append(
                _Assignment(text, value, self.file.line(value), self._current())
            )

    def visit_Call(self, node: cst.Call) -> None:
        self.file.calls.append((node, self._current()))


def _dotted(node: cst.BaseExpression) -> str:
    text = _dotted_or_none(node)
    if text is None:
        raise ValueError("not a dotted name")
    return text


def _dotted_or_none(node: cst.BaseExpression) -> Optional[str]:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        inner = _dotted_or_none(node.value)
        return None if inner is None else f"{inner}.{node.attr.value}"
    return None


# --- resolution -------------------------------------------------------------------------------


@dataclass
class _Bound:
    """A constructor/function parameter bound to the expression passed at the call site."""

    expr: Optional[cst.BaseExpression]
    ctx: Optional[_Ctx]


@dataclass
class _Ctx:
    """Where an expression is evaluated: file, function, enclosing class, parameter bindings."""

    file: _File
    func: Optional[cst.FunctionDef]
    cls: Optional[cst.ClassDef]
    bindings: dict[str, _Bound]
    line: int
    depth: int

    def at(self, line: int) -> _Ctx:
        return _Ctx(self.file, self.func, self.cls, self.bindings, line, self.depth + 1)


@dataclass
class _Found:
    """Partial result of following one expression."""

    layers: list[LayerSpec] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    root: str = ""

    def extend(self, other: _Found) -> None:
        self.layers.extend(other.layers)
        self.unresolved.extend(other.unresolved)
        self.root = self.root or other.root


class _Instance:
    """A resolved project-class instance (so `self.net.head` can be followed)."""

    def __init__(self, file: _File, cls: cst.ClassDef, bindings: dict[str, _Bound]) -> None:
        self.file = file
        self.cls = cls
        self.bindings = bindings


_Value = Union[_Found, _Instance]


class _Extractor:
    """Follows expressions across the files of one project, caching parses."""

    def __init__(self) -> None:
        self.files: dict[Path, Optional[_File]] = {}
        self.active: set[tuple[Path, str]] = set()

    def file(self, path: Path) -> Optional[_File]:
        path = path.resolve()
        if path not in self.files:
            try:
                self.files[path] = _File(path, path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
                self.files[path] = None
        return self.files[path]

    # entry point

    def subject(self, file: _File, subject: str, line: int) -> _Found:
        func = file.enclosing_function(line)
        ctx = _Ctx(file, func, file.class_of(func), {}, line, 0)
        try:
            expr = cst.parse_expression(subject)
        except cst.ParserSyntaxError:
            return _Found(unresolved=[f"subject `{subject}` is not an expression"])
        return self.found(self.value(expr, ctx), ctx)

    def found(self, value: _Value, ctx: _Ctx) -> _Found:
        if isinstance(value, _Instance):
            return self.instance_layers(value, ctx.depth)
        return value

    # expressions

    def value(self, expr: cst.BaseExpression, ctx: _Ctx) -> _Value:
        code = ctx.file.code(expr)
        if ctx.depth > MAX_DEPTH:
            return _Found(unresolved=[f"gave up following `{code}` after {MAX_DEPTH} steps"])
        if isinstance(expr, cst.Name):
            return self.name(expr.value, ctx)
        if isinstance(expr, cst.Attribute):
            return self.attribute(expr, ctx)
        if isinstance(expr, cst.Call):
            return self.call(expr, ctx)
        return _Found(
            unresolved=[
                f"`{code}` at {ctx.file.path.name}:{ctx.file.line(expr)} is not a construction evallint can follow"
            ]
        )

    def name(self, name: str, ctx: _Ctx) -> _Value:
        where = f"{ctx.file.path.name}"
        if name == "self" and ctx.cls is not None:
            return _Instance(ctx.file, ctx.cls, dict(ctx.bindings))
        if name in ctx.bindings:
            bound = ctx.bindings[name]
            if bound.expr is None or bound.ctx is None:
                return _Found(
                    unresolved=[f"`{name}` is a parameter with no argument or default to follow"]
                )
            return self.value(bound.expr, bound.ctx.at(bound.ctx.line))
        local = self.last_assignment(ctx.file, name, ctx.func, ctx.line)
        if local is not None:
            return self.value(local.value, ctx.at(local.line - 1))
        if ctx.func is not None and name in _param_names(ctx.func):
            return self.parameter(name, ctx)
        module_level = self.last_assignment(
            ctx.file, name, None, ctx.line if ctx.func is None else 10**9
        )
        if module_level is not None:
            return self.value(
                module_level.value,
                _Ctx(ctx.file, None, None, {}, module_level.line - 1, ctx.depth + 1),
            )
        if name in ctx.file.classes:
            return _Found(unresolved=[f"`{name}` is the class itself, not an instance"])
        return _Found(unresolved=[f"no assignment to `{name}` found in {where}"])

    def last_assignment(
        self, file: _File, target: str, func: Optional[cst.FunctionDef], line: int
    ) -> Optional[_Assignment]:
        candidates = [
            a for a in file.assignments if a.target == target and a.func is func and a.line <= line
        ]
        return candidates[-1] if candidates else None

    def parameter(self, name: str, ctx: _Ctx) -> _Value:
        """A function parameter: follow the argument passed at the first call site that resolves."""
        assert ctx.func is not None
        func = ctx.func
        fname = func.name.value
        params = _positional_params(func)
        reasons: list[str] = []
        for call, caller in ctx.file.calls:
            callee = call.func
            if isinstance(callee, cst.Name) and callee.value == fname:
                offset = 0
            elif isinstance(callee, cst.Attribute) and callee.attr.value == fname:
                offset = 1 if params and params[0] == "self" else 0
            else:
                continue
            arg = _argument(call, name, params, offset)
            if arg is None:
                continue
            caller_ctx = _Ctx(
                ctx.file, caller, ctx.file.class_of(caller), {}, ctx.file.line(call), ctx.depth + 1
            )
            value = self.value(arg, caller_ctx)
            if isinstance(value, _Instance) or value.layers or not value.unresolved:
                return value
            reasons.extend(value.unresolved)
        if reasons:
            return _Found(unresolved=reasons[:1])
        return _Found(
            unresolved=[
                f"`{name}` is a parameter of `{fname}` and no call in {ctx.file.path.name} passes it"
            ]
        )

    def attribute(self, expr: cst.Attribute, ctx: _Ctx) -> _Value:
        owner = self.value(expr.value, ctx)
        attr = expr.attr.value
        if isinstance(owner, _Instance):
            return self.instance_attribute(owner, attr, ctx.depth + 1)
        if owner.layers or owner.root:
            return _Found(
                unresolved=[f"attribute `.{attr}` of a {owner.root or 'module'} is not followed"]
            )
        return owner

    def instance_attribute(self, inst: _Instance, attr: str, depth: int) -> _Value:
        for cls_file, cls in self.class_chain(inst.file, inst.cls):
            for assign in cls_file.assignments:
                if (
                    assign.target == f"self.{attr}"
                    and assign.func is not None
                    and _inside(cls_file, assign.func, cls)
                ):
                    ctx = _Ctx(
                        cls_file,
                        assign.func,
                        cls,
                        inst.bindings if cls is inst.cls else {},
                        assign.line,
                        depth,
                    )
                    return self.value(assign.value, ctx)
        return _Found(unresolved=[f"no `self.{attr} = ...` in class {inst.cls.name.value}"])

    def call(self, call: cst.Call, ctx: _Ctx) -> _Value:
        callee = call.func
        file = ctx.file
        line = file.line(call)
        if (
            isinstance(callee, cst.Attribute)
            and callee.attr.value in _MODULE_METHODS_RETURNING_SELF
        ):
            return self.value(callee.value, ctx)
        if isinstance(callee, cst.Attribute) and callee.attr.value in (
            "from_pretrained",
            "from_config",
        ):
            return self.library(file.qualify(_dotted_or_none(callee.value) or ""), call, ctx)
        dotted = _dotted_or_none(callee)
        if dotted is None:
            return _Found(
                unresolved=[
                    f"call `{file.code(call)}` at {file.path.name}:{line} is not a named constructor"
                ]
            )
        qualified = file.qualify(dotted)
        if qualified in _WRAPPERS or qualified.endswith(
            ("DataParallel", "DistributedDataParallel")
        ):
            first = _arg(call, 0, "module") or _arg(call, 0, "model")
            if first is None:
                return _Found(unresolved=[f"`{dotted}(...)` wraps nothing evallint can see"])
            return self.value(first, ctx)
        if qualified.startswith("torch.nn.") and not qualified.startswith("torch.nn.functional."):
            return self.torch_nn(qualified.rsplit(".", 1)[1], call, ctx)
        if qualified.startswith(
            ("torchvision.models.", "timm.", "transformers.", "torch.hub.load")
        ):
            return self.library(qualified, call, ctx)
        project = self.project_callable(dotted, ctx)
        if project is not None:
            target_file, node = project
            if isinstance(node, cst.ClassDef):
                bindings = self.bind(target_file, _init_of(node), call, ctx)
                return _Instance(target_file, node, bindings)
            return self.factory(target_file, node, call, ctx)
        head = dotted.split(".")[0]
        if head in file.imports:
            module = file.imports[head][0]
            return _Found(
                unresolved=[
                    f"`{dotted}(...)` at {file.path.name}:{line} comes from `{module}`, which is neither a project file "
                    "evallint found nor a library in its table"
                ]
            )
        return _Found(
            unresolved=[
                f"`{dotted}(...)` at {file.path.name}:{line} is neither a torch.nn layer, a class or factory "
                "in this project, nor a known torchvision/timm/transformers constructor"
            ]
        )

    def torch_nn(self, kind: str, call: cst.Call, ctx: _Ctx) -> _Found:
        file = ctx.file
        line = file.line(call)
        if kind in ("Sequential", "ModuleList", "ModuleDict"):
            out = _Found(root=f"nn.{kind} ({file.path.name}:{line})")
            for element in self.container_elements(call, ctx):
                out.extend(self.found(self.value(element, ctx), ctx))
            return out
        if kind in ("TransformerEncoder", "TransformerDecoder"):
            layer = _arg(
                call, 0, "encoder_layer" if kind == "TransformerEncoder" else "decoder_layer"
            )
            if layer is None:
                return _Found(
                    unresolved=[f"nn.{kind} at {file.path.name}:{line} has no layer argument"]
                )
            return self.found(self.value(layer, ctx), ctx)
        if kind in MODE_INDEPENDENT or kind in MODE_DEPENDENT_CANDIDATES or kind.endswith("Loss"):
            params, unread = self.literal_args(call, POSITIONAL.get(kind, ()), ctx)
            return _Found(layers=[LayerSpec(kind, params, str(file.path), line, "source", unread)])
        return _Found(
            unresolved=[f"nn.{kind} at {file.path.name}:{line} is not in evallint's layer table"]
        )

    def container_elements(self, call: cst.Call, ctx: _Ctx) -> list[cst.BaseExpression]:
        """The module expressions a Sequential/ModuleList/ModuleDict is built from."""
        out: list[cst.BaseExpression] = []
        for arg in call.args:
            if arg.keyword is not None:
                continue
            value = arg.value
            if arg.star == "*" and isinstance(value, cst.Name):
                out.extend(self.list_elements(value.value, ctx))
            elif isinstance(value, (cst.List, cst.Tuple)):
                out.extend(e.value for e in value.elements)
            elif isinstance(value, (cst.ListComp, cst.GeneratorExp)):
                out.append(value.elt)
            elif isinstance(value, cst.Dict):
                out.extend(e.value for e in value.elements if isinstance(e, cst.DictElement))
            elif isinstance(value, cst.Call) and _dotted_or_none(value.func) in (
                "OrderedDict",
                "collections.OrderedDict",
                "dict",
            ):
                out.extend(self.ordered_dict_values(value))
            else:
                out.append(value)
        return out

    def ordered_dict_values(self, call: cst.Call) -> list[cst.BaseExpression]:
        out: list[cst.BaseExpression] = []
        for arg in call.args:
            if isinstance(arg.value, (cst.List, cst.Tuple)):
                for element in arg.value.elements:
                    pair = element.value
                    if isinstance(pair, cst.Tuple) and len(pair.elements) == 2:
                        out.append(pair.elements[1].value)
            elif arg.keyword is not None:
                out.append(arg.value)
        return out

    def list_elements(self, name: str, ctx: _Ctx) -> list[cst.BaseExpression]:
        """`layers = [...]; layers.append(x); layers += [...]` in the same function."""
        out: list[cst.BaseExpression] = []
        assign = self.last_assignment(ctx.file, name, ctx.func, ctx.line)
        if assign is not None and isinstance(assign.value, (cst.List, cst.Tuple)):
            out.extend(e.value for e in assign.value.elements)
        for call, func in ctx.file.calls:
            callee = call.func
            if (
                func is ctx.func
                and isinstance(callee, cst.Attribute)
                and callee.attr.value in ("append", "extend")
                and isinstance(callee.value, cst.Name)
                and callee.value.value == name
                and call.args
            ):
                value = call.args[0].value
                if callee.attr.value == "extend" and isinstance(value, (cst.List, cst.Tuple)):
                    out.extend(e.value for e in value.elements)
                else:
                    out.append(value)
        return out

    def literal_args(
        self, call: cst.Call, names: tuple[str, ...], ctx: _Ctx
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        params: dict[str, Any] = {}
        unread: list[str] = []
        position = 0
        for arg in call.args:
            if arg.star:
                unread.append(f"{arg.star}{ctx.file.code(arg.value)}")
                continue
            if arg.keyword is not None:
                key = arg.keyword.value
            else:
                key = names[position] if position < len(names) else f"arg{position}"
                position += 1
            value = self.literal(arg.value, ctx)
            if value is UNKNOWN:
                unread.append(key)
            else:
                params[key] = value
        return params, tuple(unread)

    def literal(self, expr: cst.BaseExpression, ctx: _Ctx) -> Any:
        """A constant: literals, simple arithmetic, bound parameters, module-level constants."""
        if ctx.depth > MAX_DEPTH:
            return UNKNOWN
        if isinstance(expr, (cst.Integer, cst.Float)):
            return expr.evaluated_value
        if isinstance(expr, cst.SimpleString):
            return expr.evaluated_value
        if isinstance(expr, cst.Name):
            if expr.value in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[expr.value]
            if expr.value in ctx.bindings:
                bound = ctx.bindings[expr.value]
                if bound.expr is None or bound.ctx is None:
                    return UNKNOWN
                return self.literal(bound.expr, bound.ctx.at(bound.ctx.line))
            constant = self.last_assignment(ctx.file, expr.value, None, 10**9)
            if constant is not None and (ctx.func is not None or constant.line <= ctx.line):
                return self.literal(
                    constant.value, _Ctx(ctx.file, None, None, {}, constant.line - 1, ctx.depth + 1)
                )
            return UNKNOWN
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            inner = self.literal(expr.expression, ctx)
            return -inner if isinstance(inner, (int, float)) else UNKNOWN
        if isinstance(expr, cst.BinaryOperation):
            left, right = self.literal(expr.left, ctx), self.literal(expr.right, ctx)
            if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                return _arith(expr.operator, left, right)
            return UNKNOWN
        if isinstance(expr, (cst.Tuple, cst.List)):
            items = [self.literal(e.value, ctx) for e in expr.elements]
            return UNKNOWN if any(i is UNKNOWN for i in items) else tuple(items)
        return UNKNOWN

    def bind(
        self, file: _File, func: Optional[cst.FunctionDef], call: cst.Call, ctx: _Ctx
    ) -> dict[str, _Bound]:
        """Bind a callee's parameters to the call's arguments, else to their defaults."""
        if func is None:
            return {}
        params = func.params
        ordered = [p for p in (*params.posonly_params, *params.params)]
        positional = [p.name.value for p in ordered]
        skip = 1 if positional and positional[0] in ("self", "cls") else 0
        bindings: dict[str, _Bound] = {}
        callee_ctx = _Ctx(file, None, None, {}, file.line(func), ctx.depth + 1)
        for p in (*ordered, *params.kwonly_params):
            bindings[p.name.value] = _Bound(
                p.default, callee_ctx if p.default is not None else None
            )
        index = 0
        for arg in call.args:
            if arg.star:
                continue
            if arg.keyword is not None:
                bindings[arg.keyword.value] = _Bound(arg.value, ctx)
            elif skip + index < len(positional):
                bindings[positional[skip + index]] = _Bound(arg.value, ctx)
                index += 1
        return bindings

    def factory(self, file: _File, func: cst.FunctionDef, call: cst.Call, ctx: _Ctx) -> _Value:
        """A project function that builds the model: follow its (last) return value."""
        returns = [r for r in _returns(func) if r.value is not None]
        if not returns:
            return _Found(
                unresolved=[
                    f"factory `{func.name.value}` at {file.path.name}:{file.line(func)} returns nothing evallint can follow"
                ]
            )
        ret = returns[-1]
        assert ret.value is not None
        bindings = self.bind(file, func, call, ctx)
        fctx = _Ctx(file, func, file.class_of(func), bindings, file.line(ret), ctx.depth + 1)
        return self.value(ret.value, fctx)

    def project_callable(
        self, dotted: str, ctx: _Ctx
    ) -> Optional[tuple[_File, Union[cst.ClassDef, cst.FunctionDef]]]:
        """A class or function named `dotted`, defined in this file or imported from a project file."""
        file = ctx.file
        head, _, rest = dotted.partition(".")
        if not rest and head in file.classes:
            return file, file.classes[head]
        if not rest and head in file.functions and head not in file.imports:
            module_level = [f for f in file.functions[head] if file.class_of(f) is None]
            if module_level:
                return file, module_level[-1]
        if head not in file.imports:
            return None
        module, level = file.imports[head]
        if rest:
            target_module, name = f"{module}.{rest}".rsplit(".", 1)
        else:
            target_module, name = module.rsplit(".", 1) if "." in module else ("", module)
        for candidate in _module_files(file.path, target_module, level):
            other = self.file(candidate)
            if other is None:
                continue
            if name in other.classes:
                return other, other.classes[name]
            funcs = [f for f in other.functions.get(name, []) if other.class_of(f) is None]
            if funcs:
                return other, funcs[-1]
        return None

    def library(self, qualified: str, call: cst.Call, ctx: _Ctx) -> _Found:
        """A torchvision/timm/transformers constructor: look its family up in LIBRARY_TABLE."""
        file = ctx.file
        line = file.line(call)
        library = qualified.split(".")[0]
        name = qualified.rsplit(".", 1)[-1]
        if qualified in ("timm.create_model", "torch.hub.load") or library == "transformers":
            index, keyword = (1, "model") if qualified == "torch.hub.load" else (0, "model_name")
            arg = _arg(call, index, keyword) or _arg(call, 0, "pretrained_model_name_or_path")
            literal = self.literal(arg, ctx) if arg is not None else UNKNOWN
            if isinstance(literal, str):
                name = literal.rsplit("/", 1)[-1]
                library = "torchvision" if qualified == "torch.hub.load" else library
            elif library == "transformers":
                name = qualified.rsplit(".", 1)[-1]
                name = re.sub(r"(Model|For\w+|LMHeadModel)$", "", name).lower()
            else:
                return _Found(
                    unresolved=[
                        f"`{file.code(call.func)}(...)` at {file.path.name}:{line}: model name is not a literal"
                    ]
                )
        for family in LIBRARY_TABLE:
            if family.library == library and re.fullmatch(family.pattern, name.lower()):
                return _Found(
                    layers=self.family_layers(family, call, ctx), root=f"{library} {name}"
                )
        return _Found(
            unresolved=[
                f"{library} model `{name}` at {file.path.name}:{line} is not in evallint's library table"
            ]
        )

    def family_layers(self, family: LibraryFamily, call: cst.Call, ctx: _Ctx) -> list[LayerSpec]:
        overrides = {}
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in _LIBRARY_KWARG_TO_DROPOUT:
                value = self.literal(arg.value, ctx)
                if isinstance(value, (int, float)):
                    overrides["p"] = float(value)
        layers = []
        for kind, params in family.layers:
            merged = dict(params)
            if kind == "Dropout":
                merged.update(overrides)
            layers.append(
                LayerSpec(
                    kind, merged, str(ctx.file.path), ctx.file.line(call), f"table: {family.source}"
                )
            )
        return layers

    # classes

    def class_chain(self, file: _File, cls: cst.ClassDef) -> list[tuple[_File, cst.ClassDef]]:
        """The class and its project base classes (for inherited `__init__` assignments)."""
        chain = [(file, cls)]
        for base in cls.bases:
            dotted = _dotted_or_none(base.value)
            if dotted is None or len(chain) > MAX_DEPTH:
                continue
            found = self.project_callable(dotted, _Ctx(file, None, None, {}, 0, 0))
            if found is not None and isinstance(found[1], cst.ClassDef) and found[1] is not cls:
                chain.extend(self.class_chain(*found))  # type: ignore[arg-type]
        return chain

    def instance_layers(self, inst: _Instance, depth: int) -> _Found:
        key = (inst.file.path, inst.cls.name.value)
        root = f"class {inst.cls.name.value} ({inst.file.path.name}:{inst.file.line(inst.cls)})"
        if key in self.active:
            return _Found(unresolved=[f"class {inst.cls.name.value} contains itself"], root=root)
        self.active.add(key)
        try:
            out = _Found(root=root)
            for cls_file, cls in self.class_chain(inst.file, inst.cls):
                bindings = inst.bindings if cls is inst.cls else {}
                out.extend(self.class_body(cls_file, cls, bindings, depth + 1))
            return out
        finally:
            self.active.discard(key)

    def class_body(
        self, file: _File, cls: cst.ClassDef, bindings: dict[str, _Bound], depth: int
    ) -> _Found:
        out = _Found()
        init = _init_of(cls)
        chosen: dict[str, _Assignment] = {}
        for assign in file.assignments:
            if (
                assign.func is None
                or not assign.target.startswith("self.")
                or assign.target.count(".") != 1
                or not _inside(file, assign.func, cls)
            ):
                continue
            previous = chosen.get(assign.target)
            # the live value: the last one in __init__, else the last one elsewhere
            if previous is None or assign.func is init or previous.func is not init:
                chosen[assign.target] = assign
        for assign in chosen.values():
            ctx = _Ctx(
                file, assign.func, cls, bindings if assign.func is init else {}, assign.line, depth
            )
            out.extend(self.attribute_value(assign, ctx))
        for call, func in file.calls:
            if func is not None and _inside(file, func, cls):
                out.extend(self.call_in_class(call, func, cls, file, bindings, depth))
        return out

    def attribute_value(self, assign: _Assignment, ctx: _Ctx) -> _Found:
        """The layers one `self.x = value` contributes; values that are not modules add nothing."""
        value = assign.value
        if isinstance(value, cst.Call):
            dotted = _dotted_or_none(value.func)
            if dotted is not None and _NOT_MODULES.match(ctx.file.qualify(dotted)):
                return _Found()
            if (
                isinstance(value.func, cst.Attribute)
                and _dotted_or_none(value.func.value) == "self"
            ):
                method = value.func.attr.value
                if method not in _MODULE_METHODS_RETURNING_SELF:
                    return self.method_factory(method, value, ctx)
            return self.found(self.value(value, ctx), ctx)
        if isinstance(value, cst.Name) and value.value in ctx.bindings:
            if self.literal(value, ctx) is not UNKNOWN:
                return _Found()
            return self.found(self.value(value, ctx), ctx)
        return _Found()

    def method_factory(self, method: str, call: cst.Call, ctx: _Ctx) -> _Found:
        assert ctx.cls is not None
        for func in ctx.file.functions.get(method, []):
            if _inside(ctx.file, func, ctx.cls):
                return self.found(self.factory(ctx.file, func, call, ctx), ctx)
        return _Found(
            unresolved=[
                f"`self.{method}(...)` at {ctx.file.path.name}:{ctx.line} is not defined in class {ctx.cls.name.value}"
            ]
        )

    def call_in_class(
        self,
        call: cst.Call,
        func: cst.FunctionDef,
        cls: cst.ClassDef,
        file: _File,
        bindings: dict[str, _Bound],
        depth: int,
    ) -> _Found:
        """`self.add_module(name, m)` and functional dropout/rrelu calls inside the class."""
        callee = call.func
        dotted = _dotted_or_none(callee)
        if dotted in ("self.add_module", "self.register_module") and len(call.args) >= 2:
            ctx = _Ctx(
                file, func, cls, bindings if func is _init_of(cls) else {}, file.line(call), depth
            )
            return self.found(self.value(call.args[1].value, ctx), ctx)
        if dotted is None:
            return _Found()
        qualified = file.qualify(dotted)
        if not qualified.startswith("torch.nn.functional."):
            return _Found()
        name = qualified.rsplit(".", 1)[1]
        kind = _FUNCTIONAL_AS_LAYER.get(name)
        if kind is None:
            return _Found()
        ctx = _Ctx(file, func, cls, {}, file.line(call), depth)
        params, unread = self.literal_args(call, ("input", *POSITIONAL.get(kind, ())), ctx)
        params.pop("input", None)
        unread = tuple(u for u in unread if u not in ("input", "training"))
        training = _arg(call, 99, "training")
        follows_mode = training is not None and self.literal(training, ctx) is UNKNOWN
        if not follows_mode:
            # a literal or default `training`: the call acts (or not) the same in both modes
            if "training" not in params:
                params["training"] = name not in ("alpha_dropout", "feature_alpha_dropout", "rrelu")
            return _Found(
                layers=[
                    LayerSpec(
                        f"F.{name}", params, str(file.path), file.line(call), "forward", unread
                    )
                ]
            )
        return _Found(
            layers=[LayerSpec(kind, params, str(file.path), file.line(call), "forward", unread)]
        )


# --- small helpers ----------------------------------------------------------------------------


def _arith(op: cst.BaseBinaryOp, left: float, right: float) -> Any:
    try:
        if isinstance(op, cst.Add):
            return left + right
        if isinstance(op, cst.Subtract):
            return left - right
        if isinstance(op, cst.Multiply):
            return left * right
        if isinstance(op, cst.Divide):
            return left / right
        if isinstance(op, cst.FloorDivide):
            return left // right
        if isinstance(op, cst.Power):
            return left**right
    except (ZeroDivisionError, OverflowError):
        return UNKNOWN
    return UNKNOWN


def _arg(call: cst.Call, index: int, keyword: str) -> Optional[cst.BaseExpression]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[index].value if index < len(positional) else None


def _argument(
    call: cst.Call, name: str, params: list[str], offset: int
) -> Optional[cst.BaseExpression]:
    if name not in params:
        return None
    return _arg(call, params.index(name) - offset, name)


def _param_names(func: cst.FunctionDef) -> set[str]:
    p = func.params
    return {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)}


def _positional_params(func: cst.FunctionDef) -> list[str]:
    return [x.name.value for x in (*func.params.posonly_params, *func.params.params)]


def _init_of(cls: cst.ClassDef) -> Optional[cst.FunctionDef]:
    body = cls.body
    if isinstance(body, cst.IndentedBlock):
        for stmt in body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
                return stmt
    return None


def _inside(file: _File, func: cst.FunctionDef, cls: cst.ClassDef) -> bool:
    """Is `func` a method of `cls` itself (not of a class nested in it)?"""
    return file.class_of(func) is cls


def _returns(func: cst.FunctionDef) -> list[cst.Return]:
    found: list[cst.Return] = []

    class _Returns(cst.CSTVisitor):
        def visit_Return(self, node: cst.Return) -> None:
            found.append(node)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is func

    func.visit(_Returns())
    return found


def _module_files(origin: Path, module: str, level: int) -> list[Path]:
    """Candidate files for `module` imported from `origin`: relative, then the project roots."""
    parts = [p for p in module.split(".") if p]
    if level:
        base = origin.parent
        for _ in range(level - 1):
            base = base.parent
        roots = [base]
    else:
        roots = [origin.parent, *list(origin.parent.parents)[:3]]
    out = []
    for root in roots:
        target = root.joinpath(*parts) if parts else root
        out.extend(
            [target.with_suffix(".py") if parts else root / "__init__.py", target / "__init__.py"]
        )
    return [p for p in out if p.is_file() and p.resolve() != origin.resolve()] or [
        p for p in out if p.is_file()
    ]


def extract_layers(path: Union[str, Path], subject: str, line: int) -> Extraction:
    """The layers of the module `subject` as seen at `path:line` (where the finding points).

    `line` matters: it picks the enclosing function (for `self` and parameters) and which
    assignment to a variable is the live one.
    """
    extractor = _Extractor()
    file = extractor.file(Path(path))
    if file is None:
        return Extraction((), (f"cannot read or parse {path}",), "")
    if not subject:
        return Extraction((), ("the finding names no module (empty subject)",), "")
    found = extractor.subject(file, subject, line)
    unresolved = tuple(dict.fromkeys(found.unresolved))
    if not found.root and not found.layers and not unresolved:
        unresolved = (f"`{subject}` was not followed to any construction",)
    return Extraction(tuple(found.layers), unresolved, found.root)
