"""Turn diagnostics into text for people, JSON for scripts, SARIF for code scanning, GitHub annotations.

Formatters are pure: they take diagnostics and return a string, so the CLI, tests and
CI wrappers all print the same bytes.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import PurePath
from typing import Iterable, Optional, Protocol

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


BOLD, RED, CYAN, RESET = "\x1b[1m", "\x1b[31m", "\x1b[36m", "\x1b[0m"


def _getline(path: str, line: int) -> str:
    """A source line for `--show-source` (linecache is imported only when one is shown)."""
    import linecache

    return linecache.getline(path, line)


def format_text(
    diagnostics: Iterable[Diagnostic], show_source: bool = False, *, color: bool = False
) -> str:
    """`path:line:col: CODE message` per finding, flake8's shape so editors can jump to it.

    With `show_source`, the offending line, a caret under the column and the related
    locations follow each finding. With `color`, ANSI colours as ruff uses them (bold path,
    red code).
    """
    out: list[str] = []
    for diagnostic in diagnostics:
        where = _where(diagnostic.path, diagnostic.cell)
        if color:
            out.append(
                f"{BOLD}{where}{RESET}{CYAN}:{RESET}{diagnostic.line}{CYAN}:{RESET}"
                f"{diagnostic.column}{CYAN}:{RESET} {BOLD}{RED}{diagnostic.code}{RESET} "
                f"{diagnostic.message}"
            )
        else:
            out.append(
                f"{where}:{diagnostic.line}:{diagnostic.column}: {diagnostic.code} {diagnostic.message}"
            )
        if not show_source:
            continue
        source_line = (
            cell_line(diagnostic.path, diagnostic.cell, diagnostic.line)
            if diagnostic.cell is not None
            else _getline(diagnostic.path, diagnostic.line).rstrip("\r\n")
        )
        if source_line:
            out.append(f"    {source_line}")
            out.append("    " + _caret_prefix(source_line, diagnostic.column) + "^")
        for related in diagnostic.related:
            out.append(
                f"    {_where(related.path, related.cell)}:{related.line}:{related.column}: note: {related.message}"
            )
    return "".join(f"{line}\n" for line in out)


def cell_line(path: str, cell: int, line: int) -> str:
    """Line `line` (1-based) of cell `cell` (1-based among all cells) of a notebook file;
    empty when it cannot be read."""
    cells = _notebook_cells(path)
    if not 1 <= cell <= len(cells):
        return ""
    lines = cells[cell - 1].splitlines()
    return lines[line - 1] if 1 <= line <= len(lines) else ""


@functools.lru_cache(maxsize=8)
def _notebook_cells(path: str) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8-sig") as stream:
            cells = json.load(stream).get("cells", [])
        return tuple(
            "".join(c["source"]) if isinstance(c["source"], list) else str(c["source"])
            for c in cells
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return ()


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
        from evallint.pseudo_rules import PSEUDO_RULES
        from evallint.rules import RULES

        rules = (*RULES, *PSEUDO_RULES)
    descriptors = [_rule_descriptor(rule) for rule in rules]
    index = {descriptor["id"]: position for position, descriptor in enumerate(descriptors)}
    results = []
    for diagnostic in diagnostics:
        result: dict[str, object] = {"ruleId": diagnostic.code}
        if diagnostic.code in index:
            result["ruleIndex"] = index[diagnostic.code]
        result["level"] = "warning"
        result["message"] = {"text": diagnostic.message}
        if diagnostic.cell is not None:
            result["message"] = {
                "text": f"cell {diagnostic.cell}:{diagnostic.line}:{diagnostic.column}: "
                + diagnostic.message
            }
        result["locations"] = [_location(diagnostic)]
        if diagnostic.related:
            result["relatedLocations"] = [
                {
                    "id": number,
                    "message": {"text": r.message},
                    **(
                        _physical_location(r.path, r.line, r.column)
                        if r.cell is None
                        else {
                            "physicalLocation": {"artifactLocation": {"uri": _uri(r.path)}},
                            "logicalLocations": [{"name": f"cell {r.cell}", "kind": "element"}],
                            "properties": {
                                "cell": r.cell,
                                "cellLine": r.line,
                                "cellColumn": r.column,
                            },
                        }
                    ),
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
    import inspect

    page = inspect.cleandoc(rule.__doc__ or rule.summary)  # dedented on every Python
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": page, "markdown": page},
        "help": {"text": page, "markdown": page},
        "helpUri": f"{HOME_URI}#{rule.code.lower()}",
        "defaultConfiguration": {"level": "warning"},
    }


def _location(d: Diagnostic) -> dict[str, object]:
    """A file location; in a notebook, the region counts within the cell, which the
    logical location (`cell 9`) and the properties name: lines of a notebook's JSON would
    point at nothing a reader sees."""
    location = _physical_location(d.path, d.line, d.column, d.end_line, d.end_column)
    if d.cell is None:
        return location
    location["physicalLocation"] = {"artifactLocation": {"uri": _uri(d.path)}}
    location["logicalLocations"] = [
        {
            "name": f"cell {d.cell}",
            "fullyQualifiedName": f"{d.path}:cell {d.cell}",
            "kind": "element",
        }
    ]
    location["properties"] = {
        "cell": d.cell,
        "cellLine": d.line,
        "cellColumn": d.column,
        "cellEndLine": d.end_line,
        "cellEndColumn": d.end_column,
    }
    return location


def _physical_location(
    path: str, line: int, column: int, end_line: int | None = None, end_column: int | None = None
) -> dict[str, object]:
    region: dict[str, int] = {"startLine": line, "startColumn": column}
    if end_line is not None and end_column is not None:
        region.update(endLine=end_line, endColumn=end_column)
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(path)}, "region": region}}


def _uri(path: str) -> str:
    """An absolute path becomes a file: URI; a relative one stays relative (to the checkout)."""
    from urllib.parse import quote

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
