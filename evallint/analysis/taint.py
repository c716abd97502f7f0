"""Which modules' autograd graph flows into an expression."""

from __future__ import annotations

from typing import Callable, Optional, cast

import libcst as cst

from evallint.analysis.context import InterpreterPart
from evallint.analysis.declared_returns import plain_returned_elements
from evallint.analysis.lattice import (
    PathState,
)
from evallint.analysis.overrides import dispatched_summaries
from evallint.analysis.symbols import dotted_name
from evallint.analysis.vocabulary import (
    GRADIENT_FUNCTIONS,
    NO_GRAD_METHODS,
    NOT_ENVIRONMENT_WORDS,
    OPTIMIZER_WORDS,
    PARAMETER,
    words,
)
from evallint.analysis.walk import NodeMemo, iter_nodes, returns_of

_GRAPH_CUTTING_METHODS = frozenset(
    {
        "detach",
        "detach_",
        "item",
        "tolist",
        "numpy",
        "argmax",
        "argmin",
        "argsort",
        "multinomial",
        "long",
        "int",
        "bool",
        "eq",
        "ne",
        "gt",
        "lt",
        "ge",
        "le",
        "size",
        "dim",
        "numel",
        "sign",
        "round",
        "floor",
        "ceil",
        "batch_decode",
        "decode",
    }
)
"""Calls whose result carries no autograd graph (numbers, indices, booleans, text)."""


_GRAPH_FREE_ATTRIBUTES = frozenset({"data", "grad", "shape", "dtype", "device", "ndim"})


_INDEPENDENT_COPIES = frozenset({"copy.deepcopy"})
"""`probe = copy.deepcopy(model)`: the copy's parameters are new leaf tensors (and a tensor
that carries a graph cannot be deep-copied at all: only leaves support the protocol), so no
graph connects the copy to the original: a loss computed with the copy trains the copy, not
the module it was copied from."""


_MODULE_BOOKKEEPING = frozenset(
    {"eval", "train", "to", "cuda", "cpu", "state_dict", "load_state_dict", "modules", "children"}
)
"""Module methods that compute nothing from the parameters' values."""


_COMPREHENSIONS = (cst.ListComp, cst.GeneratorExp, cst.SetComp, cst.DictComp)


_EXPRESSION_PARTS = (cst.BaseExpression, cst.Arg, cst.Element, cst.BaseElement)


_IS_EXPRESSION_PART: dict[type, bool] = {}
"""type -> whether `_expression_children` follows it (cached: ABC isinstance checks are slow)."""


def _expression_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    from evallint.analysis.walk import _child_fields, _kind

    children: list[cst.CSTNode] = []
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        value_type = type(value)
        if value_type is list or value_type is tuple:
            children.extend(v for v in value if _kind(type(v)))
            continue
        follows = _IS_EXPRESSION_PART.get(value_type)
        if follows is None:
            follows = _IS_EXPRESSION_PART[value_type] = issubclass(value_type, _EXPRESSION_PARTS)
        if follows:
            children.append(value)
    return children


_VALUES_AND_INDICES = frozenset({"max", "min", "topk", "sort", "kthvalue", "mode", "median"})
"""Tensor methods (and `torch.` functions) that, given a dimension, return (values, indices):
the indices are integers, with no graph."""


def _indices_element(value: cst.BaseExpression, index: int, count: int, imports) -> bool:
    """`_, predicted = outputs.max(1)`, `values, idx = torch.topk(x, k)`: element 1 is the
    indices, which carry no graph."""
    if index != 1 or count != 2 or type(value) is not cst.Call:
        return False
    func = value.func
    if type(func) is not cst.Attribute or func.attr.value not in _VALUES_AND_INDICES:
        return False
    qualified = imports.qualify(func) or ""
    if qualified.startswith("torch."):
        return len(value.args) >= 2  # `torch.max(x, 1)`; `torch.max(a, b)` is elementwise
    return bool(value.args)  # `x.max(1)`, `x.topk(5)`


