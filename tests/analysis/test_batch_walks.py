"""Cold-path cuts of session 17 (issue 20 item 2): a batch lint lists the nodes under a root
once, the statement-only walk keeps source order, and the eval-switch scan of
`eval_attributes` finds the nearest switch below an assignment in one pass."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from evallint.analysis import reuse, walk, walk_slices
from evallint.analysis.eval_attributes import _bindings
from evallint.analysis.lattice import Mode
from evallint.analysis.scope import FunctionInfo
from evallint.analysis.store_scope import first_assignments
from evallint.engine.run import lint_source

SCRIPT = textwrap.dedent(
    """
    import torch

    def run(model, train_loader, test_loader, opt):
        for x, y in train_loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        for x, y in test_loader:
            print(model(x).argmax(1).eq(y).sum().item())
    """
)


def test_a_batch_lint_walks_a_root_once(monkeypatch: pytest.MonkeyPatch) -> None:
    listed: list[int] = []

    class Counting(walk_slices.Listing):
        def __init__(self, root: cst.CSTNode) -> None:
            listed.append(id(root))
            super().__init__(root)

    monkeypatch.setattr(reuse, "Listing", Counting)
    found = lint_source(SCRIPT, "<walks>")
    assert {d.code for d in found} >= {"EVL001"}
    assert listed, "the batch lint did not list its walks"
    assert len(listed) == len(set(listed)), "a root was walked again in one lint"
    assert walk._store is None and reuse._lint_memos is None, "walks kept past the lint"


def test_a_batch_walk_equals_the_lazy_walk() -> None:
    module = cst.parse_module(SCRIPT)
    function = module.body[1]
    lazy = list(walk.iter_nodes(function))
    with reuse.lint_memos():
        assert list(walk.iter_nodes(function)) == lazy
        assert list(walk.iter_nodes(function, enter_scopes=True)) == list(walk._walk(function, 2))
        other = cst.parse_module(SCRIPT).body[1]  # equal text, another node
        assert walk.iter_nodes(other) is not walk.iter_nodes(function)


def test_a_walk_under_a_listed_root_is_its_slice() -> None:
    """After a function is listed, a walk of a node under it (with or without the scopes
    nested in it) is a slice of that listing, equal to a walk of its own."""
    module = cst.parse_module(
        textwrap.dedent(
            """
            def outer(a):
                for x in a:
                    def inner(y):
                        return lambda z: z + y
                    class Local:
                        def method(self):
                            return inner(x)
                    print(inner(x), Local().method())
                return [lambda: b for b in a]
            """
        )
    )
    function = module.body[0]
    nodes = list(walk._walk(module, 2))
    with reuse.lint_memos():
        list(walk.iter_nodes(function))
        for node in nodes:
            assert list(walk.iter_nodes(node)) == list(walk._walk(node, 1))
            assert list(walk.iter_nodes(node, enter_scopes=True)) == list(walk._walk(node, 2))


def test_small_statements_in_source_order_without_nested_scopes() -> None:
    module = cst.parse_module(
        textwrap.dedent(
            """
            for i in x:
                a = 1
                if c:
                    b = 2
                elif d:
                    e = 3
                else:
                    f = 4
                try:
                    g = 5
                except E:
                    h = 6
                finally:
                    k = 7
                def inner():
                    z = 0
                m = 8; n = 9
            else:
                o = 10
            """
        )
    )
    names = [
        s.targets[0].target.value  # type: ignore[attr-defined]
        for s in walk.small_statements(module.body[0])
        if type(s) is cst.Assign
    ]
    assert names == list("abefghkmno")
    loop = module.body[0]
    assert list(first_assignments(loop)) == list("abefghkmn")  # the loop's body, not its else


def _method(source: str) -> FunctionInfo:
    node = cst.parse_module(textwrap.dedent(source)).body[0]
    assert type(node) is cst.FunctionDef
    return FunctionInfo(qualname=node.name.value, node=node, owner_ref=None, params=("self",))


def test_an_assignment_takes_the_nearest_eval_switch_below_it() -> None:
    method = _method(
        """
        def freeze(self, model):
            self.ref = copy(model)
            self.other.eval()
            self.ref.eval()
            self.ref.eval().requires_grad_(False)
            self.late = model; self.late.eval()
            self.kept = model
        """
    )
    found = dict(_bindings(method))
    switch = method.node.body.body[2].body[0].value  # type: ignore[attr-defined]
    assert found["self.ref"] is not None and found["self.ref"].mode is Mode.EVAL
    assert found["self.ref"].site is switch, "not the nearest switch below the assignment"
    assert found["self.late"] is None, "a switch on the same line is not below it"
    assert found["self.kept"] is None


def test_a_server_store_that_outlives_a_batch_lint_leaves_no_stale_walks() -> None:
    """A fix thread's batch lint ends while the diagnostics thread's document store is
    active: the document store, ending, must not leave the batch lint's walks installed."""
    function = cst.parse_module(SCRIPT).body[1]
    document = reuse.Reuse()
    batch = reuse.lint_memos()
    batch.__enter__()
    server = document.active()
    server.__enter__()
    batch.__exit__(None, None, None)
    assert walk._store is document, "the batch lint removed the server's store"
    server.__exit__(None, None, None)
    stale = walk._store
    assert stale is None or not stale.open, "the ended batch store is still answering"
    assert list(walk.iter_nodes(function)) == list(walk._walk(function, 1))
    with reuse.lint_memos():
        assert walk._store is not stale and walk._store is not None and walk._store.open
    walk._store = None
