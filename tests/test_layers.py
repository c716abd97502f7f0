"""The import contract: source -> analysis -> rules -> engine -> front ends, one way.

Nothing imports a front end; only the verifier touches torch or NumPy, and the core
never imports the verifier (a pre-commit hook must stay light)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "evallint"

LAYERS = {
    "evallint.diagnostics": 0,
    "evallint.source": 1,
    "evallint.analysis": 2,
    "evallint.rules": 3,
    "evallint.engine": 4,
    "evallint": 4,  # the package root is the public API: lint_source, lint_paths
    "evallint.report": 5,
    "evallint.flake8_plugin": 6,
    "evallint.lsp": 6,
    "evallint.cli": 7,
    "evallint.__main__": 8,
}
FRONT_ENDS = ("evallint.cli", "evallint.flake8_plugin", "evallint.lsp", "evallint.__main__")
VERIFIER = ("evallint.verifier", "evallint.verify")
"""The verifier's room: the runtime checks and their public library API (`evallint.verify`)."""
HEAVY = ("torch", "numpy", "matplotlib")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


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
        if module.startswith(VERIFIER):
            continue
        own = _layer(module)
        for imported, top_level in _imports(path):
            if not imported.startswith("evallint"):
                continue
            target = _layer(imported)
            if imported.startswith(VERIFIER):
                if module not in ("evallint.cli", "evallint.lsp") or top_level:
                    violations.append(f"{module} imports the verifier")  # front ends may, lazily
                continue
            if target is not None and own is not None and target > own and module != "evallint":
                violations.append(f"{module} (layer {own}) imports {imported} (layer {target})")
            if (
                imported in FRONT_ENDS
                and module != "evallint.__main__"
                and (module != "evallint.cli" or top_level)
            ):
                violations.append(
                    f"{module} imports front end {imported}"
                )  # the CLI may start one, lazily
    assert violations == []


def test_verifier_reads_only_diagnostics() -> None:
    violations = []
    for module, path in _sources():
        if not module.startswith(VERIFIER):
            continue
        for imported, _ in _imports(path):
            if (
                imported.startswith("evallint")
                and not imported.startswith((*VERIFIER, "evallint.diagnostics"))
                and imported != "evallint"
            ):
                violations.append(f"{module} imports {imported}")
    assert violations == []


def test_core_never_imports_torch_or_numpy() -> None:
    violations = []
    for module, path in _sources():
        if module.startswith(VERIFIER):
            continue
        for imported, _top_level in _imports(path):
            if imported.split(".")[0] in HEAVY:
                violations.append(f"{module} imports {imported}")
    assert violations == []
