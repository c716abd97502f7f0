"""Turn each EVL001/EVL002/EVL003 finding into a verdict backed by measured numbers.

Why: a static finding is a claim. `verify` follows the flagged module to its layers
(`layers`), runs the mode-dependent ones in torch next to the NumPy reference (`torch_run`),
and says whether the mistake changes the numbers (confirmed), cannot matter (not-affected),
could not be checked (unresolved), or the verifier itself is in doubt (error: torch and the
reference disagree, or a run crashed). Evidence is plain JSON so CI can gate on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from evallint.diagnostics import Diagnostic
from evallint.verifier.layers import Extraction, LayerSpec, extract_layers
from evallint.verifier.torch_run import TOLERANCE, LayerRun, MemoryRun, autograd_memory, run_layer

LOG = logging.getLogger(__name__)

Verdict = Literal["confirmed", "not-affected", "unresolved", "error"]
VERDICTS: tuple[Verdict, ...] = ("confirmed", "not-affected", "unresolved", "error")
VERIFIED_CODES = ("EVL001", "EVL002", "EVL003")
MAX_PHRASES = 3
"""Layers named in the one-line summary; the evidence lists all of them."""


@dataclass(frozen=True)
class VerifiedFinding:
    """A diagnostic with its verdict, JSON evidence and a one-line summary."""

    diagnostic: Diagnostic
    verdict: Verdict
    evidence: dict[str, Any]
    summary: str
    runs: tuple[LayerRun, ...] = field(default=(), compare=False, repr=False)
    """The raw measurements (arrays included) for `plot`; not part of the JSON."""
    memory: Optional[MemoryRun] = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The diagnostic's JSON object plus `verdict` and `evidence` (which holds `summary`)."""
        return {**self.diagnostic.to_json(), "verdict": self.verdict, "evidence": self.evidence}


def verify(diagnostics: list[Diagnostic], seed: int = 0) -> list[VerifiedFinding]:
    """Verify every EVL001/EVL002/EVL003 diagnostic, in input order; other codes are skipped.

    Never raises for a single finding: a crash while verifying one becomes its `error` verdict.
    """
    cache = _Cache(seed)
    out: list[VerifiedFinding] = []
    for diagnostic in diagnostics:
        if diagnostic.code not in VERIFIED_CODES:
            continue
        try:
            out.append(_verify_one(diagnostic, cache))
        except Exception as exc:  # noqa: BLE001 - a verifier crash is a result, not an abort
            LOG.debug("verifier crashed on %s", diagnostic, exc_info=True)
            message = f"verifier crashed: {type(exc).__name__}: {exc}"
            evidence = {"subject": diagnostic.subject, "error": message, "summary": message}
            out.append(VerifiedFinding(diagnostic, "error", evidence, message))
    return out


