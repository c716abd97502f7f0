"""The words and library names the analysis recognises, in one place.

Identifiers are split into words (`val_loader` -> val, loader; `testLoader` -> test,
loader) so that evidence is matched on whole words, never on substrings (`interval` is
not `val`, `latest` is not `test`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from evallint.torch_facts import (
    CONTAINERS,
    FUNCTIONAL,
    GRAD_DISABLERS,
    GRAD_ENABLERS,
    GRAD_SETTERS,
    GRADIENT_FUNCTIONS,
    LIBRARY_FACTORIES,
    MODE_INDEPENDENT_SUFFIXES,
    MODE_METHODS,
    MODULE_RETURNING_METHODS,
    NO_GRAD_METHODS,
    PRETRAINED_LOADERS,
    SELF_MANAGED_BASES,
    SELF_MANAGED_HOOKS,
    SELF_MANAGED_PACKAGES,
    STATELESS,
    TORCH_NN_MAY_DEPEND_ON_MODE,
    UNKNOWN_MODE_LOADERS,
    UNWRAPPING_CALLS,
    WRAPPED_MODULE_ATTRIBUTES,
    WRAPPERS,
)

__all__ = [
    "GRADIENT_FUNCTIONS",
    "GRAD_DISABLERS",
    "GRAD_ENABLERS",
    "GRAD_SETTERS",
    "LIBRARY_FACTORIES",
    "MODE_INDEPENDENT_SUFFIXES",
    "NO_GRAD_METHODS",
    "PRETRAINED_LOADERS",
    "SELF_MANAGED_BASES",
    "SELF_MANAGED_HOOKS",
    "SELF_MANAGED_PACKAGES",
    "UNKNOWN_MODE_LOADERS",
    "UNWRAPPING_CALLS",
    "WRAPPERS",
]

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@lru_cache(maxsize=4096)
def words(identifier: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(identifier))


EVAL_DATA_WORDS = frozenset(
    {
        "val",
        "valid",
        "validation",
        "validate",
        "test",
        "testing",
        "eval",
        "evaluation",
        "dev",
        "holdout",
        "heldout",
    }
)
"""Words in a loader/dataset expression that mark evaluation data."""

EVAL_FUNCTION_WORDS = frozenset(
    {
        "evaluate",
        "evaluation",
        "eval",
        "validate",
        "validation",
        "val",
        "valid",
        "test",
        "testing",
        "predict",
        "prediction",
        "predictions",
        "infer",
        "inference",
        "score",
        "scoring",
    }
)
"""Words in a function name that mark it as an evaluation."""

EVAL_FILE_WORDS = frozenset(
    {
        "evaluate",
        "evaluation",
        "eval",
        "validate",
        "validation",
        "predict",
        "prediction",
        "infer",
        "inference",
    }
)
"""Words in a script's file name that make its top-level code an evaluation."""

METRIC_WORDS = frozenset(
    {
        "accuracy",
        "acc",
        "correct",
        "metric",
        "metrics",
        "f1",
        "auc",
        "auroc",
        "precision",
        "recall",
        "bleu",
        "rouge",
        "perplexity",
        "ppl",
        "top1",
        "top5",
        "iou",
        "miou",
        "confusion",
        "argmax",
    }
)

REPORTING_FUNCTIONS = frozenset({"print", "pprint", "save_image", "imshow", "display"})
"""Functions that hand a value to a person or a file (see Evidence.reports)."""

IMAGE_WRITERS = frozenset(
    {"save_image", "make_grid", "imshow", "imsave", "add_image", "add_images"}
)
"""Functions and methods that draw tensors as one picture (a grid of a few panels)."""

REPORTING_METHODS = frozenset(
    {
        "item",
        "tolist",
        "numpy",
        "argmax",
        "topk",
        "max",
        "imshow",
        "plot",
        "scatter",
        "savefig",
        "add_scalar",
        "add_scalars",
        "add_image",
        "add_images",
        "add_figure",
        "save_image",
        "batch_decode",
        "write",
    }
)
"""Methods that turn a tensor into numbers, labels, text, a plot or a file (see
Evidence.reports): `tokenizer.batch_decode(ids)`, `progress_bar.write(text)`."""

MODULE_NAME_WORDS = frozenset(
    {
        "model",
        "models",
        "net",
        "network",
        "module",
        "encoder",
        "decoder",
        "generator",
        "discriminator",
        "classifier",
        "backbone",
        "student",
        "teacher",
        "policy",
        "critic",
        "actor",
        "transformer",
        "resnet",
        "vae",
        "unet",
        "autoencoder",
        "detector",
        "segmenter",
        "ema",
        "head",
    }
)
"""Words that name a module when nothing else says what a variable is."""

NOT_MODULE_WORDS = frozenset(
    {
        "optimizer",
        "optim",
        "opt",
        "scheduler",
        "sched",
        "loader",
        "dataloader",
        "dataset",
        "data",
        "loss",
        "criterion",
        "path",
        "dir",
        "name",
        "config",
        "cfg",
        "args",
        "state",
        "dict",
        "fn",
        "func",
        "type",
        "cls",
        "class",
        "kwargs",
        "params",
        "parameters",
        "output",
        "outputs",
        "id",
        "file",
    }
)

OPTIMIZER_WORDS = frozenset(
    {"optimizer", "optimizers", "optim", "optims", "opt", "optimiser", "optimisers"}
)

