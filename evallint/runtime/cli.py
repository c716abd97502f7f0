"""`evallint run [options] -- python train.py ARGS...`: run the user's script under the hooks.

The parent (this module) imports no torch. It starts
`PYTHON [flags] -m evallint.runtime.bootstrap REPORT [budgets] -- train.py ARGS...` in a new
process group with an address-space limit (RLIMIT_AS), a timeout (SIGTERM, then SIGKILL 15 s
later), every proxy pointed at a dead loopback port and Python sockets blocked for
non-loopback addresses (`netguard`, also in the script's own subprocesses through a
`sitecustomize` on PYTHONPATH). The script's stdout and stderr go to stderr, so stdout holds
only the report. Then it lints the script's directory (no cache written) and matches.
Exit status: 1 runtime events found, 0 none, 2 usage error or no report.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Optional

GRACE_SECONDS = 15
SITE_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_site")
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PYTHON = re.compile(r"^python(\d+(\.\d+)*)?(\.exe)?$")
_FLAGS_WITH_VALUE = ("-W", "-X", "-Q")


class RunError(Exception):
    """Bad arguments or a run that produced no report: one line on stderr, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evallint run",
        usage="evallint run [options] -- python train.py [ARGS...]",
        description="Run your own training script with hooks on every top-level forward and "
        "optimizer step; report EVL001-003 as they happen and match them to the static findings.",
    )
    parser.add_argument("--steps", type=int, metavar="N", help="stop after N optimizer steps")
    parser.add_argument("--evals", type=int, metavar="N", help="stop after N evaluation forwards")
    parser.add_argument(
        "--timeout", type=float, default=600.0, metavar="S", help="stop after S seconds (600)"
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=8192,
        metavar="MB",
        help="address-space limit of the script's process in MB (8192; 0: none, e.g. for CUDA)",
    )
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument("--output-file", metavar="F", help="write the report to F, not stdout")
    parser.add_argument(
        "--no-static", action="store_true", help="do not lint the script's directory to compare"
    )
    return parser


def _split_command(command: list[str]) -> tuple[list[str], list[str]]:
    """(interpreter and its flags, target) where target is [script, *args] or ['-m', mod, *args]."""
    if not command:
        raise RunError("nothing to run: give the command after `--`, e.g. -- python train.py")
    first = command[0]
    if first.endswith(".py"):
        return [sys.executable], command
    if not _PYTHON.match(os.path.basename(first)):
        raise RunError(
            f"`{first}` is not a Python interpreter: evallint run runs "
            "`-- python SCRIPT.py ARGS` or `-- python -m MODULE ARGS`"
        )
    interpreter = shutil.which(first) or first
    flags: list[str] = []
    rest = command[1:]
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "-m":
            if not rest:
                raise RunError("`-m` needs a module name")
            return [interpreter, *flags], ["-m", *rest]
        if flag == "-c" or flag.startswith("-c"):
            raise RunError("`python -c` is not supported: put the code in a script")
        flags.append(flag)
        if flag in _FLAGS_WITH_VALUE and rest:
            flags.append(rest.pop(0))
    if not rest:
        raise RunError("no script given after the interpreter")
    if not os.path.isfile(rest[0]):
        raise RunError(f"{rest[0]}: no such file")
    return [interpreter, *flags], rest


