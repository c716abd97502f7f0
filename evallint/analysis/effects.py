"""Events that produce facts: forwards, training steps, evaluation regions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import libcst as cst

from evallint.analysis.bound_branches import constant_bindings
from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.detection_forwards import detection_training_call
from evallint.analysis.facts import (
    Place,
)
from evallint.analysis.held_optimizers import stepped_owners, within_owners
from evallint.analysis.kept_modules import kept_mode_facts
from evallint.analysis.lattice import (
    ENTRY_MODE,
    Grad,
    Mode,
    ModeFact,
    Origin,
    PathState,
)
from evallint.analysis.mode_overrides import hidden_mode_methods
from evallint.analysis.norm_statistics import recomputes_norm_statistics, statistics_passes
from evallint.analysis.optimizer_bindings import latest_binding
from evallint.analysis.optimizers import is_optimizer_name, parameters_owners
from evallint.analysis.project_forwards import (
    project_bound_forward_grad_free,
    project_forward_delegates,
    project_forward_grad_free,
    project_runs_forward,
)
from evallint.analysis.regions import (
    Region,
    RegionKind,
)
from evallint.analysis.symbols import dotted_name
from evallint.analysis.vocabulary import (
    NO_GRAD_METHODS,
)
from evallint.analysis.walk import iter_nodes


@dataclass(frozen=True)
class PendingTraining:
    """A module trained in one region of this scope, gathered over every pass through it;
    it becomes a `TrainingStep` fact (if it may be in eval mode) or a requirement on callers."""

    place: Place
    """The first training site (`loss.backward()`, `optimizer.step()`) seen."""
    subject: str
    region: Optional[Region]
    eval_facts: frozenset
    """Eval-mode facts the module may carry there (the ones training must not inherit)."""
    from_entry: bool
    """Whether it may be in the caller's mode (then callers are asked)."""
    order: int
    via: tuple[Place, ...] = ()
    """The calls, outermost first, through which a helper's training site was reached."""
    outer_subject: str = ""
    """The module as the outermost call in `via` names it (where a fix goes)."""
    mode_matters: bool = True
    """Whether the module trained had a mode-dependent layer on some pass through this site
    (a notebook that rebinds `model` to a BatchNorm model in a later cell does not make the
    earlier Linear-only model's training mode-dependent)."""


@dataclass
class Observation:
    """A forward seen during interpretation, accumulated over every pass through it."""

    key: str
    subject: str
    region: Region
    train: frozenset = frozenset()
    entry_mode: bool = False
    grad: frozenset = frozenset()
    entry_grad: bool = False
    affects_grad: bool = True
    mode_matters: bool = True
    order: int = 0
    parts_as_built: bool = False
    """See ForwardRequirement.parts_as_built."""


def _left_in_eval(fact: ModeFact, facts: frozenset) -> bool:
    """An eval-mode fact that training must not inherit: an `eval()` call, a call that
    leaves the module in eval mode, or `from_pretrained()` (which calls `eval()`); not an
    unknown loader's "either mode", which comes with a train-mode fact from the same site."""
    if fact.origin in (Origin.SWITCHED, Origin.CALLED):
        return True
    return fact.origin is Origin.LOADED and not any(
        other.mode is Mode.TRAIN and other.site is fact.site for other in facts
    )


def with_modes(state: PathState, keys: list[str], facts: frozenset) -> PathState:
    for key in keys:
        state = state.with_mode(key, facts)
    return state


