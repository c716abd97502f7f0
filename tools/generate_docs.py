"""Regenerate the README rules table and docs/rules.md from the rule classes."""

from __future__ import annotations

from pathlib import Path

from evallint.docs import replace_table, rules_reference

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    readme = ROOT / "README.md"
    readme.write_text(replace_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    (ROOT / "docs" / "rules.md").write_text(rules_reference(), encoding="utf-8")


if __name__ == "__main__":
    main()
