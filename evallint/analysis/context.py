"""Types shared by the interpreter's parts: the tuple of path states, source text of a node."""

from __future__ import annotations

import libcst as cst

States = tuple  # tuple[PathState, ...]


_CODEGEN = cst.Module([])


def code_of(node: cst.CSTNode) -> str:
    return _CODEGEN.code_for_node(node)
