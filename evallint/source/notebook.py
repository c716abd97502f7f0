"""Jupyter notebooks as one Python program: code cells in order, IPython syntax masked.

A notebook's cells share one namespace (a model built in cell 2 is evaluated in cell 9),
so the code cells are joined into a single virtual source and analysed like a script.
What IPython accepts but Python does not (magics, shell escapes, help) is replaced line
for line, so virtual line N always lies in exactly one cell and `locate` maps it back.

Cells are numbered 1-based among ALL cells (markdown and raw too), the position VS Code
and JupyterLab show; execution counts are not used, they change on every run.
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import json
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

import nbformat

from evallint.diagnostics import Diagnostic, Related


class NotebookError(ValueError):
    """The data is not a notebook nbformat can read; the message is one line."""


@dataclass(frozen=True)
class CellSpan:
    """Where one code cell lies in the virtual source."""

    index: int
    """1-based position among all cells of the notebook."""
    start: int
    """1-based virtual line of the cell's first line."""
    shifts: tuple[int, ...]
    """Per cell line, the columns removed by IPython's dedent of an indented cell (usually 0)."""

    @property
    def end(self) -> int:
        """1-based virtual line of the cell's last line."""
        return self.start + len(self.shifts) - 1


@dataclass(frozen=True)
class VirtualSource:
    """The program the analysis sees, and where each of its lines came from."""

    text: str
    cells: list[CellSpan]
    unparsable: tuple[tuple[int, int, str], ...] = ()
    """Code cells that are not Python on their own, as (virtual line, column, reason): Jupyter
    runs every cell apart, so one that fails to compile stops only itself. Their lines are
    masked as comments and the rest of the notebook is analysed without them."""

    def locate(self, line: int) -> tuple[int, int]:
        """(cell index, 1-based line in the cell) of a 1-based virtual line.

        A line past the end (a parse error at end of file) belongs to the last cell.
        """
        span, cell_line = self._locate(line)
        return span.index, cell_line

    def _locate(self, line: int) -> tuple[CellSpan, int]:
        if line < 1 or not self.cells:
            raise ValueError(f"line {line} is not in the notebook's code")
        span = self.cells[bisect.bisect_right([c.start for c in self.cells], line) - 1]
        return span, line - span.start + 1

    def _column(self, span: CellSpan, line: int, column: int) -> int:
        return column + (span.shifts[line - 1] if line <= len(span.shifts) else 0)


