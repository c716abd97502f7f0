"""A newcomer's first hour, automated: a fresh clone, a fresh venv, the README's commands as
written (issue 18). Marked `integration`: it installs the project with pip (from the
configured index) and takes a minute or two; `pytest -m integration tests/test_newcomer.py`.

Not covered here: the second Quickstart command (it is `.ci/run` itself) and editors' LSP
clients (tests/frontends/test_lsp.py drives the server over JSON-RPC).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
NOTEBOOK = ROOT / "tests" / "fixtures" / "notebooks" / "buggy_train_eval.ipynb"


def sh(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", **env)
    environment.pop("VIRTUAL_ENV", None)
    environment["PATH"] = os.pathsep.join(
        p for p in environment.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    target = tmp_path_factory.mktemp("newcomer") / "evallint"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def quickstart() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_quickstart_lint_command_as_written(clone: Path) -> None:
    command = quickstart()[0]
    result = sh(command, clone)
    assert result.returncode == 1, result.stdout + result.stderr  # the example has findings
    lines = result.stdout.splitlines()
    for code in ("EVL001", "EVL002", "EVL003"):
        assert any(f": {code} " in line for line in lines), result.stdout
    assert any(line.strip() == "^" or line.rstrip().endswith("^") for line in lines)


def test_install_from_a_clone_with_extras_then_flake8_sarif_and_notebook_fix(
    clone: Path, tmp_path: Path
) -> None:
    """`pip install -e ".[lsp]"` (the README's clone install; torch is left out to keep it
    light), then the flake8 plugin, SARIF against the official schema, --fix on a notebook."""
    venv = tmp_path / "venv"
    result = sh(
        f"{sys.executable} -m venv {venv} && . {venv}/bin/activate && "
        'pip install -q -e ".[lsp]" flake8 jsonschema',
        clone,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    activate = f". {venv}/bin/activate && "
    result = sh(activate + "flake8 --select EVL examples/", clone)
    assert result.returncode == 1 and "EVL001" in result.stdout, result.stdout + result.stderr
    result = sh(activate + "evallint --format sarif --output-file report.sarif examples/", clone)
    assert result.returncode == 1, result.stderr
    schema = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"
    result = sh(
        activate
        + "python -c 'import json, jsonschema, sys; "
        + "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))' "
        + f"report.sarif {schema}",
        clone,
    )
    assert result.returncode == 0, result.stderr
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / "train.ipynb")
    before = json.loads((work / "train.ipynb").read_text(encoding="utf-8"))
    result = sh(activate + "evallint --fix .", work)
    assert result.returncode == 0 and "0 remaining" in result.stdout, result.stdout
    after = json.loads((work / "train.ipynb").read_text(encoding="utf-8"))
    assert after["metadata"] == before["metadata"]
    assert after["cells"] != before["cells"]
    result = sh(activate + "evallint lsp --help && evallint --help", clone)
    assert result.returncode == 0 and "evallint lsp" in result.stdout


def test_pre_commit_snippet_with_a_frozen_commit(clone: Path, tmp_path: Path) -> None:
    """The README's snippet, with `repo:` pointing at the clone and `rev:` a commit (the
    `--freeze` form), which needs no tag."""
    pre_commit = Path(sys.executable).parent / "pre-commit"
    if not pre_commit.exists():
        pytest.skip("pre-commit is not installed")
    snippet = README.split("# .pre-commit-config.yaml\n", 1)[1].split("```", 1)[0]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.strip()
    config = re.sub(r"repo: \S+", f"repo: {clone}", snippet)
    config = re.sub(r"rev: \S+", f"rev: {head}", config)
    work = tmp_path / "project"
    work.mkdir()
    (work / ".pre-commit-config.yaml").write_text(config, encoding="utf-8")
    shutil.copy(ROOT / "examples" / "train.py", work / "train.py")
    (work / "pyproject.toml").write_text('[tool.evallint]\nextend-exclude = ["vendored.py"]\n')
    shutil.copy(ROOT / "examples" / "train.py", work / "vendored.py")
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "add", "."], cwd=work, check=True)
    result = sh(
        f"{pre_commit} run --all-files",
        work,
        PRE_COMMIT_HOME=str(tmp_path / "home"),
        PRE_COMMIT_COLOR="never",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "train.py:" in result.stdout and "EVL001" in result.stdout
    assert "vendored.py" not in result.stdout  # --force-exclude in the hook
