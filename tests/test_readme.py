"""README promises that must stay true: the two Quickstart commands, the generated docs."""

from __future__ import annotations

import re
from pathlib import Path

from evallint.docs import TABLE_END, TABLE_START, rules_reference, rules_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_quickstart_has_exactly_two_commands() -> None:
    assert len(_quickstart_commands()) == 2


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = _quickstart_commands()[1].strip()
    assert test_command.replace(" -q", "") in ci.replace(" -q", "")
    assert test_command.index("torch==2.13.0") < test_command.index("pip install -q -e")


def test_rules_table_and_reference_are_generated() -> None:
    table = README.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    assert table.strip() == rules_table().strip()
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == rules_reference()
