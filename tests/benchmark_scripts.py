"""The benchmark scripts that tests reuse (`benchmarks/` is not a package): loaded once from
their files, so a test exercises exactly the text the benchmark measures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def latency_benchmark() -> ModuleType:
    """`benchmarks/lsp_latency.py` as a module (its block and `training_script`)."""
    loaded = sys.modules.get("lsp_latency")
    if loaded is not None and getattr(loaded, "BLOCK", None) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(
        "lsp_latency", ROOT / "benchmarks" / "lsp_latency.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lsp_latency"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def summary_reads() -> ModuleType:
    """`benchmarks/summary_reads.py` as a module (its `inventory`)."""
    loaded = sys.modules.get("summary_reads")
    if loaded is not None and getattr(loaded, "inventory", None) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(
        "summary_reads", ROOT / "benchmarks" / "summary_reads.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["summary_reads"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def reuse_bound() -> ModuleType:
    """`benchmarks/reuse_bound.py` as a module (its `measure`)."""
    latency_benchmark()  # it imports `lsp_latency` by name
    loaded = sys.modules.get("reuse_bound")
    if loaded is not None and getattr(loaded, "measure", None) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(
        "reuse_bound", ROOT / "benchmarks" / "reuse_bound.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reuse_bound"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
