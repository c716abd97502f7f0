"""Where the user's code called us: the first stack frames outside torch, evallint and the stdlib."""

from __future__ import annotations

import os
import sys
import sysconfig
from types import CodeType, FrameType
from typing import Optional

Location = tuple[str, int, int]
"""(absolute path, 1-based line, 1-based column)."""
Chain = tuple[Location, ...]
"""The innermost user frame first, then its callers (at most `DEPTH`)."""

DEPTH = 4


def _prefixes() -> tuple[str, ...]:
    found = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]  # evallint/
    torch = sys.modules.get("torch")
    torch_file: Optional[str] = getattr(torch, "__file__", None)
    if torch_file:
        found.append(os.path.dirname(os.path.abspath(torch_file)))
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            found.append(os.path.abspath(path))
    return tuple(p.rstrip(os.sep) + os.sep for p in found)


class FrameFinder:
    """Finds user frames; caches each code object's verdict and each instruction's column."""

    def __init__(self) -> None:
        self._prefixes = _prefixes()
        self._user: dict[CodeType, bool] = {}
        self._columns: dict[tuple[CodeType, int], tuple[int, int, int]] = {}
        self._paths: dict[str, str] = {}

    def _is_user(self, code: CodeType) -> bool:
        found = self._user.get(code)
        if found is None:
            name = code.co_filename
            found = not (
                name.startswith("<")
                or os.path.abspath(name).startswith(self._prefixes)
                or "/torch/" in name
            )
            self._user[code] = found
        return found

    def _location(self, frame: FrameType) -> Location:
        code = frame.f_code
        path = self._paths.get(code.co_filename)
        if path is None:
            path = self._paths[code.co_filename] = os.path.realpath(code.co_filename)
        key = (code, frame.f_lasti)
        position = self._columns.get(key)
        if position is None:
            position = (frame.f_lineno, 1, frame.f_lineno)
            if hasattr(code, "co_positions"):
                for index, (line, end, column, _) in enumerate(code.co_positions()):
                    if index == frame.f_lasti // 2:
                        if line is not None and column is not None:
                            position = (line, column + 1, end or line)
                        break
            self._columns[key] = position
        return (path, position[0], position[1])

    def chain(self, frame: Optional[FrameType]) -> Chain:
        found: list[Location] = []
        while frame is not None and len(found) < DEPTH:
            if self._is_user(frame.f_code):
                found.append(self._location(frame))
            frame = frame.f_back
        return tuple(found)
