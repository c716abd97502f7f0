"""Apply the fixes rules attach to findings, and prove each one before keeping it.

A fix is kept only if the fixed text compiles and re-linting it shows the fixed finding
gone and nothing new: a rule's fix is local, but its effect on the mode/grad flow is not
(inserting `model.eval()` before one loop can leave a later training loop in eval mode).
A rejected fix leaves its finding with the reason (`FixResult.unfixed`). Before a file is
written, the whole result is proven again from scratch: it compiles, a fresh lint finds
exactly the findings the fixes left, and the fixed ones are gone; otherwise nothing is
written and the error says why. Files are written in the bytes form they were read
(encoding, BOM, newlines) by `safe_write`, which keeps mode, owner, extended attributes and
hard links, refuses read-only files unless forced, and cleans up after killed runs.
"""

from __future__ import annotations

import difflib
import functools
import io
import logging
import os
import re
import sys
import tokenize
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from evallint.analysis.interpreter import ProjectIndex
from evallint.diagnostics import Diagnostic, Edit
from evallint.engine.config import Config, Overrides, resolve
from evallint.engine.files import iter_source_files
from evallint.engine.run import lint_file, lint_source
from evallint.engine.safe_write import WriteError, clean_stale_temporaries, write_preserving
from evallint.source.parse import ParseFailure, parse_module
from evallint.source.text import DecodeError, decode_source, split_lines

LOG = logging.getLogger(__name__)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""The line breaks LibCST and LSP clients count; str.splitlines would also split on
form feeds and U+2028, which Python source does not treat as line ends."""


FindingKey = tuple[str, str, str]


@dataclass(frozen=True)
class FixResult:
    """The fixed text, the original findings that disappeared, and the ones left; `unfixed`
    pairs each left finding that has a fix with the reason the fix was not applied."""

    new_source: str
    fixed: list[Diagnostic]
    remaining: list[Diagnostic]
    unfixed: tuple[tuple[Diagnostic, str], ...] = ()


@dataclass(frozen=True)
class FileFix:
    """One file's outcome. `error` says why a changed file was left unwritten."""

    path: Path
    old: str
    new: str
    fixed: list[Diagnostic]
    remaining: list[Diagnostic]
    error: str = ""
    unfixed: tuple[tuple[Diagnostic, str], ...] = ()
    notes: tuple[str, ...] = ()
    """What was done about files left by interrupted runs."""

    @property
    def changed(self) -> bool:
        return self.old != self.new


def line_starts(text: str) -> list[int]:
    """Offset of each line's first character; one more entry than there are line breaks."""
    return [0] + [match.end() for match in _LINE_BREAK.finditer(text)]


def newline_of(text: str) -> str:
    """The file's line break (its first one), so inserted lines match their neighbours."""
    match = _LINE_BREAK.search(text)
    return match.group() if match else "\n"


def native_edits(source: str, edits: Iterable[Edit]) -> tuple[Edit, ...]:
    """`edits` with their line breaks written the way `source` writes them (CRLF stays CRLF)."""
    newline = newline_of(source)
    return tuple(
        Edit(e.line, e.column, e.end_line, e.end_column, _LINE_BREAK.sub(newline, e.text))
        for e in edits
    )


