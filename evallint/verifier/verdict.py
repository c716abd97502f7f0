"""Turn each EVL001-EVL006 finding into a verdict backed by measured numbers.

Why: a static finding is a claim. `verify` follows the flagged module to its layers
(`layers`), runs the mode-dependent ones in torch next to the NumPy reference (`torch_run`),
and says whether the mistake changes the numbers (confirmed), cannot matter (not-affected),
could not be checked (unresolved), or the verifier itself is in doubt (error: torch and the
reference disagree, or a run crashed). Evidence is plain JSON so CI can gate on it.
EVL004 runs the flagged functional call in the mode it ignores, EVL005 (`.training = ...`
only) builds the module and lists the children the assignment leaves behind, EVL006 replays
the loop and measures what the accumulation keeps alive. With `import_modules` the flagged
model is also imported and measured whole (`dynamic`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from evallint.diagnostics import Diagnostic
from evallint.verifier.accumulation import AccumulationRun, accumulation_memory
from evallint.verifier.extract import Extractor, extract_layers
from evallint.verifier.finding import Verdict, VerifiedFinding
from evallint.verifier.functional_run import run_functional
from evallint.verifier.layer_spec import UNKNOWN, Extraction, LayerSpec
from evallint.verifier.phrases import (
    MAX_PHRASES,
    MEASURED_LAYERS,
    MEASURED_LAYERS_SHORT,
    MEASURED_MEMORY,
    assumed_text,
    bytes_text,
    measurement_json,
    phrase_eval,
    phrase_training_resumed,
)
from evallint.verifier.sites import accumulation_site, functional_call_at, training_assignment_at
from evallint.verifier.torch_run import (
    TOLERANCE,
    LayerRun,
    MemoryRun,
    autograd_memory,
    build_module,
    run_layer,
)


class Cache:
    """Findings often share a module: extract and measure each one once per `verify` call."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.extractions: dict[tuple[str, str, int], Extraction] = {}
        self.runs: dict[tuple[str, str], Optional[LayerRun]] = {}
        self.memory: dict[tuple[tuple[str, str], ...], MemoryRun] = {}
        self.extractor = Extractor()
        """Shared by the findings: files parsed and callers searched once per call."""

    def extraction(self, d: Diagnostic) -> Extraction:
        key = (d.path, d.subject, d.line)
        if key not in self.extractions:
            self.extractions[key] = extract_layers(d.path, d.subject, d.line, self.extractor)
        return self.extractions[key]

    def run(self, layer: LayerSpec) -> Optional[LayerRun]:
        key = (layer.kind, repr(sorted(layer.params.items())))
        if key not in self.runs:
            self.runs[key] = run_layer(layer, self.seed)
        cached = self.runs[key]
        if cached is None:
            return None
        return LayerRun(
            layer,
            cached.figures,
            cached.checks,
            cached.assumed,
            cached.train_output,
            cached.eval_output,
            cached.trace,
        )

    def memory_run(self, layers: tuple[LayerSpec, ...]) -> MemoryRun:
        key = tuple((layer.kind, repr(sorted(layer.params.items()))) for layer in layers)
        if key not in self.memory:
            self.memory[key] = autograd_memory(list(layers), seed=self.seed)
        return self.memory[key]


def verify_static(d: Diagnostic, cache: Cache) -> Optional[VerifiedFinding]:
    if d.code in ("EVL004", "EVL006"):
        # each verdict draws from its own generator: its numbers do not depend on the run
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cache.seed)
            if d.code == "EVL004":
                return _verify_functional(d, cache.seed)
            return _verify_accumulation(d, cache.seed)
    if d.code == "EVL005":
        return _verify_training_attribute(d, cache)
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


