"""Inline suppressions: `# noqa`, `# noqa: EVL001,EVL002`, `# evallint: ignore[EVL001]`.

The `# noqa` grammar and the way a comment reaches every line of a multi-line string are
flake8's (defaults.NOQA_INLINE_REGEXP, processor._noqa_line_mapping), so the CLI and the
flake8 plugin silence the same findings. Most files carry no directive, so a substring check
decides first and only files that mention one are tokenized.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterable, Optional

from evallint.diagnostics import Diagnostic

SuppressionTable = Dict[int, Optional[FrozenSet[str]]]
"""Line (1-based) → suppressed codes or prefixes; None means every code."""

_NOQA = re.compile(r"# noqa(?::[\s]?(?P<codes>([A-Z]+[0-9]+(?:[,\s]+)?)+))?", re.IGNORECASE)
_EVALLINT = re.compile(r"#\s*evallint:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)


def suppressions(source: str) -> SuppressionTable:
    """Map each suppressed line (1-based) to its codes; None means every code.

    Only comments count, so `"# noqa"` inside a string literal suppresses nothing. Codes
    are upper-cased; `is_suppressed` matches them as prefixes, as flake8 does.
    """
    lowered = source.lower()
    if "noqa" not in lowered and "evallint:" not in lowered:
        return {}
    try:
        return _from_tokens(source)
    except (tokenize.TokenError, SyntaxError):
        return _from_lines(source)


def is_suppressed(diagnostic: Diagnostic, table: SuppressionTable) -> bool:
    """Whether a directive on the diagnostic's line covers its code (exactly or by prefix)."""
    if diagnostic.line not in table:
        return False
    codes = table[diagnostic.line]
    return codes is None or any(diagnostic.code.startswith(code) for code in codes)


def _directive(comment: str) -> tuple[bool, frozenset[str] | None]:
    """(found, codes) for one comment's text; codes None means a blanket suppression."""
    found = False
    codes: set[str] = set()
    for regex in (_NOQA, _EVALLINT):
        for match in regex.finditer(comment):
            found = True
            listed = match.group("codes")
            if listed is None:
                return True, None
            codes.update(code.upper() for code in _CODE.findall(listed))
    return found, frozenset(codes)


def _merge(table: SuppressionTable, lines: Iterable[int], codes: frozenset[str] | None) -> None:
    for line in lines:
        if line in table:
            previous = table[line]
            table[line] = None if previous is None or codes is None else previous | codes
        else:
            table[line] = codes


def _from_tokens(source: str) -> SuppressionTable:
    """Read directives from COMMENT tokens, spreading each over its NL/NEWLINE-delimited range."""
    table: SuppressionTable = {}
    first = last = 0
    pending: list[frozenset[str] | None] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.ENDMARKER, tokenize.DEDENT):
            continue
        first = token.start[0] if first == 0 else min(first, token.start[0])
        last = max(last, token.end[0])
        if token.type == tokenize.COMMENT:
            found, codes = _directive(token.string)
            if found:
                pending.append(codes)
        elif token.type in (tokenize.NL, tokenize.NEWLINE):
            for codes in pending:
                _merge(table, range(first, last + 1), codes)
            first = last = 0
            pending = []
    for codes in pending:  # a last line without a newline token
        _merge(table, range(first, last + 1), codes)
    return table


def _from_lines(source: str) -> SuppressionTable:
    """Fallback for text that does not tokenize (it gets EVL999): look after each line's `#`."""
    table: SuppressionTable = {}
    for number, line in enumerate(source.splitlines(), start=1):
        hash_at = line.find("#")
        if hash_at == -1:
            continue
        found, codes = _directive(line[hash_at:])
        if found:
            _merge(table, (number,), codes)
    return table


@dataclass(frozen=True)
class Directive:
    """One suppression comment: where it is, what it names and which lines it covers."""

    line: int
    column: int
    """1-based position of the comment's `#`."""
    text: str
    codes: Optional[FrozenSet[str]]
    """Codes or prefixes named; None for a blanket `# noqa` / `# evallint: ignore`."""
    lines: range
    """The lines it silences: the whole logical line (or multi-line string) it ends."""
    blanket_noqa: bool = False
    """A bare `# noqa`: other linters read it too, so it is never reported as unused."""


def directives(source: str) -> list[Directive]:
    """Every suppression comment of `source`, for reporting the unused ones (EVL100)."""
    lowered = source.lower()
    if "noqa" not in lowered and "evallint:" not in lowered:
        return []
    try:
        return _directives_from_tokens(source)
    except (tokenize.TokenError, SyntaxError):
        return []


def unused_directives(
    source: str, findings: Iterable[Diagnostic], enabled: Callable[[str], bool]
) -> list[tuple[Directive, tuple[str, ...]]]:
    """(directive, unused codes) for each suppression that silences nothing evallint reports.

    Only evallint's own codes are judged (`# noqa: E501` belongs to another linter), and only
    codes that are enabled here (a disabled rule's suppression may matter elsewhere). An
    empty tuple of codes means a blanket `# evallint: ignore` that silences nothing.
    """
    found = list(findings)
    unused: list[tuple[Directive, tuple[str, ...]]] = []
    for directive in directives(source):
        covered = [d for d in found if d.line in directive.lines]
        if directive.codes is None:
            if not directive.blanket_noqa and not covered:
                unused.append((directive, ()))
            continue
        idle = tuple(
            sorted(
                code
                for code in directive.codes
                if code.startswith("EVL")
                and any(enabled(known) for known in _codes_under(code))
                and not any(d.code.startswith(code) for d in covered)
            )
        )
        if idle:
            unused.append((directive, idle))
    return unused


def _codes_under(prefix: str) -> tuple[str, ...]:
    from evallint.diagnostics import KNOWN_CODES

    return tuple(code for code in KNOWN_CODES if code.startswith(prefix)) or (prefix,)


def _directives_from_tokens(source: str) -> list[Directive]:
    found: list[Directive] = []
    first = last = 0
    pending: list[tuple[int, int, str, Optional[FrozenSet[str]], bool]] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.ENDMARKER, tokenize.DEDENT):
            continue
        first = token.start[0] if first == 0 else min(first, token.start[0])
        last = max(last, token.end[0])
        if token.type == tokenize.COMMENT:
            present, codes = _directive(token.string)
            if present:
                bare = codes is None and _NOQA.search(token.string) is not None
                pending.append((token.start[0], token.start[1] + 1, token.string, codes, bare))
        elif token.type in (tokenize.NL, tokenize.NEWLINE):
            for line, column, text, codes, bare in pending:
                found.append(Directive(line, column, text, codes, range(first, last + 1), bare))
            first = last = 0
            pending = []
    for line, column, text, codes, bare in pending:
        found.append(Directive(line, column, text, codes, range(first, last + 1), bare))
    return found
