"""Optimizers: whether a file builds or steps one, and which modules' parameters each holds."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from evallint.analysis.symbols import ImportTable, dotted_name


def is_optimizer_name(node: cst.BaseExpression) -> bool:
    from evallint.analysis.regions import is_optimizer_receiver

    return is_optimizer_receiver(node)


_OPTIMIZER_CLASSES = frozenset(
    {
        "SGD",
        "Adam",
        "AdamW",
        "RMSprop",
        "Adagrad",
        "Adadelta",
        "Adamax",
        "NAdam",
        "RAdam",
        "LBFGS",
        "SparseAdam",
        "Lion",
        "Adafactor",
        "LAMB",
        "Lamb",
    }
)


_OPTIM_WORD = re.compile(r"ptim(?!iz(?!er)|is(?!er)|al|um)")


_OPTIMIZER_CLASS_WORD = re.compile(r"\b(?:" + "|".join(sorted(_OPTIMIZER_CLASSES)) + r")\b")


def _may_build_optimizer(source: str) -> bool:
    """Text without which a file builds and steps no optimizer: `.step(`, `optim`/`Optim`
    (`optimize`, `optimal` do not count) or an optimizer class. Literal searches first:
    one regex alternation over every file cost more than the rest of this check."""
    if ".step(" in source:
        return True
    if any(source[m.start() - 1 : m.start()] in ("O", "o") for m in _OPTIM_WORD.finditer(source)):
        return True
    return (
        any(name in source for name in _OPTIMIZER_CLASSES)
        and _OPTIMIZER_CLASS_WORD.search(source) is not None
    )


class OptimizerFacts:
    """Part of `FileAnalysis`: the optimizer facts of its file, computed on first use."""

    # set by FileAnalysis.__init__
    module: cst.Module
    imports: ImportTable
    _source: Optional[str]
    _has_optimizer: Optional[bool]
    _optimizer_params: Optional[dict[str, set[str]]]
    optimizer_links: Optional[set[str]]

    @property
    def has_optimizer(self) -> bool:
        """Whether the file builds or steps an optimizer: only then is `backward()` training
        (without one it computes saliency maps or adversarial inputs). Text first, then the
        tree, so files without the word pay nothing."""
        if self._has_optimizer is None:
            self._has_optimizer = False
            if not self._source or _may_build_optimizer(self._source):
                from evallint.analysis.regions import training_call_kind
                from evallint.analysis.walk import iter_nodes

                for node in iter_nodes(self.module, enter_scopes=True):
                    if type(node) is cst.Call:
                        qualified = self.imports.qualify(node.func) or ""
                        if (
                            qualified.startswith("torch.optim.")
                            or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
                            or training_call_kind(node, self.imports) == "step"
                        ):
                            self._has_optimizer = True
                            break
        return self._has_optimizer

    def optimizer_params(self) -> dict[str, set[str]]:
        """Optimizer variable -> the modules whose parameters it was built with."""
        if self._optimizer_params is None:
            self.optimizer_keys()
        return self._optimizer_params or {}

    def optimizer_keys(self) -> set[str]:
        """Modules whose parameters some optimizer in the file was built with; empty when
        the file builds no optimizer (then every module forwarded with grad is trained)."""
        if self.optimizer_links is None:
            links: set[str] = set()
            by_variable: dict[str, set[str]] = {}
            from evallint.analysis.walk import iter_nodes

            for node in iter_nodes(self.module, enter_scopes=True) if self.has_optimizer else ():
                node_type = type(node)
                if (
                    node_type is cst.Assign
                    and type(node.value) is cst.Call
                    and len(node.targets) == 1
                ):
                    variable = dotted_name(node.targets[0].target)
                    if variable:
                        by_variable[variable] = self._parameter_owners(node.value)
                if node_type is cst.Call:
                    qualified = self.imports.qualify(node.func) or ""
                    if (
                        qualified.startswith("torch.optim.")
                        or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
                    ):
                        for inner in iter_nodes(node):
                            if (
                                type(inner) is cst.Call
                                and type(inner.func) is cst.Attribute
                                and inner.func.attr.value in ("parameters", "named_parameters")
                            ):
                                name = dotted_name(inner.func.value)
                                if name:
                                    links.add(name)
            self.optimizer_links = links
            self._optimizer_params = {k: v for k, v in by_variable.items() if v and v <= links}
        return self.optimizer_links

    def _parameter_owners(self, call: cst.Call) -> set[str]:
        qualified = self.imports.qualify(call.func) or ""
        if not (
            qualified.startswith("torch.optim.") or qualified.split(".")[-1] in _OPTIMIZER_CLASSES
        ):
            return set()
        from evallint.analysis.walk import iter_nodes

        owners = set()
        for inner in iter_nodes(call):
            if (
                type(inner) is cst.Call
                and type(inner.func) is cst.Attribute
                and inner.func.attr.value in ("parameters", "named_parameters")
            ):
                name = dotted_name(inner.func.value)
                if name:
                    owners.add(name)
        return owners
