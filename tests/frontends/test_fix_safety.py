"""`--fix` is proven safe before it writes (issue 19, item 1): fixes keep each line's own
indentation (form feeds, tabs) and never touch string contents; a result that does not
compile, or whose findings differ from what the fixes claim, is not written and says why;
writing keeps mode, owner, extended attributes and hard links, refuses read-only files
unless forced, and cleans up after a killed run."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from evallint.cli import main
from evallint.diagnostics import Diagnostic, Edit, Fix
from evallint.engine import fixes
from evallint.engine.fixes import compile_error, fix_paths, fix_source
from evallint.engine.run import lint_source
from evallint.source.text import split_lines

GNU_STYLE = (
    "import torch\n"
    "import torch.nn as nn\n"
    "\n"
    "\n"
    "def main(val_loader):\n"
    "    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))\n"
    "\f    for x, y in val_loader:\n"
    "        out = model(x)\n"
    "    return out\n"
    "\n"
    "\f\n"
    "main([])\n"
)

STRING_IN_BLOCK = (
    "import torch\n"
    "import torch.nn as nn\n"
    "\n"
    "model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))\n"
    "model.eval()\n"
    "for x, y in val_loader:\n"
    "    out = model(x)\n"
    '    print("""report:\n'
    "  loss    {}\n"
    '""".format(out), f"""\n'
    "    {out!r}\n"
    '  """, "a\\\n'
    '    b")\n'
)


def test_a_form_feed_in_indentation_keeps_the_fix_inside_the_function() -> None:
    """The issue's reproduction: the `with` went to column 0 and took the loop and the
    `return` out of the function, and the output said "Fixed 2 findings"."""
    result = fix_source(GNU_STYLE, "gnu.py")
    assert [d.code for d in result.fixed] == ["EVL001", "EVL002"]
    assert compile_error(result.new_source) == ""
    lines = split_lines(result.new_source)  # str.splitlines would split at form feeds
    header = next(line for line in lines if "with torch.no_grad():" in line)
    assert header == "\f    with torch.no_grad():\n"  # the page break stays, before the header
    assert "        for x, y in val_loader:\n" in lines
    assert "    return out\n" in lines and "\f\n" in lines
    assert fix_source(result.new_source, "gnu.py").new_source == result.new_source


def test_tabs_and_form_feeds_between_tabs_are_kept() -> None:
    source = GNU_STYLE.replace("    ", "\t").replace("\f\t", "\t\f\t")
    result = fix_source(source, "tabs.py")
    assert result.fixed and compile_error(result.new_source) == ""
    assert "\t\f\twith torch.no_grad():\n\t\t" in result.new_source
    assert "\t\tfor x, y in val_loader:\n\t\t\tout = model(x)\n\treturn out\n" in result.new_source


def test_multi_line_string_literals_in_a_wrapped_block_stay_byte_identical() -> None:
    result = fix_source(STRING_IN_BLOCK, "strings.py")
    assert [d.code for d in result.fixed] == ["EVL002"]
    new = result.new_source
    for literal in ('"""report:\n  loss    {}\n"""', 'f"""\n    {out!r}\n  """', '"a\\\n    b"'):
        assert literal in STRING_IN_BLOCK and literal in new
    assert "with torch.no_grad():\n    for x, y in val_loader:\n        out = model(x)\n" in new
    assert compile_error(new) == ""


def _lint_with(fix: Fix):
    def lint(text: str, path: str, config: object = None, **_: object) -> list[Diagnostic]:
        found = lint_source(text, path)
        return [replace(d, fix=fix if d.code == "EVL002" else None) for d in found]

    return lint


def test_a_fix_that_parses_but_does_not_compile_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the form-feed bug produced: LibCST parses it, CPython does not compile it."""
    outside = Fix("dedent", (Edit(7, 1, 7, 2, "with torch.no_grad():\n"),))
    monkeypatch.setattr(fixes, "lint_source", _lint_with(outside))
    result = fix_source(GNU_STYLE, "gnu.py")
    assert result.new_source == GNU_STYLE and result.fixed == []
    [(finding, reason)] = result.unfixed
    assert finding.code == "EVL002"
    assert reason == "the fixed file would not compile: 'return' outside function at line 10"
    target = tmp_path / "gnu.py"
    target.write_text(GNU_STYLE, encoding="utf-8")
    assert main(["--fix", "--no-cache", str(target)]) == 1
    assert target.read_text(encoding="utf-8") == GNU_STYLE
    assert "EVL002 not fixed: the fixed file would not compile" in capsys.readouterr().err


def test_a_result_that_fails_the_final_proof_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final check re-lints from scratch: a result claiming a fix that re-linting does
    not confirm (here: a 'fixed' text that still has the finding) is not written."""
    target = tmp_path / "gnu.py"
    target.write_text(GNU_STYLE, encoding="utf-8")
    honest = fix_source(GNU_STYLE, str(target))
    lying = replace(honest, new_source=GNU_STYLE + "\n# changed\n")
    monkeypatch.setattr(fixes, "fix_source", lambda *args, **kwargs: lying)
    [result] = fix_paths([target], write=True)
    assert target.read_text(encoding="utf-8") == GNU_STYLE
    assert result.error == (
        "not written: re-linting the fixed file does not give the findings the fixes left"
    )
    assert (result.fixed, sorted(d.code for d in result.remaining)) == ([], ["EVL001", "EVL002"])


