"""Issue 18/19: the flags ruff users expect, one path matcher, notebooks everywhere.

Each test reproduces a bug or a missing feature from the issue; they run the CLI in process
(`evallint.cli.main`) so the fast loop stays fast.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from evallint.cli import main
from evallint.engine.config import ConfigError, clear_cache, load_config

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "tests" / "fixtures" / "notebooks" / "buggy_train_eval.ipynb"

BUGGY = """\
import torch
import torch.nn as nn
model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
for x, y in val_loader:
    out = model(x)
"""


@pytest.fixture(autouse=True)
def _fresh_config_cache():  # type: ignore[no-untyped-def]
    clear_cache()
    yield
    clear_cache()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--no-cache", "--jobs", "1", *args])
    out, err = capsys.readouterr()
    return code, out, err


def codes(out: str) -> list[str]:
    return [line.split(": ")[1].split()[0] for line in out.splitlines() if ": EVL" in line]


# selection ---------------------------------------------------------------------------------


def test_select_never_hides_a_syntax_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.py").write_text("import torch\ndef f(:\n", encoding="utf-8")
    code, out, _ = run(capsys, "--select", "EVL001", str(tmp_path))
    assert code == 1 and "EVL999" in out


def test_unknown_code_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--select", "EVL042", str(ROOT / "examples")])
    assert exit_.value.code == 2
    assert "EVL042" in capsys.readouterr().err


def test_unknown_code_in_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.evallint]\nselect = ["EVL042"]\n')
    with pytest.raises(ConfigError, match="EVL042"):
        load_config(tmp_path)


def test_extend_select_merges_with_select(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text(BUGGY, encoding="utf-8")
    _, out, _ = run(capsys, "--select", "EVL001", "--extend-select", "EVL002", str(tmp_path))
    assert sorted(set(codes(out))) == ["EVL001", "EVL002"]
    _, out, _ = run(capsys, "--extend-ignore", "EVL002", str(tmp_path))
    assert set(codes(out)) == {"EVL001"}


def test_per_file_ignores_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Command-line patterns are relative to the working directory, as ruff's are."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "a.py").write_text(BUGGY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    _, out, _ = run(capsys, "--per-file-ignores", "scripts/*:EVL001", ".")
    assert set(codes(out)) == {"EVL002"}


def test_plot_and_fail_on_need_verify(capsys: pytest.CaptureFixture[str]) -> None:
    for flags in (["--plot", "out"], ["--fail-on", "confirmed"]):
        code, _, err = run(capsys, *flags, str(ROOT / "examples"))
        assert code == 2 and "needs --verify" in err and len(err.splitlines()) == 1


def test_explain_every_printable_code(capsys: pytest.CaptureFixture[str]) -> None:
    for code in ("EVL999", "EVL100", "EVL001"):
        assert main(["explain", code]) == 0
        assert f"# {code} " in capsys.readouterr().out


def test_help_names_lsp_and_verify(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "evallint lsp" in out and "evallint verify" in out


# suppressions ------------------------------------------------------------------------------


def test_unused_suppressions_are_evl100_when_selected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text(
        "import torch\nx = 1  # noqa: EVL001\ny = 2  # noqa: E501\nz = 3  # noqa\n",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 0, out  # opt-in, like RUF100
    code, out, _ = run(capsys, "--extend-select", "EVL100", str(tmp_path))
    assert codes(out) == ["EVL100"] and "a.py:2:8:" in out


def test_add_noqa_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a.py"
    target.write_text(BUGGY, encoding="utf-8")
    assert run(capsys, "--add-noqa", str(tmp_path))[0] == 0
    once = target.read_text(encoding="utf-8")
    assert "out = model(x)  # noqa: EVL001, EVL002" in once
    assert run(capsys, str(tmp_path))[0] == 0
    run(capsys, "--add-noqa", str(tmp_path))
    assert target.read_text(encoding="utf-8") == once


# output ------------------------------------------------------------------------------------


def test_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.py").write_text(BUGGY, encoding="utf-8")
    report = tmp_path / "out" / "report.json"
    code, out, _ = run(
        capsys, "--format", "json", "--output-file", str(report), str(tmp_path / "a.py")
    )
    assert code == 1 and out == ""
    assert {d["code"] for d in json.loads(report.read_text())} == {"EVL001", "EVL002"}


def test_color_flags_and_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.py").write_text(BUGGY, encoding="utf-8")
    assert "\x1b[" in run(capsys, "--color", "always", str(tmp_path))[1]
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in main(["--no-cache", str(tmp_path)]) * "" + capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    main(["--no-cache", str(tmp_path)])
    assert "\x1b[" not in capsys.readouterr().out


def test_stdin_with_filename(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BUGGY.encode())))
    code, out, _ = run(capsys, "-", "--stdin-filename", "pkg/train.py")
    assert code == 1 and "pkg/train.py:5:11: EVL001" in out


def test_stdin_fix_prints_the_fixed_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BUGGY.encode())))
    run(capsys, "--fix", "-", "--stdin-filename", "train.py")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BUGGY.encode())))
    out = capsys.readouterr().out if False else None  # noqa: F841
    code = main(["--fix", "-", "--stdin-filename", "train.py"])
    fixed = capsys.readouterr().out
    assert "model.eval()" in fixed and "torch.no_grad()" in fixed
    assert code == 0


def test_show_settings_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.evallint]\nignore = ["EVL002"]\n')
    (tmp_path / "a.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "b.py").write_text(BUGGY, encoding="utf-8")
    code, out, _ = run(capsys, "--show-settings", str(tmp_path))
    assert code == 0 and "ignore = ('EVL002',)" in out and "pyproject.toml" in out
    code, out, _ = run(capsys, "--show-files", str(tmp_path))
    assert out.splitlines() == [str(tmp_path / "a.py")]


def test_config_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.py").write_text(BUGGY, encoding="utf-8")
    settings = tmp_path / "evallint.toml"
    settings.write_text('ignore = ["EVL001"]\n')
    _, out, _ = run(capsys, "--config", str(settings), str(tmp_path))
    assert set(codes(out)) == {"EVL002"}


# paths -------------------------------------------------------------------------------------


def test_gitignore_is_respected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("generated/\n")
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "g.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / ".ignore").write_text("vendored.py\n")
    (tmp_path / "vendored.py").write_text(BUGGY, encoding="utf-8")
    assert run(capsys, str(tmp_path))[0] == 0
    _, out, _ = run(capsys, "--no-respect-gitignore", str(tmp_path))
    assert "g.py" in out and "vendored.py" in out


def test_ignore_files_nest_and_re_include(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """git's rules: the deepest ignore file with a matching pattern decides, `!` re-includes,
    .git/info/exclude counts, and .gitignore only inside a repository."""
    (tmp_path / ".git" / "info").mkdir(parents=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("scratch_*.py\n")
    (tmp_path / ".gitignore").write_text("gen_*.py\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / ".gitignore").write_text("!gen_keep.py\n")
    for name in ("scratch_a.py", "gen_a.py", "pkg/gen_b.py", "pkg/gen_keep.py", "pkg/real.py"):
        (tmp_path / name).write_text(BUGGY, encoding="utf-8")
    _, out, _ = run(capsys, "--show-files", str(tmp_path))
    listed = sorted(Path(line).relative_to(tmp_path).as_posix() for line in out.splitlines())
    assert listed == ["pkg/gen_keep.py", "pkg/real.py"]
    shutil.rmtree(tmp_path / ".git")
    _, out, _ = run(capsys, "--show-files", str(tmp_path))
    assert len(out.splitlines()) == 5  # not a repository: .gitignore is not read


def test_exclude_flags_and_force_exclude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "legacy.py").write_text(BUGGY, encoding="utf-8")
    assert run(capsys, "--extend-exclude", "legacy.py", str(tmp_path))[0] == 0
    named = str(tmp_path / "legacy.py")
    assert run(capsys, "--extend-exclude", "legacy.py", named)[0] == 1  # named: linted
    assert run(capsys, "--extend-exclude", "legacy.py", "--force-exclude", named)[0] == 0


def test_force_exclude_key_stops_fix_of_an_excluded_named_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.evallint]\nextend-exclude = ["third_party/"]\nforce-exclude = true\n'
    )
    (tmp_path / "third_party").mkdir()
    vendored = tmp_path / "third_party" / "v.py"
    vendored.write_text(BUGGY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "--fix", "third_party/v.py")[0] == 0
    assert vendored.read_text(encoding="utf-8") == BUGGY


def test_bad_glob_is_a_one_line_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in (
        ("extend-exclude", '["[z-a]"]'),
        ("per-file-ignores", '{ "[z-a].py" = ["EVL001"] }'),
    ):
        (tmp_path / "pyproject.toml").write_text(f"[tool.evallint]\n{key} = {value}\n")
        (tmp_path / "a.py").write_text("x = 1\n")
        clear_cache()
        code, _, err = run(capsys, str(tmp_path))
        assert code == 2, err
        assert len(err.splitlines()) == 1 and key in err and "pyproject.toml" in err


def test_default_excludes_only_below_the_named_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "build" / "repo"
    checkout.mkdir(parents=True)
    (checkout / "train.py").write_text(BUGGY, encoding="utf-8")
    (checkout / "build").mkdir()
    (checkout / "build" / "gen.py").write_text(BUGGY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "build/repo")
    assert code == 1 and "train.py" in out and "gen.py" not in out


def test_unparsable_files_are_reported_even_without_torch_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "py2.py").write_text('print "hello"\n')
    (tmp_path / "deep.py").write_text("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n")
    (tmp_path / "train.py").write_text(BUGGY, encoding="utf-8")
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 1
    assert [line for line in out.splitlines() if "EVL999" in line and "py2.py" in line]
    assert [line for line in out.splitlines() if "EVL999" in line and "deep.py" in line]
    assert "train.py:5:11: EVL001" in out


# notebooks ---------------------------------------------------------------------------------


def test_fix_writes_a_notebook_back_with_outputs_and_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nb.ipynb"
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    first = next(n for n, c in enumerate(notebook["cells"]) if c["cell_type"] == "code")
    notebook["cells"][first]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": ["hi\n"]}
    ]
    notebook["cells"][first].setdefault("metadata", {})["tags"] = ["keep"]
    notebook["cells"][first]["execution_count"] = 3
    target.write_text(json.dumps(notebook, indent=1) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "--fix", str(tmp_path))
    assert code == 0, out + err
    assert "Fixed 2 findings; 0 remaining." in out
    after = json.loads(target.read_text(encoding="utf-8"))
    assert after["metadata"] == notebook["metadata"]
    assert after["cells"][first] == notebook["cells"][first]
    assert "model.eval()\n" in after["cells"][5]["source"]
    assert run(capsys, str(tmp_path))[0] == 0


def test_fix_counts_a_notebooks_remaining_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A notebook whose fix is refused (it would rewrite a magic) keeps its findings, and
    the summary and exit status say so (it said "0 remaining" and exited 0)."""
    shutil.copy(NOTEBOOK.parent / "magics.ipynb", tmp_path / "magics.ipynb")
    code, out, err = run(capsys, "--fix", str(tmp_path))
    assert code == 1 and "Fixed 0 findings; 2 remaining." in out
    assert "magics.ipynb:cell 8:4:20: EVL001" in out and "IPython syntax" in err
    shutil.copy(NOTEBOOK, tmp_path / "nb.ipynb")
    code, out, _ = run(capsys, "--diff", str(tmp_path))
    assert code == 1 and '+    "model.eval()\\n",' in out