class Effects(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    _forward_modes: Optional[dict[str, frozenset]] = None
    _norm_statistics: Optional[bool] = None
    """Key -> the mode facts its forwards with autograd on ran in, in this function (see
    `_record_training`)."""

    _discarded: Optional[set[int]] = None
    """Forwards of this function whose result nothing keeps, of a module it switches to
    eval() further down (see `_collects_statistics`)."""

    _restored_switches: Optional[set[int]] = None
    """`train()` calls of this function that follow its own `eval()` (read once, see
    `_restored_for_training`)."""

    # -- regions -------------------------------------------------------------------------------
    def _evaluating(self, state: PathState) -> Optional[Region]:
        """The innermost region that decides this path: EVAL, or MIXED with its flag off."""
        for region in reversed(self.regions):
            if region.kind is RegionKind.NEUTRAL:
                continue
            if region.kind is RegionKind.EVAL:
                return region
            if region.kind is RegionKind.MIXED:
                known = state.assumed(region.condition or "")
                if known is not None and known != region.trains_when:
                    return region
            return None
        return None

    # -- events ----------------------------------------------------------------------------------
    def _runs_forward_by_definition(self, method: str) -> bool:
        file = self.file
        return method in file.forward_method_names() or project_runs_forward(
            file.class_index, file.path, method
        )

    def _recomputes_statistics(self) -> bool:
        """This function recomputes BatchNorm statistics (see norm_statistics.py): the
        training mode of its forwards is what it needs."""
        info = self.info
        if info is None:
            return False
        found = self._norm_statistics
        if found is None:
            found = self._norm_statistics = recomputes_norm_statistics(info.node)
        return found

    def _collects_statistics(self, call: cst.Call, facts: frozenset, grad: frozenset) -> bool:
        """A forward whose result nothing keeps of a module this code switched to training
        mode itself and switches to eval() after it (`model.train()`, `with torch.no_grad():
        _ = model(x)`, `model.eval()`; a running mean/std normaliser's `norm.train()`,
        `norm(batch)`, `norm.eval()`): all it does is update running statistics (BatchNorm's,
        a normaliser's buffers) for the evaluation that follows (AdaBN), on purpose. No
        evaluation: it computes nothing to judge; and with autograd on, the graph of a result
        nothing keeps is freed at once, so no memory is held either."""
        if not facts or not grad:
            return False
        if any(f.mode is not Mode.TRAIN or f.origin is not Origin.SWITCHED for f in facts):
            return False
        discarded = self._discarded
        if discarded is None:
            root = self.info.node if self.info is not None else self.file.module
            discarded = self._discarded = statistics_passes(root)
        return id(call) in discarded

    def forward(self, call: cst.Call, key: str, subject: str, states: States) -> None:
        scope = self.info.node if self.info is not None else self.file.module
        if detection_training_call(call, scope, self.imports):
            return  # `model(images, targets)`: torchvision detection's training call
        method = (
            call.func.attr.value
            if type(call.func) is cst.Attribute and self.resolve(call.func, states[0]) is None
            else None
        )
        frozen = key in self.frozen or (
            key in self.file.frozen_globals and key not in self.scope_locals
        )
        affects_grad = (
            not frozen
            and self._key_id(key) not in self.file.graph_free
            and (method not in NO_GRAD_METHODS or method in self.file.forward_method_names())
            and method not in self.file.grad_free_methods()
            and not (
                method is not None
                and project_forward_grad_free(self.file.class_index, self.file.path, method)
            )
            and not (
                method in (None, "forward")
                and project_bound_forward_grad_free(
                    self.file.class_index, self.file.path, constant_bindings(call)
                )
            )
        )  # frozen parameters: no graph to keep; a project's own `generate` keeps its graph
        # unless it is decorated with no_grad
        mode_matters = (
            self._key_id(key) not in self.file.mode_independent
            and method not in self.file.eval_switched_methods
            and not self._recomputes_statistics()
        )  # `@eval_decorator def generate_images(self)`: runs in eval mode by itself
        # a module called itself (`model(x)`), or through a method that some module class of
        # the file or project defines to run its forward (`vqvae.decode_code(t, b)` of a
        # class whose `decode_code` calls `self.decode`, which calls `self.dec`); not a
        # method taken for a forward by its name alone (`gen.decode_x()`)
        runs_forward = method in (None, "forward") or self._runs_forward_by_definition(method)
        by_result = self.reported_region(call) if runs_forward else None
        if by_result is None and runs_forward:
            by_result = self.dropped_region(call, key, states)
        kept = self.file.kept_members.get(self._key_id(key))
        for state in states:
            if state.holds_none(key):
                continue  # a path that took `key is None`: no forward of it runs there
            grad = state.grad
            if any(g.grad in (Grad.ON, Grad.ENTRY) for g in grad) and affects_grad:
                for enclosing in self.regions:
                    self.grad_forwards.setdefault(id(enclosing.node), set()).add(key)
                modes = self._forward_modes = self._forward_modes or {}
                ran = self._delegated_mode(key, state, method) or state.mode_in_tree(key)
                ran = ran or ENTRY_MODE
                modes[key] = modes.get(key, frozenset()) | ran
            region = self._evaluating(state)
            if (
                region is not None
                and region.kind is RegionKind.MIXED
                and region.condition in self.phase_conditions
            ):
                # a pass of `for phase in ("train", "val"):` that does not train: an
                # evaluation there, whose grads nothing needs
                region = replace(region, kind=RegionKind.EVAL, needs_grad=False)
            if (
                by_result is not None
                and (region is None or region.needs_grad)
                and any(g.grad is not Grad.OFF for g in grad)
            ):
                region = by_result  # an evaluation by what its result does, autograd on
            # an evaluation region, or a forward with autograd off (sampling, a quick check)
            if region is not None or (bool(grad) and all(g.grad is Grad.OFF for g in grad)):
                self.evaluates = True
            if region is None:
                region = (
                    self.regions[-1]
                    if all(r.kind is RegionKind.NEUTRAL for r in self.regions)
                    else None
                )
                if region is None:
                    continue
            facts = self._delegated_mode(key, state, method) or state.mode_in_tree(key)
            facts = facts or ENTRY_MODE
            as_built = method is not None and method in self.file.kept_eval_methods
            if as_built:
                facts = as_built_parts(facts, call)
            if kept:  # a module that only carries others runs them in their own modes
                facts = kept_mode_facts(state, key, kept) or facts
            if self._collects_statistics(call, facts, grad):
                continue
            if region.kind is RegionKind.MIXED:
                facts = self._chosen_for_both_flags(facts)
            elif region.kind is RegionKind.EVAL:
                facts = self._restored_for_training(facts)
            obs = self.observations.get(call)
            if obs is None:
                obs = Observation(
                    key,
                    subject,
                    region,
                    affects_grad=affects_grad,
                    mode_matters=mode_matters,
                    order=self.file.next_order(),
                    parts_as_built=as_built,
                )
                self.observations[call] = obs
                self._note_hidden_mode_methods(call, key, subject)
            if region.kind is RegionKind.NEUTRAL and obs.region.kind is not RegionKind.NEUTRAL:
                continue
            if obs.region.kind is RegionKind.NEUTRAL and region.kind is not RegionKind.NEUTRAL:
                obs.region = region
            obs.train |= frozenset(
                f for f in facts if f.mode is Mode.TRAIN and f.origin is not Origin.FLAG
            )
            obs.entry_mode = obs.entry_mode or any(f.mode is Mode.ENTRY for f in facts)
            if not region.needs_grad:
                obs.grad |= frozenset(g for g in grad if g.grad is Grad.ON and not g.by_flag)
                obs.entry_grad = obs.entry_grad or any(g.grad is Grad.ENTRY for g in grad)

    def _note_hidden_mode_methods(self, node: cst.CSTNode, key: str, subject: str) -> None:
        """Record the mode methods `subject`'s class hides behind a non-switching override."""
        hidden = hidden_mode_methods(self, key, subject)
        if hidden:
            self.file.facts.hidden_mode_methods[(id(node), subject)] = hidden

    def _delegated_mode(self, key: str, state, method: Optional[str] = None) -> Optional[frozenset]:
        """`model.net.eval()` (or `net = model.net; net.train()`) then `model(x)`, where a
        module class of the project runs its forward as `self.net(x)` and nothing else of its
        own (a continual-learning wrapper around its backbone, a ranker whose layers are all
        in `self.model`): the forward runs `net`, in the mode `net` was last switched to.
        The same for a method of those classes that runs only `self.net`
        (`ranker.encode_context(x)`)."""
        prefix = key + "."
        held = [(name, state.mode_of(target)) for name, target in state.aliases if target]
        for name, facts in (*state.modes, *held):
            child = name[len(prefix) :]
            if (
                name.startswith(prefix)
                and child.isidentifier()
                and facts
                and project_forward_delegates(
                    self.file.class_index, self.file.path, child, method or "forward"
                )
            ):
                return facts
        return None

    def _restored_for_training(self, facts: frozenset) -> frozenset:
        """Training mode set by a `.train()` of this function that follows its own `.eval()`
        of the same module (`model.eval()`, an attack's forwards, `model.train()`, then the
        loss forwards): the function switched back on purpose, so what follows the switch
        trains; it is no evaluation in training mode. A `train()` with no `eval()` before it
        (`def evaluate(model): model.train()`) stays a finding."""
        if self.info is None or not any(
            f.mode is Mode.TRAIN and f.origin is Origin.SWITCHED for f in facts
        ):
            return facts
        restored = self._restored_switches
        if restored is None:  # once per function
            restored = self._restored_switches = set()
            evaluated: set[str] = set()
            shown = self.file.block_evidence(list(self.body), self.info)
            # when nothing here trains or needs a graph (`evaluate()` that calls `eval()`,
            # then `train()` inside its loop, and only reports), an unconditional switch back
            # is no return to training: it undoes the evaluation mode; one a test chooses
            # (`if self.setting == "train": self.net.train()`) is still chosen on purpose
            working = bool(shown.training_sites or shown.graph_needed)
            chosen: set[int] = set()
            for node in (n for statement in self.body for n in iter_nodes(statement)):
                if not working and type(node) is cst.If:
                    chosen.update(id(n) for n in iter_nodes(node) if type(n) is cst.Call)
                if type(node) is not cst.Call or type(node.func) is not cst.Attribute:
                    continue
                switch, receiver = node.func.attr.value, dotted_name(node.func.value)
                if receiver is None or node.args:
                    continue
                if switch == "eval":
                    evaluated.add(receiver)
                elif switch == "train" and receiver in evaluated:
                    if working or id(node) in chosen:
                        restored.add(id(node))
        if not restored:
            return facts
        return frozenset(
            f
            for f in facts
            if not (f.mode is Mode.TRAIN and f.origin is Origin.SWITCHED and id(f.site) in restored)
        )

    def _chosen_for_both_flags(self, facts: frozenset) -> frozenset:
        """A function that trains under a flag and calls `train()` as a statement of its own
        body, whatever the flag: it runs in training mode by choice on both sides of the
        flag; only a caller that fixes the flag off makes an evaluation of it (reported at
        that call). Those facts are no evaluation in training mode here."""
        if self.info is None:
            return facts
        chosen = {
            id(small.value)
            for statement in self.body
            if type(statement) is cst.SimpleStatementLine
            for small in statement.body
            if type(small) is cst.Expr
            and type(small.value) is cst.Call
            and type(small.value.func) is cst.Attribute
            and small.value.func.attr.value == "train"
            and not small.value.args
        }
        if not chosen:
            return facts
        return frozenset(
            f
            for f in facts
            if not (f.mode is Mode.TRAIN and f.origin is Origin.SWITCHED and id(f.site) in chosen)
        )

    def training_step(self, call: cst.Call, kind: str, states: States) -> States:
        sources = self._step_sources(call, kind, states[0])
        region = next((r for r in reversed(self.regions) if r.kind is not RegionKind.NEUTRAL), None)
        region_id = id(region.node) if region else 0
        if kind == "backward" and sources is not None:
            self.backpropagated[region_id] = (
                self.backpropagated.get(region_id, frozenset()) | sources
            )
        elif kind == "step" and sources is None and region_id in self.backpropagated:
            # an optimizer built elsewhere steps what this region's losses reached: a module
            # forwarded only beside the loss (a frozen reference model) gets no gradient
            sources = self.backpropagated[region_id]
        elif kind == "step" and sources is not None and region_id in self.backpropagated:
            sources = _parts_backpropagated(sources, self.backpropagated[region_id])
        if sources is not None:
            scope = self.info.node if self.info is not None else self.file.module
            owners = stepped_owners(
                self, scope, states[0], lambda step: self._step_sources(step, "step", states[0])
            )
            if owners is not None:  # every step says what it updates: only that trains
                sources = within_owners(sources, owners) or None
                if sources is None:
                    return states
        trained = self._trained_keys(states[0], sources)
        if not trained and sources is None and kind == "backward":
            self.train_loss_parameter(call, states)  # the loss is the caller's
        for key in trained:
            self._record_training(call, key, _subject_of(key), region, states)
        return states

    def _record_training(
        self,
        site: cst.CSTNode,
        key: str,
        subject: str,
        region: Optional[Region],
        states: States,
        place: Optional[Place] = None,
        via: tuple[Place, ...] = (),
    ) -> None:
        """`key` trained at `site` (or at `place`, a helper's training site reached through
        the calls `via`), in the mode `key` has on these paths."""
        # a backward pass with autograd off trains nothing: it is guarded (`if loss.requires_grad:`,
        # a helper shared by training and a no_grad evaluation) or fails (EVL009's business)
        states = tuple(
            s for s in states if not s.grad or any(g.grad is not Grad.OFF for g in s.grad)
        )
        if not states:
            return
        eval_facts: frozenset = frozenset()
        from_entry = False
        for state in states:
            facts = self._delegated_mode(key, state) or state.mode_in_tree(key) or frozenset()
            eval_facts |= frozenset(
                f for f in facts if f.mode is Mode.EVAL and _left_in_eval(f, facts)
            )
            from_entry = from_entry or any(f.mode is Mode.ENTRY for f in facts)
        ran_in = (self._forward_modes or {}).get(key) if place is None else None
        if ran_in is not None:
            # what a training step trains in is the mode its forwards ran in: an `eval()`
            # that no forward of this function ran after (`model.train()` comes first in the
            # loop body that computes the loss) does not reach the step on any path that
            # computed a loss; the paths that reach the backward without a forward do not train
            eval_facts &= ran_in
        region_id = id(region.node) if region else 0
        matters = self._key_id(key) not in self.file.mode_independent
        entry = self.training.get((region_id, key))
        if entry is None:
            self._note_hidden_mode_methods(place.node if place else site, key, subject)
            self.training[(region_id, key)] = PendingTraining(
                place or Place(site, self.file.unit),
                subject,
                region,
                eval_facts,
                from_entry,
                self.file.next_order(),
                via,
                key,
                matters,
            )
        else:
            self.training[(region_id, key)] = replace(
                entry,
                eval_facts=entry.eval_facts | eval_facts,
                from_entry=entry.from_entry or from_entry,
                mode_matters=entry.mode_matters or matters,
            )

    def _step_sources(self, call: cst.Call, kind: str, state: PathState) -> Optional[frozenset]:
        """Modules whose forward feeds this step: the loss's data flow for backward(),
        the optimizer's parameters for step(); None when that cannot be told."""
        func = call.func
        if kind == "backward":
            if type(func) is cst.Attribute and not (
                type(func.value) is cst.Name and func.value.value in ("accelerator", "fabric")
            ):
                sources = self.taint_of(func.value, state)
            else:
                sources = (
                    frozenset().union(*(self.taint_of(a.value, state) for a in call.args))
                    if call.args
                    else frozenset()
                )
            return sources or None
        receiver = func.value if type(func) is cst.Attribute else None
        if (
            receiver is not None
            and type(func) is cst.Attribute
            and func.attr.value == "step"
            and call.args
            and not is_optimizer_name(receiver)
        ):
            receiver = call.args[0].value  # scaler.step(optimizer)
        name = dotted_name(receiver) if receiver is not None else None
        if name is not None:
            scope = self.info.node if self.info is not None else self.file.module
            bound = latest_binding(scope, call, name)
            if bound is not None:  # this scope's own optimizer, not one of another scope
                owners = self.file._parameter_owners(bound) or (
                    # what this step steps was built over these parameters, whatever built it
                    parameters_owners(bound) if type(bound) is cst.Call else set()
                )
                return frozenset(_fresh_owner(o, state) for o in owners) if owners else None
        linked = self.file.optimizer_params().get(name or "")
        return frozenset(linked) if linked else None

    def _trained_keys(self, state: PathState, sources: Optional[frozenset] = None) -> list[str]:
        forwarded: set[str] = set()
        for region in reversed(self.regions):
            forwarded |= self.grad_forwards.get(id(region.node), set())
            if forwarded:
                break
        if sources is not None:
            forwarded = set(sources)
        links = self.file.optimizer_keys()
        info = self.info
        params = {*info.params, *info.keyword_only} - {"self", "cls"} if info else set()
        keys = []
        for key in sorted(forwarded - self.frozen):
            if links and not any(
                link == key or link.startswith(key + ".") or key.startswith(link + ".")
                for link in links
            ):
                # a module parameter: the caller passes the module and its optimizer
                # (`find_lr(model, loss_fn, optimizer, loader)`), the file's links are theirs
                if not self._aliased_link(key, links, state) and key.split(".")[0] not in params:
                    continue
                owners = self._own_optimizer_owners()
                if owners and key not in {_fresh_owner(o, state) for o in owners}:
                    continue  # this function builds its optimizer over other modules' parameters
            keys.append(key)
        return keys

    def _own_optimizer_owners(self) -> set[str]:
        """Modules whose parameters an optimizer built by a statement of this function's own
        body steps (`optimizer = SGD(heads.parameters())`): a module the caller passes that
        is not among them gets gradients here but is not trained."""
        owners: set[str] = set()
        for statement in self.body if self.info is not None else ():
            if type(statement) is cst.SimpleStatementLine:
                for small in statement.body:
                    if type(small) is cst.Assign and type(small.value) is cst.Call:
                        owners |= self.file._parameter_owners(small.value)
        return owners

    def _aliased_link(self, key: str, links: frozenset[str], state: PathState) -> bool:
        return any(
            state.key_of(link.split(".")[0]) == key or state.key_of(link) == key for link in links
        )


def _fresh_owner(owner: str, state: PathState) -> str:
    """The key of a module an optimizer steps: a parameter's name rebound to a new module
    (`def train(model="fcn"): model = build(model); opt = Adam(model.parameters())`) names
    the new module's key (see kept_modules.fresh_key), not the caller's argument."""
    root, dot, rest = owner.partition(".")
    key = state.key_of(root)
    if key != f"{root}'":
        return owner
    return f"{key}{dot}{rest}"


def _subject_of(key: str) -> str:
    """How the code names the module of `key`: a fresh key's (`model'`) by its variable."""
    root, dot, rest = key.partition(".")
    if root.endswith("'") and root[:-1].isidentifier():
        return f"{root[:-1]}{dot}{rest}"
    return key


def _parts_backpropagated(stepped: frozenset, backpropagated: frozenset) -> frozenset:
    """What an optimizer step trains: of a module it steps (`Adam(model.parameters())`),
    the parts this region's losses backpropagated through (`model.D`, `model.G`) when the
    losses reached only parts of it, each in its own mode; the whole module otherwise."""
    found: set[str] = set()
    for key in stepped:
        parts = {b for b in backpropagated if b.startswith(key + ".")}
        found |= parts if parts and key not in backpropagated else {key}
    return frozenset(found)


def as_built_parts(facts: frozenset, call: cst.CSTNode) -> frozenset:
    """`model.log_images(x)` whose method runs only parts its class keeps in eval mode from
    its constructor or switches itself (see eval_parts.py): a module in training mode only
    because it was built so (no `train()` since) runs those parts in eval mode. A `train()`
    of the whole module (or an unknown mode) put them back in training: those facts stay."""
    left = frozenset(
        f for f in facts if not (f.mode is Mode.TRAIN and f.origin is Origin.CONSTRUCTED)
    )
    return left if left else frozenset({ModeFact(Mode.EVAL, Origin.CALLED, call)})
