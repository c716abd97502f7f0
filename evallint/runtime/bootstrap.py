"""`python -m evallint.runtime.bootstrap REPORT [--steps N] [--evals N] -- SCRIPT ARGS...`

Runs in the child process that `evallint run` starts: blocks the network, installs the
recorder's hooks, runs the user's script as `__main__` (`runpy.run_path`, or `run_module`
for `-m MODULE`), and writes what it saw to REPORT as JSON, also when the script fails, a
budget stops it, or SIGTERM (the parent's timeout) arrives. It writes nothing else.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import signal
import sys
import traceback
from typing import Any, Optional

from evallint.runtime import netguard


def _parse(argv: list[str]) -> tuple[str, dict[str, Optional[int]], list[str]]:
    if "--" not in argv or not argv or argv[0] == "--":
        raise SystemExit(
            "usage: python -m evallint.runtime.bootstrap REPORT [--steps N] [--evals N] "
            "-- SCRIPT|-m MODULE ARGS..."
        )
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1 :]
    budgets: dict[str, Optional[int]] = {"steps": None, "evals": None}
    rest = head[1:]
    while rest:
        flag = rest.pop(0)
        if flag not in ("--steps", "--evals") or not rest:
            raise SystemExit(f"bootstrap: unexpected argument {flag!r}")
        budgets[flag[2:]] = int(rest.pop(0))
    if not command:
        raise SystemExit("bootstrap: no script to run")
    return head[0], budgets, command


def _write(path: str, report: dict[str, Any]) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    os.replace(temporary, path)


def _failure_location(exc: BaseException) -> Optional[list[Any]]:
    frames = traceback.extract_tb(exc.__traceback__)
    evallint_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for frame in reversed(frames):
        if not os.path.abspath(frame.filename).startswith(evallint_dir):
            return [os.path.realpath(frame.filename), frame.lineno]
    return None


def main(argv: Optional[list[str]] = None) -> int:
    report_path, budgets, command = _parse(list(sys.argv[1:] if argv is None else argv))
    netguard.install()
    try:
        from evallint.runtime.recorder import Recorder, Stop  # imports torch
    except ImportError as exc:
        reason = f"{sys.executable} cannot import torch ({exc}): run it with the script's Python"
        _write(report_path, {"outcome": {"status": "failed", "reason": reason}})
        return 0

    recorder = Recorder(steps=budgets["steps"], evaluations=budgets["evals"])

    main_pid = os.getpid()

    def on_term(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:  # a forked worker inherited this handler: die as usual
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if recorder.stop_reason is None:
            recorder.stop("timeout: the run took longer than --timeout")

    signal.signal(signal.SIGTERM, on_term)
    outcome: dict[str, Any] = {"status": "completed", "reason": "the script finished"}
    recorder.install()
    globals_: Any = None
    try:
        if command[0] == "-m":
            sys.argv = [command[1], *command[2:]]
            globals_ = runpy.run_module(command[1], run_name="__main__", alter_sys=True)
        else:
            script = os.path.abspath(command[0])
            sys.argv = [command[0], *command[1:]]
            sys.path[0] = os.path.dirname(script)
            globals_ = runpy.run_path(script, run_name="__main__")
    except Stop as stop:
        outcome = {"status": "stopped", "reason": stop.reason}
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        outcome = {
            "status": "completed" if code == 0 else "failed",
            "reason": f"the script exited with status {code}",
            "exit_code": code,
        }
    except BaseException as exc:  # the script's own error: report it, keep what was seen
        traceback.print_exc()
        outcome = {
            "status": "failed",
            "reason": f"the script raised {type(exc).__name__}: {exc}"[:300],
            "where": _failure_location(exc),
        }
        if recorder.stop_reason is not None:  # the script turned our Stop into its own error
            outcome = {"status": "stopped", "reason": recorder.stop_reason}
        exc.__traceback__ = None
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if outcome["status"] == "completed":
        del globals_  # outputs the script kept in globals are freed: classified now
        gc.collect()
    recorder.finish()
    _write(report_path, {"outcome": outcome, **recorder.summary()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