def _indices_subscript(node: cst.Subscript, imports) -> bool:
    """`torch.max(out, 1)[1]`, `out.data.max(1)[1]`: the indices of a (values, indices)
    pair, integers with no graph."""
    if len(node.slice) != 1 or type(node.slice[0].slice) is not cst.Index:
        return False
    index = node.slice[0].slice.value
    return (
        type(index) is cst.Integer
        and index.value == "1"
        and _indices_element(node.value, 1, 2, imports)
    )


def _index_result(node: cst.CSTNode, imports) -> bool:
    """`torch.max(out, 1)[1]`, `out.topk(5).indices`: the integer indices of a (values,
    indices) result, which never require grad, whatever graph the values carry."""
    if type(node) is cst.Subscript:
        return _indices_subscript(node, imports)
    return (
        type(node) is cst.Attribute
        and node.attr.value == "indices"
        and type(node.value) is cst.Call
        and type(node.value.func) is cst.Attribute
        and node.value.func.attr.value in _VALUES_AND_INDICES
    )


class Taint(InterpreterPart):
    """Part of the interpreter (see interpreter.py)."""

    def carries_known_graph(self, expr: cst.BaseExpression, state: PathState) -> bool:
        """`carries_graph`, not counting parameters that hold a module only if a caller
        passes one and nothing hints at it: `FIELD.process([FIELD.preprocess(text)])` in an
        uncalled `classify(text)` hands out text, not a forward's graph."""
        taint = self.taint_of(expr, state)
        if any(self.candidate_keys.get(key, 0) != 2 for key in taint):
            return True
        return bool(self.graph_holders and self.graph_names(expr) & self.graph_holders)

    def taint_of(self, expr: cst.BaseExpression, state: PathState) -> frozenset:
        """Modules whose forward output flows into `expr` with its graph (not through
        `.detach()`, `.item()` or a number conversion)."""
        found: set[str] = set()
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            node_type = type(node)  # exact types: these classes have no subclasses
            if node_type is cst.Comparison:
                continue  # a boolean tensor has no graph
            if _index_result(node, self.imports):
                continue
            if (
                node_type is cst.Attribute
                and cast(cst.Attribute, node).attr.value in _GRAPH_FREE_ATTRIBUTES
            ):
                continue
            if node_type is cst.Call:
                node = cast(cst.Call, node)
                func = node.func
                if type(func) is cst.Attribute and func.attr.value in _GRAPH_CUTTING_METHODS:
                    continue
                if type(func) is cst.Name and func.value in ("float", "int", "bool", "len", "str"):
                    continue
                if (self.imports.qualify(func) or "").split(".")[-1] in _GRAPH_CUTTING_METHODS:
                    continue
                if (self.imports.qualify(func) or "").startswith("math."):
                    continue  # `math.sqrt(loss / n)`: the standard library returns a float
                if type(func) is cst.Name and self._returns_no_graph(func.value):
                    continue  # `train_step(model, x)` whose every return is `loss.item()`
                qualified = self.imports.qualify(func)
                if qualified in _INDEPENDENT_COPIES:
                    continue  # a deep copy's parameters are new leaves: no graph reaches back
                if qualified in GRADIENT_FUNCTIONS:
                    if _creates_graph(node, qualified):
                        found.add("torch.autograd.grad")  # gradients with their own graph
                    continue  # plain gradients carry no graph
                found |= self._returned_forwards(node, state)
                target = self._forward_target(node, state)
                if target is not None and not (
                    type(func) is cst.Attribute and func.attr.value in NO_GRAD_METHODS
                ):
                    found.add(target[0])
                if (
                    target is None
                    and type(func) is cst.Attribute
                    and func.attr.value not in NO_GRAD_METHODS
                    and func.attr.value not in _MODULE_BOOKKEEPING
                ):
                    # `flow.loss(theta, x)`: a module's own method computes from its parameters
                    owner = self.resolve(func.value, state)
                    if owner is not None and self.candidate_keys.get(owner, 0) != 2:
                        found.add(owner)
                callee = (dotted_name(func) or "").split(".")[-1]
                for arg in node.args if not callee[:1].isupper() else ():
                    # `compute_loss(model, x)` may run the model; `Wrapper(model)` builds an
                    # object (a module or a helper), not a tensor with a graph
                    key = self.resolve(arg.value, state)
                    if key is not None:
                        found.add(key)
            name = (
                dotted_name(cast(cst.BaseExpression, node))
                if node_type is cst.Name or node_type is cst.Attribute
                else None
            )
            if name is not None and name in self.taint:
                found |= self.taint[name]
            if node_type is cst.Attribute:
                # `outputs.loss`: `loss` here is no variable
                stack.append(cast(cst.Attribute, node).value)
                continue
            if node_type in _COMPREHENSIONS and self._element_keeps_graph(node):
                # `[w * loss for w, loss in zip(weights, losses)]`: built from what it iterates
                # (not `sum(t.item() for t in terms)`: the element cuts each graph)
                clause: Optional[cst.CompFor] = cast(cst.ListComp, node).for_in
                while clause is not None:
                    stack.append(clause.iter)
                    clause = clause.inner_for_in
            for child in _expression_children(node):
                stack.append(child)
        return frozenset(found)

    def _element_keeps_graph(self, comprehension: cst.CSTNode) -> bool:
        """Whether a comprehension's element reads one of its loop variables with its graph."""
        bound: set[str] = set()
        clause: Optional[cst.CompFor] = cast(cst.ListComp, comprehension).for_in
        while clause is not None:
            bound.update(n.value for n in iter_nodes(clause.target) if type(n) is cst.Name)
            clause = clause.inner_for_in
        if type(comprehension) is cst.DictComp:
            elements: tuple[cst.BaseExpression, ...] = (comprehension.key, comprehension.value)
        else:
            elements = (cast(cst.ListComp, comprehension).elt,)
        return any(
            name.split(".")[0] in bound
            for element in elements
            for name in self.graph_names(element)
        )

    def _returned_forwards(self, call: cst.Call, state: PathState) -> frozenset:
        """`self._inference(x)`, a function of this file or project that returns a module's
        forward output with its graph: those modules (mapped onto this call's receiver and
        arguments), so a loss computed from it trains them."""
        resolved = self._own_function(call, state)
        if resolved is None:
            return frozenset()
        found = frozenset(item for item in resolved(state) if not item.startswith(PARAMETER))
        return found or self._overridden_forwards(call, state)

    def _overridden_forwards(self, call: cst.Call, state: PathState) -> frozenset:
        """`self._inference(batch)` where this class leaves the method abstract: what the
        overrides of the project's subclasses return, `self`'s modules being the caller's."""
        found: set[str] = set()
        for override in dispatched_summaries(self.file, self.info, call):
            # the arguments' own sources are this call's already (see taint_of)
            returned = override.return_graph or ()
            found.update(i for i in returned if i == "self" or i.startswith("self."))
        return frozenset(found)

    def graph_names(
        self, expr: cst.BaseExpression, skip_call: Optional[Callable[[cst.Call], bool]] = None
    ) -> frozenset:
        """Dotted names read by `expr` whose graph would reach its value (not through
        `.detach()`, `.item()`, a number conversion, a comparison or `.shape`, nor through a
        call that `skip_call` says returns no graph)."""
        found: set[str] = set()
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            node_type = type(node)
            if node_type is cst.Comparison or node_type is cst.Lambda:
                continue
            if _index_result(node, self.imports):
                continue  # `torch.max(out, 1)[1]`: integers, no graph
            if node_type is cst.Call and skip_call is not None and skip_call(cast(cst.Call, node)):
                continue
            if (
                node_type is cst.Attribute
                and cast(cst.Attribute, node).attr.value in _GRAPH_FREE_ATTRIBUTES
            ):
                continue
            if node_type is cst.Call and (
                _cuts_graph(cast(cst.Call, node).func)
                or (self.imports.qualify(cast(cst.Call, node).func) or "").startswith("math.")
                or self._detached_gradients(cast(cst.Call, node))
            ):
                continue
            if node_type is cst.Name or node_type is cst.Attribute:
                name = dotted_name(cast(cst.BaseExpression, node))
                if name is not None:
                    found.add(name)
                    continue
            if node_type is cst.Attribute:
                stack.append(cast(cst.Attribute, node).value)
                continue
            if node_type is cst.Call:
                # `f(x)` reads `x`; `loss.repeat(n)` reads `loss`; the function's name is no value
                node = cast(cst.Call, node)
                func = node.func
                if type(func) is cst.Attribute:
                    stack.append(func.value)
                elif type(func) is not cst.Name:
                    stack.append(func)
                stack.extend(a.value for a in node.args)
                continue
            stack.extend(_expression_children(node))
        return frozenset(found)

    def _detached_gradients(self, call: cst.Call) -> bool:
        """`torch.autograd.grad(loss, w)` without `create_graph=True`: the gradients come
        back detached, so the names it reads (the loss) do not reach the value's graph."""
        qualified = self.imports.qualify(call.func)
        return qualified in GRADIENT_FUNCTIONS and not _creates_graph(call, qualified)

    def element_graph_free(self, value: cst.BaseExpression, index: int, count: int) -> bool:
        """`loss, n_correct = helper(...)`: element `index` of every tuple the local helper
        returns is a plain number (`.item()`, a count, a float computed from them), or that
        the method called declares plain (`-> (Result, float)`, see declared_returns.py), or
        an environment's step result (see `_environment_step`)."""
        if _environment_step(value, count):
            return True
        if type(value) is cst.Call and type(value.func) is cst.Attribute:
            plain = plain_returned_elements(
                self.file, self._owner(), value, self.imported_module_classes.get
            )
            return plain is not None and len(plain) == count and plain[index]
        if type(value) is not cst.Call or type(value.func) is not cst.Name:
            return False
        function = self._local_def(value.func.value)
        if function is None:
            return False
        returns = self._returns(function.node)
        for statement in returns:
            result = statement.value
            if type(result) is not cst.Tuple or len(result.elements) != count:
                return False
            if not _graph_free_value(result.elements[index].value, function.node):
                return False
        return bool(returns)

    def _local_def(self, name: str):  # -> Optional[FunctionInfo]
        cursor = self.info
        while cursor is not None:
            if name in cursor.nested:
                return cursor.nested[name]
            cursor = cursor.parent
        return self.file.functions.get(name)

    def _returns_no_graph(self, name: str) -> bool:
        """A function of this file (or enclosing scope) whose every `return` gives a plain
        number, text or a detached value."""
        cursor = self.info
        function = None
        while cursor is not None and function is None:
            function = cursor.nested.get(name)
            cursor = cursor.parent
        if function is None:
            function = self.file.functions.get(name)
        if function is None:
            return False
        return self._memo("_returns_no_graph").get(function.node, _returns_no_graph)

    def _returns(self, function: cst.FunctionDef) -> list[cst.Return]:
        """`function`'s own `return` statements, found once per file's analysis."""
        return self._memo("_returns").get(function, _returns_of)

    def _memo(self, name: str) -> NodeMemo:
        """The file's memo `name` (kept by the file's analysis, so it dies with its tree)."""
        memo = self.file.__dict__.get(name)
        if memo is None:
            memo = self.file.__dict__[name] = NodeMemo()
        return memo


