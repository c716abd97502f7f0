"""Pieces added for causes of misses measured on real code (issue 16, session 7): each test
fails without its mechanism."""

from __future__ import annotations

import textwrap
from pathlib import Path

from evallint import lint_paths
from evallint.analysis.lattice import PathState


def _lint(tmp_path: Path, code: str, name: str = "script.py") -> set[tuple[int, str]]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(code))
    return {(d.line, d.code) for d in lint_paths([str(path)])}


def test_a_taken_string_comparison_excludes_the_other_values() -> None:
    state = PathState().assuming("phase == 'validation'", True)
    assert state.assumed("phase == 'training'") is False
    assert state.assumed("phase == 'validation'") is True
    assert state.assumed("other == 'training'") is None
    # a comparison known False says nothing about the other values
    assert PathState().assuming("phase == 'validation'", False).assumed("phase == 'x'") is None


def test_each_call_fixing_the_phase_is_reported_once(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        """
        import torch
        import torch.nn as nn

        def run(net, batches, opt, train=True):
            for x, y in batches:
                loss = (net(x) - y).pow(2).mean()
                if train:
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            return loss.item()

        net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.2))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        data = [(torch.randn(3, 2), torch.randn(3, 2))]
        run(net, data, opt)
        net.eval()
        print(run(net, data, opt, train=False))
        print(run(net, data, opt, False))
        """,
    )
    assert found == {(19, "EVL002"), (20, "EVL002")}


def test_a_string_phase_that_is_also_passed_on_still_fixes_the_comparisons() -> None:
    import libcst as cst

    from evallint.analysis.scope import collect_definitions
    from evallint.analysis.specialise import constant_flags, tested_parameters
    from evallint.analysis.symbols import collect_imports

    module = cst.parse_module(
        textwrap.dedent(
            """
            def run(epoch, mode):
                if mode == "train":
                    pass
                print(mode, epoch)
            """
        )
    )
    info = collect_definitions(module, collect_imports(module))[0]["run"]
    tested = tested_parameters(info)
    assert "mode" in tested  # passed on to print
    call = cst.parse_expression('run(1, "valid")')
    assert constant_flags(info, call, tested) == (("mode == 'train'", False),)


def test_a_helper_shared_with_training_is_reported_at_each_evaluating_call(
    tmp_path: Path,
) -> None:
    found = _lint(
        tmp_path,
        """
        import torch
        import torch.nn as nn

        class Exp:
            def __init__(self):
                self.model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.2))
                self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)

            def _batch(self, x):
                return self.model(x)

            def vali(self, loader):
                self.model.eval()
                return [self._batch(x).detach().sum().item() for x in loader]

            def test(self, loader):
                self.model.eval()
                for x in loader:
                    print(self._batch(x).detach().numpy())

            def fit(self, loader):
                for x in loader:
                    self.model.train()
                    loss = self._batch(x).sum()
                    self.opt.zero_grad()
                    loss.backward()
                    self.opt.step()
                    print(self.vali(loader))
        """,
    )
    assert found == {(15, "EVL002"), (20, "EVL002")}


def test_a_module_argument_in_a_known_mode_fixes_the_callees_mode_test() -> None:
    import libcst as cst

    from evallint.analysis.scope import collect_definitions
    from evallint.analysis.specialise import constant_flags, tested_parameters
    from evallint.analysis.symbols import collect_imports

    module = cst.parse_module(
        textwrap.dedent(
            """
            def pass_epoch(model, loader):
                if model.training:
                    pass
            """
        )
    )
    info = collect_definitions(module, collect_imports(module))[0]["pass_epoch"]
    tested = tested_parameters(info)
    assert "model.training" in tested
    call = cst.parse_expression("pass_epoch(net, data)")
    assert constant_flags(info, call, tested, (("net.training", False),)) == (
        ("model.training", False),
    )
    assert constant_flags(info, call, tested, ()) == ()
