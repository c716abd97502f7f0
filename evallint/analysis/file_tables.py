"""The whole-file tables of one file's analysis, computed before its first summary, as one
immutable value with equality (issue 20, step 1 of the per-function reuse plan).

A function summary reads, besides its own function, tables that the file answers from its
whole text: the methods that run a module's forward, whether the file builds an optimizer,
the names that step parameters, the backward calls a step serves, the module-level names
holding modules, the names the file calls, which functions are called under `no_grad`, ... Filled lazily by the first summary to ask, they were an effect of the
order in which summaries ran; computed up front they are a function of the file (and of
the project's files it imports), and two lints of one document can be compared table by
table: a summary may be reused in a later lint only if `changed_tables` of the two lints
is empty (a typing edit inside a function body leaves them equal; an edit that adds an
optimizer or a forward method does not). Computing them eagerly changes no finding: each
is the value the lazy accessor returns, which no summary's state feeds.

Tables keyed by node identity (`backward_reach`) are kept as the tuple of their answers in
the order of the tree's walk: nodes of unchanged statements keep their identity across an
incremental re-parse, and equal tuples mean every kept call gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Optional

from evallint.analysis.flag_assignments import plain_class_keeps_training_flag
from evallint.analysis.provenance import calls_by_grad

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


@dataclass(frozen=True)
class FileTables:
    """What the accessors of `FileAnalysis` answer from the whole file (see the module
    docstring); every field an immutable, comparable value."""

    forward_method_names: frozenset[str]
    grad_free_methods: frozenset[str]
    eval_switched_methods: frozenset[str]
    kept_eval_methods: frozenset[str]
    module_class_methods: frozenset[str]
    has_optimizer: bool
    parameter_steppers: frozenset[str]
    optimizer_links: frozenset[str]
    optimizer_params: tuple[tuple[str, frozenset[str]], ...]
    grad_inputs: frozenset[str]
    input_optimizers: frozenset[str]
    steps_parameters: bool
    backward_reach: Optional[tuple[bool, ...]]
    """None when the file steps no parameters (every backward is then not training)."""
    module_keys: frozenset[str]
    frozen_globals: frozenset[str]
    own_bound_names: frozenset[str]
    """The names the file's text binds (`FileAnalysis.own_bound_names`) that it also calls as
    an attribute: its one reader, `binds_attribute`, is asked only for `X` of a `self.X(...)`
    call, which `called_attributes` holds, so with that table equal these are all the answers
    a lint can read. The whole set changed with any new assignment, keyword argument or
    string anywhere (a typed `x = ...` in a function body), which no summary reads."""
    library_callbacks: frozenset[str]
    called_names: frozenset[str]
    """Names called bare (`f(...)`)."""
    called_attributes: frozenset[str]
    """Names called bare or as an attribute (`x.f(...)`)."""
    calls_by_grad: tuple[tuple[str, tuple[bool, ...]], ...]
    """Per function name, whether each of its calls runs with autograd off."""
    plain_training_flag: bool


def file_tables(file: FileAnalysis) -> FileTables:
    """Fill every lazily computed whole-file table of `file` through its own accessor (so the
    answers are those a summary would have read) and return them as one value."""
    file.forward_method_names()
    file.is_grad_input("")
    file.own_bound_names()
    steps = file.steps_parameters
    bare, any_form = file.called_names()
    if steps:
        file.backward_trains_table()
    return FileTables(
        forward_method_names=file.forward_method_names(),
        grad_free_methods=file.grad_free_methods(),
        eval_switched_methods=file.eval_switched_methods,
        kept_eval_methods=file.kept_eval_methods,
        module_class_methods=file.module_class_method_names(),
        has_optimizer=file.has_optimizer,
        parameter_steppers=file.parameter_steppers(),
        optimizer_links=frozenset(file.optimizer_keys()),
        optimizer_params=tuple(
            sorted((name, frozenset(owners)) for name, owners in file.optimizer_params().items())
        ),
        grad_inputs=file._grad_inputs or frozenset(),
        input_optimizers=file.input_optimizers(),
        steps_parameters=steps,
        backward_reach=tuple(file._backward_reach.values())
        if steps and file._backward_reach is not None
        else None,
        module_keys=frozenset(file._module_keys),
        frozen_globals=file.frozen_globals,
        own_bound_names=file.own_bound_names() & any_form,
        library_callbacks=file.library_callbacks(),
        called_names=bare,
        called_attributes=any_form,
        calls_by_grad=tuple(
            sorted((name, tuple(seen)) for name, seen in calls_by_grad(file).items())
        ),
        plain_training_flag=plain_class_keeps_training_flag(file),
    )


def changed_tables(before: FileTables, after: FileTables) -> tuple[str, ...]:
    """The names of the tables whose values differ between two lints of one document (empty:
    every whole-file read of a summary answers the same in both)."""
    return tuple(
        field.name
        for field in fields(FileTables)
        if getattr(before, field.name) != getattr(after, field.name)
    )


def same_tables(before: Optional[FileTables], after: Optional[FileTables]) -> bool:
    """The gate of summary reuse: both lints have their tables and no table changed."""
    return before is not None and after is not None and not changed_tables(before, after)
