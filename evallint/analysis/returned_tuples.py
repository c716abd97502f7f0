"""Modules a function hands out inside a returned tuple, position by position.

`model, tokenizer = load_backbone(path)` with `load_backbone` a function of another project
file that loads the model with `from_pretrained()` (eval mode) and returns it with its
tokenizer: the caller's `model` is in eval mode, as if it had loaded it itself. The summary
keeps, per position of a tuple every `return` gives, the mode facts of a module the function
built or loaded there (not one its caller passed: returned_arguments.py follows those), and
the caller binds each unpacked name to them.
"""

from __future__ import annotations

from typing import Optional, cast

import libcst as cst

from evallint.analysis.context import InterpreterPart, States
from evallint.analysis.kept_modules import fresh_key
from evallint.analysis.lattice import Mode, ModeFact
from evallint.analysis.symbols import dotted_name
from evallint.analysis.values import ModuleValue

ElementFacts = Optional[tuple[frozenset, bool]]
"""The mode facts of the module at one position of a returned tuple and whether its mode
matters; None for a position that holds no module the function made."""


class ReturnedTuples(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    def note_return_value(self, value: cst.BaseExpression, states: States) -> None:
        """Record what one `return` hands out: the value as a whole, and per tuple position."""
        self.return_values.append(self.value_of(value, states[0]) if states else ModuleValue())
        if type(value) is not cst.Tuple or not states:
            self.returned_tuples.append(None)
            return
        positions: list[ElementFacts] = []
        for element in value.elements:
            if type(element) is not cst.Element:
                self.returned_tuples.append(None)  # `return *mods, opt`: positions unknown
                return
            positions.append(self._element_facts(element.value, states))
        self.returned_tuples.append(tuple(positions))

    def _element_facts(self, item: cst.BaseExpression, states: States) -> ElementFacts:
        held = self.value_of(item, states[0])
        if held.fresh is not None:
            return held.fresh, held.mode_matters
        key = held.key
        if key is None or (key in self.scope_keys and self._from_caller(key)):
            return None
        facts: frozenset = frozenset()
        for state in states:
            facts |= state.mode_of(key) or frozenset()
        if not facts or any(f.mode is Mode.ENTRY for f in facts):
            return None
        return facts, self._key_id(key) not in self.file.mode_independent

    def returned_element_facts(self) -> Optional[tuple[ElementFacts, ...]]:
        """Per position, the module facts of a tuple that every `return` gives with the same
        length (merged over the returns); None otherwise or when no position holds one."""
        tuples = self.returned_tuples
        if not tuples or any(t is None for t in tuples):
            return None
        shaped = cast("list[tuple[ElementFacts, ...]]", tuples)
        if len({len(t) for t in shaped}) != 1:
            return None
        merged: list[ElementFacts] = []
        for position in zip(*shaped):
            if any(p is None for p in position):
                merged.append(None)
                continue
            facts: frozenset = frozenset()
            matters = False
            for p in cast("tuple[tuple[frozenset, bool], ...]", position):
                facts |= p[0]
                matters = matters or p[1]
            merged.append((facts, matters))
        return tuple(merged) if any(m is not None for m in merged) else None

    def bind_returned_elements(
        self, elements: list[cst.BaseExpression], value: cst.BaseExpression, states: States
    ) -> Optional[States]:
        """`plm, tok = load_plm(path)` with a project function (of this file or another) whose
        summary gives the module facts per returned position, or `self.model, self.config =
        self.load()` with a method of the class: bind each name (or attribute) to a module in
        those facts, their site the call. None when the call is no such function."""
        if type(value) is not cst.Call or not (
            type(value.func) is cst.Name
            or (
                type(value.func) is cst.Attribute
                and type(value.func.value) is cst.Name
                and value.func.value.value == "self"
            )
        ):
            return None
        resolved = self.file.resolve_function(value, self.info, count=False, passes_module=True)
        summary = resolved[0] if resolved else None
        positions = summary.return_element_facts if summary is not None else None
        if positions is None or len(positions) != len(elements):
            return None
        result = []
        for state in states:
            for element in elements:
                state = self._forget(element, state)
            for element, position in zip(elements, positions):
                name = dotted_name(element) if position is not None else None
                if name is None or (type(element) is not cst.Name and name.count(".") != 1):
                    continue  # a name, or an attribute of `self` or of a local object
                key = fresh_key(self.info, name, state)
                facts = frozenset(ModeFact(f.mode, f.origin, value) for f in position[0])
                state = state.with_alias(name, key).with_mode(key, facts)
                (
                    self.file.mode_independent.discard
                    if position[1]
                    else self.file.mode_independent.add
                )(self._key_id(key))
            result.append(state)
        return tuple(result)
