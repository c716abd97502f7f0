"""Which names a project's code may bind as attributes, read from its text.

`self.register_model(...)` in a class whose base lives outside the project (a trainer
framework's, or nn.Module's own `add_module`) is a method that base defines, not a submodule
held in an attribute: nothing in the project ever binds the name. A submodule attribute is
bound somewhere: `self.X = ...`, `obj.X = ...`, a class attribute or dataclass field
(`X: nn.Module = ...`), a keyword argument stored by `**kwargs`, a property, or a name
given as a string (`setattr(self, "X", m)`, `self.add_module("X", m)`).

The scan is textual and generous: any identifier followed by `=` (an assignment, a keyword
argument, a default), by `,` after a dot (a tuple target), defined under a property decorator
or written as a string literal counts as bound. Reading too much only keeps a name a possible
module (what the analysis assumed before); a name counts as unbound only when it appears in
none of those shapes in any file of the project.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any, Callable, Iterable, Optional

_ASSIGNED = re.compile(r"\b([A-Za-z_]\w*)[ \t]*(?::[^=\n(]*)?(?:[-+*/@%&|^]|//|\*\*|>>|<<)?=(?!=)")
"""`x = ...`, `obj.x = ...`, `x: T = ...`, `obj.x += ...`, `f(x=...)`, `def f(x=...)`."""
_TUPLE_TARGET = re.compile(r"\.[ \t]*([A-Za-z_]\w*)[ \t]*,")
"""`self.a, self.b = ...` (and, harmlessly, `f(self.a, b)`)."""
_PROPERTY = re.compile(
    r"@[\w.]*property\b[^\n]*\n(?:[ \t]*@[^\n]*\n)*[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)"
)
"""`@property def X(self)`, `@functools.cached_property def X(self)`."""
_STRING = re.compile(r"""['"]([A-Za-z_]\w*)['"]""")
"""`setattr(self, "X", m)`, `self.add_module("X", m)`, `register_buffer("X", t)`."""


def bound_names(texts: Iterable[str]) -> frozenset[str]:
    """Every name the texts may bind as an attribute (see the module docstring)."""
    found: set[str] = set()
    for text in texts:
        for pattern in (_ASSIGNED, _TUPLE_TARGET, _PROPERTY, _STRING):
            found.update(pattern.findall(text))
    return frozenset(found)


_LINE_PATTERNS = (_ASSIGNED, _TUPLE_TARGET, _STRING)
"""The patterns that never match across a line break (`_PROPERTY` spans a decorator's lines)."""
_TOP_LEVEL_LINE = re.compile(r"\n(?=\S)")
"""The line breaks before a line that starts in column 0 (a top-level statement, most often)."""


def text_bound_names(
    text: str, kept_by_text: Optional[Callable[..., Any]] = None
) -> frozenset[str]:
    """`bound_names((text,))`. With a language server's store (`reuse.text_store()`), the
    text is cut at the lines that start in column 0 and each piece's names are kept by its
    text: the line patterns match within one line, so a text's matches are its lines'
    matches, and a typing edit scans only the piece it changed (`_PROPERTY`, which spans
    lines, is matched on the whole text: it needs an `@` to start)."""
    if kept_by_text is None:
        return bound_names((text,))
    found = set(_PROPERTY.findall(text))
    for piece in _TOP_LEVEL_LINE.split(text):
        found |= kept_by_text("bound_names.lines", piece, partial(_line_names, piece))
    return frozenset(found)


def _line_names(text: str) -> frozenset[str]:
    """The names the line patterns find in `text`."""
    found: set[str] = set()
    for pattern in _LINE_PATTERNS:
        found.update(pattern.findall(text))
    return frozenset(found)
