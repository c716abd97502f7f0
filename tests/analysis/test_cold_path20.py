"""Cold-path cuts of session 20 (issue 20 item 2): each computes the same value from the same
inputs with less work, so each test checks the value and, where it can, the work."""

from __future__ import annotations

import ast
import os
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import libcst as cst
import pytest

from evallint.analysis import caller_aliases, file_shapes, project_forwards, reuse, walk
from evallint.analysis.file_analysis import FileAnalysis
from evallint.analysis.project import ProjectIndex
from evallint.analysis.repeated_input import _derivation
from evallint.analysis.scope import module_classes_of_text

NESTED = textwrap.dedent(
    """
    import os
    class A:
        import sys as s
        class B(A):
            def f(self):
                import json
                class C: pass
    try:
        from torch import nn
    except ImportError:
        class D: pass
    else:
        import numpy
    finally:
        pass
    if x:
        class E(nn.Module): pass
    for i in range(3):
        import re
    else:
        import math
    @MATCH@
    with open(p) as h:
        import gc
    def g():
        return [lambda: 1 for _ in ()]
    """
)
# `match` parses on Python 3.10+ only; on 3.9 two nested `if`s hold the same class at the
# same depth
MATCH_BLOCK = (
    "match x:\n    case 1:\n        import glob\n        class F: pass"
    if sys.version_info >= (3, 10)
    else "if y:\n    if z:\n        import glob\n        class F: pass"
)


