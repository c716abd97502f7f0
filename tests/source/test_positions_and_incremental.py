"""Positions from one offset-recording code generation equal LibCST's PositionProvider, and
the editor's incremental parser gives the batch linter's findings while re-parsing only
what changed."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from evallint.analysis.walk import iter_nodes
from evallint.engine.run import lint_source
from evallint.source.incremental import IncrementalParser
from evallint.source.parse import ParseFailure, parse_module
from evallint.source.positions import NodePositions, _provider_spans
from tests.expectations import expected_findings

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures").rglob("*.py"))


def _one_per_code(fixtures: list[Path]) -> list[Path]:
    """The first fixture expecting each code, and the first clean one: every rule's
    findings, in a few files (the fast loop's sample; the full suite takes every fixture)."""
    chosen: dict[str, Path] = {}
    for fixture in fixtures:
        codes = {code for _, code in expected_findings(fixture)} or {"clean"}
        for code in sorted(codes):
            chosen.setdefault(code, fixture)
    return sorted(set(chosen.values()))


SAMPLE = _one_per_code(FIXTURES)

SCRIPT = """\
import torch  # header comment


def evaluate(model, loader):
    correct = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
    return correct


@torch.no_grad()
def evaluate_clean(model, loader):
    model.eval()
    return [model(x) for x, _ in loader]
# trailing comment
"""


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _sampled(fixtures: list[Path]) -> list[object]:
    """Every fixture, those outside the fast loop's sample marked `slow`."""
    return [
        pytest.param(fixture, marks=() if fixture in SAMPLE else pytest.mark.slow)
        for fixture in fixtures
    ]


FIXTURE_IDS = {"ids": lambda p: str(p.relative_to(p.parents[1]))}


def _positions_equal_provider(text: str) -> None:
    module = parse_module(text)  # the lint's parse (mixed tab indentation expanded)
    assert isinstance(module, cst.Module)
    expected = _provider_spans(module)
    positions = NodePositions(module)
    assert {node: positions.span(node) for node in expected} == expected


@pytest.mark.parametrize("fixture", FIXTURES, **FIXTURE_IDS)
def test_offset_positions_equal_position_provider(fixture: Path) -> None:
    _positions_equal_provider(_text(fixture))


@pytest.mark.parametrize("fixture", _sampled(FIXTURES), **FIXTURE_IDS)
def test_offset_positions_equal_position_provider_with_crlf_and_cr(fixture: Path) -> None:
    """The other line endings: the fast loop's sample (and the mixed-endings test below),
    every fixture in the full suite."""
    for ending in ("\r\n", "\r"):
        _positions_equal_provider(_text(fixture).replace("\n", ending))


def test_mixed_line_endings_and_tabs() -> None:
    module = cst.parse_module("x = (1,\r\n\t2)\ry = 3\nif x:\r\n\tz = [\n  4]\n")
    positions = NodePositions(module)
    assert {node: positions.span(node) for node in _provider_spans(module)} == _provider_spans(
        module
    )


def _same_spans(text: str) -> None:
    """Walk a full parse and the incremental parse side by side: same shapes, same spans."""
    full = parse_module(text)
    assert not isinstance(full, ParseFailure)
    parsed = IncrementalParser().parse(text)
    assert not isinstance(parsed, ParseFailure)
    full_positions = NodePositions(full)
    full_nodes = list(iter_nodes(full, enter_scopes=True))[1:]
    pieced_nodes = list(iter_nodes(parsed.module, enter_scopes=True))[1:]
    assert [type(n) for n in full_nodes] == [type(n) for n in pieced_nodes]
    for full_node, pieced_node in zip(full_nodes, pieced_nodes):
        assert parsed.positions.span(pieced_node) == full_positions.span(full_node), type(
            full_node
        ).__name__


@pytest.mark.parametrize("fixture", FIXTURES, **FIXTURE_IDS)
def test_incremental_parse_matches_full_parse(fixture: Path) -> None:
    _same_spans(_text(fixture))


@pytest.mark.parametrize("fixture", _sampled(FIXTURES), **FIXTURE_IDS)
def test_incremental_parse_matches_full_parse_with_crlf_and_cr(fixture: Path) -> None:
    for ending in ("\r\n", "\r"):
        _same_spans(_text(fixture).replace("\n", ending))


def test_an_edit_reparses_only_the_statement_it_touches() -> None:
    parser = IncrementalParser()
    parser.parse(SCRIPT)
    assert (
        parser.reparsed == 3
    )  # the import and the two functions (the last with the trailing comment)
    edited = SCRIPT.replace("correct = 0", "correct = 1")
    parsed = parser.parse(edited)
    assert parser.reparsed == 1
    assert not isinstance(parsed, ParseFailure)
    _same_spans(edited)
    assert parser.parse(edited) is not None and parser.reparsed == 0


def test_identical_statements_get_distinct_nodes() -> None:
    text = "import torch\n\nx = 1\n\nx = 1\n\nx = 1\n"
    parsed = IncrementalParser().parse(text)
    assert not isinstance(parsed, ParseFailure)
    assigns = [
        statement
        for statement in parsed.module.body
        if isinstance(statement, cst.SimpleStatementLine)
    ][1:]
    assert len({id(statement) for statement in assigns}) == 3
    assert [parsed.positions.span(statement)[0] for statement in assigns] == [3, 5, 7]  # type: ignore[index]


def test_syntax_error_gives_the_full_parsers_failure() -> None:
    broken = SCRIPT.replace("return correct", "return correct +")
    parser = IncrementalParser()
    parser.parse(SCRIPT)
    assert parser.parse(broken) == parse_module(broken)
    assert isinstance(parser.parse(broken), ParseFailure)
    assert not isinstance(parser.parse(SCRIPT), ParseFailure)


@pytest.mark.parametrize("fixture", _sampled(FIXTURES), **FIXTURE_IDS)
def test_incremental_lint_equals_batch_lint(fixture: Path) -> None:
    """Four full analyses per file: the fast loop takes one fixture per rule code (the tree
    equality above covers every fixture there), the full suite (`-m ""`) every fixture."""
    text = _text(fixture)
    parser = IncrementalParser()
    assert lint_source(text, str(fixture), parser=parser) == lint_source(text, str(fixture))
    edited = text + "\n\ndef appended():\n    return 1\n"
    assert lint_source(edited, str(fixture), parser=parser) == lint_source(edited, str(fixture))
    assert parser.reparsed <= 2


def _large_script(blocks: int) -> str:
    """Over 50,000 characters (the size where the full parse measures nesting)."""
    block = (
        "\n\ndef evaluate_{i}(model, loader):\n"
        "    correct = 0\n"
        "    for x, y in loader:\n"
        "        correct += (model(x).argmax(1) == y).sum().item()\n"
        "    return correct\n"
    )
    return "import torch\n" + "".join(block.format(i=i) for i in range(blocks))


def test_a_large_file_is_still_parsed_piece_by_piece() -> None:
    text = _large_script(400)
    assert len(text) > 50_000
    parser = IncrementalParser()
    parser.parse(text)
    edited = text.replace("correct = 0", "correct = 1", 1)
    parsed = parser.parse(edited)
    assert not isinstance(parsed, ParseFailure)
    assert parser.reparsed == 1
    _same_spans(edited)
    assert lint_source(edited, "large.py", parser=parser) == lint_source(edited, "large.py")


def test_a_statement_nested_too_deep_in_a_large_file_gets_the_full_parsers_failure() -> None:
    # left-associated on short lines: CPython parses it, and it nests 1,500 levels deep in
    # over 10,000 characters; the full parse measures it only in a file over 50,000
    deep = "x = (\n" + " +\n".join(["    aaaaaa"] * 1500) + "\n)\n"
    text = _large_script(400)
    parser = IncrementalParser()
    parser.parse(text)
    failure = parser.parse(text + deep)
    assert isinstance(failure, ParseFailure) and "nesting too deep" in failure.reason
    assert failure == parse_module(text + deep)
    small = "import torch\n\n" + deep
    assert not isinstance(parse_module(small), ParseFailure)
    assert not isinstance(IncrementalParser().parse(small), ParseFailure)
    assert not isinstance(parser.parse(text), ParseFailure)


def _spans_match_full_parse(parser: IncrementalParser, text: str) -> tuple[cst.Module, object]:
    full = parse_module(text)
    parsed = parser.parse(text)
    assert not isinstance(full, ParseFailure) and not isinstance(parsed, ParseFailure)
    full_positions = NodePositions(full)
    full_nodes = list(iter_nodes(full, enter_scopes=True))[1:]
    pieced_nodes = list(iter_nodes(parsed.module, enter_scopes=True))[1:]
    assert [type(n) for n in full_nodes] == [type(n) for n in pieced_nodes]
    for full_node, pieced_node in zip(full_nodes, pieced_nodes):
        assert parsed.positions.span(pieced_node) == full_positions.span(full_node)
    return parsed.module, parsed.positions


def test_positions_carried_over_edits_equal_a_full_parses() -> None:
    """Each text's node table starts from the previous text's (statements inserted, moved
    down by blank lines, edited, dropped, the same text again, enough edits for the dropped
    entries to outnumber the placed ones): every span is the full parse's, and a statement
    of the previous text that is no longer in it has none."""
    block = "def evaluate_{i}(model, loader):\n    correct = {k}\n    return correct\n"
    blocks = ["import torch\n", *(block.format(i=i, k=0) for i in range(8))]
    parser = IncrementalParser()
    module, positions = _spans_match_full_parse(parser, "\n".join(blocks))
    carried = 0
    for step in range(60):
        at = 1 + (step * 5) % (len(blocks) - 1)
        kind = step % 5
        if kind == 0:
            blocks.insert(at, f"x_{step} = {step}\n")
        elif kind == 1:
            blocks[at] = "\n" + blocks[at]
        elif kind == 2:
            blocks[at] = block.format(i=at, k=step)
        elif kind == 3 and len(blocks) > 4:
            del blocks[at]
        before = module
        previous_table = positions._owner  # type: ignore[attr-defined]
        module, positions = _spans_match_full_parse(parser, "\n".join(blocks))
        carried += positions._owner is previous_table  # type: ignore[attr-defined]
        dropped = [s for s in before.body if all(s is not t for t in module.body)]
        assert all(positions.span(statement) is None for statement in dropped)  # type: ignore[attr-defined]
    assert carried > 30  # the tables were handed on, not built again each time