def read_notebook(data: bytes | str) -> VirtualSource:
    """Read .ipynb bytes or text into the virtual source of its code cells.

    A notebook that fails nbformat's schema but has cells with source text is still read
    (nbformat logs the schema error, Jupyter opens it with a warning), and so is one
    written without its `nbformat` version keys. A notebook whose kernel is not Python
    yields an empty program.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise NotebookError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    if '"nbformat"' not in data:
        unversioned = _unversioned_cells(data)
        if unversioned is not None:
            return join_cells(unversioned, skip_unparsable=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # MissingIDFieldWarning and the like: not the user's concern here
            notebook = nbformat.reads(data, as_version=4)
    except nbformat.reader.NotJSONError:
        raise NotebookError("not a notebook: invalid JSON") from None
    except (AttributeError, TypeError) as exc:  # nbformat walking JSON of another shape
        raise NotebookError(
            f"not a notebook: unexpected JSON structure ({_first_line(exc)})"
        ) from None
    except Exception as exc:  # ValidationError, NBFormatError: nbformat's messages are clear
        raise NotebookError(f"not a notebook: {_first_line(exc)}") from None
    if not _is_python(notebook):
        return VirtualSource("", [])
    cells: list[tuple[str, str]] = []
    for index, cell in enumerate(notebook.cells, start=1):
        source = cell.get("source")
        if not isinstance(source, str):
            raise NotebookError(f"not a notebook: cell {index} has no source text")
        cells.append((cell.get("cell_type", ""), source))
    return join_cells(cells, skip_unparsable=True)


def _unversioned_cells(data: str) -> Optional[list[tuple[str, str]]]:
    """The cells of a notebook written without its top-level `nbformat` keys (a generator
    that left them out): nbformat then takes it for a version-1 notebook and fails while
    upgrading it, but the JSON has the current shape, a `cells` list of objects with a
    `cell_type` and a `source` string or list of strings. Read that way rather than
    guessed to be version 1. None when the JSON is not of that shape (nbformat then says why)."""
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict) or "nbformat" in raw or not isinstance(raw.get("cells"), list):
        return None
    if not _is_python(raw):
        return []
    cells: list[tuple[str, str]] = []
    for cell in raw["cells"]:
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            return None
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(piece, str) for piece in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise NotebookError(f"not a notebook: cell {len(cells) + 1} has no source text")
        cells.append((cell["cell_type"], source))
    return cells


def join_cells(cells: Iterable[tuple[str, str]], *, skip_unparsable: bool = False) -> VirtualSource:
    """The virtual source of (cell type, source) pairs in notebook order: what
    `read_notebook` reads from a file and a language server gets as notebook cells.
    With `skip_unparsable`, a code cell that does not compile on its own (an exercise's
    `## TODO` placeholder) is masked and listed in `unparsable` instead of making the
    whole notebook unreadable."""
    pieces: list[str] = []
    spans: list[CellSpan] = []
    unparsable: list[tuple[int, int, str]] = []
    line = 1
    for index, (kind, source) in enumerate(cells, start=1):
        if kind != "code":
            continue
        lines, shifts = mask_cell(source)
        if skip_unparsable:
            failure = _syntax_error("\n".join(lines) + "\n")
            if failure is not None:
                at_line = min(max(failure[0], 1), len(lines))
                unparsable.append((line + at_line - 1, failure[1], failure[2]))
                lines = [_comment("", text) for text in lines]
        pieces.append("\n".join(lines) + "\n")
        spans.append(CellSpan(index, line, shifts))
        line += len(lines)
    return VirtualSource("".join(pieces), spans, tuple(unparsable))


def _syntax_error(text: str) -> Optional[tuple[int, int, str]]:
    """(line, column, reason) when the cell's text is not Python, else None."""
    try:
        compile(text, "<cell>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return exc.lineno or 1, max(exc.offset or 1, 1), exc.msg or "invalid syntax"
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, absurd nesting
        return 1, 1, _first_line(exc)
    return None


def map_diagnostic(d: Diagnostic, vs: VirtualSource) -> Diagnostic:
    """Rewrite a finding on the virtual source into cell-relative lines and columns.

    A fix is dropped: its edits address virtual lines, and applying them would mean
    rewriting cells inside the notebook's JSON, which nothing does yet.
    """
    span, line = vs._locate(d.line)
    end_span, end_line = vs._locate(d.end_line)
    column = vs._column(span, line, d.column)
    if end_span is span:
        end_column = vs._column(span, end_line, d.end_column)
    else:  # only a cell left unfinished (an open bracket) lets a node run into the next cell
        end_line = len(span.shifts)
        end_column = len(vs.text.split("\n")[span.end - 1]) + 1 + span.shifts[-1]
    related = tuple(_map_related(r, d.path, vs) for r in d.related)
    return dataclasses.replace(
        d,
        line=line,
        column=column,
        end_line=end_line,
        end_column=end_column,
        related=related,
        fix=None,
        cell=span.index,
    )


def map_other_notebooks(d: Diagnostic) -> Diagnostic:
    """A finding's related locations in another notebook of the project (a caller in one of
    its cells) moved to (cell, line) there, as that notebook's own findings are: the analysis
    sees a notebook as its virtual source, whose lines mean nothing to a reader."""
    related = []
    for r in d.related:
        if r.cell is None and r.path != d.path and r.path.endswith(".ipynb"):
            vs = _virtual_of(r.path)
            if vs is not None and 1 <= r.line <= vs.text.count("\n"):
                r = _map_related(r, r.path, vs)
        related.append(r)
    return dataclasses.replace(d, related=tuple(related))


def _virtual_of(path: str) -> Optional[VirtualSource]:
    """The virtual source of the notebook at `path` as the project index reads it, kept by
    the file's stamp; None when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    stamp = (path, status.st_mtime_ns, status.st_size)
    if stamp not in _VIRTUALS:
        try:
            with open(path, "rb") as stream:
                _VIRTUALS[stamp] = read_notebook(stream.read())
        except (OSError, NotebookError):
            _VIRTUALS[stamp] = None
        if len(_VIRTUALS) > 32:
            _VIRTUALS.pop(next(iter(_VIRTUALS)))
    return _VIRTUALS[stamp]


_VIRTUALS: dict[tuple[str, int, int], Optional[VirtualSource]] = {}


def _map_related(r: Related, path: str, vs: VirtualSource) -> Related:
    """Only locations in the notebook itself move; one in an imported module stays."""
    if r.path != path:
        return r
    span, line = vs._locate(r.line)
    return dataclasses.replace(
        r, line=line, column=vs._column(span, line, r.column), cell=span.index
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_python(notebook: Mapping[str, Any]) -> bool:
    """A kernel that names another language (R, Julia) has no Python to lint."""
    metadata = notebook.get("metadata", {})
    for key, field_name in (("language_info", "name"), ("kernelspec", "language")):
        value = metadata.get(key, {})
        language = value.get(field_name) if isinstance(value, dict) else None
        if isinstance(language, str) and language:
            return language.lower().startswith(("python", "ipython"))
    return True


# --- IPython syntax -----------------------------------------------------------------------

PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
"""Cell magics whose body runs as Python in the kernel. Any other cell magic (%%bash,
%%html, %%writefile, %%script, unknown ones) has a body that is not this program's Python."""

STATEMENT_MAGICS = {"time": "", "timeit": "nrp", "prun": "lsTD"}
"""Line magics that run the Python statement after them, with their options that take a value."""

AUTOMAGICS = frozenset(
    {
        "pip",
        "conda",
        "mamba",
        "cd",
        "matplotlib",
        "load_ext",
        "reload_ext",
        "autoreload",
        "env",
        "pwd",
        "ls",
        "pylab",
    }
)
"""Magics commonly typed without `%`; IPython runs them so only in a single-line cell."""

_NEWLINE = re.compile(r"\r\n|\r|\n")
_INDENT = re.compile(r"[ \t]+")
_ESCAPES = ("%", "!", "?", ",", ";", "/")
"""IPython's escape characters: never valid at the start of a Python logical line."""
_ASSIGNED_ESCAPE = re.compile(r"[\w.,\s\[\]():*]+=\s*[!%]")
"""`x = !ls`, `out = %sx ls`, `a, b = %time f()`: a target list, one `=`, an escape."""
_HELP_SUFFIX = re.compile(r"[A-Za-z_*][\w.*\[\]()'\"]*\?{1,2}")
"""`model?`, `nn.Module.eval??`: help on an object (Python has no `?` operator)."""
_STATEMENT_MAGIC = re.compile(r"%(time|timeit|prun)(?=\s)")
_OPTION = re.compile(r"\s+-([A-Za-z])(\S*)")
_WORD = re.compile(r"\s+\S+")
_COMPOUND = re.compile(
    r"(if|elif|else|for|while|with|try|except|finally|def|class|async|match)\b|@"
)


def mask_cell(source: str) -> tuple[list[str], tuple[int, ...]]:
    """The cell's lines as Python (same count, same columns where code is kept) and the
    per-line dedent IPython applies to a cell whose first line is indented."""
    lines = _NEWLINE.split(source)
    lines, shifts = _dedent(lines)
    first = next((n for n, text in enumerate(lines) if text.strip()), None)
    if first is not None and lines[first].startswith("%%"):
        if _magic_name(lines[first][2:]) not in PYTHON_CELL_MAGICS:
            return [_comment("", text) for text in lines], shifts
        lines[first] = _comment("", lines[first], statement=True)
    if first is not None and _is_automagic(lines, first):
        lines[first] = _comment("", lines[first], statement=True)
    return _mask_lines(lines), shifts


def _dedent(lines: list[str]) -> tuple[list[str], tuple[int, ...]]:
    """IPython's `leading_indent`: the first non-blank line's indentation is removed from
    every line that starts with it."""
    first = next((text for text in lines if text.strip()), "")
    match = _INDENT.match(first)
    if match is None:
        return lines, (0,) * len(lines)
    indent = match.group(0)
    shifts = tuple(len(indent) if text.startswith(indent) else 0 for text in lines)
    return [text[shift:] for text, shift in zip(lines, shifts)], shifts


def _is_automagic(lines: list[str], first: int) -> bool:
    """`pip install timm` alone in a cell: a known magic name that is not valid Python."""
    if any(text.strip() for text in lines[first + 1 :]):
        return False
    if _magic_name(lines[first]) not in AUTOMAGICS:
        return False
    try:
        ast.parse(lines[first])
    except SyntaxError:
        return True
    return False


def _mask_lines(lines: list[str]) -> list[str]:
    """Mask each escaped logical line, with the lines its open brackets or backslashes
    carry on (as IPython does), leaving string contents and comments alone."""
    scanner = _LineScanner()
    magic: Optional[_LineScanner] = None
    out: list[str] = []
    for text in lines:
        if magic is not None:
            out.append(_comment("", text))
            magic.feed(text)
        elif scanner.at_statement_start() and _is_escaped(text):
            stripped = text.lstrip()
            indent = text[: len(text) - len(stripped)]
            out.append(
                _keep_statement(indent, stripped) or _comment(indent, stripped, statement=True)
            )
            magic = _LineScanner()
            magic.feed(stripped)
        else:
            scanner.feed(text)
            out.append(text)
        if magic is not None and magic.at_statement_start():
            magic = None
    return out


def _is_escaped(text: str) -> bool:
    stripped = text.strip()
    if not stripped:
        return False
    return (
        stripped.startswith(_ESCAPES)
        or _ASSIGNED_ESCAPE.match(stripped) is not None
        or _HELP_SUFFIX.fullmatch(stripped) is not None
    )


def _keep_statement(indent: str, stripped: str) -> Optional[str]:
    """`%time y = model(x)` as `pass; y = model(x)`: the timed code is still analysed, at
    the same columns. None when the statement is not one simple line."""
    magic = _STATEMENT_MAGIC.match(stripped)
    if magic is None:
        return None
    valued = STATEMENT_MAGICS[magic.group(1)]
    at = magic.end()
    option = _OPTION.match(stripped, at)
    while magic.group(1) != "time" and option is not None:
        at = option.end()
        if option.group(1) in valued and not option.group(2):
            value = _WORD.match(stripped, at)
            at = value.end() if value else at
        option = _OPTION.match(stripped, at)
    statement = stripped[at:].lstrip()
    at = len(stripped) - len(statement)
    probe = _LineScanner()
    probe.feed(statement)
    if not statement or not probe.at_statement_start() or _COMPOUND.match(statement):
        return None
    return indent + "pass;" + " " * (at - len("pass;")) + statement


def _magic_name(text: str) -> str:
    match = re.match(r"\s*([A-Za-z_][\w.]*)", text)
    return match.group(1) if match else ""


def _comment(indent: str, text: str, *, statement: bool = False) -> str:
    """A masked line: `pass` keeps a magic that is a block's only statement valid."""
    if statement:
        return f"{indent}pass  # {text}"
    return f"{indent}# {text}" if text else ""


class _LineScanner:
    """Just enough of Python's tokenizer to know where logical lines start: open
    brackets, open strings and backslash continuations carry a statement onward."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: Optional[str] = None
        self.backslash = False

    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.backslash

    def feed(self, line: str) -> None:
        self.backslash = False
        position = 0
        while position < len(line):
            char = line[position]
            if self.quote is not None:
                if char == "\\":
                    position += 2
                    continue
                if line.startswith(self.quote, position):
                    position += len(self.quote)
                    self.quote = None
                    continue
            elif char == "#":
                break
            elif char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(self.depth - 1, 0)
            elif char in "\"'":
                triple = line[position : position + 3]
                self.quote = triple if triple in ('"""', "'''") else char
                position += len(self.quote)
                continue
            position += 1
        if line.endswith("\\"):
            self.backslash = True
        elif self.quote in ('"', "'"):
            self.quote = None  # an unterminated one-line string: the tokenizer's error, not ours
