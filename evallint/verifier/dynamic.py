"""`--import`: import the file that defines the flagged model's class, build it, measure it whole.

Why opt-in and fenced: importing runs code. evallint imports only the file that defines the
class (found statically, `sites.construction_of`), under a private module name (never
`"__main__"`, so an `if __name__ == "__main__":` block never runs), and only when that file's
top level is nothing but imports, definitions, literal constants and such guarded blocks: a
script whose top level trains, loads data or builds models is refused, never run. The class is
instantiated only with literal arguments read from the construction site. Any refusal makes
the verdict `unresolved` with the reason; the static evidence is kept alongside.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import libcst as cst

from evallint.verifier.layers import UNKNOWN
from evallint.verifier.live import check_module, mode_dependence
from evallint.verifier.sites import Construction, construction_of, training_assignment_at
from evallint.verifier.verdict import VerifiedFinding

_ALLOWED_CALLS_AT_TOP = frozenset(
    ("TypeVar", "namedtuple", "NamedTuple", "getLogger", "logging.getLogger", "field")
)
"""Calls a definitions-only module may make at import time (they build names, not data)."""


def side_effects_at_import(path: Path) -> Optional[str]:
    """The first top-level statement of `path` that would run more than definitions, or None."""
    try:
        module = cst.parse_module(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError) as exc:
        return f"cannot read {path.name}: {exc}"
    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(cst.metadata.PositionProvider)
    for statement in wrapper.module.body:
        if not _definition_only(statement):
            line = positions[statement].start.line
            text = wrapper.module.code_for_node(statement).strip().splitlines()[0][:80]
            return f"{path.name}:{line} runs code at import time (`{text}`)"
    return None


def _definition_only(statement: cst.CSTNode) -> bool:
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return True
    if isinstance(statement, cst.If):
        test = statement.test
        if (
            isinstance(test, cst.Comparison)
            and isinstance(test.left, cst.Name)
            and test.left.value == "__name__"
        ):
            return True  # the main guard: never true under the private module name
        return isinstance(test, (cst.Name, cst.Attribute)) and cst.Module([]).code_for_node(
            test
        ).endswith("TYPE_CHECKING")
    if isinstance(statement, cst.Try):
        return all(_definition_only(s) for s in statement.body.body) and all(
            all(_definition_only(s) for s in handler.body.body) for handler in statement.handlers
        )
    if isinstance(statement, cst.SimpleStatementLine):
        return all(_small_definition_only(s) for s in statement.body)
    return False


def _small_definition_only(small: cst.BaseSmallStatement) -> bool:
    if isinstance(small, (cst.Import, cst.ImportFrom, cst.Pass)):
        return True
    if isinstance(small, cst.Expr):
        return isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis))
    if isinstance(small, (cst.Assign, cst.AnnAssign)):
        return small.value is None or _inert_value(small.value)
    return False


def _inert_value(node: cst.BaseExpression) -> bool:
    """Literals, names, attribute chains and containers of them; calls only from a short list."""
    if isinstance(
        node,
        (
            cst.Integer,
            cst.Float,
            cst.Imaginary,
            cst.SimpleString,
            cst.ConcatenatedString,
            cst.Name,
            cst.Attribute,
            cst.Ellipsis,
        ),
    ):
        return True
    if isinstance(node, cst.UnaryOperation):
        return _inert_value(node.expression)
    if isinstance(node, cst.BinaryOperation):
        return _inert_value(node.left) and _inert_value(node.right)
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return all(_inert_value(e.value) for e in node.elements)
    if isinstance(node, cst.Dict):
        return all(
            isinstance(e, cst.DictElement) and _inert_value(e.key) and _inert_value(e.value)
            for e in node.elements
        )
    if isinstance(node, cst.Call):
        name = cst.Module([]).code_for_node(node.func)
        return name in _ALLOWED_CALLS_AT_TOP and all(_inert_value(a.value) for a in node.args)
    return False


def instantiate(construction: Construction) -> Any:
    """Import the defining file under a private name and call the class with the literals."""
    path = Path(construction.path)
    name = (
        "_evallint_import_"
        + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        + "_"
        + path.stem
    )
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        added = str(path.parent) not in sys.path
        if added:
            sys.path.insert(0, str(path.parent))  # sibling imports of the model file resolve
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            if added:
                sys.path.remove(str(path.parent))
    cls = getattr(module, construction.class_name)
    return cls(*construction.args, **construction.kwargs)


def measure_imported(finding: VerifiedFinding, seed: int = 0) -> VerifiedFinding:
    """Replace a static verdict by the measurement of the imported, instantiated model; any
    refusal or failure makes it `unresolved` with the reason (static evidence kept)."""
    d = finding.diagnostic
    subject = finding.evidence.get("subject") or d.subject
    construction = construction_of(d.path, subject, d.line)
    if isinstance(construction, str):
        return _refused(finding, construction)
    effects = side_effects_at_import(Path(construction.path))
    if effects is not None:
        return _refused(
            finding,
            f"{effects}; --import never runs a script's top-level code "
            '(move it under `if __name__ == "__main__":`)',
        )
    try:
        model = instantiate(construction)
    except Exception as exc:  # noqa: BLE001 - the user's constructor failing is a reason, not a crash
        return _refused(
            finding,
            f"importing {Path(construction.path).name} and calling {construction.class_name}"
            f"{_call_text(construction)} raised {type(exc).__name__}: {str(exc).splitlines()[0][:160]}",
        )
    where = f"{construction.class_name}{_call_text(construction)} imported from {Path(construction.path).name}"
    if d.code == "EVL005":
        return _training_attribute(finding, model, where)
    report = check_module(model, seed=seed)
    evidence = {
        **finding.evidence,
        "dynamic": {
            **report.to_json(),
            "class": construction.class_name,
            "file": construction.path,
            "arguments": _call_text(construction),
        },
    }
    if report.problem is not None and not report.mode_dependent:
        return _refused(finding, f"{where}: {report.problem}")
    verdict = "confirmed" if report.affected else "not-affected"
    if d.code == "EVL002":
        verdict = (
            finding.verdict
        )  # memory is measured statically; the live model adds its layer list
    summary = f"{'not affected: ' if verdict == 'not-affected' else ''}{where}: {report.summary()}"
    if d.code == "EVL002":
        summary = f"{finding.summary}; {where}: {report.summary()}"
    evidence["summary"] = summary
    return replace(finding, verdict=verdict, evidence=evidence, summary=summary)


def _training_attribute(finding: VerifiedFinding, model: Any, where: str) -> VerifiedFinding:
    """EVL005 on the real model: set `.training` on the top module only, list stale children."""
    d = finding.diagnostic
    assignment = training_assignment_at(d.path, d.line)
    if assignment is None or assignment.value is UNKNOWN:
        return _refused(finding, "the value assigned to `.training` is not a literal")
    value = bool(assignment.value)
    model.train(not value)
    model.training = value  # evallint: ignore[EVL005]  reproduces the mistake on purpose
    stale = [
        (name, type(m).__name__)
        for name, m in model.named_modules()
        if name and m.training != value
    ]
    dependent = [
        (name, type(m).__name__)
        for name, m in model.named_modules()
        if name and m.training != value and mode_dependence(m) is not None
    ]
    evidence = {
        **finding.evidence,
        "dynamic": {
            "top_training": model.training,
            "stale_children": [{"name": n, "type": k} for n, k in stale],
            "stale_mode_dependent": [{"name": n, "type": k} for n, k in dependent],
        },
    }
    flag = f"`{assignment.receiver}.training = {value}`"
    if dependent:
        listed = ", ".join(f"{n} ({k})" for n, k in dependent[:4]) + (
            f" and {len(dependent) - 4} more" if len(dependent) > 4 else ""
        )
        summary = (
            f"{where}: after {flag}, {len(dependent)} mode-dependent submodule(s) still have "
            f"training={not value}: {listed}"
        )
        verdict = "confirmed"
    else:
        summary = (
            f"not affected: {where}: after {flag}, {len(stale)} submodule(s) still have training={not value}, "
            "but none depends on the mode"
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
