"""The lean walks and per-node memos the cold path relies on (issue 20 item 2): each must
find exactly what LibCST's generic (and much slower) traversal finds, and a memo must compute
once per node and never answer for another node."""

from __future__ import annotations

import textwrap

import libcst as cst

from evallint.analysis.provenance import _calls_by_grad, may_turn_grad_off
from evallint.analysis.symbols import collect_imports
from evallint.analysis.walk import NodeMemo, returns_of


def _generic_returns(function: cst.FunctionDef) -> list[cst.Return]:
    """The reference: every `return` under the body through `.children` (the generic walk
    that cost 11 s per 40 torch files), stopping at nested scopes."""
    found: list[cst.Return] = []
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if type(node) is cst.Return:
            found.append(node)
        elif type(node) not in (cst.FunctionDef, cst.ClassDef, cst.Lambda):
            stack.extend(node.children)
    return found


RETURNS = textwrap.dedent(
    """
    def f(x, flag):
        if flag:
            return x
        elif x is None:
            for i in range(3):
                if i: return i
            else:
                return -1
        else:
            while x:
                try:
                    return x.pop()
                except ValueError:
                    return None
                else:
                    return 3
                finally:
                    x = 0
            try:
                pass
            except* TypeError:
                return 4
        with open(x) as handle: return handle
        match x:
            case [a]:
                return a
            case _:
                pass
        def inner():
            return 5
        class K:
            def m(self):
                return 6
        g = lambda: 7
        return (yield x)
    def one(): return 1
    def none(): pass
    """
)


def test_returns_of_finds_what_the_generic_walk_finds() -> None:
    module = cst.parse_module(RETURNS)
    counts = {}
    for function in module.body:
        assert isinstance(function, cst.FunctionDef)
        lean = returns_of(function)
        assert {id(r) for r in lean} == {id(r) for r in _generic_returns(function)}
        counts[function.name.value] = len(lean)
    # f: x, i, -1, pop, None, 3, 4, handle, a, yield (inner/K.m/lambda are other scopes)
    assert counts == {"f": 10, "one": 1, "none": 0}


def test_node_memo_computes_once_per_node_and_keys_by_identity() -> None:
    module = cst.parse_module("def a(): return 1\ndef b(): return 1\n")
    first, second = module.body
    calls: list[cst.CSTNode] = []

    def compute(node: cst.CSTNode) -> int:
        calls.append(node)
        return len(calls)

    memo: NodeMemo[int] = NodeMemo()
    assert memo.get(first, compute) == 1
    assert memo.get(first, compute) == 1
    # an equal-looking node is another node: computed for itself
    assert first.deep_equals(second.with_changes(name=first.name))
    assert memo.get(second, compute) == 2
    assert calls == [first, second] and len(memo) == 2


def test_node_memo_does_not_answer_for_a_node_that_reuses_a_freed_id() -> None:
    memo: NodeMemo[str] = NodeMemo()
    node = cst.Name("x")
    memo.get(node, lambda n: "old")
    # simulate an id reused by a new object: the entry holds another node
    other = cst.Name("y")
    memo._entries[id(other)] = (node, "old")
    assert memo.get(other, lambda n: "new") == "new"


CALLS = textwrap.dedent(
    """
    import torch
    from torch import no_grad as ng

    def helper(x):
        return x

    def evaluate(model, x):
        with torch.no_grad():
            helper(x)
            with torch.enable_grad():
                helper(x)
        with ng():
            other(helper)
        return [helper(v) for v in x] + list(map(lambda v: helper(v), x))

    @torch.no_grad()
    def decorated(self):
        self.helper(1)
        other(1)

    class K:
        def m(self):
            with torch.inference_mode():
                self.helper(default=helper(2))

    helper(3)
    """
)


