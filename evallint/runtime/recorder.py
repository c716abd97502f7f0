"""Global hooks that watch a real run: every top-level forward and every optimizer step (torch).

A forward is *top-level* when no other module's forward is running on this thread (the
outermost `model(x)`, not its submodules). For each one the recorder keeps the module's
class, its `training` flag, which mode-dependent layers were in train and eval mode, the grad
state, and the chain of user frames that called it. Its output's autograd nodes get a
pre-hook and a sentinel: the hook runs when a backward reaches the output (a *training*
forward, and the hook sees the user's `backward()` line), the sentinel is collected when the
graph is freed without that (an *evaluation* with autograd on: EVL002). A forward under
`no_grad`/`inference_mode`, or whose output needs no grad, is an evaluation at once.

At each optimizer step, the modules whose parameters the optimizer holds and that were
trained since the last step are checked: trained while `training` was False with a
mode-dependent layer in eval mode on the gradient path is EVL003.
"""

from __future__ import annotations

import sys
import threading
import weakref
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Optional

import torch
from torch import nn
from torch.nn.modules import module as module_hooks
from torch.optim import optimizer as optimizer_hooks

from evallint.runtime.frames import Chain, FrameFinder
from evallint.runtime.measure import Stats, compare_modes, norm_statistics, statistics_moved
from evallint.runtime.modes import CANDIDATES, LayerIndex, describe, is_mode_dependent

MAX_MEASUREMENTS = 16
"""Deep-copy measurements per run (one per call chain at most)."""


class Stop(BaseException):
    """Raised from a hook to end the run early (a budget, a timeout). A BaseException, so a
    script's `except Exception:` does not swallow it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Forward:
    """One top-level forward, from its pre-hook until it is classified."""

    module: weakref.ReferenceType[nn.Module]
    module_class: str
    chain: Chain
    frame: Optional[FrameType]
    training: bool
    train_layers: list[str]
    eval_layers: list[str]
    grad: str
    step: int = 0
    before: Optional[Stats] = None
    eval_on_grad_path: list[str] = field(default_factory=list)
    backward_chain: Chain = ()
    state: str = "pending"


@dataclass
class Site:
    """Everything seen at one call chain for one module class."""

    chain: Chain
    module_class: str
    forwards: int = 0
    training: int = 0
    evaluation: int = 0
    eval_train_mode: int = 0
    eval_grad_freed: int = 0
    interleaved: int = 0
    """Train-mode evaluations with an optimizer step since the previous one (a teacher's rhythm)."""
    last_eval_step: Optional[int] = None
    unresolved: int = 0
    grad_states: set[str] = field(default_factory=set)
    train_layers: list[str] = field(default_factory=list)
    train_layer_count: int = 0
    module_ids: set[int] = field(default_factory=set)
    has_trainable_parameters: bool = False
    measured: Optional[dict[str, Any]] = None
    statistics_moved: Optional[dict[str, Any]] = None
    backward_chains: set[Chain] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain": [list(location) for location in self.chain],
            "module": self.module_class,
            "forwards": self.forwards,
            "training": self.training,
            "evaluation": self.evaluation,
            "evaluation_in_train_mode": self.eval_train_mode,
            "evaluation_graph_freed": self.eval_grad_freed,
            "interleaved_with_steps": self.interleaved,
            "unresolved": self.unresolved,
            "grad_states": sorted(self.grad_states),
            "train_mode_layers": self.train_layers,
            "train_mode_layer_count": self.train_layer_count,
            "measured": self.measured,
            "statistics_moved": self.statistics_moved,
            "backward_chains": [[list(loc) for loc in c] for c in sorted(self.backward_chains)],
        }


@dataclass
class Resumed:
    """EVL003: one module trained in eval mode, at one backward and step location."""

    module_class: str
    backward_chain: Chain
    forward_chain: Chain
    step_chain: Chain
    eval_layers: list[str]
    steps: int = 0


class _Marker:
    """The pre-hook on an output's autograd node; collected with the graph (weakref.finalize)."""

    __slots__ = ("__weakref__", "forward", "recorder")

    def __init__(self, recorder: Recorder, forward: Forward) -> None:
        self.recorder = recorder
        self.forward = forward

    def __call__(self, grad_outputs: Any) -> None:
        self.recorder._backwarded(self.forward)
        return None


