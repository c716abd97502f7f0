"""`evallint lsp`: findings while typing, in any editor that speaks the Language Server Protocol.

Built on pygls (extra `lsp`), so the CLI imports this package only inside its `lsp` command.
Importing the package itself is cheap: `main` starts loading the analysis (LibCST, the
rules) on a thread while pygls and lsprotocol load, so the server answers `initialize`
as soon as pygls can and the first lint finds the analysis (mostly) loaded.

Modules: `server` (pygls plumbing and the lint thread), `fixes` (quick fixes on their own
cancellable thread), `program` (a Python file or a notebook's cells as one program),
`convert` (findings and edits in LSP types), `text` (position units, suppression
comments, how lines move between versions: no LSP library needed).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from evallint.lsp.text import client_units, code_points, suppression_edit

DEBOUNCE_SECONDS = 0.3
"""Wait this long after the last keystroke: typing must not queue a lint per character."""

__all__ = [
    "DEBOUNCE_SECONDS",
    "VERIFIED_CODES",
    "client_units",
    "code_points",
    "line_edits",
    "main",
    "suppression_edit",
]


def _load_analysis() -> None:
    """Import what the first lint needs (on a thread, while the server starts), then lint a
    few lines, which loads what the analysis imports lazily (the analysis modules, LibCST's
    native parser): the first `didOpen` then costs one lint, not the imports too."""
    try:
        from evallint.engine.run import lint_source
        from evallint.source.incremental import IncrementalParser

        lint_source(_WARM_UP, "<warm-up>", parser=IncrementalParser())
    except Exception:  # the lint itself will report it
        logging.getLogger(__name__).debug("warming the analysis failed", exc_info=True)


_WARM_UP = """\
import torch


def evaluate(model, loader):
    with torch.no_grad():
        return [model(x).sum().item() for x, _ in loader]
"""


def main() -> None:
    """Serve on stdin/stdout until the client says exit."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="evallint-lsp: %(levelname)s %(message)s"
    )
    threading.Thread(target=_load_analysis, name="evallint-import", daemon=True).start()
    from evallint.lsp.server import serve

    serve()


def __getattr__(name: str) -> Any:
    """`line_edits` and `VERIFIED_CODES` need lsprotocol: loaded on first use."""
    if name == "line_edits":
        from evallint.lsp.convert import line_edits

        return line_edits
    if name == "VERIFIED_CODES":
        from evallint.lsp.server import VERIFIED_CODES

        return VERIFIED_CODES
    raise AttributeError(name)
