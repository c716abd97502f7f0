"""Reach of the verifier on real packages: static verdicts, runtime verdicts, contradictions.

```sh
python benchmarks/verify_reach.py                           # static only, every manifest entry
python benchmarks/verify_reach.py --runtime                 # + the runtime runs of the manifest
python benchmarks/verify_reach.py --repo havakv/torchtuples --runtime --json out.json
python benchmarks/verify_reach.py --runtime --python /path/to/venv/bin/python
```

For each entry of `verify_reach.json` (owner/name, commit, paths to lint), the commit is
exported from its fetched snapshot (`--mirror`, default `/work/.mirror/<owner>+<name>/repo`,
as `benchmarks/realcode/score.py` does) into a temporary directory that is deleted afterwards:
nothing of the repository is kept. Then, each in a child process with a time limit:

1. static: `python -m evallint verify --format json --no-cache --exit-zero --quiet PATHS` in
   the export: every EVL001-003 finding gets its static verdict.
2. runtime (with `--runtime`, for entries that have one), exactly one of:
   - `pytest`: `PYTHON -m pytest -q -p no:cacheprovider ARGS -p evallint.runtime.pytest_plugin
     --evallint-format json --evallint-output REPORT --evallint-no-static` in the export, with
     PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 (no other installed plugin), with
     an address-space limit (`--memory`, RLIMIT_AS), the entry's timeout, and the network
     blocked as `evallint run` blocks it (proxies to a dead port, evallint's `sitecustomize`
     socket guard on PYTHONPATH);
   - `run`: `PYTHON -m evallint run --steps N --evals N --timeout S --memory MB --no-static
     --format json --output-file REPORT -- PYTHON SCRIPT ARGS` in the entry's directory.
   Runs happen one at a time. The static run's CPU seconds (user + system of the child) are
   printed per entry and kept in the JSON (`static_cpu_seconds`).

A finding has a numeric static verdict when the verifier says `confirmed` or `not-affected`
(both rest on measured or fully resolved layers); `unresolved` and `error` have none. A runtime
verdict is an event of the same code at the finding's line (the event's line or a caller's:
`event`), or the finding's line reached by a recorded forward, backward or step without such
an event (`reached`). A static `not-affected` with a runtime event is a contradiction: a false
`not affected`, listed by name.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "realcode"))
sys.path.insert(0, str(ROOT))

from score import DEFAULT_MIRROR, export, git_dir  # noqa: E402

MANIFEST = HERE / "verify_reach.json"
CODES = ("EVL001", "EVL002", "EVL003")
NUMERIC = ("confirmed", "not-affected")


# ---------------------------------------------------------------- matching and counting (pure)


def _rel(path: str, root: str) -> str:
    """A path relative to the export root, with `/` separators (absolute paths outside the
    root, e.g. site-packages, stay absolute)."""
    real = os.path.realpath(path) if os.path.isabs(path) else path
    root = os.path.realpath(root)
    if os.path.isabs(real):
        if real == root or not real.startswith(root + os.sep):
            return real.replace(os.sep, "/")
        real = os.path.relpath(real, root)
    return os.path.normpath(real).replace(os.sep, "/")


def event_locations(event: dict[str, Any], root: str) -> set[tuple[str, int]]:
    """The (path, line) pairs a runtime event stands at: its own line and every related one."""
    found = {(_rel(event["path"], root), int(event["line"]))}
    for related in event.get("related", []):
        found.add((_rel(related["path"], root), int(related["line"])))
    return found


def reached_lines(report: dict[str, Any], root: str) -> set[tuple[str, int]]:
    """Every user line a recorded top-level forward, backward or optimizer step passed."""
    found: set[tuple[str, int]] = set()
    for site in report.get("sites", []):
        for chain in [site.get("chain", []), *site.get("backward_chains", [])]:
            found.update((_rel(p, root), int(n)) for p, n, _ in chain)
    for resumed in report.get("resumed", []):
        for key in ("backward_chain", "forward_chain", "step_chain"):
            found.update((_rel(p, root), int(n)) for p, n, _ in resumed.get(key, []))
    return found


@dataclass
class Finding:
    repo: str
    code: str
    path: str
    line: int
    verdict: str
    summary: str
    runtime: str = ""  # "event", "reached" or "" (not reached / no run)

    def where(self) -> str:
        return f"{self.repo}:{self.path}:{self.line}"


def match_runtime(
    findings: list[Finding], report: dict[str, Any], root: str
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Mark each finding with its runtime verdict; return the findings and the runtime events
    no static finding matched (missed by the static analysis)."""
    events = [e for e in report.get("events", []) if e.get("code") in CODES]
    located = [(e, event_locations(e, root)) for e in events]
    reached = reached_lines(report, root)
    used: set[int] = set()
    for finding in findings:
        key = (finding.path, finding.line)
        partner = next(
            (
                i
                for i, (e, where) in enumerate(located)
                if e["code"] == finding.code and key in where
            ),
            None,
        )
        if partner is not None:
            finding.runtime = "event"
            used.add(partner)
        elif key in reached:
            finding.runtime = "reached"
    missed = [e for i, (e, _) in enumerate(located) if i not in used]
    return findings, missed