def _verify_mode(
    d: Diagnostic, extraction: Extraction, evidence: dict[str, Any], cache: Cache
) -> VerifiedFinding:
    dependent = extraction.mode_dependent
    if not dependent:
        undecided = [
            f"argument `{name}` of {layer.kind} at {layer.location} is not a value evallint can "
            "read, and it decides whether the layer depends on train/eval mode"
            for layer in extraction.undecided
            for name in layer.undecided[:1]
        ]
        if undecided:
            evidence["unresolved"] = [*undecided, *extraction.unresolved]
            summary = f"unresolved: {undecided[0]}"
            evidence["summary"] = summary
            return VerifiedFinding(d, "unresolved", evidence, summary)
        if extraction.unresolved:
            return _unresolved(d, extraction, evidence)
        if not extraction.layers and extraction.root.startswith("class "):
            # every assignment, base class and line of the class was read: nothing in it can
            # depend on the mode
            summary = (
                f"not affected: `{d.subject}` ({extraction.root}) holds no submodule, no torch "
                "base class and no `self.training` read, so nothing in it depends on the mode"
            )
            evidence["summary"] = summary
            return VerifiedFinding(d, "not-affected", evidence, summary)
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
        try:
            run = cache.run(layer)
        except (ValueError, RuntimeError, OverflowError) as exc:
            reason = f"torch rejects {layer.label()} at {layer.location}: {str(exc)[:120]}"
            evidence["unresolved"] = [reason]
            evidence["summary"] = f"unresolved: {reason}"
            return VerifiedFinding(d, "unresolved", evidence, evidence["summary"])
        if run is None:
            phrases.setdefault(
                layer.kind,
                f"{layer.label()} at {layer.location}: mode-dependent ({layer.origin}), not simulated",
            )
            measurements.append(
                {"layer": layer.label(), "location": layer.location, "simulated": False}
            )
            continue
        runs.append(run)
        measurements.append(measurement_json(run))
        phrases.setdefault(
            layer.kind, phrase_training_resumed(run) if d.code == "EVL003" else phrase_eval(run)
        )
    evidence["measurements"] = measurements
    failed = [c for run in runs for c in run.checks if not c.ok]
    if failed:
        worst = max(failed, key=lambda c: c.max_error)
        summary = (
            f"verifier error: NumPy reference and torch disagree on {worst.name} "
            f"(relative error {worst.max_error:.2g} > {TOLERANCE:g}); {len(failed)} check(s) failed"
        )
        evidence["summary"] = summary
        return VerifiedFinding(d, "error", evidence, summary, tuple(runs))
    summary = "; ".join(list(phrases.values())[:MAX_PHRASES])
    if len(dependent) > min(len(phrases), MAX_PHRASES):
        summary += f"; {len(dependent)} mode-dependent layers in all"
    notes = list(dict.fromkeys(note for layer in dependent for note in layer.assumptions))
    if notes:  # what the dependence rests on that was assumed, not read
        summary += f" (assumed: {'; '.join(notes[:2])})"
        evidence["assumed_arguments"] = notes
    if extraction.caller:
        summary += f" (the model passed by {extraction.caller})"
        evidence["caller"] = extraction.caller
    if extraction.unresolved:
        summary += f" (not every submodule was followed: {extraction.unresolved[0]})"
    assumed = {run.layer.label(): run.assumed for run in runs if run.assumed}
    if assumed:
        evidence["assumed"] = assumed
    evidence["measured"] = MEASURED_LAYERS
    summary += f" [{MEASURED_LAYERS_SHORT}]"
    evidence["summary"] = summary
    return VerifiedFinding(d, "confirmed", evidence, summary, tuple(runs))


