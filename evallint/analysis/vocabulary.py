"""The words and library names the analysis recognises, in one place.

Identifiers are split into words (`val_loader` -> val, loader; `testLoader` -> test,
loader) so that evidence is matched on whole words, never on substrings (`interval` is
not `val`, `latest` is not `test`).
"""

from __future__ import annotations

import re
from functools import lru_cache

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
    }
)
"""Methods that turn a tensor into numbers, labels, a plot or a file (see Evidence.reports)."""

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

OPTIMIZER_WORDS = frozenset({"optimizer", "optimizers", "optim", "opt", "optimiser"})

MODE_DEPENDENT_LAYERS = frozenset(
    {
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "AlphaDropout",
        "FeatureAlphaDropout",
        "RReLU",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "LazyBatchNorm1d",
        "LazyBatchNorm2d",
        "LazyBatchNorm3d",
        "SyncBatchNorm",
        "InstanceNorm1d",
        "InstanceNorm2d",
        "InstanceNorm3d",
        "LSTM",
        "GRU",
        "RNN",
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerDecoderLayer",
        "TransformerEncoder",
        "TransformerDecoder",
        "Transformer",
    }
)
CONTAINER_LAYERS = frozenset({"Sequential", "ModuleList", "ModuleDict"})

MODE_INDEPENDENT_SUFFIXES = ("Loss",)
STATELESS_LAYERS = frozenset(
    {
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
        "LogSoftmax",
        "Softmin",
        "Softplus",
        "Softsign",
        "Hardtanh",
        "Hardswish",
        "Hardsigmoid",
        "Identity",
        "Flatten",
        "Unflatten",
        "Upsample",
        "MaxPool1d",
        "MaxPool2d",
        "MaxPool3d",
        "AvgPool1d",
        "AvgPool2d",
        "AvgPool3d",
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "AdaptiveAvgPool3d",
        "AdaptiveMaxPool2d",
        "PixelShuffle",
        "CosineSimilarity",
        "PairwiseDistance",
        "Threshold",
        "GLU",
        "Tanhshrink",
        "Softshrink",
        "Hardshrink",
        "LogSigmoid",
    }
)
"""nn layers with neither a mode nor parameters: calling one is not a model forward."""

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

PRETRAINED_LOADERS = frozenset({"from_pretrained"})
"""Methods that return a module already in eval mode (transformers, diffusers)."""

UNKNOWN_MODE_LOADERS = frozenset(
    {"torch.load", "torch.jit.load", "torch.export.load", "load_checkpoint", "load_model"}
)

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
        "torch.jit.freeze",
        "torch.jit.optimize_for_inference",
        "torch.jit.script",
        "torch.jit.trace",
    }
)
"""Calls whose result is the same module for mode purposes (its train()/eval() reach the inner one)."""

SAME_MODULE_METHODS = frozenset(
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
        "zero_grad",
    }
)
"""Methods that return the module they were called on."""

SAME_MODULE_ATTRIBUTES = frozenset({"module", "_orig_mod", "_module"})
"""Attributes of a wrapper that are the wrapped module itself."""

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

NO_GRAD_METHODS = frozenset({"generate"})
"""Forward-like methods that disable autograd themselves (transformers' generate)."""

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

MODULE_BASES = frozenset(
    {"torch.nn.Module", "torch.nn.modules.module.Module", "nn.Module", "Module"}
)
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
"""Framework hooks called in the right mode by the framework (Lightning, HF Trainer, Ignite)."""

EVAL_DECORATORS = frozenset({"torch.no_grad", "torch.inference_mode"})


FUNCTIONAL_MODE = {  # functional forms whose behaviour takes a `training` flag
    # qualified name: (keyword, positional index, default of `training`)
    "torch.nn.functional.dropout": ("training", 2, True),
    "torch.nn.functional.dropout1d": ("training", 2, True),
    "torch.nn.functional.dropout2d": ("training", 2, True),
    "torch.nn.functional.dropout3d": ("training", 2, True),
    "torch.dropout": ("train", 2, None),
    "torch.nn.functional.alpha_dropout": ("training", 2, False),
    "torch.nn.functional.feature_alpha_dropout": ("training", 2, False),
    "torch.nn.functional.rrelu": ("training", 3, False),
    "torch.nn.functional.batch_norm": ("training", 5, False),
}
"""Their module forms (nn.Dropout, nn.BatchNorm) follow `model.eval()`; these do not."""
