"""Library model families and the mode-dependent layers every member contains.

Read off the libraries' own sources (torchvision, timm, transformers); never imported. The
extractor looks a constructor such as `torchvision.models.resnet18` or
`timm.create_model("vit_base_patch16_224")` up here when it cannot see the model's source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from evallint.verifier.layer_spec import UNKNOWN, LayerSpec


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


_BN2D: tuple[str, dict[str, Any]] = ("BatchNorm2d", {})
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

LIBRARY_KWARG_TO_DROPOUT = ("drop_rate", "dropout", "hidden_dropout_prob")
"""Literal keyword arguments of a library constructor that override its Dropout p."""


def find_family(library: str, name: str) -> Optional[LibraryFamily]:
    """The family of `library`'s model `name` (e.g. torchvision, resnet18), if in the table."""
    for family in LIBRARY_TABLE:
        if family.library == library and re.fullmatch(family.pattern, name.lower()):
            return family
    return None


def family_layers(family: LibraryFamily, dropout: Any, path: str, line: int) -> list[LayerSpec]:
    """The family's layers for a constructor at path:line. `dropout`: the value of a
    `drop_rate=`/`dropout=` keyword (None when absent, UNKNOWN when present but not read)."""
    layers = []
    for kind, params in family.layers:
        merged = dict(params)
        unread: tuple[str, ...] = ()
        if kind == "Dropout" and dropout is UNKNOWN:
            merged.pop("p", None)
            unread = ("p",)
        elif kind == "Dropout" and isinstance(dropout, (int, float)):
            merged["p"] = float(dropout)
        layers.append(LayerSpec(kind, merged, path, line, f"table: {family.source}", unread))
    return layers
