"""Functions of this file that clear gradients (`reset_grad(opt)`, `self.reset_grad()`): a loop
that calls one clears its gradients (EVL008), and a store read by such a callee is read by
training code. Moved out of `observations`."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart


class GradientClearers(InterpreterPart):
    """The interpreter part that finds the file's gradient-clearing helpers."""

    def calls_gradient_clearer(self, loop: cst.CSTNode) -> bool:
        """The loop calls a function of this file (`reset_grad(opt)`, `self.reset_grad()`)
        that clears gradients: calls `zero_grad()` / `.grad.zero_()` or assigns `None` to
        a `.grad`, itself or through one more such helper."""
        from evallint.analysis.walk import iter_nodes

        return any(
            type(node) is cst.Call and self._clears_gradients(self._local_function(node), 2)
            for node in iter_nodes(loop)
        )

    def _local_function(self, call: cst.Call) -> Optional[cst.FunctionDef]:
        func = call.func
        if type(func) is cst.Name:
            cursor = self.info
            while cursor is not None:
                if func.value in cursor.nested:
                    return cursor.nested[func.value].node
                cursor = cursor.parent
            found = self.file.functions.get(func.value)
            return found.node if found is not None else None
        if type(func) is cst.Attribute and type(func.value) is cst.Name:
            owner = self._owner()
            if func.value.value == "self" and owner is not None:
                method = owner.methods.get(func.attr.value)
                return method.node if method is not None else None
        return None

    def _clears_gradients(self, function: Optional[cst.FunctionDef], depth: int) -> bool:
        from evallint.analysis.walk import iter_nodes

        if function is None or depth == 0:
            return False
        for node in iter_nodes(function.body):
            if type(node) is cst.Call and type(node.func) is cst.Attribute:
                attr = node.func.attr.value
                receiver = node.func.value
                if attr == "zero_grad" or (
                    attr == "zero_"
                    and type(receiver) is cst.Attribute
                    and receiver.attr.value == "grad"
                ):
                    return True
            if type(node) is cst.Assign and type(node.value) is cst.Name:
                if node.value.value == "None" and any(
                    type(t.target) is cst.Attribute and t.target.attr.value == "grad"
                    for t in node.targets
                ):
                    return True
            if type(node) is cst.Call and self._clears_gradients(
                self._local_function(node), depth - 1
            ):
                return True
        return False