@dataclass
class Row:
    findings: int = 0
    static_numeric: int = 0
    confirmed: int = 0
    not_affected: int = 0
    runtime_event: int = 0
    runtime_reached: int = 0
    runtime_only: int = 0  # runtime verdict (event or reached) where the static one is not numeric
    event_only: int = 0  # runtime event where the static verdict is not numeric
    contradicted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.static_numeric + self.runtime_only

    def share(self) -> Optional[float]:
        return self.total / self.findings if self.findings else None

    def strict_share(self) -> Optional[float]:
        """Only measured verdicts: static confirmed/not-affected or a runtime event."""
        return (self.static_numeric + self.event_only) / self.findings if self.findings else None

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": self.findings,
            "static_numeric": self.static_numeric,
            "confirmed": self.confirmed,
            "not_affected": self.not_affected,
            "runtime_event": self.runtime_event,
            "runtime_reached": self.runtime_reached,
            "runtime_only": self.runtime_only,
            "total_numeric": self.total,
            "share": self.share(),
            "event_only": self.event_only,
            "strict_share": self.strict_share(),
            "contradicted_not_affected": self.contradicted,
        }


def count(findings: Iterable[Finding]) -> dict[str, Row]:
    """Per rule (and `all`): findings, numeric static verdicts, runtime verdicts, contradictions."""
    rows = {code: Row() for code in (*CODES, "all")}
    for finding in findings:
        for row in (rows[finding.code], rows["all"]):
            row.findings += 1
            numeric = finding.verdict in NUMERIC
            row.static_numeric += numeric
            row.confirmed += finding.verdict == "confirmed"
            row.not_affected += finding.verdict == "not-affected"
            row.runtime_event += finding.runtime == "event"
            row.runtime_reached += finding.runtime == "reached"
            row.runtime_only += bool(finding.runtime) and not numeric
            row.event_only += finding.runtime == "event" and not numeric
            if finding.verdict == "not-affected" and finding.runtime == "event":
                row.contradicted.append(finding.where())
    return rows


# ---------------------------------------------------------------- running


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes (the static run's cost,
    independent of how many other processes share the cores)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def static_findings(repo: str, root: Path, paths: Sequence[str], timeout: float) -> list[Finding]:
    command = [sys.executable, "-m", "evallint", "verify", "--format", "json", "--no-cache"]
    command += ["--exit-zero", "--quiet", *paths]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        command, cwd=root, capture_output=True, text=True, timeout=timeout, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"evallint verify exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
        )
    out: list[Finding] = []
    for item in json.loads(proc.stdout or "[]"):
        if item["code"] not in CODES:
            continue
        evidence = item.get("evidence") or {}
        out.append(
            Finding(
                repo,
                item["code"],
                _rel(os.path.join(root, item["path"]), str(root)),
                int(item["line"]),
                item.get("verdict", "none"),
                str(evidence.get("summary", ""))[:300],
            )
        )
    return out


