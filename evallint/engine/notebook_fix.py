"""`--fix` on notebooks: fix the code cells' joint program, then write each changed cell's
source back into the notebook's JSON, leaving outputs, metadata, cell ids and every other
cell untouched.

The virtual source has the same lines as the cells (IPython syntax masked line for line),
so a line diff between the old and the fixed program says which cell each new line belongs
to. A fix that would touch a masked line (a magic), a dedented cell, or two cells at once is
refused: the notebook is left as it was and its findings are reported.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Optional

from evallint.diagnostics import Diagnostic
from evallint.engine.config import Config
from evallint.engine.run import lint_bytes
from evallint.source.notebook import NotebookError, VirtualSource, map_diagnostic, read_notebook


class NotebookFixError(ValueError):
    """The fix cannot be written into the cells; the message is one line."""


def fix_notebook(data: bytes, name: str, config: Config) -> tuple[bytes, list[Diagnostic]]:
    """(the fixed notebook's bytes, the findings the fixes removed, in cell coordinates).

    :raises NotebookFixError: the fixed program cannot be mapped back onto the cells.
    :raises NotebookError: the data is not a notebook.
    """
    from evallint.engine.fixes import fix_source

    virtual = read_notebook(data)
    if not virtual.cells:
        return data, []
    result = fix_source(virtual.text, name, config)
    if result.new_source == virtual.text:
        return data, []
    text = data.decode("utf-8-sig")
    notebook = json.loads(text)
    sources = _cell_sources(virtual, result.new_source, notebook)
    for index, source in sources.items():
        cell = notebook["cells"][index - 1]
        if isinstance(cell["source"], list):
            cell["source"] = source.splitlines(keepends=True)
        else:
            cell["source"] = source
    fixed = [map_diagnostic(d, virtual) for d in result.fixed]
    return dump_notebook(notebook, text, data), fixed


def _cell_sources(
    virtual: VirtualSource, new_text: str, notebook: dict[str, Any]
) -> dict[int, str]:
    old_lines = virtual.text.split("\n")[:-1]
    new_lines = new_text.split("\n")[:-1]
    owner: list[int] = []  # cell index of each old virtual line
    original: list[str] = []  # the cell's own text of each old virtual line
    for span in virtual.cells:
        raw = notebook["cells"][span.index - 1]["source"]
        cell_text = "".join(raw) if isinstance(raw, list) else raw
        cell_lines = re.split(r"\r\n|\r|\n", cell_text)
        if len(cell_lines) != len(span.shifts):
            raise NotebookFixError(f"cell {span.index} does not match its program lines")
        owner += [span.index] * len(cell_lines)
        original += cell_lines
    if len(owner) != len(old_lines):
        raise NotebookFixError("the cells do not match the program")
    rebuilt: dict[int, list[str]] = {span.index: [] for span in virtual.cells}
    changed: set[int] = set()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                rebuilt[owner[i1 + offset]].append(original[i1 + offset])
            continue
        cells = {owner[i] for i in range(i1, i2)}
        if not cells:  # a pure insertion belongs to the cell of the line it precedes
            cells = {owner[i1] if i1 < len(owner) else owner[-1]}
        if len(cells) > 1:
            raise NotebookFixError("a fix spans two cells")
        (cell,) = cells
        if any(old_lines[i] != original[i] for i in range(i1, i2)):
            raise NotebookFixError(f"a fix would rewrite IPython syntax in cell {cell}")
        if any(s for span in virtual.cells if span.index == cell for s in span.shifts):
            raise NotebookFixError(f"cell {cell} is indented as a whole; fix it by hand")
        rebuilt[cell].extend(new_lines[j1:j2])
        changed.add(cell)
    return {cell: "\n".join(rebuilt[cell]) for cell in sorted(changed)}


def dump_notebook(notebook: dict[str, Any], text: str, data: bytes) -> bytes:
    """JSON in the file's own layout: its indentation (Jupyter writes 1), ASCII escaping or
    not, and final newline."""
    match = re.search(r"\n( +)\"", text)
    indent = len(match.group(1)) if match else 1
    ascii_only = not re.search(r"[^\x00-\x7f]", text) and "\\u" in text
    out = json.dumps(notebook, indent=indent, ensure_ascii=ascii_only)
    if text.endswith("\n"):
        out += "\n"
    prefix = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    return prefix + out.encode("utf-8")


def notebook_findings(data: bytes, name: str, config: Config) -> list[Diagnostic]:
    """The notebook's findings in cell coordinates, as `evallint` reports them."""
    return lint_bytes(data, name, config)


def fix_notebook_file(
    path: Path, config: Config, *, write: bool
) -> tuple[str, str, list[Diagnostic], list[Diagnostic], str]:
    """(old text, new text, fixed, remaining, error) for a notebook file."""
    from evallint.engine.fixes import _save

    name = str(path)
    try:
        data = path.read_bytes()
        old = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return "", "", [], notebook_findings(b"", name, config), ""
    error: Optional[str] = None
    try:
        new_data, fixed = fix_notebook(data, name, config)
    except (NotebookError, NotebookFixError, ValueError, KeyError, TypeError) as exc:
        new_data, fixed, error = data, [], f"not fixed: {exc}"
    new = new_data.decode("utf-8-sig")
    if write and new_data != data:
        saved = _save(path, data, new)
        if saved:
            new_data, fixed, new, error = data, [], old, saved
    return old, new, fixed, notebook_findings(new_data, name, config), error or ""
