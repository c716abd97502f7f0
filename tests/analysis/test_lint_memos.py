"""A batch lint keeps the values of `reuse.memo` (pure functions of one node) for the lint's
duration (issue 20 item 2): computed once per node, never answered for another node, and
nothing kept after the lint."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from evallint.analysis import reuse, statement_shapes
from evallint.engine.run import lint_source

SCRIPT = textwrap.dedent(
    """
    import torch

    def run(model, train_loader, test_loader, opt):
        for x, y in train_loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        for x, y in test_loader:
            print(model(x).argmax(1).eq(y).sum().item())
        for x, y in test_loader:
            print(model(x).sum().item())
        for x, y in test_loader:
            print(model(x).mean().item())
    """
)


def _count_scope_scans(monkeypatch: pytest.MonkeyPatch) -> list[cst.CSTNode]:
    scanned: list[cst.CSTNode] = []
    original = statement_shapes.backward_roots

    def counting(block: cst.CSTNode) -> frozenset[tuple[str, int]]:
        scanned.append(block)
        return original(block)

    monkeypatch.setattr(statement_shapes, "backward_roots", counting)
    return scanned


def test_a_lint_scans_a_scope_for_backward_roots_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned = _count_scope_scans(monkeypatch)
    found = lint_source(SCRIPT, "<memo>")
    functions = [n for n in scanned if type(n) is cst.FunctionDef]
    assert len(functions) == 1, "each evaluation loop scanned the whole function again"
    assert {d.code for d in found} >= {"EVL001"}
    assert reuse._lint_memos is None, "values kept past the lint"


def test_findings_equal_without_the_memos(monkeypatch: pytest.MonkeyPatch) -> None:
    with_memos = lint_source(SCRIPT, "<memo>")

    @__import__("contextlib").contextmanager
    def nothing():  # type: ignore[no-untyped-def]
        yield

    monkeypatch.setattr(reuse, "lint_memos", nothing)
    assert lint_source(SCRIPT, "<memo>") == with_memos


def test_memo_answers_only_for_its_node() -> None:
    first, second = cst.parse_expression("a(b)"), cst.parse_expression("a(b)")
    computed: list[cst.CSTNode] = []

    def compute(node: cst.CSTNode) -> str:
        computed.append(node)
        return cst.Module([]).code_for_node(node)

    with reuse.lint_memos():
        assert reuse.memo("code", first, compute) == "a(b)"
        assert reuse.memo("code", first, compute) == "a(b)"
        assert reuse.memo("code", second, compute) == "a(b)"
        assert reuse.memo("other", first, compute) == "a(b)"
    assert computed == [first, second, first]
    reuse.memo("code", first, compute)
    assert computed == [first, second, first, first], "kept after the lint"