def _limits(memory_mb: int) -> Any:
    def apply() -> None:
        if memory_mb > 0:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _environment() -> dict[str, str]:
    from evallint.runtime.netguard import offline_environment

    env = offline_environment(dict(os.environ))
    path = [SITE_DIRECTORY, PACKAGE_PARENT]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _kill_group(pid: int) -> None:
    """SIGKILL the process group this run started (its own session), if anything is left."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stderr_fd() -> Optional[int]:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def execute(
    command: list[str],
    *,
    steps: Optional[int],
    evals: Optional[int],
    timeout: float,
    memory: int,
    announce: Any = print,
) -> dict[str, Any]:
    """Run the command under the bootstrap; return the child's report (with how it ran)."""
    interpreter, target = _split_command(command)
    directory = tempfile.mkdtemp(prefix="evallint-run-")
    report_path = os.path.join(directory, "report.json")
    budgets = [*(["--steps", str(steps)] if steps is not None else [])]
    budgets += ["--evals", str(evals)] if evals is not None else []
    child = [*interpreter, "-m", "evallint.runtime.bootstrap", report_path, *budgets, "--"]
    child += target
    limits = {
        "timeout_seconds": timeout,
        "address_space_mb": memory or None,
        "network": "blocked (non-loopback sockets refused, proxies to 127.0.0.1:9)",
    }
    announce(
        f"evallint run: running `{shlex.join(command)}` as `{shlex.join(child)}` in {os.getcwd()} "
        f"(timeout {timeout:g} s, address space {f'{memory} MB' if memory else 'unlimited'}, "
        "network blocked; hooks record every top-level forward, backward and optimizer step)"
    )
    started = time.monotonic()
    fd = _stderr_fd()
    try:
        process = subprocess.Popen(
            child,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            preexec_fn=_limits(memory),
            start_new_session=True,
        )
    except OSError as exc:
        raise RunError(f"{interpreter[0]}: cannot start: {exc.strerror or exc}") from None
    killed = None

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM/SIGHUP to evallint: stop the script's whole group

    previous = {
        number: signal.signal(number, interrupted) for number in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the script's process only: it stops and reports
        try:
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            killed = f"killed after --timeout {timeout:g} s and {GRACE_SECONDS} s of grace"
    except KeyboardInterrupt:
        _kill_group(process.pid)
        process.wait()
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    _kill_group(process.pid)  # what the script left running in its process group
    try:
        import json

        with open(report_path, encoding="utf-8") as handle:
            report: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        reason = killed or f"the process exited with status {process.returncode}"
        raise RunError(
            f"the run produced no report ({reason}; a crash, or the memory limit "
            f"--memory {memory} was reached before Python could react)"
        ) from None
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    report["command"] = command
    report["runs"] = child[:3] + ["REPORT", *child[4:]]
    report["limits"] = limits
    report["seconds"] = round(time.monotonic() - started, 2)
    return report


def _static(command: list[str]) -> tuple[Optional[list[Any]], Optional[str]]:
    from evallint import lint_paths

    _, target = _split_command(command)
    root = os.getcwd() if target[0] == "-m" else os.path.dirname(os.path.abspath(target[0]))
    try:
        return lint_paths([root], jobs=1, use_cache=False), None
    except Exception as exc:  # the comparison is optional: say why it is missing
        return None, f"{type(exc).__name__}: {exc}"


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".evallint-run-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def main(argv: Sequence[str]) -> int:
    from evallint.runtime.report import render

    argv = list(argv)
    if "--" not in argv:
        _parser().parse_args(argv)  # --help, or an error naming what is missing
        raise RunError("give the command after `--`: evallint run [options] -- python train.py")
    split = argv.index("--")
    args = _parser().parse_args(argv[:split])
    command = argv[split + 1 :]
    for name in ("steps", "evals"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise RunError(f"--{name} must be at least 1")
    to_stdout = args.format == "text" and not args.output_file
    announce = print if to_stdout else (lambda line: print(line, file=sys.stderr))
    report = execute(
        command,
        steps=args.steps,
        evals=args.evals,
        timeout=args.timeout,
        memory=max(0, args.memory),
        announce=announce,
    )
    sys.stdout.flush()
    static, error = (None, "--no-static") if args.no_static else _static(command)
    if error:
        report["static_error"] = error
    text, events = render(report, static, args.format)
    if args.output_file:
        try:
            _write_atomically(args.output_file, text)
        except OSError as exc:
            raise RunError(f"{args.output_file}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {args.output_file}: {len(events)} runtime event(s)")
    else:
        sys.stdout.write(text)
    if events:
        return 1
    return 2 if report.get("outcome", {}).get("status") == "failed" else 0
