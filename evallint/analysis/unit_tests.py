"""Unit tests: functions that check what a module computes rather than evaluate it.

A function named as pytest collects tests (`test_*`) in a pytest file (`test_*.py`,
`*_test.py`, `conftest.py`) is one. So is a `test_*` function anywhere else whose own body
asserts (`assert torch.allclose(mine(x), reference(x))`), takes no parameters and runs no
module of the file's top level (a model the script trained): it builds what it checks,
compares outputs to fail loudly, runs once on a toy input, and reports no score; its
forwards are no evaluation, whatever its file is called. An evaluation named `test(...)` or `test_model(...)` scores a model
and prints or returns the score; it asserts nothing."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import libcst as cst

from evallint.analysis.walk import iter_nodes


def is_unit_test(
    in_pytest_file: bool,
    name: str,
    node: cst.FunctionDef,
    module_globals: Collection[str] = (),
) -> bool:
    """Whether function `name` (its definition `node`) is a unit test (see the module).
    `module_globals`: the module-level names of the file that hold modules."""
    if in_pytest_file:
        return name.startswith("test")
    return (
        name.startswith("test_")
        and not _has_parameters(node)
        and any(type(s) is cst.Assert for s in _own_small_statements(node.body))
        and not any(
            type(n) is cst.Name and n.value in module_globals for n in iter_nodes(node.body)
        )
    )


def _has_parameters(node: cst.FunctionDef) -> bool:
    params = node.params
    return bool(
        params.params
        or params.kwonly_params
        or params.posonly_params
        or isinstance(params.star_arg, cst.Param)
        or params.star_kwarg
    )


def _own_small_statements(block: cst.BaseSuite) -> Iterator[cst.BaseSmallStatement]:
    """The simple statements of a block, nested blocks included, nested functions and
    classes left out (their asserts are theirs)."""
    if type(block) is cst.SimpleStatementSuite:
        yield from block.body
    elif type(block) is cst.IndentedBlock:
        for statement in block.body:
            yield from _statements_of(statement)


def _statements_of(node: cst.CSTNode) -> Iterator[cst.BaseSmallStatement]:
    if type(node) is cst.SimpleStatementLine:
        yield from node.body
    elif type(node) not in (cst.FunctionDef, cst.ClassDef):
        for child in node.children:
            if isinstance(child, cst.BaseSuite):
                yield from _own_small_statements(child)
            elif isinstance(child, (cst.If, cst.Else, cst.ExceptHandler, cst.Finally)):
                yield from _statements_of(child)  # `elif`, `else`, `except`, `finally`
