"""The `evallint` command: lint (default), rules, explain, debug.

Exit status: 0 clean, 1 findings, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from evallint import __version__
from evallint.engine.cache import CACHE_DIRECTORY
from evallint.engine.config import Config, ConfigError, load_config
from evallint.engine.run import lint_paths
from evallint.report import format_github, format_json, format_sarif, format_statistics, format_text

SUBCOMMANDS = ("check", "verify", "run", "rules", "explain", "debug", "lsp")
FORMATTERS = {
    "text": format_text,
    "json": format_json,
    "sarif": format_sarif,
    "github": format_github,
}


class UsageError(Exception):
    """Bad arguments: one line on stderr, exit status 2."""


def _codes(value: str) -> tuple[str, ...]:
    codes = tuple(c.strip().upper() for c in value.split(",") if c.strip())
    for code in codes:
        if not code.startswith("EVL") or (not code[3:].isdigit() and code[3:]):
            raise argparse.ArgumentTypeError(f"not an evallint code or prefix: {code!r}")
    return codes


def _lint_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evallint",
        description="Find PyTorch evaluation/training mode and autograd mistakes.",
        epilog="Other commands: `evallint rules`, `evallint explain CODE`, `evallint debug --flow FILE`, "
        "`evallint run -- python train.py` (runs your script under hooks).",
    )
    parser.add_argument(
        "paths", nargs="*", default=["."], metavar="PATH", help="files or directories (default: .)"
    )
    parser.add_argument(
        "--format", choices=sorted(FORMATTERS), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--select", type=_codes, help="only these codes or prefixes, e.g. EVL001,EVL002"
    )
    parser.add_argument("--ignore", type=_codes, help="skip these codes or prefixes")
    parser.add_argument(
        "--show-source", action="store_true", help="show the source line and related locations"
    )
    parser.add_argument("--statistics", action="store_true", help="print a count per code")
    parser.add_argument(
        "--show-suppressed",
        action="store_true",
        help="also list findings silenced by `# noqa` / `# evallint: ignore`",
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when there are findings"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary line")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes to lint with (default: cores)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help=f"ignore and do not write the result cache ({CACHE_DIRECTORY}/)",
    )
    parser.add_argument(
        "--fix", action="store_true", help="apply the fixes that re-linting proves safe"
    )
    parser.add_argument(
        "--diff", action="store_true", help="print the fixes as a unified diff; write nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="with --fix: also rewrite read-only files"
    )
    verify = parser.add_argument_group(
        "runtime verification (needs the `verify` extra: numpy, torch)"
    )
    verify.add_argument(
        "--verify", action="store_true", help="confirm each finding by running the flagged layers"
    )
    verify.add_argument(
        "--fail-on",
        choices=("any", "confirmed"),
        default="any",
        help="with --verify: exit 1 only for confirmed findings",
    )
    verify.add_argument(
        "--plot", metavar="DIR", help="with --verify: write one PNG per confirmed finding to DIR"
    )
    verify.add_argument(
        "--import",
        dest="import_modules",
        action="store_true",
        help="with --verify: run the file defining the flagged model's class, as `python -c "
        '"import model_file"` would (its top-level code runs; `if __name__ == "__main__":` does not), '
        "in a child process with a memory budget, a time limit and no network; build the model "
        "and measure it",
    )
    verify.add_argument(
        "--import-memory",
        metavar="MB",
        type=int,
        default=1024,
        help="with --import: memory budget of the child process in MiB (default 1024); a model "
        "whose parameters exceed it is never built",
    )
    verify.add_argument(
        "--import-timeout",
        metavar="SECONDS",
        type=float,
        default=120.0,
        help="with --import: the child process is stopped after this many seconds (default 120)",
    )
    parser.add_argument("--version", action="version", version=f"evallint {__version__}")
    return parser


def _lint(argv: Sequence[str], *, verify: bool = False) -> int:
    args = _lint_parser().parse_args(argv)
    args.verify = args.verify or verify
    for path in args.paths:
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file or directory")
    config: Optional[Config] = None
    if args.select or args.ignore:
        base = load_config(Path(args.paths[0]))
        config = dataclasses.replace(
            base, select=args.select or base.select, ignore=args.ignore or base.ignore
        )
    if args.fix or args.diff:
        return _fix(args, config)
    diagnostics = lint_paths(
        args.paths,
        config,
        jobs=max(1, args.jobs),
        use_cache=not args.no_cache,
        apply_suppressions=not args.show_suppressed,
    )
    if args.show_suppressed:
        diagnostics, silenced = _split_suppressed(diagnostics)
        for diagnostic in silenced:
            print(format_text([diagnostic]).rstrip("\n") + "  (suppressed)")
    if args.verify:
        return _verify_and_report(diagnostics, args)
    if args.format == "text":
        out = format_text(diagnostics, show_source=args.show_source)
    else:
        out = FORMATTERS[args.format](diagnostics)
    sys.stdout.write(out)
    if args.statistics:
        sys.stdout.write(format_statistics(diagnostics))
    if args.format == "text" and not args.quiet:
        files = len({d.path for d in diagnostics})
        if diagnostics:
            noun = "finding" if len(diagnostics) == 1 else "findings"
            print(
                f"Found {len(diagnostics)} {noun} in {files} file{'s' if files != 1 else ''}. `evallint explain CODE` says why and how to fix."
            )
        else:
            print("All checks passed.")
    return 0 if not diagnostics or args.exit_zero else 1


def _split_suppressed(diagnostics: list) -> tuple[list, list]:
    """(reported, silenced by an inline comment), reading each file's comments once."""
    from evallint.source.directives import is_suppressed, suppressions
    from evallint.source.text import DecodeError, decode_source

    tables: dict[str, dict] = {}
    reported, silenced = [], []
    for diagnostic in diagnostics:
        if diagnostic.path not in tables:
            try:
                tables[diagnostic.path] = suppressions(
                    decode_source(Path(diagnostic.path).read_bytes())
                )
            except (OSError, DecodeError):
                tables[diagnostic.path] = {}
        table = tables[diagnostic.path]
        (
            silenced if diagnostic.cell is None and is_suppressed(diagnostic, table) else reported
        ).append(diagnostic)
    return reported, silenced


