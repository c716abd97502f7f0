"""Autofix: edits land where they say, a fix is kept only when it provably helps, and files
are rewritten atomically in their own encoding, line endings and permissions.

Every fixture whose findings all carry fixes has its expected fixed text in
tests/fixtures/fixed/<same name>. After a deliberate change to a fix, regenerate them with
`python -m tests.frontends.test_fixes --regen` and review the diff by eye before committing.
"""

from __future__ import annotations

import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from evallint.diagnostics import Diagnostic, Edit, Fix
from evallint.engine import fixes
from evallint.engine.fixes import (
    apply_edits,
    fix_paths,
    fix_source,
    native_edits,
    split_lines,
    unified_diff,
)
from evallint.engine.run import lint_source
from evallint.source.parse import ParseFailure, parse_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXED = FIXTURES / "fixed"
SINGLE_FILES = sorted(FIXTURES.glob("*.py"))

BUGGY = """\
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
for x, y in val_loader:
    out = model(x)
"""

BUGGY_FIXED = """\
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
model.eval()
with torch.no_grad():
    for x, y in val_loader:
        out = model(x)
"""

NO_GRAD_ONLY = BUGGY.replace("for x", "with torch.no_grad():\n    for x").replace(
    "    out", "        out"
)
NO_GRAD_ONLY_FIXED = NO_GRAD_ONLY.replace("    for x", "    model.eval()\n    for x")


def fixable(path: Path) -> bool:
    found = lint_source(path.read_text(encoding="utf-8"), str(path), fixes=True)
    return bool(found) and all(d.fix is not None for d in found)


def findings(source: str, path: str) -> list[tuple[str, str, str]]:
    return sorted((d.code, d.subject, d.message) for d in lint_source(source, path))


# apply_edits -------------------------------------------------------------------------------


def test_insertion_replacement_and_deletion_in_any_order() -> None:
    source = "a = 1\nb = 2\nc = 3\n"
    edits = [Edit(3, 1, 3, 6, "c = 30"), Edit(1, 1, 1, 1, "# head\n"), Edit(2, 1, 3, 1, "")]
    assert apply_edits(source, edits) == "# head\na = 1\nc = 30\n"


def test_columns_count_code_points_and_end_of_line_is_len_plus_one() -> None:
    source = "s = '😀é'\nx = 1\n"
    assert apply_edits(source, [Edit(1, 9, 1, 9, "  # noqa")]) == "s = '😀é'  # noqa\nx = 1\n"
    assert apply_edits(source, [Edit(1, 6, 1, 8, "ok")]) == "s = 'ok'\nx = 1\n"


def test_crlf_and_lone_cr_lines_are_counted_like_libcst() -> None:
    source = "a = 1\r\nb = 2\rc = 3\n"
    assert (
        apply_edits(source, [Edit(2, 1, 2, 2, "B"), Edit(3, 1, 3, 1, "#\n")])
        == "a = 1\r\nB = 2\r#\nc = 3\n"
    )
    assert apply_edits(source, [Edit(1, 6, 1, 6, "0")]) == "a = 10\r\nb = 2\rc = 3\n"


def test_split_lines_breaks_only_where_python_does() -> None:
    assert split_lines("a\x0cb\r\nc\rd\u2028e") == ["a\x0cb\r\n", "c\r", "d\u2028e"]
    assert split_lines("x\n") == ["x\n"] and split_lines("") == []


def test_insertion_after_the_last_line_break_and_in_a_file_without_one() -> None:
    assert apply_edits("x = 1\n", [Edit(2, 1, 2, 1, "y = 2\n")]) == "x = 1\ny = 2\n"
    assert apply_edits("x = 1", [Edit(1, 6, 1, 6, "\ny = 2")]) == "x = 1\ny = 2"


def test_insertions_at_one_point_keep_their_order() -> None:
    assert (
        apply_edits("x\n", [Edit(1, 1, 1, 1, "a"), Edit(1, 1, 1, 1, "b"), Edit(1, 1, 1, 2, "X")])
        == "abX\n"
    )


@pytest.mark.parametrize(
    "edits",
    [
        [Edit(1, 1, 1, 4, "a"), Edit(1, 3, 1, 5, "b")],
        [Edit(1, 1, 2, 2, "a"), Edit(1, 5, 1, 5, "b")],
    ],
    ids=["replacements", "insertion-inside-replacement"],
)
def test_overlapping_edits_are_rejected(edits: list[Edit]) -> None:
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits("x = 1\ny = 2\n", edits)