def _verify_autograd(
    d: Diagnostic, extraction: Extraction, evidence: dict[str, Any], cache: Cache
) -> VerifiedFinding:
    # a layer that exists only under an undecided `if` is not counted in the figure
    present = [layer for layer in extraction.layers if not layer.condition]
    with_params = [layer for layer in present if layer.has_parameters]
    if not with_params:
        maybe = [layer for layer in extraction.layers if layer.condition and layer.has_parameters]
        if maybe:
            reason = (
                f"{maybe[0].label()} at {maybe[0].location} exists only if "
                f"`{maybe[0].condition}`, which evallint could not decide"
            )
            evidence["unresolved"] = [reason, *extraction.unresolved]
            evidence["summary"] = f"unresolved: {reason}"
            return VerifiedFinding(d, "unresolved", evidence, evidence["summary"])
        if extraction.parameters and not extraction.unresolved:
            return _parameters_only(d, extraction, evidence)
        if extraction.unresolved or not extraction.layers:
            if not extraction.unresolved:
                evidence["unresolved"] = [f"no layers found in {extraction.root or d.subject}"]
            return _unresolved(d, extraction, evidence)
        summary = f"not affected: `{d.subject}` has no layer with parameters, so autograd records nothing for it"
        evidence["summary"] = summary
        return VerifiedFinding(d, "not-affected", evidence, summary)
    memory = cache.memory_run(tuple(present))
    evidence["memory"] = {
        "batch_size": memory.batch_size,
        "grad_bytes": memory.grad_bytes,
        "no_grad_bytes": memory.no_grad_bytes,
        "per_layer": [
            {"layer": layer.label(), "location": layer.location, "bytes": n}
            for layer, n in memory.per_layer
        ],
        "skipped": memory.skipped,
        "method": "torch.autograd.graph.saved_tensors_hooks, eval mode, parameters excluded",
    }
    top = sorted(memory.per_layer, key=lambda item: -item[1])[:MAX_PHRASES]
    detail = ", ".join(
        f"{layer.label()} at {layer.location} {bytes_text(n)}" for layer, n in top if n
    )
    summary = (
        f"autograd keeps {bytes_text(memory.grad_bytes)} of activations alive per batch of {memory.batch_size} "
        f"through {len(memory.per_layer)} layer(s) of `{d.subject}`"
        + (f" ({detail})" if detail else "")
        + f"; {bytes_text(memory.no_grad_bytes)} under torch.no_grad()"
    )
    if memory.skipped:
        summary += f"; {len(memory.skipped)} layer(s) not measured"
    evidence["assumed"] = memory.assumed
    summary += f"; assumed: {assumed_text(memory.assumed)}"
    evidence["measured"] = MEASURED_MEMORY
    if extraction.unresolved:
        summary += f" (lower bound: {extraction.unresolved[0]})"
    evidence["summary"] = summary
    return VerifiedFinding(d, "confirmed", evidence, summary, memory=memory)


def _disagreement(
    d: Diagnostic, evidence: dict[str, Any], run: LayerRun
) -> Optional[VerifiedFinding]:
    """The `error` verdict when the NumPy reference and torch disagree on `run`, else None."""
    failed = [c for c in run.checks if not c.ok]
    if not failed:
        return None
    worst = max(failed, key=lambda c: c.max_error)
    summary = (
        f"verifier error: NumPy reference and torch disagree on {worst.name} "
        f"(relative error {worst.max_error:.2g} > {TOLERANCE:g}); {len(failed)} check(s) failed"
    )
    evidence["summary"] = summary
    return VerifiedFinding(d, "error", evidence, summary, (run,))


