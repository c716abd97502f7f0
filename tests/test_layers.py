"""The import contract: source -> analysis -> rules -> engine -> front ends, one way.

Nothing imports a front end; only the verifier touches torch or NumPy, and the core
never imports the verifier (a pre-commit hook must stay light)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "evallint"

LAYERS = {
    "evallint._version": 0,
    "evallint.diagnostics": 0,
    "evallint.torch_facts": 0,
    "evallint.source": 1,
    "evallint.analysis": 2,
    "evallint.rules": 3,
    "evallint.pseudo_rules": 3,
    "evallint.engine": 4,
    "evallint": 4,  # the package root is the public API: lint_source, lint_paths
    "evallint.report": 5,
    "evallint.flake8_plugin": 6,
    "evallint.lsp": 6,
    "evallint.noqa": 6,
    "evallint.cli": 7,
    "evallint.cli_options": 7,
    "evallint.__main__": 8,
}
FRONT_ENDS = ("evallint.cli", "evallint.flake8_plugin", "evallint.lsp", "evallint.__main__")
VERIFIER = ("evallint.verifier", "evallint.verify")
"""The verifier's room: the runtime checks and their public library API (`evallint.verify`)."""
RUNTIME = ("evallint.runtime",)
"""The runtime checker's room (`evallint run`, the pytest plugin): apart like the verifier. It
reads findings (`evallint.diagnostics`), lints through the public API (`evallint`) and reuses
the formatters (`evallint.report`); nothing but the CLI (lazily) imports it."""
RUNTIME_MAY_IMPORT = ("evallint.runtime", "evallint.diagnostics", "evallint.report")
RUNTIME_TORCH_MODULES = (
    "evallint.runtime.recorder",
    "evallint.runtime.measure",
    "evallint.runtime.modes",
)
"""The only runtime modules that may import torch at module level: they run in the child
process of `evallint run` or inside pytest with the plugin enabled."""
HEAVY = ("torch", "numpy", "matplotlib")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str, rooms: tuple[str, ...]) -> str | None:
    """The front end (or other room) a module belongs to: `evallint.lsp.server` is the LSP's."""
    return next((r for r in rooms if module == r or module.startswith(r + ".")), None)


def _layer(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return best[1] if best else None


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) pairs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, id(node) in top_level) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top_level))
    return found


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield _module_name(path), path


def test_layers_import_only_downwards() -> None:
    violations = []
    for module, path in _sources():
        if module.startswith((*VERIFIER, *RUNTIME)):
            continue
        own = _layer(module)
        for imported, top_level in _imports(path):
            if not imported.startswith("evallint"):
                continue
            target = _layer(imported)
            if imported.startswith(RUNTIME):
                if module != "evallint.cli" or top_level:
                    violations.append(f"{module} imports the runtime checker")  # the CLI, lazily
                continue
            if imported.startswith(VERIFIER):
                if _room(module, ("evallint.cli", "evallint.lsp")) is None or top_level:
                    violations.append(f"{module} imports the verifier")  # front ends may, lazily
                continue
            if target is not None and own is not None and target > own and module != "evallint":
                violations.append(f"{module} (layer {own}) imports {imported} (layer {target})")
            if (
                _room(imported, FRONT_ENDS) is not None
                and _room(imported, FRONT_ENDS) != _room(module, FRONT_ENDS)
                and module != "evallint.__main__"
                and (module != "evallint.cli" or top_level)
            ):
                violations.append(
                    f"{module} imports front end {imported}"
                )  # the CLI may start one, lazily
    assert violations == []


def test_verifier_reads_only_diagnostics_and_torch_facts() -> None:
    violations = []
    for module, path in _sources():
        if not module.startswith(VERIFIER):
            continue
        for imported, _ in _imports(path):
            if (
                imported.startswith("evallint")
                and not imported.startswith(
                    (*VERIFIER, "evallint.diagnostics", "evallint.torch_facts")
                )
                and imported != "evallint"
            ):
                violations.append(f"{module} imports {imported}")
    assert violations == []


def test_runtime_reads_only_diagnostics_public_api_and_formatters() -> None:
    violations = []
    for module, path in _sources():
        if not module.startswith(RUNTIME):
            continue
        for imported, _ in _imports(path):
            if (
                imported.startswith("evallint")
                and not imported.startswith(RUNTIME_MAY_IMPORT)
                and imported != "evallint"
            ):
                violations.append(f"{module} imports {imported}")
    assert violations == []


def test_runtime_front_modules_import_torch_only_lazily() -> None:
    """The parent of `evallint run` and an inert pytest plugin never load torch."""
    violations = []
    for module, path in _sources():
        if not module.startswith(RUNTIME) or module in RUNTIME_TORCH_MODULES:
            continue
        for imported, top_level in _imports(path):
            heavy = imported.split(".")[0] in HEAVY or imported in RUNTIME_TORCH_MODULES
            if heavy and top_level:
                violations.append(f"{module} imports {imported} at module level")
    assert violations == []


def test_core_never_imports_torch_or_numpy() -> None:
    violations = []
    for module, path in _sources():
        if module.startswith((*VERIFIER, *RUNTIME)):
            continue
        for imported, _top_level in _imports(path):
            if imported.split(".")[0] in HEAVY:
                violations.append(f"{module} imports {imported}")
    assert violations == []


