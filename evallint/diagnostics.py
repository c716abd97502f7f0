"""The data every layer passes around: findings and the places they point at.

This module is a leaf: it imports nothing from evallint, so every layer (and the
verifier, which only reads diagnostics) can depend on it. The JSON shape produced by
`Diagnostic.to_json` is a public interface: later front ends add keys, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

PARSE_ERROR_CODE = "EVL999"
"""A file evallint could not read, decode or parse (flake8's E999)."""
UNUSED_SUPPRESSION_CODE = "EVL100"
"""A `# noqa: EVLnnn` / `# evallint: ignore[EVLnnn]` that silences nothing (ruff's RUF100)."""
RULE_CODES = tuple(f"EVL{number:03d}" for number in range(1, 10))
"""The codes of `evallint.rules.RULES` (a test keeps them equal), known without importing
the rules (and LibCST) so selections can be checked on a run answered from the cache."""
KNOWN_CODES = (*RULE_CODES, UNUSED_SUPPRESSION_CODE, PARSE_ERROR_CODE)


@dataclass(frozen=True)
class Related:
    """A secondary location that explains a finding (where the mode was set, the loop)."""

    path: str
    line: int
    column: int
    message: str
    cell: Optional[int] = None
    """For notebooks: the 1-based cell (among all cells) that `line` counts within."""

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }
        if self.cell is not None:
            found["cell"] = self.cell
        return found


@dataclass(frozen=True)
class Edit:
    """Replace the text from (line, column) up to, not including, (end_line, end_column).
    1-based lines and columns (columns count code points). An insertion has start == end."""

    line: int
    column: int
    end_line: int
    end_column: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "text": self.text,
        }


@dataclass(frozen=True)
class Fix:
    """A certain fix: one or more non-overlapping edits to the file the finding is in."""

    description: str
    edits: tuple[Edit, ...]

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "edits": [e.to_json() for e in self.edits]}


@dataclass(frozen=True)
class Diagnostic:
    """One finding. Lines and columns are 1-based; `end_*` is exclusive of nothing (inclusive end)."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    message: str
    related: tuple[Related, ...] = ()
    subject: str = field(default="", compare=False)
    """The module expression the finding is about (``model``, ``self.net``); empty if none."""
    fix: Optional[Fix] = field(default=None, compare=False)
    """Present only when fixes were asked for (`lint_source(..., fixes=True)`) and certain."""
    cell: Optional[int] = None
    """For notebooks: the 1-based cell (among all cells, as editors number them) that
    `line` counts within."""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "code": self.code,
            "message": self.message,
            "related": [r.to_json() for r in self.related],
            **({"fix": self.fix.to_json()} if self.fix is not None else {}),
            **({"cell": self.cell} if self.cell is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Diagnostic:
        """The inverse of `to_json` (fixes are not stored), for the result cache."""
        related = tuple(
            Related(r["path"], r["line"], r["column"], r["message"], r.get("cell"))
            for r in data["related"]
        )
        return cls(
            data["path"],
            data["line"],
            data["column"],
            data["end_line"],
            data["end_column"],
            data["code"],
            data["message"],
            related,
            cell=data.get("cell"),
        )

    def sort_key(self) -> tuple[str, int, int, int, str, int, int, str, str]:
        """Place, then code, then everything else that tells two findings apart: the order
        of findings at one place never depends on string hashing (set iteration)."""
        return (
            self.path,
            self.cell or 0,
            self.line,
            self.column,
            self.code,
            self.end_line,
            self.end_column,
            self.message,
            repr(self.related),
        )
