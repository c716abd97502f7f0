"""CPython's tree of an edited text, from the tree of the text before the edit.

A language server asks for CPython's tree of every text an editor sends (is it valid
Python, where do its top-level statements end, which methods of its classes run a forward),
and a keystroke changes one top-level statement. `ast.parse` only parses (scopes, `return`
outside a function and `__future__` placement are the compiler's checks), and a top-level
statement starts a logical line at depth 0 and indentation 0, so the tokens, and the tree,
of each statement do not depend on the others: the edited text's tree is the old tree's
statements before and after the edit, and the statements of the edited lines parsed alone.

Used only when that is plainly so, else the caller parses the whole text: the edit keeps
the number of lines (the statements after it keep their line numbers), the re-parsed lines
start after line 2 (a coding declaration) and are at most half the text, the text has no
carriage return (CPython counts one as a line break), and the re-parsed lines parse alone.
A text whose edited lines do not parse alone is parsed whole, so a syntax error is always
the whole parse's own error.
"""

from __future__ import annotations

import ast
from bisect import bisect_left
from typing import Optional


def edited_tree(old: str, old_tree: ast.Module, new: str) -> Optional[ast.Module]:
    """`ast.parse(new)`, equal in every field and position, from `old` and its tree; None
    when the whole text should be parsed (see the module docstring). The old tree's
    statements are shared with the new one: callers must not modify either."""
    if old == new or "\r" in old or "\r" in new or new.count("\n") != old.count("\n"):
        return None
    body = old_tree.body
    # cut after a statement only where the next starts on a later line (`a = 1; b = 2`
    # is one piece); the lines after the last statement are one more piece
    cuts = [
        statement.end_lineno or statement.lineno
        for statement, following in zip(body, body[1:])
        if following.lineno > (statement.end_lineno or statement.lineno)
    ]
    if body:
        cuts.append(body[-1].end_lineno or body[-1].lineno)
    head = common_prefix(old, new)
    tail = common_prefix(old[head:][::-1], new[head:][::-1])
    first = old.count("\n", 0, head) + 1  # the edited lines of `old`, 1-based, inclusive
    last = old.count("\n", 0, len(old) - tail) + 1
    lines = new.split("\n")
    start = bisect_left(cuts, first)  # the first piece holding an edited line
    stop = bisect_left(cuts, last)  # the last one (len(cuts): the lines after the last cut)
    begin = cuts[start - 1] if start > 0 else 0  # lines before the re-parsed ones
    end = cuts[stop] if stop < len(cuts) else len(lines)
    if begin < 2 or 2 * (end - begin) > len(lines):
        return None
    text = "\n".join(lines[begin:end]) + ("\n" if end < len(lines) else "")
    if "\\\n" in text:
        return None  # an explicit line joining: Python 3.9 places a statement after a lone
        # `\` line otherwise than in the whole text (or rejects its indentation there)
    try:
        piece = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the whole parse decides, with its own error
    ast.increment_lineno(piece, begin)
    before = [s for s in body if (s.end_lineno or s.lineno) <= begin]
    after = [s for s in body if (s.end_lineno or s.lineno) > end] if stop < len(cuts) else []
    return ast.Module(body=before + piece.body + after, type_ignores=[])


def common_prefix(a: str, b: str) -> int:
    """Length of the common start, compared in blocks so the unchanged text runs at C speed."""
    limit, head, step = min(len(a), len(b)), 0, 4096
    while head < limit:
        end = min(head + step, limit)
        if a[head:end] == b[head:end]:
            head = end
        elif step > 1:
            step //= 8
        else:
            break
    return head