def _generic_calls_by_grad(module: cst.Module, imports) -> dict[str, list[bool]]:
    """The reference: the same per-call rule over LibCST's `.children`."""
    from evallint.analysis.provenance import _grad_switch

    found: dict[str, list[bool]] = {}
    stack: list[tuple[cst.CSTNode, bool]] = [(module, False)]
    while stack:
        node, off = stack.pop()
        if type(node) is cst.FunctionDef:
            off = any(_grad_switch(d.decorator, imports) for d in node.decorators)
            stack.append((node.body, off))
            continue
        if type(node) is cst.With:
            inner = off
            for item in node.items:
                stack.append((item.item, off))
                turned = _grad_switch(item.item, imports)
                if turned is not None:
                    inner = turned
            stack.append((node.body, inner))
            continue
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Name:
                found.setdefault(func.value, []).append(off)
            elif (
                type(func) is cst.Attribute
                and type(func.value) is cst.Name
                and func.value.value == "self"
            ):
                found.setdefault(func.attr.value, []).append(off)
        stack.extend((child, off) for child in node.children)
    return found


def test_calls_by_grad_lean_walk_matches_the_generic_walk() -> None:
    module = cst.parse_module(CALLS)
    imports = collect_imports(module)
    lean = _calls_by_grad(module, imports)
    generic = _generic_calls_by_grad(module, imports)
    assert {k: sorted(v) for k, v in lean.items()} == {k: sorted(v) for k, v in generic.items()}
    # no_grad, enable_grad inside it, the alias, the decorator, inference_mode, module level
    assert sorted(lean["helper"]) == [False] * 4 + [True] * 4
    assert sorted(lean["other"]) == [True, True]


def test_grad_words_prefilter() -> None:
    assert may_turn_grad_off("with torch.no_grad():\n    pass\n")
    assert may_turn_grad_off("from torch import inference_mode as im\n")
    assert may_turn_grad_off("")  # source unknown: walk
    assert not may_turn_grad_off("import torch\nwith torch.enable_grad():\n    f()\n")


def test_lean_walk_skips_leaf_text_fields_but_no_code_node() -> None:
    from evallint.analysis.walk import _child_fields, iter_nodes

    assert _child_fields(cst.Name) == () and _child_fields(cst.Integer) == ()
    module = cst.parse_module(RETURNS + CALLS)
    code_types = (cst.Name, cst.Call, cst.Attribute, cst.Return, cst.Integer, cst.Assign)
    generic: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, code_types):
            generic.append(node)
        stack.extend(node.children)
    lean = [n for n in iter_nodes(module, enter_scopes=True) if isinstance(n, code_types)]
    assert {id(n) for n in lean} == {id(n) for n in generic} and len(lean) == len(generic)


BACKWARD_REACH = """\
import torch


def train(model, loader, updater):
    for x in loader:
        model(x).sum().backward()
        updater.step()


updater = make(model)
train(model, loader, updater)
"""


def test_backward_reach_kept_per_statement_follows_the_files_optimizers() -> None:
    """A statement's scan is kept for the next lint (the same node), but whether its
    `updater.step()` steps parameters depends on another statement (`updater` bound to a
    torch optimizer there): the kept scan is keyed by the file's optimizer names too."""
    import libcst as cst

    from evallint.analysis.optimizers import backward_reach
    from evallint.analysis.reuse import Reuse
    from evallint.analysis.symbols import collect_imports

    first = cst.parse_module(BACKWARD_REACH)
    built = cst.parse_statement("updater = torch.optim.SGD(model.parameters(), lr=0.1)\n")
    second = first.with_changes(body=[*first.body[:-2], built, first.body[-1]])
    store = Reuse()

    def reach(module: cst.Module) -> dict[int, bool]:
        imports = collect_imports(module)
        return backward_reach(module, imports, lambda call: False, lambda call: False, ("c",))

    with store.active():
        before = reach(first)
    with store.active():
        after = reach(second)
    assert list(before.values()) == [False] and list(after.values()) == [True]
    assert after == reach(second)  # no store: computed afresh
