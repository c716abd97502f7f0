"""`--import`: run the model's own file in a child process, build the model, measure it whole.

What it does, plainly: `--import` runs the file that defines the flagged model's class the way
`python -c "import model_file"` would. Its top-level code, class bodies, decorators, default
arguments and its own imports all execute (only an `if __name__ == "__main__":` block does not:
the module gets a private name). It then calls the class with the literal arguments read from
the construction site. evallint itself never runs that code: a child process does
(`import_child.py`), with
- a memory budget (`ImportBudget.memory`, default 1 GiB): the child's address space may grow by
  at most that much (RLIMIT_AS), and the model is first built on torch's `meta` device, so a
  model whose parameters and buffers exceed the budget is refused before any storage exists;
- a time limit (`ImportBudget.seconds`, default 120 s), after which the child is killed;
- no network: sockets raise in the child, and every proxy variable points at a closed port.
Anything refused or failed makes the verdict `unresolved` with the reason; the static evidence
is kept alongside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evallint.verifier.finding import Verdict, VerifiedFinding
from evallint.verifier.layer_spec import UNKNOWN
from evallint.verifier.sites import Construction, construction_of, training_assignment_at

IMPORT_CODES = ("EVL001", "EVL002", "EVL003", "EVL005")
"""The codes whose subject is a model `--import` can build."""

_CLOSED = "http://127.0.0.1:9"
"""A proxy address that refuses connections (the discard port)."""


@dataclass(frozen=True)
class ImportBudget:
    """What one `--import` child may use."""

    memory: int = 1 << 30
    """Bytes the child's address space may grow by after torch is loaded."""
    seconds: float = 120.0


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy"):
        env[key] = env[key.upper()] = _CLOSED
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_child(request: dict[str, Any], budget: ImportBudget) -> dict[str, Any]:
    """Send one request to a fresh `import_child` process; its JSON answer, or why none came."""
    request = {**request, "budget": budget.memory}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "evallint.verifier.import_child"],
            input=repr(request),
            capture_output=True,
            text=True,
            timeout=budget.seconds,
            env=_child_env(),
            cwd=str(Path(request["path"]).parent),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"refused": f"importing and measuring the model took over {budget.seconds:g} s"}
    lines = done.stdout.strip().splitlines()
    if not lines:
        err = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        if done.returncode < 0 or "MemoryError" in err:
            return {"refused": f"the child process died ({err[:160]}); over the memory budget?"}
        return {"error": err[:200]}
    try:
        answer: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        return {"error": f"the child's answer was not readable: {lines[-1][:120]!r}"}
    if not isinstance(answer, dict):
        return {"error": "the child's answer was not readable"}
    return answer