def test_statement_walk_is_ast_walk_without_expressions() -> None:
    tree = ast.parse(NESTED.replace("@MATCH@", MATCH_BLOCK))
    match_case = getattr(ast, "match_case", ())
    holds = (ast.Module, ast.stmt, ast.excepthandler, *((match_case,) if match_case else ()))
    expected = [node for node in ast.walk(tree) if isinstance(node, holds)]
    assert list(walk.ast_statements(tree)) == expected
    classes = [c.name for c in project_forwards.class_definitions(tree)]
    assert classes == [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    assert classes == ["A", "B", "E", "D", "F", "C"]  # breadth first, not source order


def test_module_classes_of_text_sees_imports_at_any_depth() -> None:
    text = textwrap.dedent(
        """
        def setup():
            from torch import nn
        class Net(nn.Module): pass
        class Plain: pass
        """
    )
    assert module_classes_of_text(text) == {"Net": True, "Plain": None}


DELEGATES = textwrap.dedent(
    """
    import torch.nn as nn

    class Wrapper(nn.Module):
        def forward(self, x):
            return self.score(x, x)
        def score(self, a, b):
            return self.net(a) + self.net(b)
        def predict(self, x):
            return self.net(x) + self.head(x)

    class Registry:
        def a(self):
            return self.b() + self.c()
        def b(self):
            return self.c()
        def c(self):
            return self.store(1)
    """
)


def test_delegates_are_read_for_module_classes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[str] = []
    original = project_forwards._self_calls

    def counting(function: ast.AST) -> set[str]:
        walked.append(getattr(function, "name", "?"))
        return original(function)

    monkeypatch.setattr(project_forwards, "_self_calls", counting)
    project_forwards._ROWS.clear()
    rows = project_forwards._class_rows(DELEGATES)
    assert rows is not None
    by_name = {row.name: row for row in rows[0]}
    assert by_name["Wrapper"].delegates == frozenset(
        {"forward:net", "score:net", "predict:net+", "predict:head+"}
    )
    assert by_name["Registry"].delegates == frozenset()  # a plain class: never read
    assert sorted(walked) == ["forward", "predict", "score"]  # one walk per method
    assert project_forwards._delegating_forwards_of(DELEGATES) == by_name["Wrapper"].delegates
    project_forwards._ROWS.clear()


def _reader(path: Path) -> Optional[str]:
    return path.read_text(encoding="utf-8")


def test_relative_importer_follows_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two"):
        (tmp_path / name / "pkg").mkdir(parents=True)
        (tmp_path / name / "pkg" / "helpers.py").write_text(f"X = '{name}'\n", encoding="utf-8")
    project = ProjectIndex(_reader, analyse=FileAnalysis)
    monkeypatch.chdir(tmp_path / "one")
    first = project._locate(os.path.join("pkg", "train.py"), "helpers")
    assert first == tmp_path / "one" / "pkg" / "helpers.py"
    monkeypatch.chdir(tmp_path / "two")
    second = project._locate(os.path.join("pkg", "train.py"), "helpers")
    assert second == tmp_path / "two" / "pkg" / "helpers.py"


SELF_CALLS = textwrap.dedent(
    """
    class Base:
        def step(self, batch):
            return self.infer(batch) + other.score(batch)
        def infer(self, batch):
            raise NotImplementedError
    def helper(loader):
        def inner():
            return self.nested()
        return loader.fetch()
    """
)


def test_attribute_calls_read_once_per_module() -> None:
    module = cst.parse_module(SELF_CALLS)
    named, on_self = file_shapes._read_call_names(module)[2:]
    assert named == {"infer", "score", "nested", "fetch"}
    assert on_self == {"infer", "nested"}
    with reuse.lint_memos():
        assert file_shapes._call_names(module) is file_shapes._call_names(module)


STORED = textwrap.dedent(
    """
    class Trainer:
        def fit(self, model, other):
            self.model = model
            run(self.model)
            self.model = other
            run(model)
            self.best = other
            run(other)
            model = make()
            run(model)
            for batch in model.loader:
                run(batch)
    """
)


def _stored_before_by_scan(method, call, name):  # type: ignore[no-untyped-def]
    """Session 19's `_stored_before`: a scan of the whole method per call."""
    stored = None
    reached = False
    for node in walk.iter_nodes(method.node, enter_scopes=True):
        if node is call:
            reached = True
            continue
        bound = caller_aliases._bindings(node)
        if not bound:
            continue
        if reached:
            if name in bound or (stored is not None and stored in bound):
                return None
            continue
        if type(node) is cst.Assign and len(node.targets) == 1:
            target = caller_aliases._self_attribute(node.targets[0].target)
            value = node.value
            if target is not None and type(value) is cst.Name and value.value == name:
                stored = target
                continue
        if name in bound or (stored is not None and stored in bound):
            stored = None
    return stored if reached else None


def test_stored_before_answers_as_the_scan_did() -> None:
    module = cst.parse_module(STORED)
    method = module.body[0].body.body[0]  # type: ignore[attr-defined]
    info = SimpleNamespace(node=method)
    calls = [n for n in walk.iter_nodes(method, enter_scopes=True) if type(n) is cst.Call]
    calls.append(cst.parse_expression("run(model)"))  # not in the method: never reached
    answers = {}
    for call in calls:
        for name in ("model", "other", "batch", "best"):
            expected = _stored_before_by_scan(info, call, name)
            assert caller_aliases._stored_before(info, call, name) == expected  # type: ignore[arg-type]
            answers[cst.Module([]).code_for_node(call), name] = expected
    assert "self.best" in answers.values()  # the table is not all None: the test can fail


def test_loop_bindings_read_once_per_loop() -> None:
    loop = cst.parse_statement(
        textwrap.dedent(
            """
            for x in loader:
                h = model(x)
                out = head(h)
                outs.append(out)
                total += 1
            """
        )
    )
    value = cst.parse_expression("outs")
    with reuse.lint_memos():
        first = _derivation(loop, value)  # type: ignore[arg-type]
        second = _derivation(loop, value)  # type: ignore[arg-type]
    assert first is not None and second is not None
    assert [cst.Module([]).code_for_node(n) for n in first] == [
        "outs",
        "out",
        "head(h)",
        "model(x)",
    ]
    assert [cst.Module([]).code_for_node(n) for n in second] == [
        cst.Module([]).code_for_node(n) for n in first
    ]
    assert _derivation(loop, cst.parse_expression("total")) is None  # type: ignore[arg-type]