def offset(source: str, starts: Sequence[int], line: int, column: int) -> int:
    """Offset of the 1-based (line, column); column len(line)+1 is the end of the line's text.

    :raises ValueError: the position is not in `source`.
    """
    if not 1 <= line <= len(starts):
        raise ValueError(f"line {line} is outside the text (1-{len(starts)})")
    start = starts[line - 1]
    end = starts[line] if line < len(starts) else len(source)
    text_end = start + len(source[start:end].rstrip("\r\n"))
    position = start + column - 1
    if not start <= position <= text_end:
        raise ValueError(f"column {column} is outside line {line}")
    return position


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits; insertions at one point keep their given order.

    :raises ValueError: two edits overlap, or an edit points outside the text.
    """
    starts = line_starts(source)
    spans = sorted(
        (
            (
                offset(source, starts, e.line, e.column),
                offset(source, starts, e.end_line, e.end_column),
                e.text,
            )
            for e in edits
        ),
        key=lambda span: (span[0], span[1]),
    )
    parts: list[str] = []
    cursor = 0
    for start, end, text in spans:
        if end < start:
            raise ValueError(f"edit ends before it starts at offset {start}")
        if start < cursor:
            raise ValueError(f"overlapping edits at offset {start}")
        parts += [source[cursor:start], text]
        cursor = end
    parts.append(source[cursor:])
    return "".join(parts)


def fix_source(
    source: str,
    path: str = "<string>",
    config: Optional[Config] = None,
    *,
    project: Optional[ProjectIndex] = None,
) -> FixResult:
    """Apply fixes one at a time, re-linting after each, until none is accepted.

    Each accepted fix removes at least one finding and adds none, so the loop ends after
    at most as many accepted fixes as there were findings; a rejected fix is retried only
    after another fix changed the text. Running this on its own output changes nothing.
    """

    def lint(text: str) -> list[Diagnostic]:
        return lint_source(text, path, config, fixes=True, project=project)

    original = lint(source)
    fixable = [d for d in original if d.fix is not None]
    if not fixable:
        return FixResult(source, [], original)
    not_compiling = compile_error(source, path)
    if not_compiling:
        reason = f"the file does not compile with Python {sys.version_info[0]}.{sys.version_info[1]} ({not_compiling})"
        return FixResult(source, [], original, tuple((d, reason) for d in fixable))
    current, findings = source, original
    rejected: dict[tuple[FindingKey, int, int], str] = {}
    while True:
        for finding in findings:
            where = (_key(finding), finding.line, finding.column)
            if finding.fix is None or where in rejected:
                continue
            accepted = _attempt(current, finding, finding.fix.edits, findings, lint, path)
            if isinstance(accepted, str):
                rejected[where] = accepted
                continue
            current, findings = accepted
            rejected.clear()
            break
        else:
            break
    unfixed = tuple(
        (d, rejected[(_key(d), d.line, d.column)])
        for d in findings
        if (_key(d), d.line, d.column) in rejected
    )
    return FixResult(current, _disappeared(original, findings), findings, unfixed)


def compile_error(text: str, path: str = "<fixed>") -> str:
    """Why CPython would not compile `text` (empty when it would). Compiling runs nothing,
    and it catches what a parse does not: `return` outside a function, bad `nonlocal`..."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(text, path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return f"{exc.msg} at line {exc.lineno}"
        except (ValueError, MemoryError, RecursionError) as exc:
            return f"{type(exc).__name__}: {exc}"
    return ""


def prove(source: str, path: str, config: Optional[Config], result: FixResult) -> str:
    """Check a fix result from scratch (empty string when it holds, else why not): the new
    text compiles; a fresh lint finds exactly the findings the result says are left; the
    findings it says were fixed are gone and no other finding changed."""
    if result.new_source == source:
        return ""
    not_compiling = compile_error(result.new_source, path)
    if not_compiling:
        return f"the fixed file would not compile: {not_compiling}"
    before = Counter(map(_key, lint_source(source, path, config)))
    after = Counter(map(_key, lint_source(result.new_source, path, config)))
    if after != Counter(map(_key, result.remaining)):
        return "re-linting the fixed file does not give the findings the fixes left"
    if after + Counter(map(_key, result.fixed)) != before:
        return "re-linting the fixed file shows a finding changed besides the fixed ones"
    return ""


def fix_paths(
    paths: Iterable[str | os.PathLike[str]],
    config: Optional[Config] = None,
    *,
    write: bool,
    overrides: Optional[Overrides] = None,
    force: bool = False,
) -> list[FileFix]:
    """Fix files and directories (walked like `lint_paths`); with `write`, save changed files
    (read-only ones only with `force`).

    :raises ConfigError: a `[tool.evallint]` table is unusable (as for linting).
    """

    def settings(name: str) -> Config:
        return resolve(name, config, overrides)

    return [
        _fix_file(path, settings(str(path)), write=write, force=force)
        for path in iter_source_files([str(p) for p in paths], settings)
    ]


def unified_diff(file_fix: FileFix) -> str:
    """The change as a unified diff (empty when nothing changed), `patch -p0` applicable."""
    name = str(file_fix.path)
    lines = difflib.unified_diff(
        split_lines(file_fix.old), split_lines(file_fix.new), fromfile=name, tofile=name
    )
    return "".join(
        line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n"
        for line in lines
    )


def verified_fixes(source: str, path: str, config: Optional[Config] = None) -> list[Diagnostic]:
    """Findings with only the fixes that re-linting proves safe (the fixed text parses, the
    finding is gone, nothing new appears); an editor offers exactly these."""
    found = lint_source(source, path, config, fixes=True)
    lint = functools.partial(_lint_plain, path=path, config=config)
    if any(d.fix is not None for d in found) and compile_error(source, path):
        return [replace(d, fix=None) for d in found]
    return [
        d
        if d.fix is None or not isinstance(_attempt(source, d, d.fix.edits, found, lint, path), str)
        else replace(d, fix=None)
        for d in found
    ]


