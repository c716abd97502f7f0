"""The lint command's flags: ruff's names and meanings wherever ruff has the flag."""

from __future__ import annotations

import argparse
import os
from typing import Callable

from evallint import __version__
from evallint.engine.cache import CACHE_DIRECTORY

COMMANDS = """\
commands:
  evallint [check] [PATH ...]   lint (the default command)
  evallint verify PATH ...      lint, then confirm findings by running the layers (extra: verify)
  evallint lsp                  language server on stdio (extra: lsp)
  evallint rules                list the rules
  evallint explain CODE         a rule's documentation (every printed code, EVL999 too)
  evallint debug --flow FILE    the mode and grad state the analysis infers per statement
  evallint run -- python X.py   run your own script under forward/step hooks (extra: verify)
"""


def lint_parser(
    codes: Callable[[str], tuple[str, ...]],
    globs: Callable[[str], tuple[str, ...]],
    per_file_ignores: Callable[[str], tuple[tuple[str, tuple[str, ...]], ...]],
    formats: list[str],
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evallint",
        description="Find PyTorch evaluation/training mode and autograd mistakes.",
        epilog=COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        default=["."],
        metavar="PATH",
        help="files or directories (default: .); `-` reads standard input",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--format",
        "--output-format",
        dest="format",
        choices=formats,
        default="text",
        help="output format (default: text)",
    )
    output.add_argument(
        "--output-file", "-o", metavar="FILE", help="write the report to FILE, not stdout"
    )
    output.add_argument(
        "--show-source", action="store_true", help="show the source line and related locations"
    )
    output.add_argument("--statistics", action="store_true", help="print a count per code")
    output.add_argument(
        "--show-suppressed",
        action="store_true",
        help="also list findings silenced by `# noqa` / `# evallint: ignore`",
    )
    output.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text report (auto: on a terminal, unless NO_COLOR is set; "
        "FORCE_COLOR forces it)",
    )
    output.add_argument("--quiet", "-q", action="store_true", help="no summary line")
    output.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when there are findings"
    )
    output.add_argument(
        "--show-settings", action="store_true", help="print the settings used for the first PATH"
    )
    output.add_argument(
        "--show-files", action="store_true", help="print the files that would be linted"
    )
    rules = parser.add_argument_group("rule selection (as ruff's flags of the same names)")
    rules.add_argument(
        "--select", type=codes, help="only these codes or prefixes, e.g. EVL001,EVL002"
    )
    rules.add_argument(
        "--extend-select",
        type=codes,
        action="append",
        default=[],
        help="add these codes to the selection (e.g. EVL100, unused suppressions)",
    )
    rules.add_argument("--ignore", type=codes, help="skip these codes or prefixes")
    rules.add_argument(
        "--extend-ignore", type=codes, action="append", default=[], help="skip these too"
    )
    rules.add_argument(
        "--per-file-ignores",
        type=per_file_ignores,
        action="append",
        default=[],
        metavar="PATTERN:CODES",
        help="skip CODES in files matching PATTERN (gitignore-style), e.g. 'tests/*:EVL002'",
    )
    files = parser.add_argument_group("file selection")
    files.add_argument(
        "--config", metavar="FILE", help="use this pyproject.toml or evallint.toml for every file"
    )
    files.add_argument(
        "--exclude", type=globs, help="replace the excluded patterns (comma-separated)"
    )
    files.add_argument(
        "--extend-exclude",
        type=globs,
        action="append",
        default=[],
        help="exclude these patterns too (comma-separated)",
    )
    files.add_argument(
        "--force-exclude",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the excludes to files named on the command line too (pre-commit)",
    )
    files.add_argument(
        "--respect-gitignore",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="skip files that .gitignore, .ignore or .git/info/exclude ignore (default: on)",
    )
    files.add_argument(
        "--stdin-filename",
        metavar="PATH",
        help="the name of the file read from standard input (its settings and findings)",
    )
    run = parser.add_argument_group("running")
    run.add_argument(
        "--fix", action="store_true", help="apply the fixes that re-linting proves safe"
    )
    run.add_argument(
        "--diff", action="store_true", help="print the fixes as a unified diff; write nothing"
    )
    run.add_argument(
        "--add-noqa",
        action="store_true",
        help="add `# noqa: CODE` to every line with a finding (running it again adds nothing)",
    )
    run.add_argument(
        "--watch", action="store_true", help="lint again whenever a linted file changes"
    )
    run.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes to lint with (default: cores)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help=f"ignore and do not write the result cache ({CACHE_DIRECTORY}/)",
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
        default=None,
        help="with --verify: exit 1 only for confirmed findings (default: any)",
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


def use_color(choice: str, stream: object) -> bool:
    """ruff's rule: --color wins; then NO_COLOR (any value) turns colour off and FORCE_COLOR
    turns it on; otherwise colour only on a terminal."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