def _returns_no_graph(function: cst.FunctionDef) -> bool:
    returns = _returns_of(function)
    return bool(returns) and all(
        r.value is not None and _graph_free_value(r.value, function) for r in returns
    )


def _creates_graph(call: cst.Call, qualified: object) -> bool:
    """`torch.autograd.grad(..., create_graph=True)` (or a `torch.autograd.functional`
    gradient): the gradients are differentiable."""
    return qualified in GRADIENT_FUNCTIONS and any(
        a.keyword is not None
        and a.keyword.value == "create_graph"
        and type(a.value) is cst.Name
        and a.value.value == "True"
        for a in call.args
    )


def _cuts_graph(func: cst.BaseExpression) -> bool:
    if type(func) is cst.Attribute:
        return func.attr.value in _GRAPH_CUTTING_METHODS
    return type(func) is cst.Name and func.value in ("float", "int", "bool", "len", "str")


def _graph_free_value(
    value: cst.BaseExpression, function: Optional[cst.FunctionDef] = None, depth: int = 3
) -> bool:
    """A plain number, text or detached value: `loss.item()`, `float(x)`, a constant, an
    arithmetic of such, or (inside `function`) a name every assignment gives such a value."""
    value_type = type(value)
    if value_type in (cst.Tuple, cst.List):
        elements = cast("cst.Tuple | cst.List", value).elements
        return all(_graph_free_value(e.value, function, depth) for e in elements)
    if value_type is cst.Dict:  # `{"val_loss": loss.item(), "val_acc": acc}`
        return all(
            type(entry) is cst.DictElement and _graph_free_value(entry.value, function, depth)
            for entry in cast(cst.Dict, value).elements
        )
    if value_type in (cst.ListComp, cst.GeneratorExp, cst.SetComp):
        element = cast("cst.ListComp | cst.GeneratorExp | cst.SetComp", value).elt
        return _graph_free_value(element, function, depth)
    if value_type is cst.Call:
        func = cast(cst.Call, value).func
        return _cuts_graph(func) or (
            type(func) is cst.Attribute
            and type(func.value) is cst.Name
            and func.value.value == "math"
        )
    if value_type is cst.Attribute:  # `loss.data`, `x.shape`
        return cast(cst.Attribute, value).attr.value in _GRAPH_FREE_ATTRIBUTES
    if value_type is cst.Subscript:  # `loss.data[0]`, `[loss.item()][0]`
        return _graph_free_value(cast(cst.Subscript, value).value, function, depth)
    if value_type is cst.BinaryOperation:
        operation = cast(cst.BinaryOperation, value)
        return _graph_free_value(operation.left, function, depth) and _graph_free_value(
            operation.right, function, depth
        )
    if value_type is cst.Name and cast(cst.Name, value).value not in ("None", "True", "False"):
        return (
            function is not None
            and depth > 0
            and _name_graph_free(function, cast(cst.Name, value).value, depth - 1)
        )
    return value_type in (cst.Integer, cst.Float, cst.SimpleString, cst.FormattedString) or (
        value_type is cst.Name
    )


