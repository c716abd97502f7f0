"""Bytes to text, the way Python itself decodes a source file (BOM, PEP 263 cookie)."""

from __future__ import annotations

import io
import re
import tokenize

_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
"""Python's own line breaks only (str.splitlines also splits on \x0c, \x1c, \u2028...)."""


def split_lines(text: str) -> list[str]:
    """Lines with their line breaks, as Python and LibCST count them; a text ending in a
    break has no empty last element."""
    return _LINES.findall(text)


class DecodeError(ValueError):
    """The bytes are not text in the encoding the file declares."""


def decode_source(data: bytes) -> str:
    """Decode like the interpreter: a UTF-8 BOM or a coding cookie wins, UTF-8 otherwise."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # an unknown or contradictory coding cookie
        raise DecodeError(str(exc)) from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise DecodeError(
            f"not valid {encoding}: {exc.reason if isinstance(exc, UnicodeDecodeError) else exc}"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text