NOT_ENVIRONMENT_WORDS = frozenset({"scheduler", "sched", "scaler", "lr", "optimizer", "optim"})
"""Receivers of `step()` that are not an environment."""

PARAMETER_FREE_LIBRARY_CLASSES = frozenset(
    {
        "torchaudio.transforms.Spectrogram",
        "torchaudio.transforms.MelScale",
        "torchaudio.transforms.MelSpectrogram",
        "torchaudio.transforms.MFCC",
        "torchaudio.transforms.AmplitudeToDB",
        "torchaudio.transforms.Resample",
    }
)
"""Library modules that hold no parameter, only buffers (a window, a mel filter bank, a DCT
matrix, a resampling kernel): their output carries only the graph of their input."""

FROZEN_COPY_CLASSES = frozenset({"ema_pytorch.EMA", "ema_pytorch.ema_pytorch.EMA"})
"""Library classes that wrap a copy of the model they are given and call
`requires_grad_(False)` on that copy in their constructor (ema-pytorch's `EMA`; its
`__call__` and the methods it forwards run the copy): what they compute records no graph of
their parameters. Not `torch.optim.swa_utils.AveragedModel`, whose copy keeps
`requires_grad`."""


CLASS_NAME_MODULE_WORDS = frozenset(
    {
        "model",
        "net",
        "network",
        "encoder",
        "decoder",
        "classifier",
        "backbone",
        "discriminator",
        "resnet",
        "vae",
        "unet",
        "autoencoder",
        "detector",
        "segmenter",
    }
)
"""Words that make an unknown class a module by its name alone (`ResNet50`, `TextClassifier`);
narrower than MODULE_NAME_WORDS: a `ConstraintGenerator` or an sklearn `Transformer` is not."""

FORWARD_METHODS = frozenset(
    {
        "forward",
        "generate",
        "predict",
        "sample",
        "encode",
        "decode",
        "encode_image",
        "encode_text",
        "embed",
        "infer",
        "inference",
    }
)
"""Methods that run (part of) a module's forward."""

MODULE_EVIDENCE_METHODS = frozenset(
    {
        "eval",
        "train",
        "parameters",
        "named_parameters",
        "state_dict",
        "load_state_dict",
        "modules",
        "named_modules",
        "children",
        "named_children",
        "buffers",
        "requires_grad_",
    }
)
"""Method calls that only a module answers: evidence that a variable holds one."""

NON_MODULE_METHODS = frozenset(
    {
        "batch_decode",
        "batch_encode_plus",
        "encode_plus",
        "tokenize",
        "convert_tokens_to_ids",
        "convert_ids_to_tokens",
        "convert_tokens_to_string",
        "prepare_seq2seq_batch",
        "add_tokens",
        "add_special_tokens",
        "get_vocab",
        "save_vocabulary",
        "apply_chat_template",
    }
)
"""Tokenizer facts: methods that a tokenizer, processor or retriever answers (Hugging Face
tokenizers and processors, sentencepiece, BPE codecs) and no nn.Module does. A variable that
receives one and no MODULE_EVIDENCE_METHODS call holds no module, whatever its name says
(`encoder_tokenizer`). `encode`/`decode` are not here: a VAE answers those too."""

NON_MODULE_KEYWORDS = frozenset(
    {
        "return_tensors",
        "skip_special_tokens",
        "clean_up_tokenization_spaces",
        "add_special_tokens",
        "truncation",
    }
)
"""Keyword arguments of tokenizer/processor calls (`tok(texts, return_tensors="pt")`,
`tok.decode(ids, skip_special_tokens=True)`) that no module forward takes: the same evidence
as NON_MODULE_METHODS."""

MODULE_BASES = frozenset(
    {"torch.nn.Module", "torch.nn.modules.module.Module", "nn.Module", "Module"}
)

# torch facts, read from evallint.torch_facts (the one table the verifier reads too)
MODE_DEPENDENT_LAYERS = TORCH_NN_MAY_DEPEND_ON_MODE
"""torch.nn classes whose instance may behave differently in train and eval mode."""
CONTAINER_LAYERS = CONTAINERS - TORCH_NN_MAY_DEPEND_ON_MODE
STATELESS_LAYERS = STATELESS
"""nn layers with neither a mode nor parameters: calling one is not a model forward."""
SAME_MODULE_METHODS = MODULE_RETURNING_METHODS
"""Methods that return the module they were called on (train/eval: torch_facts.MODE_METHODS)."""
SAME_MODULE_OR_MODE_METHODS = MODULE_RETURNING_METHODS | MODE_METHODS
"""The above and `train()`/`eval()`, which return the module too (after switching it)."""
SAME_MODULE_ATTRIBUTES = WRAPPED_MODULE_ATTRIBUTES
"""Attributes of a wrapper that are the wrapped module itself."""
FUNCTIONAL_MODE = {q: (f.keyword, f.position, f.default) for q, f in FUNCTIONAL.items()}
"""Functional forms whose behaviour takes a `training` flag: qualified name -> (keyword,
positional index, default of `training`). Their module forms (nn.Dropout, nn.BatchNorm) follow
`model.eval()`; these do not."""


PARAMETER = "param:"
"""Prefix of a provenance item that stands for a parameter's value (`param:x`): inside the
function it is unknown; at a call site it becomes the caller's argument's provenance."""
