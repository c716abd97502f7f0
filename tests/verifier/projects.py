"""Small projects written to a temporary directory for the reach tests, and the verdict of
the line marked `# flagged` in one of their files."""

from __future__ import annotations

import textwrap
from pathlib import Path

from evallint.diagnostics import Diagnostic


def write_project(root: Path, files: dict[str, str]) -> None:
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def verify_flagged(path: Path, subject: str, code: str = "EVL001") -> object:
    from evallint.verifier import verify  # needs torch: imported by the tests that verify

    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "# flagged" in text)
    [found] = verify([Diagnostic(str(path), line, 1, line, 5, code, "m", (), subject)])
    return found
