"""`--add-noqa`: append `# noqa: CODE` to every line with a finding, as ruff does.

The comment goes at the end of the line the finding is on, or of the last line of the token
run it belongs to (a multi-line string: a comment there covers every line of it, as flake8
maps comments and as evallint's own suppressions read them); codes are merged into an
existing `# noqa: ...`, and a second run adds nothing, because the findings are suppressed by
then. In a notebook the comment goes into the code cell's own line (the notebook's JSON is
rewritten in its own layout, outputs and metadata untouched, as `--fix` writes it); a line
whose comment would not reach the program evallint reads (a masked line of IPython syntax)
gets none, with a note on stderr. Files that do not parse are left alone.
"""

from __future__ import annotations

import io
import json
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
        if d.code not in (PARSE_ERROR_CODE, UNUSED_SUPPRESSION_CODE):
            by_file[d.path].append(d)
    added = 0
    for name, found in by_file.items():
        if any(d.cell is not None for d in found):
            added += _add_to_notebook(Path(name), found)
        else:
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
    lines = _split_lines(source)
    for number, wanted in codes.items():
        if 1 <= number <= len(lines):
            lines[number - 1] = _with_noqa(lines[number - 1], wanted)
    error = _save(path, data, "".join(lines))
    if error:
        print(f"{path}: {error}", file=sys.stderr)
        return 0
    return len(codes)


def _split_lines(text: str) -> list[str]:
    """The lines of `text` with their own line ends (`\n`, `\r\n` or `\r`)."""
    lines = _LINE.findall(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _with_noqa(text: str, wanted: set[str]) -> str:
    """One line (with its line end) with `wanted` added to its `# noqa: ...`."""
    body = text.rstrip("\r\n")
    newline = text[len(body) :]
    existing = _NOQA_CODES.search(body)
    if existing is not None:
        merged = sorted(set(re.findall(r"[A-Z]+[0-9]+", existing.group("codes"), re.I)) | wanted)
        body = body[: existing.start()] + "# noqa: " + ", ".join(merged) + body[existing.end() :]
    else:
        body = f"{body.rstrip()}  # noqa: {', '.join(sorted(wanted))}"
    return body + newline


def _add_to_notebook(path: Path, found: list[Diagnostic]) -> int:
    """Add the directives inside the code cells of a notebook; the number of lines."""
    from evallint.engine.fixes import _save
    from evallint.engine.notebook_fix import dump_notebook
    from evallint.source.notebook import NotebookError, read_notebook

    try:
        data = path.read_bytes()
        virtual = read_notebook(data)
        text = data.decode("utf-8-sig")
        notebook = json.loads(text)
        ends = _logical_line_ends(virtual.text)
        cells = notebook["cells"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, NotebookError):
        return 0  # not a notebook (the check reports why)
    except (tokenize.TokenError, SyntaxError):
        return 0
    starts = {span.index: span for span in virtual.cells}
    codes: dict[tuple[int, int], set[str]] = defaultdict(set)
    for d in found:
        span = starts.get(d.cell) if d.cell is not None else None
        if span is None:
            continue
        line = span.start + d.line - 1
        cell, cell_line = virtual.locate(ends.get(line, line))
        if cell != span.index:  # a statement left open at the end of its cell
            cell, cell_line = span.index, d.line
        codes[(cell, cell_line)].add(d.code)
    edited: dict[int, list[str]] = {}
    added = 0
    for (cell, cell_line), wanted in sorted(codes.items()):
        source = cells[cell - 1].get("source")
        if cell not in edited:
            edited[cell] = _split_lines(
                "".join(source) if isinstance(source, list) else str(source)
            )
        lines = edited[cell]
        if not 1 <= cell_line <= len(lines):
            continue
        before = lines[cell_line - 1]
        lines[cell_line - 1] = _with_noqa(before, wanted)
        if not _reaches_program(lines, cell_line, wanted):
            lines[cell_line - 1] = before
            print(
                f"{path}:cell {cell}:{cell_line}: no noqa added: the line is IPython syntax, "
                "whose comment evallint does not read",
                file=sys.stderr,
            )
            continue
        added += 1
    if not added:
        return 0
    for cell, lines in edited.items():
        if isinstance(cells[cell - 1]["source"], list):
            cells[cell - 1]["source"] = lines
        else:
            cells[cell - 1]["source"] = "".join(lines)
    error = _save(path, data, dump_notebook(notebook, text, data).decode("utf-8-sig"))
    if error:
        print(f"{path}: {error}", file=sys.stderr)
        return 0
    return added


def _reaches_program(lines: list[str], number: int, wanted: set[str]) -> bool:
    """The directive on cell line `number` silences `wanted` in the program evallint reads
    from the cell (IPython syntax is masked there, line for line)."""
    from evallint.source.directives import suppressions
    from evallint.source.notebook import mask_cell

    masked, _ = mask_cell("".join(lines))
    table = suppressions("\n".join(masked))
    if number not in table:
        return False
    codes = table[number]
    return codes is None or all(any(w.startswith(c) for c in codes) for w in wanted)


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