class Recorder:
    """Install with `install()`, remove with `remove()`, read with `summary()`."""

    def __init__(
        self,
        *,
        steps: Optional[int] = None,
        evaluations: Optional[int] = None,
        measure: bool = True,
    ) -> None:
        self.step_budget = steps
        self.evaluation_budget = evaluations
        self.measure = measure
        self.frames = FrameFinder()
        self.layers = LayerIndex()
        self.sites: dict[tuple[Chain, str], Site] = {}
        self.resumed: dict[tuple[Chain, Chain, str], Resumed] = {}
        self.steps = 0
        self.forwards = 0
        self.evaluations = 0
        self.trainings = 0
        self.unresolved = 0
        self.stopping = False
        self.stop_reason: Optional[str] = None
        self.optimized: set[int] = set()
        self.stepped_optimizers = 0
        self._optimizers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._seen: weakref.WeakValueDictionary[int, nn.Module] = weakref.WeakValueDictionary()
        self._since_step: list[Forward] = []
        self._pending: dict[int, Forward] = {}
        self._windows: dict[int, tuple[tuple[Chain, str], Stats, Stats]] = {}
        """Per module: the chain whose evaluation opened it, the statistics then, the live ones."""
        self._measurements = 0
        self._local = threading.local()
        self._busy = False
        self._handles: list[Any] = []

    # -- installation -------------------------------------------------------------------
    def install(self) -> None:
        self._handles = [
            module_hooks.register_module_forward_pre_hook(self._pre),
            module_hooks.register_module_forward_hook(self._post, with_kwargs=True),
        ]
        if hasattr(optimizer_hooks, "register_optimizer_step_pre_hook"):
            self._handles.append(optimizer_hooks.register_optimizer_step_pre_hook(self._step_pre))
            self._handles.append(optimizer_hooks.register_optimizer_step_post_hook(self._step_post))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- forwards -----------------------------------------------------------------------
    def _current(self) -> Optional[Forward]:
        """The top-level forward running on this thread, if its frame is still on the stack."""
        top: Optional[Forward] = getattr(self._local, "top", None)
        if top is None:
            return None
        frame: Optional[FrameType] = sys._getframe(2)
        while frame is not None:
            if frame is top.frame:
                return top
            frame = frame.f_back
        self._local.top = None  # its forward raised: the post-hook never ran
        top.frame = None
        return None

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self._busy:
            return
        top = self._current()
        if top is not None:
            if not module.training and isinstance(module, CANDIDATES) and torch.is_grad_enabled():
                if is_mode_dependent(module) and _needs_grad(module, args):
                    root = top.module()
                    name = self.layers.name_of(root, module) if root is not None else None
                    if name is not None and name not in top.eval_on_grad_path:
                        top.eval_on_grad_path.append(name)
            return
        self._check_budgets()
        layers = self.layers.layers(module)
        grad = (
            "inference_mode"
            if torch.is_inference_mode_enabled()
            else "grad on"
            if torch.is_grad_enabled()
            else "no_grad"
        )
        forward = Forward(
            module=weakref.ref(module),
            module_class=type(module).__name__,
            chain=self.frames.chain(sys._getframe(1)),
            frame=sys._getframe(1),
            training=module.training,
            train_layers=[f"{describe(m)} `{n or '<model>'}`" for n, m in layers if m.training],
            eval_layers=[f"{describe(m)} `{n or '<model>'}`" for n, m in layers if not m.training],
            grad=grad,
            step=self.steps,
        )
        if not module.training and is_mode_dependent(module) and _needs_grad(module, args):
            forward.eval_on_grad_path.append("<model>")
        self._seen[id(module)] = module
        key = (forward.chain, forward.module_class)
        window = self._windows.get(id(module))
        if window is not None and window[0] != key:
            self._close_window(id(module))
        site = self.sites.get(key)
        if forward.train_layers and (site is None or site.training == 0):
            train_layers = [(n, m) for n, m in layers if m.training]
            # Measure a certain evaluation (grad off) at once; with grad on, wait until this
            # call has produced an evaluation, so a training step is never copied and rerun.
            certain = grad != "grad on" or (site is not None and site.evaluation > 0)
            if self.measure and certain and (site is None or site.measured is None):
                forward.before = norm_statistics(train_layers)
            if id(module) not in self._windows:
                stats = norm_statistics(train_layers)
                if stats:
                    live = norm_statistics(train_layers, live=True)
                    self._windows[id(module)] = (key, stats, live)
        self._local.top = forward

    def _post(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        if self._busy:
            return
        top: Optional[Forward] = getattr(self._local, "top", None)
        if top is None or top.frame is not sys._getframe(1) or top.module() is not module:
            return
        self._local.top = None
        top.frame = None
        self.forwards += 1
        site = self._site(top, module)
        site.forwards += 1
        site.grad_states.add(top.grad)
        nodes = _grad_nodes(output) if top.grad == "grad on" else []
        if top.before is not None and self._measurements < MAX_MEASUREMENTS:
            self._busy = True
            try:
                site.measured = compare_modes(module, top.before, args, kwargs, output)
                self._measurements += 1
            finally:
                self._busy = False
        top.before = None
        if not nodes:
            self._classify(top, "evaluation")
            return
        self._pending[id(top)] = top
        marker = _Marker(self, top)
        weakref.finalize(marker, self._freed, id(top))
        for node in nodes:
            node.register_prehook(marker)

    def _site(self, forward: Forward, module: Optional[nn.Module] = None) -> Site:
        key = (forward.chain, forward.module_class)
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = Site(forward.chain, forward.module_class)
            site.train_layers = forward.train_layers[:8]
            site.train_layer_count = len(forward.train_layers)
        if module is not None:
            site.module_ids.add(id(module))
            if not site.has_trainable_parameters:
                site.has_trainable_parameters = any(p.requires_grad for p in module.parameters())
        return site

    def _backwarded(self, forward: Forward) -> None:
        if forward.state != "pending":
            return
        if not forward.backward_chain:
            forward.backward_chain = self.frames.chain(sys._getframe(1))
        self._pending.pop(id(forward), None)
        self._classify(forward, "training")
        self._since_step.append(forward)

    def _freed(self, key: int) -> None:
        forward = self._pending.pop(key, None)
        if forward is None or forward.state != "pending":
            return
        self._classify(forward, "unresolved" if self.stopping else "freed")

    def _classify(self, forward: Forward, how: str) -> None:
        site = self._site(forward)
        if how == "training":
            forward.state = "training"
            site.training += 1
            self.trainings += 1
            if forward.backward_chain:
                site.backward_chains.add(forward.backward_chain)
            module = forward.module()
            if module is not None and id(module) in self._windows:
                if self._windows[id(module)][0] == (forward.chain, forward.module_class):
                    del self._windows[id(module)]  # a training chain: its drift is training
            return
        if how == "unresolved":
            forward.state = "unresolved"
            site.unresolved += 1
            self.unresolved += 1
            return
        forward.state = "evaluation"
        site.evaluation += 1
        self.evaluations += 1
        if forward.train_layers:
            site.eval_train_mode += 1
            if site.last_eval_step is not None and forward.step > site.last_eval_step:
                site.interleaved += 1
            site.last_eval_step = forward.step
        if how == "freed":
            site.eval_grad_freed += 1

    def _close_window(self, module_id: int) -> None:
        key, stats, live = self._windows.pop(module_id)
        site = self.sites.get(key)
        if site is None or site.evaluation == 0:
            return
        moved = statistics_moved(stats, live)
        if moved is not None and (
            site.statistics_moved is None
            or moved["largest"]["running_mean_shift"]
            > site.statistics_moved["largest"]["running_mean_shift"]
        ):
            site.statistics_moved = moved

    # -- optimizer steps ----------------------------------------------------------------
    def _check_budgets(self, *, at_step: bool = False) -> None:
        """Raise Stop when a budget is spent; the step budget is checked only before a step,
        so what runs between step N and step N+1 (an evaluation, say) is still seen."""
        if self.stop_reason is not None:
            raise Stop(self.stop_reason)  # again: a Stop raised in a finalizer is swallowed
        if at_step and self.step_budget is not None and self.steps >= self.step_budget:
            self.stop(f"--steps {self.step_budget}: stopped after {self.steps} optimizer steps")
        if self.evaluation_budget is not None and self.evaluations >= self.evaluation_budget:
            self.stop(
                f"--evals {self.evaluation_budget}: stopped after "
                f"{self.evaluations} evaluation forwards"
            )

    def stop(self, reason: str) -> None:
        """End the run from a hook or a signal handler: raise Stop now and at every later hook."""
        self.stopping = True
        self.stop_reason = reason
        raise Stop(reason)

    def _step_pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if not self._busy:
            self._check_budgets(at_step=True)

    def _step_post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._busy:
            return
        self.steps += 1
        self._optimizers.add(optimizer)
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for module_id, module in list(self._seen.items()):
            if module_id not in self.optimized and any(id(p) in held for p in module.parameters()):
                self.optimized.add(module_id)
        step_chain: Optional[Chain] = None
        for forward in self._since_step:
            trained = forward.module()
            if trained is None or forward.training or not forward.eval_on_grad_path:
                continue
            if not any(id(p) in held and p.grad is not None for p in trained.parameters()):
                continue
            if step_chain is None:
                step_chain = self.frames.chain(sys._getframe(1))
            where = forward.backward_chain or step_chain
            key = (where, forward.chain, forward.module_class)
            found = self.resumed.get(key)
            if found is None:
                found = self.resumed[key] = Resumed(
                    forward.module_class,
                    where,
                    forward.chain,
                    step_chain,
                    [
                        f"{layer} `{n}`"
                        for n, layer in _described(trained, self.layers, forward.eval_on_grad_path)
                    ],
                )
            found.steps += 1
        self._since_step = []
        for module_id in list(self._windows):
            self._close_window(module_id)

    # -- the end ------------------------------------------------------------------------
    def finish(self) -> None:
        """Classify what is left: forwards still pending when the run stopped stay unresolved."""
        self.stopping = True
        self.stop_reason = None
        for forward in list(self._pending.values()):
            self._pending.pop(id(forward), None)
            self._classify(forward, "unresolved")
        for module_id in list(self._windows):
            self._close_window(module_id)
        self.remove()

    def summary(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "forwards": self.forwards,
            "training_forwards": self.trainings,
            "evaluation_forwards": self.evaluations,
            "unresolved_forwards": self.unresolved,
            "optimizers_stepped": len(self._optimizers) > 0 or self.steps > 0,
            "sites": [
                {
                    **site.to_json(),
                    "optimized": bool(site.module_ids & self.optimized),
                    "has_trainable_parameters": site.has_trainable_parameters,
                }
                for site in self.sites.values()
            ],
            "resumed": [
                {
                    "module": r.module_class,
                    "backward_chain": [list(loc) for loc in r.backward_chain],
                    "forward_chain": [list(loc) for loc in r.forward_chain],
                    "step_chain": [list(loc) for loc in r.step_chain],
                    "eval_layers": r.eval_layers,
                    "steps": r.steps,
                }
                for r in self.resumed.values()
            ],
        }


def _described(module: nn.Module, index: LayerIndex, names: list[str]) -> list[tuple[str, str]]:
    layers = dict(index.layers(module))
    found = []
    for name in names[:8]:
        layer = module if name == "<model>" else layers.get(name)
        if layer is not None:
            found.append((name, describe(layer)))
    return found


def _needs_grad(module: nn.Module, args: tuple[Any, ...]) -> bool:
    """On the gradient path: an input needs grad, or the layer's own parameters do."""
    if any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        return True
    return any(p.requires_grad for p in module.parameters(recurse=False))


def _grad_nodes(output: Any, depth: int = 0) -> list[Any]:
    """The distinct autograd nodes of the output tensors that need grad (a few at most)."""
    found: list[Any] = []
    stack = [(output, 0)]
    while stack and len(found) < 8:
        value, level = stack.pop()
        if isinstance(value, torch.Tensor):
            node = value.grad_fn
            if value.requires_grad and node is not None and all(node is not n for n in found):
                found.append(node)
        elif level < 3 and isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif level < 3 and isinstance(value, (list, tuple)):
            stack.extend((v, level + 1) for v in value)
    return found
