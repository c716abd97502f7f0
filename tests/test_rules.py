"""Each rule's documentation and examples: the examples are tests that pin (line, code)."""

from __future__ import annotations

import pytest

from evallint import lint_source
from evallint.rules import RULES
from evallint.rules.base import DOC_SECTIONS

CASES = [
    (rule, kind, index, example)
    for rule in RULES
    for kind, examples in (("valid", rule.VALID), ("invalid", rule.INVALID))
    for index, example in enumerate(examples)
]


@pytest.mark.parametrize(
    "rule,kind,index,example",
    CASES,
    ids=lambda v: (
        v.code
        if hasattr(v, "code") and isinstance(v.code, str) and v.code.startswith("EVL")
        else str(v)[:20]
    ),
)
def test_rule_example(rule, kind, index, example) -> None:
    found = {(d.line, d.code) for d in lint_source(example.source, "example.py")}
    expected = {(line, rule.code) for line in example.lines} | set(example.also)
    assert found == expected


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_page_has_every_section(rule) -> None:
    page = rule.documentation()
    positions = [page.find(section) for section in DOC_SECTIONS]
    assert all(p >= 0 for p in positions), [s for s, p in zip(DOC_SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)
    assert rule.VALID and rule.INVALID


def test_codes_and_names_are_unique() -> None:
    assert len({r.code for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)