def measure_imported(
    finding: VerifiedFinding, seed: int = 0, budget: ImportBudget = ImportBudget()
) -> VerifiedFinding:
    """Replace a static verdict by the measurement of the imported, instantiated model; any
    refusal or failure makes it `unresolved` with the reason (static evidence kept)."""
    d = finding.diagnostic
    subject = finding.evidence.get("subject") or d.subject
    construction = construction_of(d.path, subject, d.line)
    if isinstance(construction, str):
        return _refused(finding, construction)
    request: dict[str, Any] = {
        "path": str(Path(construction.path).resolve()),
        "class_name": construction.class_name,
        "args": construction.args,
        "kwargs": construction.kwargs,
        "code": d.code,
        "seed": seed,
    }
    where = (
        f"{construction.class_name}{_call_text(construction)} imported from "
        f"{Path(construction.path).name} in a child process"
    )
    if d.code == "EVL005":
        assignment = training_assignment_at(d.path, d.line)
        if assignment is None or assignment.value is UNKNOWN:
            return _refused(finding, "the value assigned to `.training` is not a literal")
        request["training_value"] = bool(assignment.value)
        answer = run_child(request, budget)
        if "training" not in answer:
            return _refused(finding, _failure(answer, construction))
        return _training_attribute(finding, answer["training"], f"`{assignment.receiver}`", where)
    answer = run_child(request, budget)
    if "report" not in answer:
        return _refused(finding, _failure(answer, construction))
    evidence = {
        **finding.evidence,
        "dynamic": {
            **answer["report"],
            "class": construction.class_name,
            "file": construction.path,
            "arguments": _call_text(construction),
            "measured": "the user's model class, built with the construction site's literal "
            "arguments (fresh weights, seeded synthetic input)",
        },
    }
    if answer["problem"] is not None and not answer["mode_dependent"]:
        return _refused(finding, f"{where}: {answer['problem']}")
    if answer.get("contained"):
        where += f" (refused while it ran: {', '.join(answer['contained'][:3])})"
    verdict: Verdict = "confirmed" if answer["affected"] else "not-affected"
    summary = f"{'not affected: ' if verdict == 'not-affected' else ''}{where}: {answer['summary']}"
    if d.code == "EVL002":
        verdict = finding.verdict  # memory is measured statically; the live model adds its layers
        summary = f"{finding.summary}; {where}: {answer['summary']}"
    evidence["summary"] = summary
    return replace(finding, verdict=verdict, evidence=evidence, summary=summary)


def _failure(answer: dict[str, Any], construction: Construction) -> str:
    if "refused" in answer:
        return str(answer["refused"])
    return (
        f"importing {Path(construction.path).name} and calling {construction.class_name}"
        f"{_call_text(construction)} raised {answer.get('error', 'an error')}"
    )


def _training_attribute(
    finding: VerifiedFinding, found: dict[str, Any], receiver: str, where: str
) -> VerifiedFinding:
    """EVL005 on the real model: `.training` set on the top module only; stale children."""
    value = bool(found["value"])
    stale = [tuple(x) for x in found["stale"]]
    dependent = [tuple(x) for x in found["dependent"]]
    evidence = {
        **finding.evidence,
        "dynamic": {
            "top_training": value,
            "stale_children": [{"name": n, "type": k} for n, k in stale],
            "stale_mode_dependent": [{"name": n, "type": k} for n, k in dependent],
        },
    }
    flag = f"{receiver}.training = {value}"
    if dependent:
        listed = ", ".join(f"{n} ({k})" for n, k in dependent[:4]) + (
            f" and {len(dependent) - 4} more" if len(dependent) > 4 else ""
        )
        summary = (
            f"{where}: after `{flag}`, {len(dependent)} mode-dependent submodule(s) still have "
            f"training={not value}: {listed}"
        )
        verdict: Verdict = "confirmed"
    else:
        summary = (
            f"not affected: {where}: after `{flag}`, {len(stale)} submodule(s) still have "
            f"training={not value}, but none depends on the mode"
        )
        verdict = "not-affected"
    evidence["summary"] = summary
    return replace(finding, verdict=verdict, evidence=evidence, summary=summary)


def _call_text(construction: Construction) -> str:
    parts = [repr(a) for a in construction.args] + [
        f"{k}={v!r}" for k, v in construction.kwargs.items()
    ]
    return f"({', '.join(parts)})"


def _refused(finding: VerifiedFinding, reason: str) -> VerifiedFinding:
    """The static verdict stands when it was conclusive; the refusal is added to it."""
    dynamic = {"refused": reason, "static_verdict": finding.verdict}
    if finding.verdict in ("confirmed", "not-affected"):
        summary = f"{finding.summary} (--import not used: {reason})"
        return replace(
            finding,
            evidence={**finding.evidence, "dynamic": dynamic, "summary": summary},
            summary=summary,
        )
    summary = f"unresolved (--import): {reason}"
    evidence = {**finding.evidence, "dynamic": dynamic, "summary": summary}
    return replace(
        finding, verdict="unresolved", evidence=evidence, summary=summary, runs=(), memory=None
    )
