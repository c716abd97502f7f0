"""Inline suppressions: flake8's `# noqa` grammar plus `# evallint: ignore[...]`."""

from __future__ import annotations

import pytest

from evallint.diagnostics import Diagnostic
from evallint.source.directives import is_suppressed, suppressions


def diag(line: int, code: str) -> Diagnostic:
    return Diagnostic("f.py", line, 1, line, 2, code, "m")


def test_no_directive_means_empty_table() -> None:
    assert suppressions("x = 1\ny = 2\n") == {}


@pytest.mark.parametrize(
    ("comment", "codes"),
    [
        ("# noqa", None),
        ("# NOQA", None),
        ("# noqa: EVL001", frozenset({"EVL001"})),
        ("# NOQA:EVL001,EVL002", frozenset({"EVL001", "EVL002"})),
        ("# noqa: evl001 EVL002", frozenset({"EVL001", "EVL002"})),
        ("# noqa : EVL001", None),  # flake8 reads this as a blanket noqa
        ("# evallint: ignore", None),
        ("# evallint: ignore[EVL001]", frozenset({"EVL001"})),
        ("#evallint:ignore[EVL001, EVL003]", frozenset({"EVL001", "EVL003"})),
        ("# noqa: EVL001  # evallint: ignore[EVL002]", frozenset({"EVL001", "EVL002"})),
        ("# type: ignore  # noqa", None),
    ],
)
def test_comment_forms(comment: str, codes: frozenset[str] | None) -> None:
    assert suppressions(f"x = 1\ny = f(x)  {comment}\n") == {2: codes}


def test_directive_inside_a_string_does_not_count() -> None:
    source = 's = "# noqa"\nt = """\n# evallint: ignore\n"""\n'
    assert suppressions(source) == {}


def test_comment_after_multiline_string_covers_its_lines() -> None:
    source = 'x = f("""\na\nb\n""")  # noqa: EVL002\ny = 1\n'
    assert suppressions(source) == {line: frozenset({"EVL002"}) for line in (1, 2, 3, 4)}


def test_blanket_wins_over_codes_on_the_same_line() -> None:
    assert suppressions("x = 1  # noqa: EVL001 # evallint: ignore\n") == {1: None}


def test_untokenizable_source_falls_back_to_comments_by_line() -> None:
    source = 'def f(:\n    s = "unterminated  # noqa: EVL999\nx = 1  # noqa\n'
    assert suppressions(source) == {2: frozenset({"EVL999"}), 3: None}


def test_last_line_without_newline() -> None:
    assert suppressions("x = 1  # noqa") == {1: None}


def test_is_suppressed_by_code_prefix_or_blanket() -> None:
    table = suppressions("a  # noqa: EVL001\nb  # noqa: EVL0\nc  # noqa\nd\n")
    assert is_suppressed(diag(1, "EVL001"), table)
    assert not is_suppressed(diag(1, "EVL002"), table)
    assert is_suppressed(diag(2, "EVL003"), table)
    assert is_suppressed(diag(3, "EVL999"), table)
    assert not is_suppressed(diag(4, "EVL001"), table)
