"""Regular expressions that start at a word (`\\bdef\\s+NAME\\(`), searched fast over whole
project files.

CPython's `re` skips ahead to a pattern's literal first characters only when the pattern
starts with them: a leading `\\b` turns that off, and the engine tries the whole pattern at
every position of the text (measured on the 1,432 files of an installed torch, 40 MB:
0.83 s per search of every file, 0.03 s without the `\\b`). A `WordPattern` searches
without it and checks the boundary itself: the pattern starts with a word character, so
`\\b` before it means "at the start or after a non-word character". Whenever a match fails
that check, it answers with the `\\b` pattern itself, so every answer is that pattern's.
"""

from __future__ import annotations

import re
from typing import Any, Optional

_WORD = re.compile(r"\w")


class WordPattern:
    """`re.compile(r"\\b" + pattern)`, for `search` and `findall`, with the same answers."""

    __slots__ = ("_bounded", "_fast")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        if not _WORD.match(pattern[:1]) or pattern[1:2] in ("*", "?", "{") or "|" in pattern:
            # every match must begin with that character (`\w` is a class, `a?` optional)
            raise ValueError(f"not a pattern that starts with a word character: {pattern!r}")
        self._fast = re.compile(pattern, flags)
        self._bounded = re.compile(r"\b" + pattern, flags)

    @property
    def pattern(self) -> str:
        return self._bounded.pattern

    def search(self, text: str) -> Optional[re.Match[str]]:
        found = self._fast.search(text)
        if found is None or _at_word_start(text, found.start()):
            return found
        return self._bounded.search(text)

    def findall(self, text: str) -> list[Any]:
        found: list[Any] = []
        for match in self._fast.finditer(text):
            if not _at_word_start(text, match.start()):
                return self._bounded.findall(text)
            groups = match.groups("")
            found.append(match.group() if not groups else groups[0] if len(groups) == 1 else groups)
        return found


def _at_word_start(text: str, start: int) -> bool:
    """Whether `\\b` holds before the word character at `start`."""
    return start == 0 or _WORD.match(text, start - 1) is None
