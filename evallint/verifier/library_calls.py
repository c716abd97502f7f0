"""A torchvision/timm/transformers/torch.hub constructor call read as the layers of its model
family (`library_models.LIBRARY_TABLE`), with the dropout keyword it was given."""

from __future__ import annotations

import re
from typing import Any

import libcst as cst

from evallint.verifier.layer_spec import UNKNOWN
from evallint.verifier.library_models import LIBRARY_KWARG_TO_DROPOUT, family_layers, find_family
from evallint.verifier.resolution import Ctx, Found, literal
from evallint.verifier.source_index import call_arg


def library_layers(qualified: str, call: cst.Call, ctx: Ctx) -> Found:
    """A torchvision/timm/transformers constructor: look its family up in LIBRARY_TABLE."""
    file = ctx.file
    line = file.line(call)
    library = qualified.split(".")[0]
    name = qualified.rsplit(".", 1)[-1]
    if qualified in ("timm.create_model", "torch.hub.load") or library == "transformers":
        index, keyword = (1, "model") if qualified == "torch.hub.load" else (0, "model_name")
        arg = call_arg(call, index, keyword) or call_arg(call, 0, "pretrained_model_name_or_path")
        given = literal(arg, ctx) if arg is not None else UNKNOWN
        if isinstance(given, str):
            name = given.rsplit("/", 1)[-1]
            library = "torchvision" if qualified == "torch.hub.load" else library
        elif library == "transformers":
            name = qualified.rsplit(".", 1)[-1]
            name = re.sub(r"(Model|For\w+|LMHeadModel)$", "", name).lower()
        else:
            return Found(
                unresolved=[
                    f"`{file.code(call.func)}(...)` at {file.path.name}:{line}: model name is not a literal"
                ]
            )
    family = find_family(library, name)
    if family is None:
        return Found(
            unresolved=[
                f"{library} model `{name}` at {file.path.name}:{line} is not in evallint's library table"
            ]
        )
    dropout: Any = None
    for keyword_arg in call.args:
        key = keyword_arg.keyword
        if key is not None and key.value in LIBRARY_KWARG_TO_DROPOUT:
            dropout = literal(keyword_arg.value, ctx)
    layers = family_layers(family, dropout, str(file.path), line)
    return Found(layers=layers, root=f"{library} {name}")