def _verify_functional(d: Diagnostic, seed: int) -> VerifiedFinding:
    """EVL004: run the call as written inside a module in the mode it ignores."""
    call = functional_call_at(d.path, d.line, d.column)
    if isinstance(call, str):
        summary = f"unresolved: {call}"
        return VerifiedFinding(
            d,
            "unresolved",
            {"subject": d.subject, "unresolved": [call], "summary": summary},
            summary,
        )
    where = f"{Path(d.path).name}:{d.line}"
    evidence: dict[str, Any] = {
        "subject": d.subject,
        "function": call.function,
        "params": call.params,
        "training_as_written": call.training,
        "unread": list(call.unread),
        "origins": call.origins,
    }
    if call.training is None:
        summary = f"unresolved: `training=` of {call.function} at {where} is an expression evallint cannot evaluate"
        evidence["summary"] = summary
        return VerifiedFinding(d, "unresolved", evidence, summary)
    run = run_functional(call, seed)
    evidence["measurement"] = measurement_json(run)
    error = _disagreement(d, evidence, run)
    if error is not None:
        return error
    f = run.figures
    assumed = "".join(
        f"; {k}={v} is torch's default, assumed because the call passes `{_unread_text(call.unread, k)}`"
        for k, v in run.assumed.items()
        if k in ("p", "lower", "upper")
    )
    name = f"F.{call.name}" if call.function.startswith("torch.nn.") else call.function
    if call.name == "batch_norm":
        summary = (
            f"{name}(training=True) at {where} in an eval-mode module: one validation pass of {f['batches']} "
            f"batches moved running_mean by {f['running_mean_shift']:.2f} and running_var by "
            f"{f['running_var_shift']:.2f}; its output uses batch statistics (differs from running-stat "
            f"normalisation by mean |Δ|={f['train_vs_eval_mean_abs']:.2f})"
        )
        verdict: Verdict = "confirmed"
    elif call.name == "rrelu":
        verdict = "confirmed" if f["lower"] != f["upper"] else "not-affected"
        summary = (
            f"{name} at {where} in a train-mode module uses the fixed slope {f['eval_slope']:.3f} instead of "
            f"random slopes in [{f['train_slope_min']:.3f}, {f['train_slope_max']:.3f}] (output differs from "
            f"training=True by mean |Δ|={f['written_vs_intended_mean_abs']:.3f})"
        )
    elif f["dropped_fraction"] == 0.0:
        verdict = "not-affected"
        summary = (
            f"not affected: {name} at {where} has p={f['p']}, so it changes nothing in either mode"
        )
    elif call.training:
        verdict = "confirmed"
        summary = (
            f"{name}(p={f['p']}) at {where} in an eval-mode module still zeroes {100 * f['dropped_fraction']:.1f}% "
            f"of {f['unit']}; eval output differs from the identity by mean |Δ|={f['written_vs_intended_mean_abs']:.2f} "
            f"(max {f['written_vs_intended_max_abs']:.1f})"
        )
    else:
        verdict = "confirmed"
        summary = (
            f"{name}(p={f['p']}) at {where} in a train-mode module drops 0% of {f['unit']} instead of "
            f"{100 * f['dropped_fraction']:.1f}% (regularisation silently off; output differs from training=True "
            f"by mean |Δ|={f['written_vs_intended_mean_abs']:.2f})"
        )
    if verdict == "confirmed":
        summary += assumed
    evidence["summary"] = summary
    return VerifiedFinding(d, verdict, evidence, summary, (run,))


def _unread_text(unread: tuple[str, ...], key: str) -> str:
    return next((u for u in unread if u.startswith(f"{key}=")), f"no {key}")


