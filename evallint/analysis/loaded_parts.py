"""A module built around a pretrained one keeps it in the mode it was loaded in.

`prompt_model = PromptModel(plm, template)` where `plm` came from `from_pretrained()` (eval
mode) and nothing switched it since: the new module is in training mode, but the part that
matters most, the pretrained network it keeps, is still in eval mode. Training the new
module without `train()` trains that network with Dropout off, the EVL003 of a plain
fine-tuning loop one wrapper removed. The new module's mode facts gain the loaded eval facts
of the modules passed to its constructor, so a later `train()` or `eval()` on it settles
both.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.lattice import Mode, Origin, PathState
from evallint.analysis.symbols import chain_receiver
from evallint.analysis.vocabulary import SAME_MODULE_METHODS


class LoadedParts(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    def loaded_parts(self, value: cst.BaseExpression, state: PathState) -> Optional[frozenset]:
        """The loaded eval-mode facts of the modules a construction is given (`Wrapper(plm)`,
        `Wrapper(backbone=plm).to(device)`); None when it is given none."""
        call = chain_receiver(value, SAME_MODULE_METHODS)
        if type(call) is not cst.Call:
            return None
        found: frozenset = frozenset()
        for arg in call.args:
            key = self.resolve(arg.value, state)
            facts = state.mode_in_tree(key) if key is not None else None
            if facts and all(f.mode is Mode.EVAL and f.origin is Origin.LOADED for f in facts):
                found |= facts
        return found or None

    def wrapped_modes(self, value: cst.BaseExpression, state: PathState) -> Optional[frozenset]:
        """`searcher = GreedySearch(encoder, decoder)` with a module class of another project
        file that only keeps what it is given (it builds no layer and reads no `training`
        flag: plain_modules.py): its own mode changes nothing, so it computes in the modes of
        the modules it keeps. Their facts, merged; None unless every argument is a module
        with known facts or a literal (and at least one is a module)."""
        call = chain_receiver(value, SAME_MODULE_METHODS)
        if type(call) is not cst.Call or not call.args or self._plain_imported(call) is not True:
            return None
        found: frozenset = frozenset()
        for arg in call.args:
            if arg.star:
                return None
            if type(arg.value) in (cst.Name, cst.Attribute):
                key = self.resolve(arg.value, state)
                facts = state.mode_in_tree(key) if key is not None else None
                if not facts or any(f.mode is Mode.ENTRY for f in facts):
                    return None  # unknown, or the caller's (a parameter's facts are its own)
                found |= facts
            elif not self._holds_no_module(arg.value, state):
                return None
        return found or None
