"""The cyclic garbage collector in a batch of files.

Analysing a file allocates millions of objects; `lint_source` pauses the collector while it
runs (`source.parse.collector_paused`). What a file leaves alive afterwards is mostly the
project index's caches, kept for the rest of the run: with the collector back on, every
young-generation collection traverses them again, then every older one (measured on run.py's
torch-heavy sample: ~8% of a cold run's CPU before the literal and self-reference cycles were
removed, ~4% after). In a batch, the collector therefore stays off and what survives each file
is frozen (`gc.freeze`: never traversed again, still freed by reference counting). Cycles that
become garbage are collected every `COLLECT_EVERY` files and at the end, where everything is
unfrozen so a library caller's later collections see it all again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

COLLECT_EVERY = 256
"""Files between full collections: bounds the memory held by cyclic garbage (a few thousand
objects per file at most) at a cost of one traversal of the heap per that many files."""


@contextmanager
def between_files() -> Iterator[Callable[[], None]]:
    """Yields the function to call after each file of the batch."""
    was_enabled = gc.isenabled()
    if not was_enabled:  # someone else manages the collector: leave it alone
        yield lambda: None
        return
    done = 0

    def file_done() -> None:
        nonlocal done
        done += 1
        if done % COLLECT_EVERY == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()

    gc.disable()
    try:
        yield file_done
    finally:
        gc.unfreeze()
        gc.enable()


_WORKER_DONE: list[int] = [0]


def worker_file_done() -> None:
    """The same policy in a `--jobs` worker process, which lints files one task at a time
    until the pool ends: the collector goes off at its first file and stays off."""
    if _WORKER_DONE[0] == 0:
        gc.disable()
    _WORKER_DONE[0] += 1
    if _WORKER_DONE[0] % COLLECT_EVERY == 0:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