def _fix(args: argparse.Namespace, config: Optional[Config]) -> int:
    """--diff shows what --fix would write; --fix writes it (atomically) and reports the rest."""
    from evallint.diagnostics import Diagnostic
    from evallint.engine.fixes import fix_paths, unified_diff

    results = fix_paths(args.paths, config, write=args.fix and not args.diff, force=args.force)
    for result in results:
        for note in result.notes:
            print(note, file=sys.stderr)
        if result.error:
            print(f"{result.path}: {result.error}", file=sys.stderr)
        for finding, reason in result.unfixed:
            print(
                f"{finding.path}:{finding.line}:{finding.column}: {finding.code} not fixed: {reason}",
                file=sys.stderr,
            )
    fixed = sum(len(r.fixed) for r in results)
    if args.diff:
        sys.stdout.write("".join(unified_diff(r) for r in results))
        print(f"Would fix {fixed} finding{'s' if fixed != 1 else ''}.", file=sys.stderr)
        return 1 if any(r.changed for r in results) and not args.exit_zero else 0
    remaining = sorted((d for r in results for d in r.remaining), key=Diagnostic.sort_key)
    sys.stdout.write(format_text(remaining, show_source=args.show_source))
    if not args.quiet:
        print(f"Fixed {fixed} finding{'s' if fixed != 1 else ''}; {len(remaining)} remaining.")
    return 1 if remaining and not args.exit_zero else 0


