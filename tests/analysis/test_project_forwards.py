"""`project_runs_forward` reads each project file once, whatever method names are asked,
and finds the classes of a file in `ast.walk`'s order while walking statements only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from evallint.analysis import project_forwards
from evallint.analysis.project_forwards import class_definitions, project_runs_forward
from evallint.engine.run import new_project

NESTED = """
class A: pass
if x:
    class B(A): pass
else:
    class C: pass
try:
    class D: pass
except E:
    class F:
        class G: pass
finally:
    class H: pass
match y:
    case 1:
        class I: pass
def f():
    class J: pass
    with g():
        class K: pass
    return lambda: [class_ for class_ in ()]
while True:
    for z in w:
        class L: pass
    else:
        class M: pass
"""

MODELS = """import torch.nn as nn


class Scorer(nn.Module):
    def score(self, x):
        return self(x)

    @torch.no_grad()
    def sample(self, x):
        return self(x)

    def forward(self, x):
        return x


class Reader:
    def read(self, x):
        return self(x)
"""


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the sample has a match statement")
def test_class_definitions_in_ast_walk_order() -> None:
    tree = ast.parse(NESTED)
    expected = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    assert [node.name for node in class_definitions(tree)] == [node.name for node in expected]
    assert len(expected) == 12


def test_each_file_read_once_for_all_methods(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "README.md").write_text("A project.\n", encoding="utf-8")
    (tmp_path / "models.py").write_text(MODELS, encoding="utf-8")
    script = tmp_path / "run.py"
    script.write_text("import torch\n", encoding="utf-8")
    parsed: list[str] = []
    real = project_forwards._forward_methods_of

    def counting(source: str, elsewhere: frozenset[str] = frozenset()) -> frozenset[str]:
        parsed.append(source)
        return real(source, elsewhere)

    monkeypatch.setattr(project_forwards, "_forward_methods_of", counting)
    project = new_project()
    answers = {
        method: project_runs_forward(project, str(script), method)
        for method in ("score", "sample", "read", "forward", "score")
    }
    assert answers == {"score": True, "sample": False, "read": False, "forward": False}
    assert len(parsed) == 1


def test_a_file_under_nested_roots_scanned_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "README.md").write_text("A project.\n", encoding="utf-8")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "setup.py").write_text("", encoding="utf-8")  # a root inside the root
    (package / "models.py").write_text(MODELS, encoding="utf-8")
    inner, outer = package / "run.py", tmp_path / "run.py"
    for script in (inner, outer):
        script.write_text("import torch\n", encoding="utf-8")
    scanned: list[str] = []
    real = project_forwards._METHOD

    class Counting:
        def findall(self, text: str) -> list[str]:
            scanned.append(text)
            return real.findall(text)

    monkeypatch.setattr(project_forwards, "_METHOD", Counting())
    project = new_project()
    assert project_runs_forward(project, str(inner), "score")
    assert project_runs_forward(project, str(outer), "score")
    assert scanned.count(MODELS) == 1


def test_subclass_of_a_module_class_of_another_file(tmp_path: Path) -> None:
    """`class TransE(Model)` with `Model(BaseModule)` and `BaseModule(nn.Module)` in another
    file: its `predict` runs its forward, though the base's `predict` only raises."""
    (tmp_path / "README.md").write_text("A project.\n", encoding="utf-8")
    (tmp_path / "base.py").write_text(
        "import torch.nn as nn\n\n\nclass BaseModule(nn.Module):\n    pass\n\n\n"
        "class Model(BaseModule):\n    def predict(self, x):\n        raise NotImplementedError\n",
        encoding="utf-8",
    )
    (tmp_path / "transe.py").write_text(
        "import torch\n\nfrom base import Model\n\n\nclass TransE(Model):\n    def predict(self, x):\n"
        "        return self.forward(x).numpy()\n\n    def forward(self, x):\n        return x\n",
        encoding="utf-8",
    )
    script = tmp_path / "run.py"
    script.write_text("import torch\n", encoding="utf-8")
    assert project_runs_forward(new_project(), str(script), "predict")
    assert project_forwards.project_module_class(new_project(), str(script), "TransE")
    assert not project_forwards.project_module_class(new_project(), str(script), "Reader")


LAYERED = """import torch.nn as nn


class Head(nn.Module):
    def forward(self, x):
        return self.fc(x)

    def score(self, x):
        return self(x)


class Head(Base):
    def rank(self, x):
        return self(x)


class Probe(Base):
    def predict(self, x):
        return self.forward(x)

    @torch.no_grad()
    def sample(self, x):
        return self(x)


class Plain:
    def run(self, x):
        return self(x)
"""


def test_one_parse_per_text_whatever_the_other_files_module_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The class table of a text is kept for the process: asked under roots whose other
    files make other classes module classes (`elsewhere`), a text is parsed again only when
    a class none of the earlier questions took for a module class now needs its forward
    methods; the answers are those of each question asked alone."""
    monkeypatch.setattr(project_forwards, "_ROWS", {})
    parsed: list[str] = []

    def counting(source: str) -> ast.Module:
        parsed.append(source)
        return ast.parse(source)  # not the shared trees: every parse asked is counted

    monkeypatch.setattr(project_forwards, "shared_python_tree", counting)
    forwards = project_forwards._forward_methods_of
    methods = project_forwards._module_methods_of
    assert forwards(LAYERED) == {"forward", "score"}  # the first `Head`; `Probe(Base)` unknown
    assert methods(LAYERED) == {"forward", "score"}
    assert project_forwards._delegating_forwards_of(LAYERED) == {
        "forward:fc"
    }  # method:attribute (fix-own)
    assert len(parsed) == 1
    assert methods(LAYERED, frozenset({"Base"})) == {"forward", "score", "predict", "sample"}
    assert len(parsed) == 1  # method names need no forward methods
    assert forwards(LAYERED, frozenset({"Base"})) == {"forward", "score", "predict"}
    assert len(parsed) == 2  # `Probe` is a module class now: its forward methods are read
    assert forwards(LAYERED, frozenset({"Base"})) == {"forward", "score", "predict"}
    assert forwards(LAYERED) == {"forward", "score"}
    assert len(parsed) == 2
    assert forwards("class Broken(nn.Module:\n") == frozenset()
    assert forwards("class Broken(nn.Module:\n", frozenset({"Base"})) == frozenset()
    assert len(parsed) == 3  # a text that does not parse is not parsed again