def _limit(memory_mb: int) -> Any:
    def apply() -> None:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def runtime_report(
    spec: dict[str, Any], root: Path, python: str, memory_mb: int, log: Path
) -> tuple[Optional[dict[str, Any]], str]:
    """Run the entry's runtime check; return its JSON report (or None) and the command run."""
    from evallint.runtime.cli import SITE_DIRECTORY
    from evallint.runtime.netguard import offline_environment

    report_path = Path(tempfile.mkdtemp(prefix="verify-reach-")) / "report.json"
    cwd = root / spec.get("cwd", ".")
    extra = [str(root / p) for p in spec.get("pythonpath", [])]
    env = offline_environment(dict(os.environ))
    timeout = float(spec.get("timeout", 600))
    for name in spec.get("metadata", []):
        # the package reads its own version (importlib.metadata): a minimal dist-info on
        # PYTHONPATH stands in for installing the export
        info = report_path.parent / f"{name.replace('-', '_')}-0.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.0\n")
        extra.append(str(report_path.parent))
    if spec["kind"] == "pytest":
        env["PYTHONPATH"] = os.pathsep.join([SITE_DIRECTORY, str(ROOT), str(root), *extra])
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the project's conftest and ours
        command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *spec["args"]]
        command += ["-p", "evallint.runtime.pytest_plugin", "--evallint-format", "json"]
        command += ["--evallint-output", str(report_path), "--evallint-no-static"]
        limit = _limit(memory_mb)
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *extra])
        command = [python, "-m", "evallint", "run", "--steps", str(spec.get("steps", 5))]
        command += ["--evals", str(spec.get("evals", 50)), "--timeout", str(timeout)]
        command += ["--memory", str(memory_mb), "--no-static", "--format", "json"]
        command += ["--output-file", str(report_path), "--", python, *spec["command"]]
        limit = None  # `evallint run` limits its own child
        timeout += 60
    shown = " ".join(command).replace(str(report_path), "REPORT")
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"\n$ cd {cwd} && {shown}\n")
        handle.flush()
        try:
            subprocess.run(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=handle,
                timeout=timeout,
                preexec_fn=limit,
            )
        except subprocess.TimeoutExpired:
            handle.write(f"[verify_reach] timed out after {timeout:g} s\n")
    seconds = time.monotonic() - started
    try:
        report: Optional[dict[str, Any]] = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = None
    shutil.rmtree(report_path.parent, ignore_errors=True)
    return report, f"{shown}  [{seconds:.0f} s]"


