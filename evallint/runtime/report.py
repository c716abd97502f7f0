"""Turn what the recorder saw into findings, match them to the static ones, format the result.

No torch here: the parent process of `evallint run` and the pytest plugin's summary use it.
A runtime event is a `Diagnostic` (so `evallint.report` formats it like a static finding)
with a `runtime` block of counts and measurements in JSON and SARIF.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from evallint.diagnostics import Diagnostic, Related
from evallint.report import format_sarif, format_text

RUNTIME_CODES = ("EVL001", "EVL002", "EVL003")
TEXT_LIST_LIMIT = 20
"""Static findings listed per section in text; JSON and SARIF carry them all."""


@dataclass
class Event:
    diagnostic: Diagnostic
    details: dict[str, Any]

    def locations(self) -> set[tuple[str, int]]:
        found = {(os.path.realpath(self.diagnostic.path), self.diagnostic.line)}
        found.update((os.path.realpath(r.path), r.line) for r in self.diagnostic.related)
        return found

    def to_json(self) -> dict[str, Any]:
        return {**self.diagnostic.to_json(), "runtime": self.details}


@dataclass
class Matching:
    confirmed: list[tuple[Diagnostic, Event]] = field(default_factory=list)
    missed: list[Event] = field(default_factory=list)
    reached: list[Diagnostic] = field(default_factory=list)
    unreached: list[Diagnostic] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "confirmed_at_run_time": [
                {"static": s.to_json(), "runtime": e.to_json()} for s, e in self.confirmed
            ],
            "missed_by_static_analysis": [e.to_json() for e in self.missed],
            "reached_without_event": [d.to_json() for d in self.reached],
            "never_reached": [d.to_json() for d in self.unreached],
        }


def _diagnostic(code: str, chain: Sequence[Sequence[Any]], message: str, notes: str) -> Diagnostic:
    path, line, column = chain[0]
    related = tuple(
        Related(str(p), int(n), int(c), notes if i == 0 else "called from here")
        for i, (p, n, c) in enumerate(chain[1:])
    )
    return Diagnostic(
        str(path), int(line), int(column), int(line), int(column), code, message, related
    )


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def _damage(site: dict[str, Any]) -> str:
    parts = []
    measured = site.get("measured") or {}
    if measured.get("measured"):
        text = (
            f"on the real batch (output {measured['output_shape']}) train-mode outputs differ "
            f"from eval mode by mean |Δ| {measured['mean_abs_delta']:.4g} "
            f"(eval outputs average |{measured['eval_output_mean_abs']:.4g}|)"
        )
        if "argmax_flips" in measured:
            text += (
                f", argmax flips {measured['argmax_flips']} of {measured['argmax_total']} "
                f"({_percent(measured['argmax_flips'], measured['argmax_total'])})"
            )
        parts.append(text)
    elif measured:
        parts.append(f"not measured ({measured.get('reason')})")
    moved = site.get("statistics_moved")
    if moved:
        top = moved["largest"]
        relative = top.get("relative")
        parts.append(
            f"these forwards moved the running statistics of {moved['layers']} norm layer(s), "
            f"most `{top['layer']}`: mean |Δ running_mean| {top['running_mean_shift']:.4g}, "
            f"|Δ running_var| {top['running_var_shift']:.4g}"
            + (f" ({100 * relative:.1f}% of their size)" if relative is not None else "")
        )
    return "; ".join(parts)


def events_from(summary: dict[str, Any]) -> tuple[list[Event], list[str]]:
    """EVL001-003 events and the notes on what was seen but deliberately not reported."""
    events: list[Event] = []
    notes: list[str] = []
    for site in summary.get("sites", []):
        chain = site["chain"]
        if not chain:
            continue
        where = f"{chain[0][0]}:{chain[0][1]}"
        module = site["module"]
        evaluation = site["evaluation"]
        aborted = site["training"] > 0 and site["evaluation_graph_freed"] == evaluation
        if aborted and evaluation:
            notes.append(
                f"{where}: {evaluation} forward(s) of `{module}` at a training call were never "
                "backwarded (skipped steps?); not reported"
            )
            continue
        if site["evaluation_in_train_mode"]:
            count = site["evaluation_in_train_mode"]
            if not site["optimized"] and 2 * site.get("interleaved_with_steps", 0) >= max(
                1, count - 1
            ):
                notes.append(
                    f"{where}: `{module}` ran {count} forward(s) in train mode without a "
                    "backward, in step with an optimizer that does not train it (a teacher, "
                    "target network or frozen extractor); not reported"
                )
            else:
                layers = ", ".join(site["train_mode_layers"][:3])
                more = site.get("train_mode_layer_count", 0) - 3
                layers += f" and {more} more" if more > 0 else ""
                message = (
                    f"at run time `{module}` ran {count} forward(s) here in training mode "
                    f"({'/'.join(site['grad_states'])}) that no backward followed: an evaluation "
                    f"in train mode with {layers} active"
                )
                damage = _damage(site)
                message += (f"; {damage}" if damage else "") + "; call `.eval()` before evaluating"
                events.append(
                    Event(
                        _diagnostic("EVL001", chain, message, "the evaluation is reached here"),
                        {"kind": "evaluation in train mode", **_counts(site)},
                    )
                )
        if site["evaluation_graph_freed"] and site["has_trainable_parameters"]:
            count = site["evaluation_graph_freed"]
            message = (
                f"at run time `{module}` ran {count} forward(s) here with autograd on whose "
                "graph was freed without a backward: every activation was kept for a backward "
                "that never came; wrap the evaluation in `with torch.no_grad():` "
                "(eval() does not disable autograd)"
            )
            events.append(
                Event(
                    _diagnostic("EVL002", chain, message, "the evaluation is reached here"),
                    {"kind": "evaluation with autograd on", **_counts(site)},
                )
            )
    for resumed in summary.get("resumed", []):
        chain = resumed["backward_chain"]
        layers = ", ".join(resumed["eval_layers"][:3])
        message = (
            f"at run time `{resumed['module']}` was trained here in eval mode at "
            f"{resumed['steps']} optimizer step(s): {layers} in eval mode on the gradient path "
            "(Dropout off, BatchNorm statistics frozen); call `.train()` before training"
        )
        diagnostic = _diagnostic("EVL003", chain, message, "the training step is reached here")
        extra = [
            Related(str(p), int(n), int(c), what)
            for what, located in (
                ("the training forward", resumed["forward_chain"][:1]),
                ("the optimizer step", resumed["step_chain"][:1]),
            )
            for p, n, c in located
        ]
        diagnostic = Diagnostic(
            diagnostic.path,
            diagnostic.line,
            diagnostic.column,
            diagnostic.end_line,
            diagnostic.end_column,
            "EVL003",
            message,
            diagnostic.related + tuple(extra),
        )
        events.append(Event(diagnostic, {"kind": "training in eval mode", **resumed}))
    events.sort(key=lambda e: e.diagnostic.sort_key())
    return events, notes


def _counts(site: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "module",
        "forwards",
        "training",
        "evaluation",
        "evaluation_in_train_mode",
        "evaluation_graph_freed",
        "grad_states",
        "train_mode_layers",
        "train_mode_layer_count",
        "measured",
        "statistics_moved",
    )
    return {key: site.get(key) for key in keys}


def reached_lines(summary: dict[str, Any]) -> set[tuple[str, int]]:
    """Every user line a top-level forward, backward or step was seen at."""
    found: set[tuple[str, int]] = set()
    for site in summary.get("sites", []):
        for chain in [site["chain"], *site.get("backward_chains", [])]:
            found.update((os.path.realpath(p), n) for p, n, _ in chain)
    for resumed in summary.get("resumed", []):
        for key in ("backward_chain", "forward_chain", "step_chain"):
            found.update((os.path.realpath(p), n) for p, n, _ in resumed[key])
    return found


def match(
    static: Iterable[Diagnostic], events: list[Event], reached: set[tuple[str, int]]
) -> Matching:
    """Pair static EVL001-003 findings with runtime events of the same code by file and line."""
    result = Matching()
    used: set[int] = set()
    for finding in static:
        if finding.code not in RUNTIME_CODES:
            continue
        key = (os.path.realpath(finding.path), finding.line)
        partner = next(
            (e for e in events if e.diagnostic.code == finding.code and key in e.locations()),
            None,
        )
        if partner is not None:
            result.confirmed.append((finding, partner))
            used.add(id(partner))
        elif key in reached:
            result.reached.append(finding)
        else:
            result.unreached.append(finding)
    result.missed = [e for e in events if id(e) not in used]
    return result


def format_run_text(report: dict[str, Any], events: list[Event], matching: Matching) -> str:
    out = [format_text([e.diagnostic for e in events], show_source=True)]
    outcome = report.get("outcome", {})
    out.append(
        f"Run {outcome.get('status', 'unknown')}: {outcome.get('reason', '')}. "
        f"{report.get('steps', 0)} optimizer steps; {report.get('forwards', 0)} top-level "
        f"forwards: {report.get('training_forwards', 0)} training, "
        f"{report.get('evaluation_forwards', 0)} evaluation, "
        f"{report.get('unresolved_forwards', 0)} unresolved.\n"
    )
    for note in report.get("notes", []):
        out.append(f"note: {note}\n")
    if report.get("static_error"):
        out.append(f"static analysis not compared: {report['static_error']}\n")
        return "".join(out)
    sections = (
        ("Static findings confirmed at run time", [s for s, _ in matching.confirmed]),
        ("Runtime events the static analysis missed", [e.diagnostic for e in matching.missed]),
        ("Static findings reached at run time without an event", matching.reached),
        ("Static findings never reached (still unresolved)", matching.unreached),
    )
    for title, found in sections:
        out.append(f"{title}: {len(found)}\n")
        out.extend(
            f"    {d.path}:{d.line}:{d.column}: {d.code} {d.message[:110]}\n"
            for d in found[:TEXT_LIST_LIMIT]
        )
        if len(found) > TEXT_LIST_LIMIT:
            more = len(found) - TEXT_LIST_LIMIT
            out.append(f"    ... and {more} more (--format json lists all)\n")
    return "".join(out)


def format_run_json(report: dict[str, Any], events: list[Event], matching: Matching) -> str:
    return (
        json.dumps(
            {**report, "events": [e.to_json() for e in events], "static": matching.to_json()},
            indent=2,
        )
        + "\n"
    )


def format_run_sarif(report: dict[str, Any], events: list[Event], matching: Matching) -> str:
    log = json.loads(format_sarif([e.diagnostic for e in events]))
    run = log["runs"][0]
    confirmed = {id(e) for _, e in matching.confirmed}
    for result, event in zip(run["results"], events):
        result["properties"] = {
            "runtime": event.details,
            "confirmsStaticFinding": id(event) in confirmed,
        }
    run["properties"] = {
        key: report.get(key)
        for key in ("command", "outcome", "steps", "forwards", "notes", "limits")
    }
    run["properties"]["static"] = {
        "confirmed": len(matching.confirmed),
        "missed": len(matching.missed),
        "reachedWithoutEvent": len(matching.reached),
        "neverReached": len(matching.unreached),
    }
    return json.dumps(log, indent=2) + "\n"


FORMATS = {"text": format_run_text, "json": format_run_json, "sarif": format_run_sarif}


def render(
    report: dict[str, Any], static: Optional[list[Diagnostic]], output_format: str
) -> tuple[str, list[Event]]:
    """The report in `output_format`, and the events in it."""
    events, notes = events_from(report)
    report = {**report, "notes": [*report.get("notes", []), *notes]}
    matching = match(static or [], events, reached_lines(report))
    return FORMATS[output_format](report, events, matching), events