def _lsp(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(
        prog="evallint lsp", description="Run the language server on stdio."
    ).parse_args(argv)
    try:
        from evallint.lsp import main as serve
    except ImportError as exc:
        raise UsageError(
            f"`evallint lsp` needs the lsp extra (pip install 'torch-evallint[lsp]'): {exc}"
        ) from None
    serve()
    return 0


def _verify_and_report(diagnostics: list, args: argparse.Namespace) -> int:
    """Lint, then give every EVL001-003 finding a verdict measured with real layers."""
    try:
        from evallint.verifier import verify, write_plots
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise UsageError(
            f"--verify needs the verify extra (pip install 'torch-evallint[verify]'): {exc}"
        ) from None
    try:
        from evallint.verifier.dynamic import ImportBudget

        budget = ImportBudget(max(1, args.import_memory) << 20, max(1.0, args.import_timeout))
        verified = verify(diagnostics, import_modules=args.import_modules, budget=budget)
    except ImportError as exc:
        raise UsageError(
            f"--verify needs the verify extra (pip install 'torch-evallint[verify]'): {exc}"
        ) from None
    verdicts = {id(v.diagnostic): v for v in verified}
    if args.format == "json":
        import json

        objects = [
            verdicts[id(d)].to_json() if id(d) in verdicts else d.to_json() for d in diagnostics
        ]
        sys.stdout.write(json.dumps(objects, indent=2) + "\n")
    elif args.format == "sarif":
        import json

        log = json.loads(format_sarif(diagnostics))
        for result, diagnostic in zip(log["runs"][0]["results"], diagnostics):
            found = verdicts.get(id(diagnostic))
            if found is not None:
                result["properties"] = {
                    "verdict": found.verdict,
                    "verdictSummary": found.summary,
                    "measured": found.evidence.get("measured", ""),
                    "assumed": found.evidence.get("assumed", {}),
                }
        sys.stdout.write(json.dumps(log, indent=2) + "\n")
    else:
        for diagnostic in diagnostics:
            sys.stdout.write(format_text([diagnostic], show_source=args.show_source))
            found = verdicts.get(id(diagnostic))
            if found is not None:
                print(f"    verdict: {found.verdict}: {found.summary}")
    if args.plot:
        for written in write_plots(verified, args.plot):
            print(f"wrote {written}", file=sys.stderr)
    if args.fail_on == "confirmed":
        failing = [v for v in verified if v.verdict == "confirmed"]
    else:
        failing = [
            d
            for d in diagnostics
            if id(d) not in verdicts or verdicts[id(d)].verdict != "not-affected"
        ]
    if args.format == "text" and not args.quiet:
        counts: dict[str, int] = {}
        for v in verified:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        print(
            f"Found {len(diagnostics)} findings; verdicts: "
            + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none")
        )
    return 1 if failing and not args.exit_zero else 0


def _run(argv: Sequence[str]) -> int:
    """`evallint run -- python train.py`: the runtime checker, in its own room."""
    from evallint.runtime.cli import RunError
    from evallint.runtime.cli import main as run

    try:
        return run(argv)
    except RunError as exc:
        raise UsageError(str(exc)) from None


def _rules(argv: Sequence[str]) -> int:
    from evallint.rules import RULES

    argparse.ArgumentParser(prog="evallint rules", description="List every rule.").parse_args(argv)
    width = max(len(rule.name) for rule in RULES)
    for rule in RULES:
        print(f"{rule.code}  {rule.name:<{width}}  {rule.summary}")
    return 0


def _explain(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="evallint explain", description="Print a rule's documentation."
    )
    parser.add_argument("code")
    args = parser.parse_args(argv)
    from evallint.rules import RULES_BY_CODE

    rule = RULES_BY_CODE.get(args.code.upper())
    if rule is None:
        raise UsageError(f"unknown rule {args.code!r}; `evallint rules` lists them")
    print(f"# {rule.code} {rule.name}\n\n{rule.summary}.\n\n{rule.documentation()}")
    return 0


def _debug(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="evallint debug", description="Show what the analysis infers."
    )
    parser.add_argument(
        "--flow",
        required=True,
        metavar="FILE",
        help="print mode and grad state per statement, and function summaries",
    )
    args = parser.parse_args(argv)
    from evallint.engine.debug import render_flow

    sys.stdout.write(render_flow(Path(args.flow)))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(
                errors="surrogateescape"
            )  # non-UTF-8 file names print as their bytes
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "check"
    rest = argv[1:] if argv and argv[0] in SUBCOMMANDS else argv
    handler = {
        "check": _lint,
        "verify": lambda rest: _lint(rest, verify=True),
        "run": _run,
        "rules": _rules,
        "explain": _explain,
        "debug": _debug,
        "lsp": _lsp,
    }[command]
    try:
        return handler(rest)
    except (UsageError, ConfigError) as exc:
        print(f"evallint: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
