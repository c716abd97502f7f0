"""The `evallint` command: lint (default), rules, explain, debug.

Exit status: 0 clean, 1 findings, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, TextIO

from evallint.cli_options import lint_parser, use_color
from evallint.engine.config import (
    Config,
    ConfigError,
    Overrides,
    check_codes,
    config_from_file,
    resolve,
)
from evallint.engine.run import lint_bytes, lint_paths
from evallint.report import format_github, format_json, format_sarif, format_statistics, format_text
from evallint.source.ignore import check_patterns

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
    bad = check_codes(codes)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"unknown code or prefix {bad!r} (`evallint rules` lists the codes)"
        )
    return codes


def _globs(value: str) -> tuple[str, ...]:
    patterns = tuple(p.strip() for p in value.split(",") if p.strip())
    error = check_patterns(patterns)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return patterns


def _per_file_ignores(value: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """flake8's and ruff's spelling: `PATTERN:CODES` entries, separated by spaces."""
    entries = []
    for item in value.split():
        pattern, colon, codes = item.rpartition(":")
        if not colon or not pattern:
            raise argparse.ArgumentTypeError(f"expected PATTERN:CODES, got {item!r}")
        entries.append((_globs(pattern)[0], _codes(codes)))
    return tuple(entries)


def _lint_parser() -> argparse.ArgumentParser:
    return lint_parser(_codes, _globs, _per_file_ignores, sorted(FORMATTERS))


def _overrides(args: argparse.Namespace) -> Overrides:
    return Overrides(
        select=args.select,
        extend_select=tuple(c for group in args.extend_select for c in group),
        ignore=(args.ignore or ()) + tuple(c for group in args.extend_ignore for c in group),
        per_file_ignores=tuple(e for group in args.per_file_ignores for e in group),
        exclude=args.exclude,
        extend_exclude=tuple(p for group in args.extend_exclude for p in group),
        force_exclude=args.force_exclude,
        respect_gitignore=args.respect_gitignore,
    )


def _lint(argv: Sequence[str], *, verify: bool = False) -> int:
    args = _lint_parser().parse_args(argv)
    args.verify = args.verify or verify
    if not args.verify:
        for flag, value in (("--plot", args.plot), ("--fail-on", args.fail_on)):
            if value is not None:
                raise UsageError(f"{flag} needs --verify (or `evallint verify`)")
    args.fail_on = args.fail_on or "any"
    if args.stdin_filename is not None and args.paths == ["."]:
        args.paths = ["-"]
    for path in args.paths:
        if path != "-" and not Path(path).exists():
            raise UsageError(f"{path}: no such file or directory")
    if "-" in args.paths and len(args.paths) > 1:
        raise UsageError("`-` (standard input) cannot be combined with other paths")
    config = config_from_file(Path(args.config)) if args.config else None
    overrides = _overrides(args)
    with _output(args.output_file) as out:
        if args.show_settings:
            return _show_settings(args, config, overrides, out)
        if args.show_files:
            return _show_files(args, config, overrides, out)
        if args.paths == ["-"]:
            return _lint_stdin(args, config, overrides, out)
        if args.add_noqa:
            from evallint.noqa import add_noqa

            added = add_noqa(args.paths, config, overrides)
            print(f"Added {added} noqa directive{'s' if added != 1 else ''}.", file=out)
            return 0
        if args.fix or args.diff:
            return _fix(args, config, overrides, out)
        if args.watch:
            return _watch(args, config, overrides, out)
        return _check(args, config, overrides, out)


@contextlib.contextmanager
def _output(name: Optional[str]) -> Iterator[TextIO]:
    """stdout, or the --output-file (written whole at the end: no half report on an error)."""
    if name is None:
        yield sys.stdout
        return
    buffer = io.StringIO()
    yield buffer
    try:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(buffer.getvalue(), encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise UsageError(f"{name}: cannot write the report: {exc.strerror or exc}") from None


def _check(
    args: argparse.Namespace, config: Optional[Config], overrides: Overrides, out: TextIO
) -> int:
    diagnostics = lint_paths(
        args.paths,
        config,
        jobs=max(1, args.jobs),
        use_cache=not args.no_cache,
        apply_suppressions=not args.show_suppressed,
        overrides=overrides,
    )
    return _report(diagnostics, args, out)


def _report(diagnostics: list, args: argparse.Namespace, out: TextIO) -> int:
    color = args.format == "text" and use_color(args.color, out)
    if args.show_suppressed:
        diagnostics, silenced = _split_suppressed(diagnostics)
        for diagnostic in silenced:
            out.write(format_text([diagnostic]).rstrip("\n") + "  (suppressed)\n")
    if args.verify:
        return _verify_and_report(diagnostics, args, out)
    if args.format == "text":
        text = format_text(diagnostics, show_source=args.show_source, color=color)
    else:
        text = FORMATTERS[args.format](diagnostics)
    out.write(text)
    if args.statistics:
        out.write(format_statistics(diagnostics))
    if args.format == "text" and not args.quiet:
        files = len({d.path for d in diagnostics})
        if diagnostics:
            noun = "finding" if len(diagnostics) == 1 else "findings"
            out.write(
                f"Found {len(diagnostics)} {noun} in {files} file{'s' if files != 1 else ''}. "
                "`evallint explain CODE` says why and how to fix.\n"
            )
        else:
            out.write("All checks passed.\n")
    return 0 if not diagnostics or args.exit_zero else 1


def _lint_stdin(
    args: argparse.Namespace, config: Optional[Config], overrides: Overrides, out: TextIO
) -> int:
    """`-`: lint standard input as the file --stdin-filename names (ALE, none-ls, efm).
    With --fix the fixed text goes to stdout and the findings left to stderr, as ruff does."""
    name = args.stdin_filename or "-"
    file_config = resolve(name if args.stdin_filename else "-", config, overrides)
    data = sys.stdin.buffer.read()
    if (
        args.stdin_filename
        and file_config.force_exclude
        and file_config.is_excluded(args.stdin_filename)
    ):
        if args.fix:
            sys.stdout.buffer.write(data)
        return 0
    if args.fix or args.diff:
        from evallint.engine.fixes import fix_source
        from evallint.source.text import DecodeError, decode_source

        try:
            source = decode_source(data)
        except DecodeError as exc:
            raise UsageError(f"{name}: cannot decode: {exc}") from None
        result = fix_source(source, name, file_config)
        if args.fix:
            sys.stdout.write(result.new_source)
            sys.stderr.write(format_text(result.remaining, show_source=False))
            return 1 if result.remaining and not args.exit_zero else 0
        import difflib

        out.write(
            "".join(
                difflib.unified_diff(
                    source.splitlines(True), result.new_source.splitlines(True), name, name
                )
            )
        )
        return 1 if result.new_source != source and not args.exit_zero else 0
    diagnostics = lint_bytes(data, name, file_config, apply_suppressions=not args.show_suppressed)
    return _report(diagnostics, args, out)


def _show_settings(
    args: argparse.Namespace, config: Optional[Config], overrides: Overrides, out: TextIO
) -> int:
    first = args.stdin_filename or args.paths[0]
    probe = os.path.join(first, "__init__.py") if Path(first).is_dir() else first
    resolved = resolve(probe, config, overrides)
    out.write(f"Resolved settings for: {os.path.abspath(first)}\n")
    out.write(
        f"Settings path: {resolved.root / 'pyproject.toml' if resolved.root else '(defaults)'}\n"
    )
    for field in dataclasses.fields(resolved):
        out.write(f"{field.name.replace('_', '-')} = {getattr(resolved, field.name)!r}\n")
    return 0


def _show_files(
    args: argparse.Namespace, config: Optional[Config], overrides: Overrides, out: TextIO
) -> int:
    from evallint.engine.files import iter_source_files

    for path in iter_source_files(args.paths, lambda name: resolve(name, config, overrides)):
        out.write(f"{path}\n")
    return 0


def _watch(
    args: argparse.Namespace, config: Optional[Config], overrides: Overrides, out: TextIO
) -> int:
    """Lint, then poll the linted files twice a second and lint again when one changes
    (polling needs no extra dependency and sees every editor's way of saving)."""
    import time

    from evallint.engine.files import iter_source_files

    def snapshot() -> dict[str, tuple[int, int]]:
        found = {}
        for path in iter_source_files(args.paths, lambda name: resolve(name, config, overrides)):
            try:
                status = path.stat()
            except OSError:
                continue
            found[str(path)] = (status.st_mtime_ns, status.st_size)
        return found

    previous: Optional[dict[str, tuple[int, int]]] = None
    try:
        while True:
            current = snapshot()
            if current != previous:
                if previous is not None and out.isatty():
                    out.write("\x1b[2J\x1b[H")
                out.write(
                    f"[{time.strftime('%H:%M:%S')}] evallint: checking {len(current)} files\n"
                )
                _check(args, config, overrides, out)
                out.write("Watching for changes (Ctrl-C to stop).\n")
                out.flush()
                previous = current
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def _split_suppressed(diagnostics: list) -> tuple[list, list]:
    """(reported, silenced by an inline comment), reading each file's comments once."""
    from evallint.source.directives import is_suppressed, suppressions
    from evallint.source.text import DecodeError, decode_source

    tables: dict[str, dict] = {}
    reported: list[Any] = []
    silenced: list[Any] = []
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


def _fix(
    args: argparse.Namespace, config: Optional[Config], overrides: Overrides, out: TextIO
) -> int:
    """--diff shows what --fix would write; --fix writes it (atomically) and reports the rest."""
    from evallint.diagnostics import Diagnostic
    from evallint.engine.fixes import fix_paths, unified_diff

    results = fix_paths(
        args.paths, config, write=args.fix and not args.diff, overrides=overrides, force=args.force
    )
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
        out.write("".join(unified_diff(r) for r in results))
        print(f"Would fix {fixed} finding{'s' if fixed != 1 else ''}.", file=sys.stderr)
        return 1 if any(r.changed for r in results) and not args.exit_zero else 0
    remaining = sorted((d for r in results for d in r.remaining), key=Diagnostic.sort_key)
    color = use_color(args.color, out)
    out.write(format_text(remaining, show_source=args.show_source, color=color))
    if not args.quiet:
        out.write(
            f"Fixed {fixed} finding{'s' if fixed != 1 else ''}; {len(remaining)} remaining.\n"
        )
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


def _without_label(found: Any) -> str:
    """The summary without its own leading verdict word, which the text line already prints."""
    label = found.verdict.replace("-", " ") + ": "
    summary: str = found.summary
    return summary[len(label) :] if summary.startswith(label) else summary


def _verify_and_report(diagnostics: list, args: argparse.Namespace, out: TextIO) -> int:
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
        out.write(json.dumps(objects, indent=2) + "\n")
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
        out.write(json.dumps(log, indent=2) + "\n")
    else:
        for diagnostic in diagnostics:
            out.write(format_text([diagnostic], show_source=args.show_source))
            found = verdicts.get(id(diagnostic))
            if found is not None:
                out.write(f"    verdict: {found.verdict}: {_without_label(found)}\n")
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
        out.write(
            f"Found {len(diagnostics)} findings; verdicts: "
            + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none")
            + "\n"
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
    from evallint.pseudo_rules import PSEUDO_RULES
    from evallint.rules import RULES

    argparse.ArgumentParser(prog="evallint rules", description="List every rule.").parse_args(argv)
    every: tuple[Any, ...] = (*RULES, *PSEUDO_RULES)
    width = max(len(rule.name) for rule in every)
    for rule in every:
        print(f"{rule.code}  {rule.name:<{width}}  {rule.summary}")
    return 0


def _explain(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="evallint explain", description="Print a rule's documentation."
    )
    parser.add_argument("code")
    args = parser.parse_args(argv)
    from evallint.pseudo_rules import PSEUDO_RULES_BY_CODE
    from evallint.rules import RULES_BY_CODE

    code = args.code.upper()
    rule = RULES_BY_CODE.get(code) or PSEUDO_RULES_BY_CODE.get(code)
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