ANALYSIS_ORDER = [
    # leaves
    (
        "options",
        "vocabulary",
        "lattice",
        "global_grad",
        "walk",
        "walk_slices",
        "symbols",
        "conditions",
        "default_fills",
        "bound_branches",
        "eval_parts",
        "forward_methods",
        "plain_objects",
        "type_checked",
        "reuse",
        "project_files",
        "module_sources",
        "arguments",
        "returned_arguments",
        "kept_modules",
        "restoring",
        "assembled_parts",
        "trained_batch",
        "exit_stacks",
        "filled_containers",
        "stored_results",
        "norm_statistics",
        "bound_names",
        "listed_layers",
        "detached_forwards",
        "unit_tests",
        "configuration_loops",
        "detection_forwards",
        "rewritten_entries",
        "manual_updates",
    ),
    (
        "scope",
        "step_effects",
        "parameters",
        "regions",
        "result_reports",
        "facts",
        "summaries",
        "dataflow",
        "side_forwards",
        "bracketed",
        "handoff",
        "store_scope",
        "statement_shapes",
        "mode_calls",
        "file_shapes",
        "closures",
        "tensor_values",
        "optimizer_bindings",
        "held_optimizers",
        "paired_switches",
        "layer_demonstrations",
        "probes",
        "self_setting_forwards",
        "batch_parts",
        "few_items",
        "repeated_input",
        "requested_grad",
        "annotated_members",
        "declared_returns",
        "frozen_copies",
        "array_arguments",
        "returned_for_backward",
        "pictured",
        "class_aliases",
        "property_aliases",
        "local_constants",
        "factory_tables",
    ),
    (
        "context",
        "built_modes",
        "optimizers",
        "mode_matters",
        "values",
        "taint",
        "project_classes",
        "class_chains",
        "overrides",
        "project",
        "plain_modules",
        "specialise",
        "lightning_hooks",
        "instances",
        "mode_free_members",
        "stored_fields",
        "keyed_members",
        "eval_attributes",
        "caller_aliases",
        "acting",
        "judging",
        "project_forwards",
        "constructor_arguments",
        "reporting_helpers",
        "module_backward",
        "own_methods",
        "mode_overrides",
        "lifting",
        "passed_functions",
        "element_forwards",
        "library_callbacks",
        "library_hooks",
        "loop_else",
        "annotated_objects",
        "annotated_dispatch",
        "member_switches",
        "mode_managers",
    ),
    (
        "binding",
        "container_binding",
        "factory_objects",
        "constructions",
        "switches",
        "effects",
        "observations",
        "flag_assignments",
        "gradient_clearers",
        "provenance",
        "mode_tests",
        "reported",
        "class_members",
        "loss_training",
        "returned_tuples",
        "loaded_parts",
    ),
    ("calls", "flow"),
    ("call_resolution", "interpreter", "file_tables"),
    ("file_analysis",),
]
"""The rooms inside the analysis, bottom up: a module imports only from its own tier or
lower ones (and never in a cycle), so the interpreter reads as a stack of layers."""


def _module_of(imported: str, modules: set[str]) -> str:
    """`from evallint.analysis import walk` names a module; `from evallint import x` a name."""
    return imported if imported in modules else imported.rsplit(".", 1)[0]


def _module_graph() -> dict[str, set[str]]:
    modules = {module for module, _ in _sources()}
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: imports inside functions run later
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t if t in modules else node.module for t in targets]
            else:
                continue
            for target in targets:
                if target.startswith("evallint") and target in modules and target != module:
                    graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first search."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                found.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


KNOWN_CYCLES: list[list[str]] = []
"""Cycles tolerated until they are broken (none)."""


def test_no_import_cycles() -> None:
    cycles = [cycle for cycle in _cycles(_module_graph()) if cycle not in KNOWN_CYCLES]
    assert cycles == []


def test_analysis_modules_import_in_order() -> None:
    tier = {
        f"evallint.analysis.{name}": level
        for level, names in enumerate(ANALYSIS_ORDER)
        for name in names
    }
    analysis = {m for m, _ in _sources() if m.startswith("evallint.analysis.")}
    assert analysis == set(tier), "every analysis module has a place in ANALYSIS_ORDER"
    graph = _module_graph()
    violations = [
        f"{module} (tier {tier[module]}) imports {target} (tier {tier[target]})"
        for module in sorted(analysis)
        for target in sorted(graph[module])
        if target in tier and tier[target] > tier[module]
    ]
    assert violations == []


def test_torch_facts_is_a_leaf() -> None:
    imported = [
        m for m, _ in _imports(PACKAGE / "torch_facts.py") if m.split(".")[0] != "__future__"
    ]
    assert all(m.split(".")[0] in ("dataclasses", "typing") for m in imported), imported


def test_verifier_imports_have_no_cycle_even_lazily() -> None:
    """Within the verifier no cycle is dodged by a function-level import either."""
    graph = {
        module: {m for m, _ in _imports(path) if m.startswith("evallint.verifier.") and m != module}
        for module, path in _sources()
        if module.startswith("evallint.verifier")
    }
    graph = {module: {t for t in targets if t in graph} for module, targets in graph.items()}
    assert _cycles(graph) == []


def test_verifier_numerics_never_import_libcst() -> None:
    """The torch/NumPy side reads layer_spec and torch_facts, never the source parser."""
    numerics = ("torch_run", "functional_run", "accumulation", "plot", "reference", "layer_spec")
    for name in numerics:
        imported = [m for m, _ in _imports(PACKAGE / "verifier" / f"{name}.py")]
        assert not [m for m in imported if m.split(".")[0] == "libcst"], name
        assert not [m for m in imported if m.endswith((".extract", ".source_index", ".sites"))], (
            name
        )
