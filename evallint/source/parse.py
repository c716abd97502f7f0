"""The only caller of `libcst.parse_module`: source text to a tree, or a reason it failed."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import libcst as cst


@dataclass(frozen=True)
class ParseFailure:
    """Why a file could not be parsed, with the 1-based position LibCST reported."""

    reason: str
    line: int = 1
    column: int = 1


def parse_module(source: str) -> cst.Module | ParseFailure:
    """Parse once. The collector is paused: LibCST allocates millions of small objects
    and a cyclic GC pass in the middle buys nothing (measured ~25% of parse time)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        return ParseFailure(exc.message.splitlines()[0] if exc.message else "syntax error", exc.raw_line, exc.raw_column + 1)
    except RecursionError:
        return ParseFailure("nesting too deep to analyse")
    except (ValueError, MemoryError) as exc:
        return ParseFailure(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    finally:
        if gc_was_enabled:
            gc.enable()
