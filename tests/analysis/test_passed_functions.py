"""Functions handed to a function of the same file that calls them (passed_functions.py)."""

from __future__ import annotations

from evallint.engine.run import lint_source

_HANDED_LAMBDA_RETURNING_A_NAME = """\
import torch


def transform(code, hook):
    hook(code, 1)
    return code


def debug_checks(code):
    transform(code, lambda x, y: None)
    transform(code, lambda x, y: code)
"""


def test_lambda_whose_body_is_a_bare_name_is_no_function_name() -> None:
    # `lambda x, y: None` handed to a function that calls it: its body names no function
    # of the file (this was a KeyError: an EVL999 internal error for the whole file)
    found = lint_source(_HANDED_LAMBDA_RETURNING_A_NAME, "handed.py")
    assert [f for f in found if f.code == "EVL999"] == []