def _verify_accumulation(d: Diagnostic, seed: int) -> VerifiedFinding:
    """EVL006: replay the loop accumulating the tensor, then accumulating `.item()`."""
    site = accumulation_site(d.path, d.line)
    if isinstance(site, str):
        summary = f"unresolved: {site}"
        return VerifiedFinding(
            d,
            "unresolved",
            {"subject": d.subject, "unresolved": [site], "summary": summary},
            summary,
        )
    layers = list(site.extraction.layers) if site.extraction is not None else None
    run = accumulation_memory(layers, site.form, site.backward_in_loop, site.model, seed)
    evidence: dict[str, Any] = {"subject": d.subject, "accumulation": _accumulation_json(run)}
    if site.extraction is not None:
        evidence["layers"] = [layer.to_json() for layer in site.extraction.layers]
        evidence["unresolved"] = list(site.extraction.unresolved)
    else:
        evidence["model_not_resolved"] = list(site.tried)
    model = (
        f"`{site.model}` ({site.extraction.root})"
        if site.extraction is not None
        else f"a {STAND_IN_NOTE}"
    )
    verb = "appends" if site.form == "append" else "adds"
    evidence["measured"] = (
        "the flagged loop replayed on synthetic batches with "
        + (
            "the layers found in the source, freshly built"
            if site.extraction is not None
            else "a stand-in network, because the loop's model was not resolved"
        )
        + "; not the user's network on its data"
    )
    if run.detached_nodes_per_iteration or run.detached_bytes_per_iteration:
        summary = (
            f"verifier error: the `.item()` control still kept {run.detached_nodes_per_iteration:.0f} graph nodes "
            f"and {bytes_text(int(run.detached_bytes_per_iteration))} per iteration; the replay is not trustworthy"
        )
        evidence["summary"] = summary
        return VerifiedFinding(d, "error", evidence, summary)
    if not run.kept_nodes_per_iteration and not run.kept_bytes_per_iteration:
        summary = f"not affected: replaying the loop with {model}, `{d.subject}` kept nothing alive per iteration"
        evidence["summary"] = summary
        return VerifiedFinding(d, "not-affected", evidence, summary)
    if run.backward:
        kept = (
            f"{run.kept_nodes_per_iteration:.0f} autograd nodes per iteration stay chained to `{d.subject}` "
            f"(backward() in the loop frees the saved activations: {bytes_text(int(run.kept_bytes_per_iteration))} of "
            f"tensors per iteration here; without that backward it would be {bytes_text(int(run.activation_bytes_per_iteration))})"
        )
    else:
        kept = (
            f"{bytes_text(int(run.kept_bytes_per_iteration))} of saved activations and {run.kept_nodes_per_iteration:.0f} "
            f"autograd nodes per iteration stay alive through `{d.subject}` (nothing in the loop calls backward())"
        )
    summary = f"`{d.subject}` {verb} the loss with its graph; replaying the loop with {model}: {kept}; 0 with `.item()`"
    evidence["summary"] = summary
    return VerifiedFinding(d, "confirmed", evidence, summary)


STAND_IN_NOTE = "stand-in MLP (the loop's model was not resolved from the source)"


def _accumulation_json(run: AccumulationRun) -> dict[str, Any]:
    return {
        "form": run.form,
        "backward_in_loop": run.backward,
        "model": run.model,
        "kept_bytes_per_iteration": run.kept_bytes_per_iteration,
        "kept_autograd_nodes_per_iteration": run.kept_nodes_per_iteration,
        "item_bytes_per_iteration": run.detached_bytes_per_iteration,
        "item_autograd_nodes_per_iteration": run.detached_nodes_per_iteration,
        "saved_activation_bytes_per_forward": run.activation_bytes_per_iteration,
        "skipped": run.skipped,
        "assumed": run.assumed,
        "method": "loop replayed at two lengths; saved_tensors_hooks + weak references, graph nodes counted from the accumulator",
    }


