"""Turn diagnostics into text for people, JSON for scripts, SARIF for code scanning, GitHub annotations.

Formatters are pure: they take diagnostics and return a string, so the CLI, tests and
CI wrappers all print the same bytes.
"""

from __future__ import annotations

import json
import linecache
from collections import Counter
from pathlib import PurePath
from typing import Iterable, Optional, Protocol
from urllib.parse import quote

from evallint import __version__
from evallint.diagnostics import Diagnostic

HOME_URI = "https://github.com/evallint/evallint"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


class RuleInfo(Protocol):
    """What SARIF needs from a rule class: its code, name, one-line summary and page."""

    code: str
    name: str
    summary: str
    __doc__: Optional[str]


def format_text(diagnostics: Iterable[Diagnostic], show_source: bool = False) -> str:
    """`path:line:col: CODE message` per finding, flake8's shape so editors can jump to it.

    With `show_source`, the offending line, a caret under the column and the related
    locations follow each finding.
    """
    out: list[str] = []
    for diagnostic in diagnostics:
        out.append(
            f"{_where(diagnostic.path, diagnostic.cell)}:{diagnostic.line}:{diagnostic.column}: {diagnostic.code} {diagnostic.message}"
        )
        if not show_source:
            continue
        source_line = (
            ""
            if diagnostic.cell is not None
            else linecache.getline(diagnostic.path, diagnostic.line).rstrip("\r\n")
        )
        if source_line:
            out.append(f"    {source_line}")
            out.append("    " + _caret_prefix(source_line, diagnostic.column) + "^")
        for related in diagnostic.related:
            out.append(
                f"    {_where(related.path, related.cell)}:{related.line}:{related.column}: note: {related.message}"
            )
    return "".join(f"{line}\n" for line in out)


def _where(path: str, cell: Optional[int]) -> str:
    """`path` or, in a notebook, `path:cell 9` (lines then count within the cell)."""
    return path if cell is None else f"{path}:cell {cell}"


def format_json(diagnostics: Iterable[Diagnostic]) -> str:
    """A JSON array of `Diagnostic.to_json()` objects: the stable machine-readable shape."""
    return json.dumps([d.to_json() for d in diagnostics], indent=2) + "\n"


def format_sarif(diagnostics: Iterable[Diagnostic], rules: Iterable[RuleInfo] | None = None) -> str:
    """A SARIF 2.1.0 log with one run, carrying every rule's page so viewers can show it.

    :param rules: rule classes to describe; defaults to the registry `evallint.rules.RULES`,
        imported here so the other formats do not load the rules package.
    """
    if rules is None:
        from evallint.rules import RULES

        rules = RULES
    descriptors = [_rule_descriptor(rule) for rule in rules]
    index = {descriptor["id"]: position for position, descriptor in enumerate(descriptors)}
    results = []
    for diagnostic in diagnostics:
        result: dict[str, object] = {"ruleId": diagnostic.code}
        if diagnostic.code in index:
            result["ruleIndex"] = index[diagnostic.code]
        result["level"] = "warning"
        result["message"] = {"text": diagnostic.message}
        result["locations"] = [
            _physical_location(
                diagnostic.path,
                diagnostic.line,
                diagnostic.column,
                diagnostic.end_line,
                diagnostic.end_column,
            )
        ]
        if diagnostic.related:
            result["relatedLocations"] = [
                {
                    "id": number,
                    "message": {"text": r.message},
                    **_physical_location(r.path, r.line, r.column),
                }
                for number, r in enumerate(diagnostic.related)
            ]
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "evallint",
                        "version": __version__,
                        "informationUri": HOME_URI,
                        "rules": descriptors,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def format_github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands, which show each finding on the pull request's diff."""
    out = []
    for d in diagnostics:
        properties: dict[str, object] = {
            "file": d.path,
            "line": d.line,
            "col": d.column,
            "endLine": d.end_line,
            "endColumn": d.end_column,
            "title": d.code,
        }
        message = d.message
        if d.cell is not None:  # a line of a notebook's JSON would mislead: annotate the file
            properties = {"file": d.path, "title": d.code}
            message = f"cell {d.cell}:{d.line}:{d.column}: {message}"
        joined = ",".join(
            f"{key}={_escape_property(str(value))}" for key, value in properties.items()
        )
        out.append(f"::warning {joined}::{_escape_data(message)}\n")
    return "".join(out)


def format_statistics(diagnostics: Iterable[Diagnostic]) -> str:
    """One `count code first-message` line per code, flake8 `--statistics` style, by code."""
    counts: Counter[str] = Counter()
    first_message: dict[str, str] = {}
    for d in diagnostics:
        counts[d.code] += 1
        first_message.setdefault(d.code, d.message)
    return "".join(f"{counts[code]:<5} {code} {first_message[code]}\n" for code in sorted(counts))


def _caret_prefix(source_line: str, column: int) -> str:
    """Whitespace up to `column` that keeps tabs, so the caret lines up in a terminal."""
    return "".join(char if char == "\t" else " " for char in source_line[: max(column - 1, 0)])


def _rule_descriptor(rule: RuleInfo) -> dict[str, object]:
    page = (rule.__doc__ or rule.summary).strip()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": page, "markdown": page},
        "help": {"text": page, "markdown": page},
        "helpUri": f"{HOME_URI}#{rule.code.lower()}",
        "defaultConfiguration": {"level": "warning"},
    }


def _physical_location(
    path: str, line: int, column: int, end_line: int | None = None, end_column: int | None = None
) -> dict[str, object]:
    region: dict[str, int] = {"startLine": line, "startColumn": column}
    if end_line is not None and end_column is not None:
        region.update(endLine=end_line, endColumn=end_column)
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(path)}, "region": region}}


def _uri(path: str) -> str:
    """An absolute path becomes a file: URI; a relative one stays relative (to the checkout)."""
    pure = PurePath(path)
    if pure.is_absolute():
        return "file://" + quote(pure.as_posix().encode("utf-8", "surrogateescape"))
    return quote(pure.as_posix().encode("utf-8", "surrogateescape"))  # keeps non-UTF-8 file names


def _escape_data(text: str) -> str:
    """GitHub's escaping for a command's message (@actions/core escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """GitHub's escaping for a command property (@actions/core escapeProperty)."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