@pytest.mark.parametrize(
    "edit",
    [
        Edit(0, 1, 0, 1, ""),
        Edit(4, 1, 4, 1, ""),
        Edit(1, 7, 1, 7, ""),
        Edit(1, 0, 1, 1, ""),
        Edit(1, 3, 1, 2, ""),
    ],
    ids=["line-0", "line-past-end", "column-past-eol", "column-0", "end-before-start"],
)
def test_positions_outside_the_text_are_rejected(edit: Edit) -> None:
    with pytest.raises(ValueError):
        apply_edits("x = 1\ny = 2\n", [edit])


def test_inserted_line_breaks_follow_the_file() -> None:
    edit = Edit(1, 1, 1, 1, "a\nb\n")
    assert native_edits("x\r\ny\r\n", [edit])[0].text == "a\r\nb\r\n"
    assert native_edits("x\ny\n", [edit])[0].text == "a\nb\n"


# fix_source --------------------------------------------------------------------------------


def test_fixes_both_findings_and_reports_them_at_their_original_place() -> None:
    result = fix_source(BUGGY, "t.py")
    assert result.new_source == BUGGY_FIXED
    assert sorted((d.line, d.code) for d in result.fixed) == [(6, "EVL001"), (6, "EVL002")]
    assert result.remaining == []
    assert fix_source(BUGGY_FIXED, "t.py").new_source == BUGGY_FIXED


