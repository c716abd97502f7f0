"""Functions of this file that clear gradients (`reset_grad(opt)`, `self.reset_grad()`): a loop
that calls one clears its gradients (EVL008), and a store read by such a callee is read by
training code. Moved out of `observations`."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.instances import imported_class
from evallint.analysis.scope import ClassInfo, FunctionInfo


class GradientClearers(InterpreterPart):
    """The interpreter part that finds the file's gradient-clearing helpers."""

    def calls_gradient_clearer(self, loop: cst.CSTNode) -> bool:
        """The loop calls a function that clears gradients: calls `zero_grad()` /
        `.grad.zero_()` or assigns `None` to a `.grad`, itself or through one more such
        helper. A function of this file is read here (`reset_grad(opt)`,
        `self.reset_grad()`); one of another project file or an inherited method
        (`self.standard_loss(x, y)` of a base class that calls `self.optimizer.zero_grad()`)
        through its summary."""
        from evallint.analysis.walk import iter_nodes

        return any(
            type(node) is cst.Call and self._call_clears(node, self.info, 2)
            for node in iter_nodes(loop)
        )

    def _call_clears(self, call: cst.Call, scope: Optional[FunctionInfo], depth: int) -> bool:
        local = self._local_info(call)
        if local is not None:
            return self._clears_gradients(local, depth)
        # followed into another file whatever it passes: only loops that step without a
        # visible clearing get here
        resolved = self.file.resolve_function(call, scope, count=False, passes_module=True)
        return resolved is not None and resolved[0] is not None and resolved[0].clears_grad

    def _local_function(self, call: cst.Call) -> Optional[cst.FunctionDef]:
        info = self._local_info(call)
        return info.node if info is not None else None

    def _local_info(self, call: cst.Call) -> Optional[FunctionInfo]:
        func = call.func
        if type(func) is cst.Name:
            cursor = self.info
            while cursor is not None:
                if func.value in cursor.nested:
                    return cursor.nested[func.value]
                cursor = cursor.parent
            found = self.file.functions.get(func.value)
            return found if found is not None else self._module_forward(func.value)
        if type(func) is cst.Attribute and type(func.value) is cst.Name:
            owner = self._owner()
            if func.value.value == "self" and owner is not None:
                return owner.methods.get(func.attr.value)
        return None

    def _module_forward(self, name: str) -> Optional[FunctionInfo]:
        """`loss = model(x, y)` with `model = Net()` the only binding of `model` in this scope
        (Net a module class of this file or of another project file): `Net.forward`, which the call runs, so a
        `self.zero_grad()` at its start clears the gradients every iteration."""
        from evallint.analysis.walk import iter_nodes

        body = self.info.node.body if self.info is not None else self.file.module
        classes: list = []
        for node in iter_nodes(body):
            if type(node) is not cst.Assign or not any(
                type(t.target) is cst.Name and t.target.value == name for t in node.targets
            ):
                continue
            value = node.value
            owner = (
                self.file.classes.get(value.func.value)
                if type(value) is cst.Call and type(value.func) is cst.Name
                else None
            )
            if owner is None and type(value) is cst.Call:
                # `model = Net(...)` with Net a module class of another project file
                found = imported_class(self.file, value, module_class=True)
                owner = found[1] if found is not None else self._star_imported_class(value)
            classes.append(owner)
        if len(classes) != 1 or classes[0] is None or not classes[0].is_module:
            return None
        return classes[0].methods.get("forward")

    def _star_imported_class(self, call: cst.Call) -> Optional[ClassInfo]:
        """`Net(...)` after `from net import *`, Net a class of that project file."""
        project = self.file.project
        if project is None or type(call.func) is not cst.Name:
            return None
        name = call.func.value
        if self.file.imports.is_imported(name):
            return None  # bound by a named import: imported_class decides
        for module in self.file.imports.star_modules:
            if project.is_class(self.file.path, module, name):
                analysis = project.analysis(self.file.path, module)
                return analysis.classes.get(name) if analysis is not None else None
        return None

    def _clears_gradients(self, function: FunctionInfo, depth: int) -> bool:
        from evallint.analysis.walk import iter_nodes

        if depth == 0:
            return False
        for node in iter_nodes(function.node.body):
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
            if type(node) is cst.Call and self._call_clears(node, function, depth - 1):
                return True
        return False