def test_show_source_in_a_notebook_cell(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--show-source", str(NOTEBOOK))
    assert "        pred = model(xb).squeeze(-1)\n               ^\n" in out


def test_sarif_notebook_results_carry_the_cell(capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    _, out, _ = run(capsys, "--format", "sarif", str(NOTEBOOK))
    log = json.loads(out)
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(log, schema)
    location = log["runs"][0]["results"][0]["locations"][0]
    assert location["logicalLocations"][0]["name"] == "cell 6"
    assert location["properties"]["cellLine"] == 3
    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        text = rule["help"]["text"]  # dedented on every Python (3.13 does it when compiling)
        assert "\n## Why is this bad?" in text and "\n    ## " not in text, rule["id"]


def test_pre_commit_hooks_cover_notebooks_and_force_exclude() -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert text.count("types_or: [python, pyi, jupyter]") == 2
    assert text.count("--force-exclude") == 2


# flake8 ------------------------------------------------------------------------------------


def test_flake8_plugin_honours_evallint_comments_and_config(tmp_path: Path) -> None:
    import ast

    from evallint.flake8_plugin import Checker

    source = BUGGY.replace("out = model(x)", "out = model(x)  # evallint: ignore[EVL001]")
    path = tmp_path / "a.py"
    path.write_text(source, encoding="utf-8")
    found = [
        m.split()[0]
        for _, _, m, _ in Checker(ast.parse(source), source.splitlines(True), str(path)).run()
    ]
    assert found == ["EVL002"]
    (tmp_path / "pyproject.toml").write_text('[tool.evallint]\nignore = ["EVL002"]\n')
    clear_cache()
    found = [m for _, _, m, _ in Checker(ast.parse(BUGGY), BUGGY.splitlines(True), str(path)).run()]
    assert [m.split()[0] for m in found] == ["EVL001"]


def test_rule_codes_constant_matches_the_registry() -> None:
    from evallint.diagnostics import RULE_CODES
    from evallint.rules import RULES

    assert tuple(rule.code for rule in RULES) == RULE_CODES


@pytest.mark.integration
def test_watch_lints_again_when_a_file_changes(tmp_path: Path) -> None:
    import subprocess
    import time

    target = tmp_path / "train.py"
    target.write_text("import torch\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "evallint", "--watch", "--no-cache", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while not any("Watching" in line for line in lines) and time.monotonic() < deadline:
            lines.append(process.stdout.readline())
        assert "All checks passed." in "".join(lines)
        target.write_text(BUGGY, encoding="utf-8")
        while not any(": EVL001 " in line for line in lines) and time.monotonic() < deadline:
            lines.append(process.stdout.readline())
        assert any(": EVL001 " in line for line in lines), "".join(lines)
    finally:
        process.terminate()
        process.wait(timeout=30)
