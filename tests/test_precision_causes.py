"""Unit tests of the mechanisms that keep training computations from being read as
evaluations (issue 16, precision on real code)."""

from __future__ import annotations

from textwrap import dedent

from evallint import lint_source

_TASK = """
import torch
import torch.nn as nn


class Task(nn.Module):
    def __init__(self, criteria):
        super().__init__()
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 2))
        self.criteria = criteria

    def part(self, x):
        out = self.head(x)
        return out.sum(), {"accuracy": out.detach().mean()}

    def NAME(self, x):
        total = 0
        metric = {}
        for key, weight in self.criteria.items():
            loss, found = self.part(x)
            total = total + weight * loss
            metric.update(found)
        return total, metric
"""


def _codes(source: str) -> set[str]:
    return {d.code for d in lint_source(dedent(source))}


def test_metric_loop_in_a_module_forward_is_not_an_evaluation() -> None:
    assert _codes(_TASK.replace("NAME", "forward")) & {"EVL001", "EVL002"} == set()


_SCORED_AFTER_TRAINING = """

def report(task: Task, x):
    optimizer = torch.optim.Adam(task.parameters())
    task.train()
    loss, _ = task(x)
    loss.backward()
    optimizer.step()
    print(task.score(x)[1])
"""


def test_the_same_metric_loop_in_a_plain_method_is_an_evaluation() -> None:
    # called after training: the caller's state decides (training mode, autograd on)
    source = _TASK.replace("NAME", "score") + "\n    forward = part\n" + _SCORED_AFTER_TRAINING
    assert {"EVL001", "EVL002"} <= _codes(source)


def test_a_module_method_nobody_calls_is_no_evaluation_by_its_own_loop() -> None:
    # a library API: its loop runs over the module's own criteria, not over data it is
    # given, and nothing switches it to eval mode: the callers (none here) decide
    assert _codes(_TASK.replace("NAME", "score")) & {"EVL001", "EVL002"} == set()


def test_a_plain_function_named_forward_keeps_the_metric_rule() -> None:
    source = """
    import torch.nn as nn

    net = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 2))

    def forward(batches):
        correct = 0
        for x, y in batches:
            correct += (net(x).argmax(1) == y).sum().item()
        return correct
    """
    assert "EVL001" in _codes(source)


def _returns_detached(source: str) -> bool:
    import libcst as cst

    from evallint.analysis.handoff import returns_detached_tensor

    function = cst.parse_module(dedent(source)).body[0]
    assert isinstance(function, cst.FunctionDef)
    return returns_detached_tensor(function)


def test_a_returned_detached_tensor_is_handed_to_the_caller() -> None:
    assert _returns_detached("def f(net, s):\n    return net(s).detach().max(1)[0]\n")
    assert _returns_detached("def f(net, s):\n    q = net(s).detach()\n    return q, 1\n")


def test_arithmetic_on_a_detached_tensor_is_handed_to_the_caller() -> None:
    assert _returns_detached("def f(net, r, s):\n    q = net(s).detach()\n    return r + 0.9 * q\n")
    assert _returns_detached("def f(net, s):\n    return -net(s).detach().max(1)[0], 0\n")
    assert not _returns_detached("def f(net, r, s):\n    q = net(s)\n    return r + 0.9 * q\n")


def test_numbers_after_detach_leave_the_computation() -> None:
    assert not _returns_detached("def f(net, s):\n    return net(s).detach().cpu().numpy()\n")
    assert not _returns_detached("def f(net, s):\n    q = net(s).detach().item()\n    return q\n")
    assert not _returns_detached("def f(net, s):\n    q = net(s)\n    return q.sum()\n")


def _hooks(source: str) -> dict[str, bool]:
    import libcst as cst

    from evallint.analysis.scope import collect_definitions
    from evallint.analysis.symbols import collect_imports

    module = cst.parse_module(dedent(source))
    _, classes = collect_definitions(module, collect_imports(module))
    return {
        name: method.framework_hook
        for cls in classes.values()
        for name, method in cls.methods.items()
    }


def test_lightning_callback_evaluation_hooks_are_run_by_the_framework() -> None:
    found = _hooks(
        """
        from pytorch_lightning import Callback

        class Scores(Callback):
            def on_validation_epoch_end(self, trainer, pl_module): ...
            def on_test_batch_end(self, trainer, pl_module, outputs, batch, idx): ...
            def on_train_epoch_end(self, trainer, pl_module): ...
        """
    )
    assert found == {
        "on_validation_epoch_end": True,
        "on_test_batch_end": True,
        "on_train_epoch_end": False,
    }


def test_a_callback_class_of_another_library_is_not_lightning() -> None:
    found = _hooks(
        """
        from mylib import Callback

        class Scores(Callback):
            def on_validation_epoch_end(self, trainer, model): ...
        """
    )
    assert found == {"on_validation_epoch_end": False}


_AGENT = """
import torch
import torch.nn as nn


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = LAYERS

    def forward(self, x):
        return self.body(x)


class Agent:
    def __init__(self):
        self.actor = Actor().to("cpu")
        self.optimizer = torch.optim.SGD(self.actor.parameters(), lr=0.1)

    def act(self, x):
        with torch.no_grad():
            return self.actor(x).argmax().item()

    def test(self, env):
        obs, done = env.reset(), False
        while not done:
            obs, done = env.step(self.act(obs))
        print("done")
"""


def test_a_module_built_of_mode_independent_layers_needs_no_eval() -> None:
    linear = _AGENT.replace("LAYERS", "nn.Sequential(nn.Linear(4, 4), nn.ReLU())")
    dropout = _AGENT.replace("LAYERS", "nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))")
    assert "EVL001" not in _codes(linear)
    assert "EVL001" in _codes(dropout)


def _key(expression: str):
    import libcst as cst

    from evallint.analysis.conditions import condition_key

    return condition_key(cst.parse_expression(expression))


def test_last_iteration_tests_have_one_key() -> None:
    assert _key("i == len(steps) - 1") == ("i == len(steps)-1", True)
    assert _key("i + 1 == len(steps)") == ("i == len(steps)-1", True)
    assert _key("i == len(steps) - 2") is None


def test_a_variable_equal_to_one_literal_is_not_equal_to_another() -> None:
    from evallint.analysis.lattice import PathState

    state = PathState().assuming("phase == 'validation'", True)
    assert state.assumed("phase == 'training'") is False
    assert state.assumed("phase == 'validation'") is True
    assert state.assumed("epoch == 'training'") is None
    assert PathState().assuming("phase == 'a'", False).assumed("phase == 'b'") is None


def test_another_frameworks_file_that_never_uses_torch_is_not_linted() -> None:
    from evallint.engine.run import may_have_findings

    keras = (
        "import tensorflow as tf\n\ndef evaluate(model, xs):\n    return [model(x) for x in xs]\n"
    )
    assert not may_have_findings(keras)
    assert not may_have_findings(keras.replace("import tensorflow as tf", "from jax import numpy"))
    # a comment naming torch does not make it PyTorch code
    assert not may_have_findings("# ported from torch's version\n" + keras)
    # the same file importing or using torch is PyTorch code (TensorFlow for logging only)
    assert may_have_findings("import torch\n" + keras)
    assert may_have_findings(keras + "x = torch.zeros(3)\n")
    # a torch-free evaluation script of a project model is still linted
    assert may_have_findings("from models import Net\nmodel = Net()\nmodel.eval()\n")
    # `jaxtyping` is no framework
    assert may_have_findings("import jaxtyping\n" + keras.split("\n", 1)[1])
