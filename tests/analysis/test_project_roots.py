"""A file's project root is read from the file system once per lint of that file (its
functions each ask `callers_of`), and read again when the file is linted again: a README
created between two lints of an open document widens the search for callers."""

from __future__ import annotations

from pathlib import Path

from evallint.engine.run import new_project

HELPERS = "def evaluate(model, loader):\n    return [model(x) for x in loader]\n"
CALLER = "import torch\nfrom inner.lib.helpers import evaluate\n\nevaluate(model, loader)\n"


def test_root_found_once_per_lint_and_again_on_the_next(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    lib = outer / "inner" / "lib"
    lib.mkdir(parents=True)
    helpers = lib / "helpers.py"
    helpers.write_text(HELPERS, encoding="utf-8")
    caller = outer / "run.py"
    caller.write_text(CALLER, encoding="utf-8")
    project = new_project()
    project.remember(str(helpers), HELPERS)
    # no root marker above the helper: only its own directory is searched
    assert project.callers_of(str(helpers), "evaluate") == []
    (outer / "README.md").write_text("A project.\n", encoding="utf-8")
    assert project.callers_of(str(helpers), "evaluate") == []  # the same lint: root kept
    project.remember(str(helpers), HELPERS)  # the next lint of the file
    assert project.callers_of(str(helpers), "evaluate") == [caller.resolve()]


def test_readme_of_a_subfolder_does_not_cut_the_root_of_a_packaged_repository(
    tmp_path: Path,
) -> None:
    """`src/pkg/eval/README.md` documents a subfolder: the repository root two levels up,
    with its `pyproject.toml`, is the project root; a README alone still marks one."""
    from evallint.analysis.project_files import project_root

    repo = tmp_path / "repo"
    evaluation = repo / "src" / "pkg" / "eval"
    evaluation.mkdir(parents=True)
    (evaluation / "README.md").write_text("Evaluation.\n", encoding="utf-8")
    script = evaluation / "infer.py"
    script.write_text("import torch\n", encoding="utf-8")
    assert project_root(script) == evaluation  # no packaging file above: the README
    (repo / "pyproject.toml").write_text("[project]\nname = 'pkg'\n", encoding="utf-8")
    assert project_root(script) == repo