def _verify_training_attribute(d: Diagnostic, cache: Cache) -> Optional[VerifiedFinding]:
    """EVL005 `x.training = False/True`: build the module, set the flag on the top module only,
    and list the children left in the other mode; other EVL005 kinds are skipped (None)."""
    assignment = training_assignment_at(d.path, d.line)
    if assignment is None:
        return None
    extraction = cache.extraction(
        Diagnostic(
            d.path,
            d.line,
            d.column,
            d.end_line,
            d.end_column,
            d.code,
            d.message,
            d.related,
            assignment.receiver,
        )
    )
    evidence: dict[str, Any] = {
        "subject": assignment.receiver,
        "root": extraction.root,
        "layers": [layer.to_json() for layer in extraction.layers],
        "unresolved": list(extraction.unresolved),
    }
    if assignment.value is UNKNOWN:
        summary = (
            f"unresolved: the value assigned to `{assignment.receiver}.training` is not a literal"
        )
        evidence["summary"] = summary
        return VerifiedFinding(d, "unresolved", evidence, summary)
    if not extraction.layers:
        if not extraction.unresolved:
            evidence["unresolved"] = [
                f"no layers found in {extraction.root or assignment.receiver}"
            ]
        return _unresolved(d, extraction, evidence)
    value: bool = assignment.value
    top = _live_stack(extraction.layers)
    top.train(not value)  # the state the assignment means to leave: eval() before `= True`
    top.training = value  # evallint: ignore[EVL005]  reproduces the mistake on purpose
    stale = [(name, child) for name, child in top.named_children() if child.training != value]
    dependent = [
        (name, child)
        for name, child in stale
        if extraction.layers[int(name.split("_")[0])].mode_dependent
    ]
    evidence["live"] = {
        "top_training": top.training,
        "children": [
            {
                "layer": extraction.layers[int(n.split("_")[0])].label(),
                "location": extraction.layers[int(n.split("_")[0])].location,
                "training": c.training,
            }
            for n, c in top.named_children()
        ],
    }
    flag = f"`{assignment.receiver}.training = {value}`"
    if not dependent:
        kinds = "/".join(dict.fromkeys(layer.kind for layer in extraction.layers))
        summary = (
            f"not affected: after {flag}, {len(stale)} child module(s) still have training={not value}, but "
            f"`{assignment.receiver}` has only {kinds}, none of which depends on the mode"
        )
        if extraction.unresolved:
            return _unresolved(d, extraction, evidence)
        evidence["summary"] = summary
        return VerifiedFinding(d, "not-affected", evidence, summary)
    runs = [
        run
        for run in (cache.run(extraction.layers[int(n.split("_")[0])]) for n, _ in dependent)
        if run is not None
    ]
    for run in runs:
        error = _disagreement(d, evidence, run)
        if error is not None:
            return error
    evidence["measurements"] = [measurement_json(run) for run in runs]
    names = ", ".join(
        f"{extraction.layers[int(n.split('_')[0])].label()} at {extraction.layers[int(n.split('_')[0])].location}"
        for n, _ in dependent[:MAX_PHRASES]
    )
    phrase = phrase_eval if not value else phrase_training_resumed
    start = "" if not value else "starting from eval mode (as after an earlier `.eval()`), "
    summary = (
        f"{start}after {flag} on a live {extraction.root or assignment.receiver}, {len(dependent)} mode-dependent "
        f"child module(s) still have training={not value} ({names})"
    )
    if runs:
        summary += "; " + phrase(runs[0])
    evidence["summary"] = summary
    return VerifiedFinding(d, "confirmed", evidence, summary, tuple(runs))


def _live_stack(layers: tuple[LayerSpec, ...]) -> nn.Module:
    """The found layers as children of one container module (`<index>_<kind>`), built in torch;
    a layer torch cannot build with the read arguments is replaced by an Identity placeholder
    so every index still maps back to its LayerSpec."""
    top = nn.Module()
    for index, layer in enumerate(layers):
        try:
            module = build_module(layer, {}) if hasattr(nn, layer.kind) else nn.Identity()
        except (RuntimeError, ValueError, TypeError):
            module = nn.Identity()
        top.add_module(f"{index}_{layer.kind.replace('.', '_')}", module)
    return top


def _parameters_only(
    d: Diagnostic, extraction: Extraction, evidence: dict[str, Any]
) -> VerifiedFinding:
    """No layer with parameters, but `nn.Parameter` tensors held directly: autograd records
    every operation on them, so the finding holds; what it keeps alive depends on the
    forward's own arithmetic, which is not replayed (no figure is given)."""
    held = extraction.parameters
    summary = (
        f"autograd records the forward's operations on {len(held)} nn.Parameter tensor(s) of "
        f"`{d.subject}` ({extraction.root}: {', '.join(held[:3])}"
        f"{', ...' if len(held) > 3 else ''}), which require grad; the memory this keeps "
        "was not measured (the forward is the class's own tensor code, not torch layers)"
    )
    evidence["parameters"] = list(held)
    evidence["measured"] = "nothing: nn.Parameter attributes read from the source"
    evidence["summary"] = summary
    return VerifiedFinding(d, "confirmed", evidence, summary)


def _unresolved(d: Diagnostic, extraction: Extraction, evidence: dict[str, Any]) -> VerifiedFinding:
    reasons = evidence["unresolved"] or list(extraction.unresolved)
    summary = f"unresolved: could not follow `{d.subject}` to its layers: {reasons[0]}"
    evidence["summary"] = summary
    return VerifiedFinding(d, "unresolved", evidence, summary)
