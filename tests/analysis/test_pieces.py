"""The analysis' pieces on their own: lattice joins, conditions, imports, regions,
evaluation order, and function summaries. A wrong finding is traced to one of these."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional

import libcst as cst
import pytest

from evallint.analysis.conditions import condition_key
from evallint.analysis.file_analysis import FileAnalysis
from evallint.analysis.lattice import (
    MAX_PATHS,
    Grad,
    GradFact,
    Mode,
    ModeFact,
    Origin,
    PathState,
    merge_two,
    normalize,
)
from evallint.analysis.regions import (
    EvidenceCollector,
    RegionKind,
    classify_block,
    mentions_eval_data,
)
from evallint.analysis.symbols import collect_imports
from evallint.analysis.vocabulary import words
from evallint.analysis.walk import calls_in_evaluation_order
from evallint.rules.evl003_training_in_eval_mode import TrainingInEvalMode

TRAIN = ModeFact(Mode.TRAIN, Origin.CONSTRUCTED)
EVAL = ModeFact(Mode.EVAL, Origin.SWITCHED)


def analyse(code: str, path: str = "script.py") -> FileAnalysis:
    source = textwrap.dedent(code)
    return FileAnalysis(cst.parse_module(source), path, source=source)


# -- lattice ---------------------------------------------------------------------------------
def test_join_keeps_every_possible_mode_and_grad() -> None:
    a = PathState().with_mode("model", {TRAIN})
    b = PathState().with_mode("model", {EVAL}).with_grad(frozenset({GradFact(Grad.OFF)}))
    joined = merge_two(a, b)
    assert joined.mode_of("model") == {TRAIN, EVAL}
    assert {g.grad for g in joined.grad} == {Grad.ON, Grad.OFF}


def test_join_keeps_only_aliases_both_paths_agree_on() -> None:
    a = PathState().with_alias("net", "model").with_alias("x", "model")
    b = PathState().with_alias("net", "model").with_alias("x", "other")
    assert merge_two(a, b).aliases == (("net", "model"),)


def test_paths_with_different_assumptions_stay_apart_up_to_a_bound() -> None:
    train = PathState().assuming("phase == 'train'", True).with_mode("m", {TRAIN})
    evaluate = PathState().assuming("phase == 'train'", False).with_mode("m", {EVAL})
    assert len(normalize([train, evaluate])) == 2
    many = [PathState().assuming(f"flag{i}", True) for i in range(MAX_PATHS + 1)]
    assert len(normalize(many)) == 1


def test_reassigning_a_variable_forgets_conditions_on_it() -> None:
    state = PathState().assuming("phase == 'train'", True).assuming("epoch_done", False)
    assert state.forgetting("phase").assumptions == frozenset({("epoch_done", False)})


# -- conditions and names --------------------------------------------------------------------
def test_condition_keys_normalise_negation() -> None:
    key = lambda text: condition_key(cst.parse_expression(text))  # noqa: E731
    assert key("phase == 'train'") == ("phase == 'train'", True)
    assert key('phase != "train"') == ("phase == 'train'", False)
    assert key("not self.training") == ("self.training", False)
    assert key("a + b > 3") is None


def test_words_are_whole_words_not_substrings() -> None:
    assert "val" in words("val_loader") and "test" in words("testLoader")
    assert "val" not in words("interval") and "test" not in words("latest")
    expression = cst.parse_expression
    assert mentions_eval_data(expression("tqdm(loaders['valid'])"))
    assert not mentions_eval_data(expression("enumerate(interval_batches)"))


def test_imports_qualify_aliases() -> None:
    table = collect_imports(
        cst.parse_module(
            "import torch as T\nfrom torch import no_grad as ng\nimport torch.nn as nn\n"
        )
    )
    assert table.qualify(cst.parse_expression("T.no_grad")) == "torch.no_grad"
    assert table.qualify(cst.parse_expression("ng")) == "torch.no_grad"
    assert table.qualify(cst.parse_expression("nn.Dropout")) == "torch.nn.Dropout"


def test_calls_come_in_evaluation_order() -> None:
    statement = cst.parse_statement("out = head(model(x)).mean(dim=f(y))")
    order = [cst.Module([]).code_for_node(c.func) for c in calls_in_evaluation_order(statement)]
    assert order == ["model", "head", "f", "head(model(x)).mean"]


# -- regions ---------------------------------------------------------------------------------
def _region(code: str, eval_by_name: bool = False):
    module = cst.parse_module(textwrap.dedent(code))
    imports = collect_imports(module)
    evidence = EvidenceCollector(imports, lambda call: False, lambda call: True).block(module.body)
    return classify_block(
        module, "block", evidence, eval_by_name=eval_by_name, eval_by_metrics=True
    )


def test_training_evidence_wins_over_names() -> None:
    assert (
        _region(
            "loss = model(x).sum()\nloss.backward()\noptimizer.step()\n", eval_by_name=True
        ).kind
        is RegionKind.TRAIN
    )


def test_training_under_one_flag_is_mixed() -> None:
    region = _region(
        "out = model(x)\nif phase == 'train':\n    loss.backward()\n    optimizer.step()\n"
    )
    assert (region.kind, region.condition, region.trains_when) == (
        RegionKind.MIXED,
        "phase == 'train'",
        True,
    )


def test_metrics_without_training_make_an_evaluation_and_grad_use_is_seen() -> None:
    assert _region("correct += (model(x).argmax(1) == y).sum()\n").kind is RegionKind.EVAL
    assert _region(
        "x.requires_grad_()\ns = model(x)\ng = torch.autograd.grad(s, x)\n", eval_by_name=True
    ).needs_grad


# -- summaries -------------------------------------------------------------------------------
def test_summary_of_a_validate_helper() -> None:
    analysis = analyse("""
        import torch
        def validate(model, loader):
            model.eval()
            with torch.no_grad():
                for x, y in loader:
                    model(x)
    """)
    summary = analysis.summaries["validate"]
    assert {f.mode for f in summary.exit_modes["model"]} == {Mode.EVAL}
    assert summary.forwards == [] or all(not r.mode_from_entry for r in summary.forwards)


def test_summary_of_the_restore_idiom_is_identity() -> None:
    analysis = analyse("""
        import torch
        def sample(model, z):
            was_training = model.training
            model.eval()
            with torch.no_grad():
                out = model(z)
            model.train(was_training)
            return out
    """)
    assert {f.mode for f in analysis.summaries["sample"].exit_modes["model"]} == {Mode.ENTRY}


def test_summary_requires_the_callers_mode_and_grad() -> None:
    analysis = analyse("""
        import torch
        def evaluate(model, loader):
            for x, y in loader:
                model(x)
    """)
    (requirement,) = analysis.summaries["evaluate"].forwards
    assert requirement.mode_from_entry and requirement.grad_from_entry
    assert requirement.region.kind is RegionKind.EVAL


EPOCH_LOOP_ENDING_IN_EVAL = """
    import torch
    model = torch.nn.Dropout(0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        for x in train_loader:
            loss = model(x).sum()
            loss.backward()
            optimizer.step()
        model.eval()
"""


def test_epoch_loop_fixpoint_carries_eval_into_the_next_epoch() -> None:
    analysis = analyse(
        EPOCH_LOOP_ENDING_IN_EVAL
        + """
        with torch.no_grad():
            samples = model(fixed_noise)
    """
    )
    (step,) = analysis.facts.training_steps
    assert {f.mode for f in step.eval_facts} == {Mode.EVAL}


def test_an_eval_switch_in_a_scope_that_evaluates_nothing_is_deliberate() -> None:
    """The same loop without anything run in eval mode: the `eval()` freezes BatchNorm on
    purpose (a linear probe), so training after it is not training after an evaluation."""
    analysis = analyse(EPOCH_LOOP_ENDING_IN_EVAL)
    assert len(analysis.facts.deliberate_switches) == 1
    # the analysis records the step and its mode as they are; EVL003 decides the switch
    # does not make it a training after an evaluation
    (step,) = analysis.facts.training_steps
    assert {id(f.site) for f in step.eval_facts} == set(analysis.facts.deliberate_switches)
    assert list(TrainingInEvalMode().check(analysis.facts)) == []


# module classes read with CPython's parser (imported files) ------------------------------


def _module_classes_by_libcst(source: str) -> dict[str, Optional[bool]]:
    from evallint.analysis.project_classes import _module_classes_of_tree
    from evallint.source.parse import parse_module

    module = parse_module(source)  # the lint's parse (mixed tab indentation expanded)
    assert isinstance(module, cst.Module)
    return _module_classes_of_tree(module)


MODULE_CLASSES = """\
import torch.nn as nn
from torch import nn as tnn
import torch
from pytorch_lightning import LightningModule
from . import blocks
from .layers import Block as B


class Plain:
    pass


class Net(nn.Module):
    class Head(tnn.Module):
        pass


class Deeper(Net):
    pass


class Lit(LightningModule):
    pass


class Wrapped(torch.nn.Module, metaclass=type):
    pass


class Local(B):
    pass


if torch.cuda.is_available():
    class Guarded(nn.Module):
        pass
else:
    class Unguarded(nn.Module):
        pass
"""


def test_module_classes_of_text_agrees_with_the_libcst_definitions() -> None:
    from evallint.analysis.scope import module_classes_of_text

    found = module_classes_of_text(MODULE_CLASSES)
    assert found == _module_classes_by_libcst(MODULE_CLASSES)
    assert (
        found is not None
        and found["Net"]
        and found["Net.Head"]
        and found["Deeper"]
        and found["Lit"]
    )
    assert found["Wrapped"] and found["Guarded"] and not found["Plain"] and not found["Local"]
    assert found["Plain"] is None and found["Local"] is False  # plain; a base not known here


@pytest.mark.parametrize(
    "fixture", sorted((Path(__file__).parents[1] / "fixtures").rglob("*.py")), ids=lambda p: p.name
)
def test_module_classes_of_text_agrees_on_every_fixture(fixture: Path) -> None:
    from evallint.analysis.scope import module_classes_of_text

    source = fixture.read_text(encoding="utf-8")
    assert module_classes_of_text(source) == _module_classes_by_libcst(source)


def test_evidence_resolves_a_nested_helper_called_after_another_function() -> None:
    """Summarising `set_lr()` (defined later, so summarised on demand) gathers its own
    evidence in its own scope; the loop's later
    call to the nested `step()` must still resolve from `main` (it trains)."""
    analysis = analyse("""
        import torch
        def main(model, opt, loader):
            def step(x):
                model(x).sum().backward()
            for x in loader:
                set_lr(opt)
                step(x)
                opt.step()
        def set_lr(opt):
            pass
    """)
    main = analysis.functions["main"]
    loop = main.node.body.body[1]
    assert isinstance(loop, cst.For)
    sites = analysis.statement_evidence(loop, main).training_sites
    assert [cst.Module([]).code_for_node(site.func) for site, _ in sites] == ["step", "opt.step"]


# -- memory ----------------------------------------------------------------------------------
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(
    "fixture",
    [
        FIXTURES / "evl003_trainer_class_fit_validate_each_epoch.py",
        FIXTURES / "evl001_nested_closure_eval.py",
    ],
    ids=lambda p: p.name,
)
def test_a_files_analysis_makes_no_reference_cycle(fixture: Path) -> None:
    """A linted file's tree must be freed by reference counting when its analysis is
    dropped: a cycle would keep it alive until a cyclic collection has traversed all of it
    (on torch's own files that was a tenth of a run, and most of its peak memory)."""
    import gc

    from evallint.engine.run import analyse_source
    from evallint.rules import RULES

    source = fixture.read_text(encoding="utf-8")
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        analysis = analyse_source(source, str(fixture))
        assert [d for rule in RULES for d in rule().check(analysis.facts)]  # the rules ran on it
        del analysis
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [
            type(x).__name__
            for x in gc.garbage
            if isinstance(x, (cst.CSTNode, FileAnalysis))
            or type(x).__module__.startswith("evallint")
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert left == []


def test_a_backward_pass_proves_the_callers_autograd_on() -> None:
    """Grad at entry is the caller's; a backward pass on that path proves it was on (no
    graph under no_grad), so the evaluation after it is judged with autograd on here."""
    analysis = analyse(
        """
        import torch
        def fit_and_score(model, x, y, valid_loader):
            loss = (model(x) - y).pow(2).mean()
            loss.backward()
            model.eval()
            return [model(v).argmax(1) for v in valid_loader]
        """
    )
    (forward,) = analysis.facts.eval_forwards
    assert {g.grad for g in forward.grad_facts} == {Grad.ON}
    (site,) = {g.site for g in forward.grad_facts}
    assert isinstance(site, cst.Call) and site.func.attr.value == "backward"


def test_forward_methods_are_read_from_method_bodies() -> None:
    from evallint.analysis.forward_methods import forward_methods_of_text

    found = forward_methods_of_text(
        textwrap.dedent(
            """
            class Agent(nn.Module):
                def __init__(self):
                    self.pi_head = nn.Linear(4, 2)
                    self.loss_fn = nn.MSELoss()
                def pi(self, x):
                    return self.pi_head(x)
                def act(self, x):
                    return self.pi(x).argmax()
                def whole(self, x):
                    return self(x)
                def loss(self, x, y):
                    return self.loss_fn(x, y)
                def update(self, x):
                    self.pi(x).sum().backward()
                def size(self):
                    return 4
            """
        )
    )
    assert found == {"Agent": frozenset({"pi", "act", "whole"})}