def _lint_plain(text: str, *, path: str, config: Optional[Config]) -> list[Diagnostic]:
    return lint_source(text, path, config)


def _key(diagnostic: Diagnostic) -> FindingKey:
    """What a finding is, apart from where: line shifts from a fix must not make it 'new'."""
    return (diagnostic.code, diagnostic.subject, diagnostic.message)


def _attempt(
    source: str,
    finding: Diagnostic,
    edits: tuple[Edit, ...],
    before: list[Diagnostic],
    lint: Callable[[str], list[Diagnostic]],
    path: str,
) -> tuple[str, list[Diagnostic]] | str:
    """The fixed text and its findings, or why the fix is not applied (it does not apply,
    the result does not parse or compile, the finding stays, or a finding appears)."""
    try:
        candidate = apply_edits(source, native_edits(source, edits))
    except ValueError as exc:
        LOG.debug(
            "fix for %s at %d:%d not applicable: %s",
            finding.code,
            finding.line,
            finding.column,
            exc,
        )
        return f"the fix does not apply to the text: {exc}"
    if candidate == source:
        return "the fix changes nothing"
    parsed = parse_module(candidate)
    if isinstance(parsed, ParseFailure):
        return f"the fixed file would not parse: {parsed.reason}"
    not_compiling = compile_error(candidate, path)
    if not_compiling:
        return f"the fixed file would not compile: {not_compiling}"
    after = lint(candidate)
    allowed = Counter(map(_key, before))
    allowed[_key(finding)] -= 1
    if _key(finding) in Counter(map(_key, after)) - allowed:
        return "re-linting the fixed file still reports this finding"
    added = Counter(map(_key, after)) - allowed
    if added:
        code, subject, _ = next(iter(added))
        return f"the fix would cause a new {code} finding ({subject or 'elsewhere'})"
    return candidate, after


def _disappeared(original: list[Diagnostic], remaining: list[Diagnostic]) -> list[Diagnostic]:
    """The original findings (with their original positions) that the fixes removed."""
    gone = Counter(map(_key, original)) - Counter(map(_key, remaining))
    fixed = []
    for diagnostic in original:
        if gone[_key(diagnostic)] > 0:
            gone[_key(diagnostic)] -= 1
            fixed.append(diagnostic)
    return fixed


def _fix_file(path: Path, config: Config, *, write: bool, force: bool = False) -> FileFix:
    if path.suffix == ".ipynb":  # the cells' program is fixed and written back into the JSON
        from evallint.engine.notebook_fix import fix_notebook_file

        old, new, fixed, remaining, error = fix_notebook_file(path, config, write=write)
        return FileFix(path, old, new, fixed, remaining, error)
    notes = tuple(clean_stale_temporaries(path)) if write else ()
    try:
        data = path.read_bytes()
        source = decode_source(data)
    except (OSError, DecodeError):
        return FileFix(path, "", "", [], lint_file(path, config), notes=notes)
    if "\x00" in source:
        return FileFix(path, source, source, [], lint_file(path, config), notes=notes)
    result = fix_source(source, str(path), config)
    file_fix = FileFix(
        path,
        source,
        result.new_source,
        result.fixed,
        result.remaining,
        unfixed=result.unfixed,
        notes=notes,
    )
    if not file_fix.changed:
        return file_fix
    error = prove(source, str(path), config, result)
    if not error and write:
        error = _save(path, data, result.new_source, force=force)
    if error:
        return replace(
            file_fix,
            new=source,
            fixed=[],
            remaining=lint_source(source, str(path), config),
            error=f"not written: {error}" if not error.startswith("not written") else error,
        )
    return file_fix


def _save(path: Path, original: bytes, text: str, *, force: bool = False) -> str:
    """Write `text` encoded as `original` was; an error message instead of a partial write."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(original).readline)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as exc:
        return f"not written: the fix is not representable in {encoding}: {exc.reason}"
    try:
        round_trip = decode_source(data)
    except DecodeError as exc:
        round_trip = str(exc)
    if round_trip != text:
        return "not written: the fixed file would not decode back to the fixed text (coding cookie moved?)"
    try:
        if path.read_bytes() != original:
            return "not written: the file changed while it was being fixed"
        write_preserving(path, data, force=force)
    except OSError as exc:
        return f"not written: {exc.strerror or exc}"
    except WriteError as exc:
        return f"not written: {exc}"
    return ""