def test_an_original_that_does_not_compile_is_not_fixed() -> None:
    source = GNU_STYLE + "nonlocal x\n"
    result = fix_source(source, "bad.py")
    assert result.new_source == source and result.unfixed
    assert all("does not compile with Python" in reason for _, reason in result.unfixed)


# writing -----------------------------------------------------------------------------------


def test_hard_links_owner_xattrs_and_mode_are_kept(tmp_path: Path) -> None:
    target, other = tmp_path / "gnu.py", tmp_path / "link.py"
    target.write_text(GNU_STYLE, encoding="utf-8")
    os.link(target, other)
    target.chmod(0o640)
    os.setxattr(target, "user.evallint-test", b"kept")
    inode = target.stat().st_ino
    [result] = fix_paths([target], write=True)
    assert result.error == "" and result.fixed
    assert other.read_text(encoding="utf-8") == result.new and target.stat().st_ino == inode
    assert os.getxattr(target, "user.evallint-test") == b"kept"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gnu.py", "link.py"]


def test_a_single_link_file_keeps_xattrs_and_owner_through_the_rename(tmp_path: Path) -> None:
    target = tmp_path / "gnu.py"
    target.write_text(GNU_STYLE, encoding="utf-8")
    os.setxattr(target, "user.evallint-test", b"kept")
    owner = (12345, 23456) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(target, *owner)
    [result] = fix_paths([target], write=True)
    assert result.error == "" and target.read_text(encoding="utf-8") == result.new
    assert os.getxattr(target, "user.evallint-test") == b"kept"
    assert (target.stat().st_uid, target.stat().st_gid) == owner


def test_a_read_only_file_is_refused_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "gnu.py"
    target.write_text(GNU_STYLE, encoding="utf-8")
    target.chmod(0o444)
    [refused] = fix_paths([target], write=True)
    assert refused.error == "not written: the file is read-only (pass --force to fix it anyway)"
    assert target.read_text(encoding="utf-8") == GNU_STYLE and refused.fixed == []
    [forced] = fix_paths([target], write=True, force=True)
    assert forced.error == "" and target.read_text(encoding="utf-8") == forced.new != GNU_STYLE
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gnu.py"]


def test_the_cli_refuses_a_read_only_file_and_force_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "gnu.py"
    target.write_text(GNU_STYLE, encoding="utf-8")
    target.chmod(0o444)
    main(["--fix", "--no-cache", str(target)])
    assert "read-only" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == GNU_STYLE
    assert main(["--fix", "--force", "--no-cache", str(target)]) == 0
    assert "with torch.no_grad():" in target.read_text(encoding="utf-8")


_KILLED_RUN = """\
import os, signal, sys
import evallint.engine.safe_write as safe_write
from evallint.cli import main
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(safe_write.os if sys.argv[1] == "rename" else safe_write, sys.argv[2], killed)
main(["--fix", "--no-cache", sys.argv[3]])
"""


@pytest.mark.parametrize(
    ("path", "patched"), [("rename", "replace"), ("in-place", "_overwrite")], ids=str
)
def test_a_run_killed_while_writing_is_cleaned_up_by_the_next(
    tmp_path: Path, path: str, patched: str
) -> None:
    target = tmp_path / "gnu.py"
    target.write_text(GNU_STYLE, encoding="utf-8")
    if path == "in-place":
        os.link(target, tmp_path / "link.py")
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, path, patched, str(target)], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".evallint-fix")]
    assert len(left) == 1 and left[0].startswith(".gnu.py.")
    if path == "in-place":  # killed after truncating: the next run finishes the write
        target.write_bytes(b"")
    [result] = fix_paths([target], write=True)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".evallint-fix")]
    assert any(left[0] in note for note in result.notes)
    fixed = target.read_text(encoding="utf-8")
    assert "with torch.no_grad():" in fixed and compile_error(fixed) == ""
    assert lint_source(fixed, str(target)) == []