class _Cache:
    """Findings often share a module: extract and measure each one once per `verify` call."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.extractions: dict[tuple[str, str, int], Extraction] = {}
        self.runs: dict[tuple[str, str], Optional[LayerRun]] = {}
        self.memory: dict[tuple[tuple[str, str], ...], MemoryRun] = {}

    def extraction(self, d: Diagnostic) -> Extraction:
        key = (d.path, d.subject, d.line)
        if key not in self.extractions:
            self.extractions[key] = extract_layers(d.path, d.subject, d.line)
        return self.extractions[key]

    def run(self, layer: LayerSpec) -> Optional[LayerRun]:
        key = (layer.kind, repr(sorted(layer.params.items())))
        if key not in self.runs:
            self.runs[key] = run_layer(layer, self.seed)
        cached = self.runs[key]
        if cached is None:
            return None
        return LayerRun(layer, cached.figures, cached.checks, cached.assumed, cached.train_output,
                        cached.eval_output, cached.trace)

    def memory_run(self, layers: tuple[LayerSpec, ...]) -> MemoryRun:
        key = tuple((layer.kind, repr(sorted(layer.params.items()))) for layer in layers)
        if key not in self.memory:
            self.memory[key] = autograd_memory(list(layers), seed=self.seed)
        return self.memory[key]


def _verify_one(d: Diagnostic, cache: _Cache) -> VerifiedFinding:
    extraction = cache.extraction(d)
    evidence: dict[str, Any] = {
        "subject": d.subject,
        "root": extraction.root,
        "layers": [layer.to_json() for layer in extraction.layers],
        "unresolved": list(extraction.unresolved),
    }
    always_on = [layer for layer in extraction.layers if layer.kind.startswith("F.")]
    if always_on:
        evidence["notes"] = [
            f"{layer.kind}(training={layer.params.get('training')}) at {layer.location} ignores the module's mode"
            for layer in always_on
        ]
    if d.code == "EVL002":
        return _verify_autograd(d, extraction, evidence, cache)
    return _verify_mode(d, extraction, evidence, cache)


def _verify_mode(d: Diagnostic, extraction: Extraction, evidence: dict[str, Any], cache: _Cache) -> VerifiedFinding:
    dependent = extraction.mode_dependent
    if not dependent:
        if extraction.unresolved:
            return _unresolved(d, extraction, evidence)
        if not extraction.layers:
            evidence["unresolved"] = [f"no layers found in {extraction.root or d.subject}"]
            return _unresolved(d, extraction, evidence)
        kinds = "/".join(dict.fromkeys(layer.kind for layer in extraction.layers))
        summary = f"not affected: `{d.subject}` ({extraction.root}) has only {kinds}, none of which depends on train/eval mode"
        evidence["summary"] = summary
        return VerifiedFinding(d, "not-affected", evidence, summary)
    runs: list[LayerRun] = []
    phrases: dict[str, str] = {}
    measurements: list[dict[str, Any]] = []
    # the summary names the first layer of each kind, dropout-like layers first; evidence has all
    for layer in sorted(dependent, key=lambda spec: "Dropout" not in spec.kind):
        run = cache.run(layer)
        if run is None:
            phrases.setdefault(layer.kind, f"{layer.label()} at {layer.location}: mode-dependent ({layer.origin}), not simulated")
            measurements.append({"layer": layer.label(), "location": layer.location, "simulated": False})
            continue
        runs.append(run)
        measurements.append(_measurement_json(run))
        phrases.setdefault(layer.kind, _phrase_training_resumed(run) if d.code == "EVL003" else _phrase_eval(run))
    evidence["measurements"] = measurements
    failed = [c for run in runs for c in run.checks if not c.ok]
    if failed:
        worst = max(failed, key=lambda c: c.max_error)
        summary = (f"verifier error: NumPy reference and torch disagree on {worst.name} "
                   f"(relative error {worst.max_error:.2g} > {TOLERANCE:g}); {len(failed)} check(s) failed")
        evidence["summary"] = summary
        return VerifiedFinding(d, "error", evidence, summary, tuple(runs))
    summary = "; ".join(list(phrases.values())[:MAX_PHRASES])
    if len(dependent) > min(len(phrases), MAX_PHRASES):
        summary += f"; {len(dependent)} mode-dependent layers in all"
    if extraction.unresolved:
        summary += f" (not every submodule was followed: {extraction.unresolved[0]})"
    evidence["summary"] = summary
    return VerifiedFinding(d, "confirmed", evidence, summary, tuple(runs))


def _verify_autograd(d: Diagnostic, extraction: Extraction, evidence: dict[str, Any], cache: _Cache) -> VerifiedFinding:
    with_params = [layer for layer in extraction.layers if layer.has_parameters]
    if not with_params:
        if extraction.unresolved or not extraction.layers:
            if not extraction.unresolved:
                evidence["unresolved"] = [f"no layers found in {extraction.root or d.subject}"]
            return _unresolved(d, extraction, evidence)
        summary = f"not affected: `{d.subject}` has no layer with parameters, so autograd records nothing for it"
        evidence["summary"] = summary
        return VerifiedFinding(d, "not-affected", evidence, summary)
    memory = cache.memory_run(extraction.layers)
    evidence["memory"] = {
        "batch_size": memory.batch_size,
        "grad_bytes": memory.grad_bytes,
        "no_grad_bytes": memory.no_grad_bytes,
        "per_layer": [{"layer": layer.label(), "location": layer.location, "bytes": n} for layer, n in memory.per_layer],
        "skipped": memory.skipped,
        "assumed": memory.assumed,
        "method": "torch.autograd.graph.saved_tensors_hooks, eval mode, parameters excluded",
    }
    top = sorted(memory.per_layer, key=lambda item: -item[1])[:MAX_PHRASES]
    detail = ", ".join(f"{layer.label()} at {layer.location} {_bytes(n)}" for layer, n in top if n)
    summary = (f"autograd keeps {_bytes(memory.grad_bytes)} of activations alive per batch of {memory.batch_size} "
               f"through {len(memory.per_layer)} layer(s) of `{d.subject}`"
               + (f" ({detail})" if detail else "")
               + f"; {_bytes(memory.no_grad_bytes)} under torch.no_grad()")
    if memory.skipped:
        summary += f"; {len(memory.skipped)} layer(s) not measured"
    if extraction.unresolved:
        summary += f" (lower bound: {extraction.unresolved[0]})"
    evidence["summary"] = summary
    return VerifiedFinding(d, "confirmed", evidence, summary, memory=memory)


def _unresolved(d: Diagnostic, extraction: Extraction, evidence: dict[str, Any]) -> VerifiedFinding:
    reasons = evidence["unresolved"] or list(extraction.unresolved)
    summary = f"unresolved: could not follow `{d.subject}` to its layers: {reasons[0]}"
    evidence["summary"] = summary
    return VerifiedFinding(d, "unresolved", evidence, summary)


def _measurement_json(run: LayerRun) -> dict[str, Any]:
    return {
        "layer": run.layer.label(),
        "type": run.layer.kind,
        "location": run.layer.location,
        "figures": run.figures,
        "assumed": run.assumed,
        "checks": {
            "count": len(run.checks),
            "max_relative_error": max((c.max_error for c in run.checks), default=0.0),
            "tolerance": TOLERANCE,
            "failed": [c.name for c in run.checks if not c.ok],
        },
    }


def _name(run: LayerRun) -> str:
    assumed = run.assumed.get("num_features")
    suffix = f" ({assumed} channels assumed)" if assumed is not None else ""
    return f"{run.layer.label()} at {run.layer.location}{suffix}"


def _phrase_eval(run: LayerRun) -> str:
    """What running this layer in training mode during evaluation does (EVL001)."""
    f = run.figures
    if "dropped_fraction" in f:
        return (f"{_name(run)}: {100 * f['dropped_fraction']:.1f}% of {f['unit']} zeroed, eval output differs "
                f"by mean |Δ|={f['train_vs_eval_mean_abs']:.2f} (max {f['train_vs_eval_max_abs']:.1f})")
    if "running_mean_shift" in f:
        return (f"{_name(run)}: one validation pass of {f['batches']} batches moved running_mean by "
                f"{f['running_mean_shift']:.2f} and running_var by {f['running_var_shift']:.2f}; eval predictions "
                f"on the same input changed by mean |Δ|={f['eval_output_change_mean_abs']:.2f}")
    if "eval_slope" in f:
        return (f"{_name(run)}: negative slope drawn from [{f['train_slope_min']:.3f}, {f['train_slope_max']:.3f}] "
                f"instead of {f['eval_slope']:.3f}, output differs by mean |Δ|={f['train_vs_eval_mean_abs']:.3f}")
    return (f"{_name(run)}: train-mode output differs from eval by mean |Δ|={f['train_vs_eval_mean_abs']:.3f}; "
            f"two passes on the same input differ by {f['two_train_passes_mean_abs']:.3f}")


def _phrase_training_resumed(run: LayerRun) -> str:
    """What training with this layer still in eval mode does (EVL003)."""
    f = run.figures
    if "dropped_fraction" in f:
        return (f"{_name(run)}: drops 0% instead of {100 * f['dropped_fraction']:.1f}% of {f['unit']} while "
                "training (regularisation silently off)")
    if "running_mean_shift" in f:
        return (f"{_name(run)}: normalises training batches with frozen running stats (output off by mean "
                f"|Δ|={f['train_vs_eval_mean_abs']:.2f}) and {f['batches']} training batches leave running_mean/var "
                f"unchanged (train mode would move them by {f['running_mean_shift']:.2f}/{f['running_var_shift']:.2f})")
    if "eval_slope" in f:
        return f"{_name(run)}: fixed slope {f['eval_slope']:.3f} instead of random slopes while training"
    return (f"{_name(run)}: trains without its dropout (output differs from train mode by mean "
            f"|Δ|={f['train_vs_eval_mean_abs']:.3f})")


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