# ---------------------------------------------------------------- report


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_table(rows: dict[str, Row], out: Any = sys.stdout) -> None:
    out.write(
        "| rule | findings | static numeric (confirmed / not-affected) | runtime event | "
        "runtime reached, no event | runtime only | total | share | share (events only) | "
        "contradicted |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for code, row in rows.items():
        out.write(
            f"| {code} | {row.findings} | {row.static_numeric} ({row.confirmed} / "
            f"{row.not_affected}) | {row.runtime_event} | {row.runtime_reached} | "
            f"{row.runtime_only} | {row.total} | {_pct(row.share())} | "
            f"{_pct(row.strict_share())} | {len(row.contradicted)} |\n"
        )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--repo", action="append", help="only this owner/name (repeatable)")
    parser.add_argument("--runtime", action="store_true", help="also run the runtime checks")
    parser.add_argument("--python", default=sys.executable, help="interpreter for runtime runs")
    parser.add_argument("--memory", type=int, default=4096, help="MB of address space (4096)")
    parser.add_argument("--static-timeout", type=float, default=1200.0)
    parser.add_argument("--json", type=Path, help="write every finding and the table here")
    parser.add_argument(
        "--log", type=Path, default=Path(tempfile.gettempdir()) / "verify_reach.log"
    )
    parser.add_argument("--list", action="store_true", help="print each finding and its verdicts")
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
    groups = {"packages": manifest.get("packages", []), "scripts": manifest.get("scripts", [])}
    result: dict[str, Any] = {"runs": [], "skipped": []}
    for group, entries in groups.items():
        findings: list[Finding] = []
        missed: list[dict[str, Any]] = []
        for entry in entries:
            if args.repo and entry["repo"] not in args.repo:
                continue
            gitdir = git_dir(args.mirror, entry["repo"])
            if gitdir is None:
                result["skipped"].append(f"{entry['repo']}: no mirror under {args.mirror}")
                continue
            with tempfile.TemporaryDirectory(prefix="verify-reach-") as tmp:
                root = Path(tmp)
                why = export(gitdir, entry["commit"], root)
                if why:
                    result["skipped"].append(f"{entry['repo']}: {why}")
                    continue
                started = time.monotonic()
                cpu_before = _children_cpu()
                try:
                    found = static_findings(entry["repo"], root, entry["lint"], args.static_timeout)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                    result["skipped"].append(f"{entry['repo']}: static: {str(exc)[:200]}")
                    continue
                cpu = _children_cpu() - cpu_before
                result.setdefault("static_cpu_seconds", {})[entry["repo"]] = round(cpu, 1)
                peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
                print(
                    f"{entry['repo']}: {len(found)} EVL001-003 findings verified "
                    f"({time.monotonic() - started:.0f} s, {cpu:.1f} CPU s; largest child so far "
                    f"{peak} MB)",
                    file=sys.stderr,
                )
                spec = entry.get("runtime")
                if args.runtime and spec:
                    report, shown = runtime_report(spec, root, args.python, args.memory, args.log)
                    run = {"repo": entry["repo"], "command": shown}
                    if report is None:
                        run["outcome"] = "no report (see the log)"
                    else:
                        _, lost = match_runtime(found, report, str(root))
                        missed.extend(
                            {"repo": entry["repo"], **e, "path": _rel(e["path"], str(root))}
                            for e in lost
                        )
                        run["outcome"] = report.get("outcome")
                        run["forwards"] = report.get("forwards")
                        run["steps"] = report.get("steps")
                        run["events"] = len(report.get("events", []))
                    result["runs"].append(run)
                    print(f"  runtime: {json.dumps(run)[:400]}", file=sys.stderr)
                findings.extend(found)
                if args.json:  # kept as it goes: a run stopped early keeps what it measured
                    partial = {**result, f"{group}_so_far": [vars(f) for f in findings]}
                    args.json.write_text(json.dumps(partial, indent=2) + "\n", encoding="utf-8")
        rows = count(findings)
        result[group] = {
            "rows": {code: row.to_json() for code, row in rows.items()},
            "findings": [vars(f) for f in findings],
            "missed_by_static": [
                {"repo": e["repo"], "code": e["code"], "path": e["path"], "line": e["line"]}
                for e in missed
            ],
        }
        if not findings:
            continue
        print(f"\n## {group}\n")
        print_table(rows)
        for row_code, row in rows.items():
            for where in row.contradicted if row_code != "all" else []:
                print(f"contradicted not-affected ({row_code}): {where}")
        if missed:
            print(f"runtime events with no static finding: {len(missed)}")
        if args.list:
            for f in findings:
                print(
                    f"  {f.code} {f.where()} static={f.verdict} runtime={f.runtime or '-'}: {f.summary[:160]}"
                )
    for run in result["runs"]:
        print(f"ran: {run['repo']}: {run['command']} -> {json.dumps(run.get('outcome'))[:200]}")
    for note in result["skipped"]:
        print(f"skipped: {note}")
    cpu_seconds = result.get("static_cpu_seconds", {})
    if cpu_seconds:
        print(
            f"static CPU seconds: {sum(cpu_seconds.values()):.1f} over {len(cpu_seconds)} entries"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
