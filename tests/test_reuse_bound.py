"""`benchmarks/reuse_bound.py`: the bound of per-function reuse charges each interpreter run
once (nested runs not twice), keeps only the edited block's runs and the top level, and
leaves the interpreter uninstrumented after; the language server starts without the
verifier or torch."""

from __future__ import annotations

import subprocess
import sys

from evallint.analysis.interpreter import _Interpreter
from tests.benchmark_scripts import ROOT, latency_benchmark, reuse_bound


def test_bound_keeps_the_edited_block_and_restores_the_interpreter() -> None:
    run_before = _Interpreter.run
    bound = reuse_bound()
    text = latency_benchmark().training_script(100)  # three blocks of five functions
    edits = bound.measure(text, 50)
    assert _Interpreter.run is run_before
    assert edits, "the session's statement typing analyses again"
    for edit in edits:
        assert edit.count >= 3 * 5 + 1
        assert 0 < edit.kept < edit.runs <= edit.lint
        assert edit.bound < edit.lint


def test_block_at_finds_the_training_function_above_the_edit() -> None:
    bound = reuse_bound()
    text = latency_benchmark().training_script(100)
    lines = text.split("\n")
    second = [n for n, line in enumerate(lines) if line == "    total = 0.0"][1]
    assert bound._block_at(text, second) == "1"
    assert bound._block_at(text, 0) == ""


def test_server_start_imports_neither_torch_nor_the_verifier() -> None:
    """What `python -m evallint.lsp` loads before its first lint (the server module, then
    the analysis thread's imports and warm-up lint): torch and the verifier only load when
    a client turns verification on."""
    code = (
        "import sys\n"
        "import evallint.lsp.server\n"
        "from evallint.lsp import _load_analysis\n"
        "_load_analysis()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')\n"
        "    or m.startswith(('evallint.verifier', 'evallint.runtime', 'evallint.verify'))))\n"
        "print('evallint.analysis.file_analysis' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[:2] == ["[]", "True"]
