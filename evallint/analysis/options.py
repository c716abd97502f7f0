"""Knobs a project sets in `[tool.evallint]` that extend what the analysis recognises."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnalysisOptions:
    eval_words: frozenset[str] = frozenset()
    """Extra words marking evaluation data and functions (`eval-names`)."""
    module_factories: tuple[str, ...] = ()
    """Extra dotted callables returning a fresh nn.Module (`module-factories`)."""
    framework_hooks: frozenset[str] = frozenset()
    """Extra method names a framework calls in the right mode (`mode-switching-hooks`)."""
