"""`--add-noqa`: append `# noqa: CODE` to every line with a finding, as ruff does.

The comment goes at the end of the logical line the finding is on (for a statement over
several lines, its last line: that is where a comment covers the whole statement), codes are
merged into an existing `# noqa: ...`, and a second run adds nothing, because the findings
are suppressed by then. Notebooks and files that do not parse are left alone.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tokenize
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from evallint.diagnostics import PARSE_ERROR_CODE, UNUSED_SUPPRESSION_CODE, Diagnostic
from evallint.engine.config import Config, Overrides
from evallint.engine.run import lint_paths
from evallint.source.text import DecodeError, decode_source

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
_NOQA_CODES = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*)", re.I)


def add_noqa(
    paths: Iterable[str | os.PathLike[str]],
    config: Optional[Config] = None,
    overrides: Optional[Overrides] = None,
) -> int:
    """Write the directives; the number of lines that got one."""
    by_file: dict[str, list[Diagnostic]] = defaultdict(list)
    for d in lint_paths(paths, config, overrides=overrides):
        if d.cell is None and d.code not in (PARSE_ERROR_CODE, UNUSED_SUPPRESSION_CODE):
            by_file[d.path].append(d)
    added = 0
    for name, found in by_file.items():
        added += _add_to_file(Path(name), found)
    return added


def _add_to_file(path: Path, found: list[Diagnostic]) -> int:
    from evallint.engine.fixes import _save

    try:
        data = path.read_bytes()
        source = decode_source(data)
        ends = _logical_line_ends(source)
    except (OSError, DecodeError, tokenize.TokenError, SyntaxError):
        return 0
    codes: dict[int, set[str]] = defaultdict(set)
    for d in found:
        codes[ends.get(d.line, d.line)].add(d.code)
    lines = _LINE.findall(source)
    if lines and lines[-1] == "":
        lines.pop()
    for number, wanted in codes.items():
        if not 1 <= number <= len(lines):
            continue
        text = lines[number - 1]
        body = text.rstrip("\r\n")
        newline = text[len(body) :]
        existing = _NOQA_CODES.search(body)
        if existing is not None:
            merged = sorted(
                set(re.findall(r"[A-Z]+[0-9]+", existing.group("codes"), re.I)) | wanted
            )
            body = (
                body[: existing.start()] + "# noqa: " + ", ".join(merged) + body[existing.end() :]
            )
        else:
            body = f"{body.rstrip()}  # noqa: {', '.join(sorted(wanted))}"
        lines[number - 1] = body + newline
    error = _save(path, data, "".join(lines))
    if error:
        print(f"{path}: {error}", file=sys.stderr)
        return 0
    return len(codes)


def _logical_line_ends(source: str) -> dict[int, int]:
    """Each physical line -> the last physical line of its logical line."""
    ends: dict[int, int] = {}
    first = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.ENDMARKER, tokenize.DEDENT, tokenize.INDENT):
            continue
        if first == 0:
            first = token.start[0]
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            for line in range(first, token.start[0] + 1):
                ends[line] = token.start[0]
            first = 0
    return ends
