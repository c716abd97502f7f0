"""Syntactic questions the file analysis asks of a module: the statements that run at
import or as a script, a decorator that calls what it wraps under no_grad, the calls worth
following into other files, and another file's facts stripped of sites this file cannot
locate."""

from __future__ import annotations

from dataclasses import replace

import libcst as cst

from evallint.analysis.symbols import ImportTable
from evallint.analysis.vocabulary import GRAD_DISABLERS, words
from evallint.analysis.walk import iter_nodes


def without_sites(facts: frozenset) -> frozenset:
    """Mode/grad facts found in another file: where they were set is in that file's tree,
    which this file's positions cannot locate."""
    return frozenset(
        replace(f, site=None) if getattr(f, "site", None) is not None else f for f in facts
    )


def top_level_statements(body) -> list[cst.CSTNode]:
    """Statements that run at import or as a script, including those under
    `if __name__ == "__main__":`, `try:` and `with` at the top level: the globals they bind
    are what the module's functions see."""
    result: list[cst.CSTNode] = []
    pending = list(reversed(body))
    while pending:
        statement = pending.pop()
        result.append(statement)
        blocks: list = []
        if type(statement) is cst.If:
            blocks.append(statement.body)
            orelse = statement.orelse
            if orelse is not None:
                blocks.append(orelse if type(orelse) is cst.If else orelse.body)
        elif type(statement) in (cst.Try, cst.With):
            blocks.append(statement.body)
        for block in reversed(blocks):
            if type(block) is cst.If:
                pending.append(block)
            elif type(block) is cst.IndentedBlock:
                pending.extend(reversed(block.body))
    return result


def wraps_in_no_grad(function: cst.FunctionDef, wrapped: str, imports: ImportTable) -> bool:
    """Whether `function` (a decorator taking `wrapped`) calls `wrapped` inside a
    `with torch.no_grad():` (or inference_mode) block, or returns `torch.no_grad()(wrapped)`."""

    def calls_wrapped(root: cst.CSTNode) -> bool:
        return any(
            type(n) is cst.Call and type(n.func) is cst.Name and n.func.value == wrapped
            for n in iter_nodes(root, enter_scopes=True)
        )

    for node in iter_nodes(function, enter_scopes=True):
        if type(node) is cst.With and any(
            type(item.item) is cst.Call
            and (imports.qualify(item.item.func) or "") in GRAD_DISABLERS
            for item in node.items
        ):
            if calls_wrapped(node.body):
                return True
        elif (
            type(node) is cst.Call
            and type(node.func) is cst.Call
            and (imports.qualify(node.func.func) or "") in GRAD_DISABLERS
            and any(type(a.value) is cst.Name and a.value.value == wrapped for a in node.args)
        ):
            return True
    return False


_TRAINING_CALL_WORDS = frozenset({"train", "training", "fit", "epoch"})


def worth_following(call: cst.Call, passes_module: bool) -> bool:
    """Only calls that can change a finding are followed into other files (reading one costs
    a parse): calls that pass a module (`evaluate(model, loader)`) or that train."""
    name = (
        call.func.attr.value
        if type(call.func) is cst.Attribute
        else getattr(call.func, "value", "")
    )
    return passes_module or bool(words(name) & _TRAINING_CALL_WORDS)


def called_names(module: cst.Module) -> tuple[frozenset[str], frozenset[str]]:
    """The names the module calls anywhere: bare (`f(...)`), and bare or as an attribute
    (`f(...)`, `x.f(...)`). One walk per module (kept per tree by `reuse.memo`, so a
    language server's next lint of an unchanged text walks nothing), read by the interpreter,
    observations and library hooks, which each walked the module for it before."""
    return _call_names(module)[:2]


def attribute_calls(module: cst.Module) -> tuple[frozenset[str], frozenset[str]]:
    """The names `m` of the calls `x.m(...)` anywhere in the module, and of those made as
    `self.m(...)`: the same walk as `called_names`, for the judging of uncalled functions."""
    return _call_names(module)[2:]


def _call_names(
    module: cst.Module,
) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    from evallint.analysis import reuse

    return reuse.memo("called names", module, _read_call_names)


def _read_call_names(
    tree: cst.Module,
) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    bare: set[str] = set()
    attributes: set[str] = set()
    on_self: set[str] = set()
    for node in iter_nodes(tree, enter_scopes=True):
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Name:
                bare.add(func.value)
            elif type(func) is cst.Attribute:
                attributes.add(func.attr.value)
                if type(func.value) is cst.Name and func.value.value == "self":
                    on_self.add(func.attr.value)
    return frozenset(bare), frozenset(bare | attributes), frozenset(attributes), frozenset(on_self)