def _name_graph_free(function: cst.FunctionDef, name: str, depth: int) -> bool:
    from evallint.analysis.walk import iter_nodes

    assigned = False
    for node in iter_nodes(function.body):
        if type(node) is cst.Assign:
            for target in node.targets:
                if type(target.target) is cst.Name and target.target.value == name:
                    assigned = True
                    if not _graph_free_value(node.value, function, depth):
                        return False
                elif type(target.target) in (cst.Tuple, cst.List) and any(
                    type(e.value) is cst.Name and e.value.value == name
                    for e in target.target.elements  # type: ignore[attr-defined]
                ):
                    return False
        elif type(node) is cst.AugAssign and type(node.target) is cst.Name:
            if node.target.value == name:
                assigned = True
                if not _graph_free_value(node.value, function, depth):
                    return False
        elif type(node) in (cst.For, cst.With) and name in {
            n.value
            for n in iter_nodes(getattr(node, "target", cst.Name("_")))
            if type(n) is cst.Name
        }:
            return False
    return assigned


_returns_of = returns_of  # (the name other modules import)


def _environment_step(value: cst.BaseExpression, count: int) -> bool:
    """`obs, reward, done, info = env.step(action)` (or Gymnasium's five): an environment's
    step unpacked as Gym's API gives it, on a receiver that is no optimizer, scheduler or
    scaler. The environment computes on arrays and numbers (a tensor that requires grad
    cannot even be turned into one), so what it returns holds no graph of the action."""
    if count not in (4, 5) or type(value) is not cst.Call:
        return False
    func = value.func
    if type(func) is not cst.Attribute or func.attr.value != "step":
        return False
    receiver = dotted_name(func.value)
    if receiver is None:
        return False
    last = receiver.split(".")[-1]
    return not words(last) & (NOT_ENVIRONMENT_WORDS | OPTIMIZER_WORDS)


def graph_free_value(value: cst.BaseExpression) -> bool:
    """A value that carries no autograd graph by its own syntax (`t.detach()`, `x.item()`,
    `out.cpu().numpy()`, a constant, arithmetic of such); a bare name is not decided."""
    return _graph_free_value(value)