def test_a_fix_that_adds_a_finding_elsewhere_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inserting `model.eval()` before the evaluation loop leaves the later training loop in
    eval mode (a new EVL003), so the fix must not be kept even though EVL001 goes away."""
    source = (
        "import torch\n"
        "import torch.nn as nn\n"
        "\n"
        "model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "with torch.no_grad():\n"
        "    for x, y in val_loader:\n"
        "        out = model(x)\n"
        "for x, y in train_loader:\n"
        "    optimizer.zero_grad()\n"
        "    loss = model(x).sum()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    eval_fix = Fix("Call `model.eval()` before evaluating", (Edit(6, 1, 6, 1, "model.eval()\n"),))

    def lint_with_handmade_fix(
        text: str, path: str, config: object, *, fixes: bool, project: object
    ) -> list[Diagnostic]:
        found = lint_source(text, path, None, fixes=False)
        return [replace(d, fix=eval_fix if d.code == "EVL001" else None) for d in found]

    monkeypatch.setattr(fixes, "lint_source", lint_with_handmade_fix)
    fixed_text = apply_edits(source, eval_fix.edits)
    assert [d.code for d in lint_source(source, "t.py")] == ["EVL001"]
    assert [d.code for d in lint_source(fixed_text, "t.py")] == ["EVL003"]
    result = fix_source(source, "t.py")
    assert (result.new_source, result.fixed, [d.code for d in result.remaining]) == (
        source,
        [],
        ["EVL001"],
    )


def test_a_fix_that_does_not_parse_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Fix("break it", (Edit(6, 1, 6, 1, "with torch.no_grad()\n"),))

    def lint_with_broken_fix(
        text: str, path: str, config: object, *, fixes: bool, project: object
    ) -> list[Diagnostic]:
        return [replace(d, fix=broken) for d in lint_source(text, path)]

    monkeypatch.setattr(fixes, "lint_source", lint_with_broken_fix)
    assert isinstance(parse_module(apply_edits(BUGGY, broken.edits)), ParseFailure)
    assert fix_source(BUGGY, "t.py").new_source == BUGGY


# fix_paths: writing ------------------------------------------------------------------------


def test_write_keeps_mode_crlf_and_latin1_cookie(tmp_path: Path) -> None:
    header = "# -*- coding: latin-1 -*-\n# caf\u00e9\n"
    target = tmp_path / "train.py"
    target.write_bytes((header + NO_GRAD_ONLY).replace("\n", "\r\n").encode("latin-1"))
    target.chmod(0o754)
    [result] = fix_paths([target], write=True)
    assert target.read_bytes() == (header + NO_GRAD_ONLY_FIXED).replace("\n", "\r\n").encode(
        "latin-1"
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o754
    assert (result.error, [d.code for d in result.fixed]) == ("", ["EVL001"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]


def test_wrapping_a_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    target.write_bytes(BUGGY.replace("\n", "\r\n").encode())
    fix_paths([target], write=True)
    assert target.read_bytes() == BUGGY_FIXED.replace("\n", "\r\n").encode()


def test_write_keeps_a_utf8_bom(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    target.write_bytes(b"\xef\xbb\xbf" + BUGGY.encode())
    fix_paths([target], write=True)
    assert target.read_bytes() == b"\xef\xbb\xbf" + BUGGY_FIXED.encode()


def test_nothing_is_written_without_write_or_without_a_change(tmp_path: Path) -> None:
    buggy, clean = tmp_path / "buggy.py", tmp_path / "clean.py"
    buggy.write_text(BUGGY, encoding="utf-8")
    clean.write_text(BUGGY_FIXED, encoding="utf-8")
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (buggy, clean)}
    results = {r.path.name: r for r in fix_paths([tmp_path], write=False)}
    assert buggy.read_text(encoding="utf-8") == BUGGY and results["buggy.py"].new == BUGGY_FIXED
    fix_paths([clean], write=True)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (buggy, clean)} == before
    assert not results["clean.py"].changed


def test_unified_diff_is_patch_applicable_text(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    target.write_text(BUGGY.rstrip("\n"), encoding="utf-8")
    [result] = fix_paths([target], write=False)
    diff = unified_diff(result)
    assert diff.startswith(f"--- {target}\n+++ {target}\n@@ ")
    assert "+model.eval()\n+with torch.no_grad():\n" in diff
    assert diff.endswith("\\ No newline at end of file\n")
    assert unified_diff(fix_paths([tmp_path / "missing.py"], write=False)[0]) == ""


def test_unreadable_file_is_reported_not_raised(tmp_path: Path) -> None:
    target = tmp_path / "bad.py"
    target.write_bytes(b"# -*- coding: utf-8 -*-\nx = '\xff'\n")
    [result] = fix_paths([target], write=True)
    assert (result.changed, [d.code for d in result.remaining]) == (False, ["EVL999"])


# every fixture -----------------------------------------------------------------------------


def test_every_expected_fixed_file_belongs_to_a_fixture() -> None:
    assert {p.name for p in FIXED.glob("*.py")} <= {p.name for p in SINGLE_FILES}


@pytest.mark.parametrize("fixture", SINGLE_FILES, ids=lambda p: p.name)
def test_fixing_a_fixture_matches_its_expected_file_proves_itself_and_is_idempotent(
    fixture: Path,
) -> None:
    """Fixing parses, removes what it claims, adds nothing and is idempotent; a fixable
    fixture (every finding carries a fix) gives its expected fixed file, or, without one,
    must be one whose fixes are all rejected. One fix per fixture, its findings linted once:
    a text left unchanged needs no second lint or second fix (both are deterministic)."""
    source = fixture.read_text(encoding="utf-8")
    result = fix_source(source, str(fixture))
    unchanged = result.new_source == source
    # Unchanged, fix_source hands back its own first lint (with fixes) as what remains.
    original = result.remaining if unchanged else lint_source(source, str(fixture), fixes=True)
    if original and all(d.fix is not None for d in original):
        expected = FIXED / fixture.name
        assert result.new_source == (
            expected.read_text(encoding="utf-8") if expected.exists() else source
        )
    before = sorted((d.code, d.subject, d.message) for d in original)
    claimed = sorted((d.code, d.subject, d.message) for d in result.fixed)
    remaining = sorted((d.code, d.subject, d.message) for d in result.remaining)
    if unchanged:
        assert claimed == []
        return
    assert not isinstance(parse_module(result.new_source), ParseFailure)
    after = findings(result.new_source, str(fixture))
    assert sorted(after + claimed) == before
    assert remaining == after
    assert fix_source(result.new_source, str(fixture)).new_source == result.new_source


def _regenerate() -> None:
    """Rewrite tests/fixtures/fixed/ from the current fixes (review the diff before committing)."""
    FIXED.mkdir(exist_ok=True)
    for stale in FIXED.glob("*.py"):
        stale.unlink()
    for fixture in SINGLE_FILES:
        if not fixable(fixture):
            continue
        source = fixture.read_text(encoding="utf-8")
        new = fix_source(source, str(fixture)).new_source
        if new != source:
            (FIXED / fixture.name).write_text(new, encoding="utf-8")
            print(f"wrote {FIXED / fixture.name}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit("usage: python -m tests.frontends.test_fixes --regen")
    _regenerate()
