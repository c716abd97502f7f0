"""evallint: catch PyTorch train/eval mode and autograd mistakes before a run is wasted.

Public API: `lint_source`, `lint_paths`, `Diagnostic`, `Related`, `__version__`.
"""

from __future__ import annotations

from evallint._version import __version__
from evallint.diagnostics import Diagnostic, Related
from evallint.engine.run import lint_paths, lint_source

__all__ = ["Diagnostic", "Related", "__version__", "lint_paths", "lint_source"]
