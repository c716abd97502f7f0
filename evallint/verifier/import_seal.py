"""What the `--import` child may not do once the user's module starts running.

Installed after torch and evallint are imported and before the user's file is: a Python audit
hook (`sys.addaudithook`, which cannot be removed) refuses every side effect the measurement
does not need, and `RLIMIT_FSIZE` 0 stops native code from writing data into files too.
Refused, by the events CPython raises for them:

- writing, creating, truncating, deleting, renaming or changing files and directories
  (`open` for writing, `os.remove`, `os.rename`, `os.mkdir`, `os.chmod`, ...);
- starting or signalling processes (`subprocess.Popen`, `os.system`, `os.exec`, `os.fork`,
  `os.posix_spawn`, `os.kill`, ...);
- sockets (`socket.connect`, `socket.bind`, ...);
- loading or calling native code through ctypes, and `sqlite3.connect`.

Reading files, importing modules and computing are allowed. This is defence in depth, not a
sandbox: a compiled extension the model already imports can still act without raising audit
events (its file writes stay empty under RLIMIT_FSIZE 0). The memory and time limits of the
child apply whatever the code does.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from typing import Any

REFUSED_EVENTS: dict[str, str] = {
    "os.remove": "delete a file",
    "os.rmdir": "delete a directory",
    "os.rename": "rename a file",
    "os.mkdir": "create a directory",
    "os.chmod": "change a file's mode",
    "os.chown": "change a file's owner",
    "os.chflags": "change a file's flags",
    "os.lchflags": "change a file's flags",
    "os.link": "create a link",
    "os.symlink": "create a link",
    "os.truncate": "truncate a file",
    "os.utime": "change a file's times",
    "os.setxattr": "change a file's attributes",
    "os.removexattr": "change a file's attributes",
    "shutil.rmtree": "delete a directory tree",
    "shutil.move": "move a file",
    "shutil.copyfile": "copy a file",
    "subprocess.Popen": "start a process",
    "os.system": "start a process",
    "os.exec": "start a process",
    "os.spawn": "start a process",
    "os.posix_spawn": "start a process",
    "os.fork": "start a process",
    "os.forkpty": "start a process",
    "pty.spawn": "start a process",
    "os.kill": "signal a process",
    "os.killpg": "signal a process",
    "signal.pthread_kill": "signal a process",
    "socket.connect": "open a network connection",
    "socket.bind": "open a network connection",
    "socket.sendto": "open a network connection",
    "socket.sendmsg": "open a network connection",
    "socket.getaddrinfo": "open a network connection",
    "ctypes.dlopen": "load native code",
    "ctypes.dlsym": "load native code",
    "ctypes.call_function": "call native code",
    "ctypes.cdata": "read raw memory",
    "sqlite3.connect": "open a database file",
    "webbrowser.open": "open a browser",
}
"""Audit event -> what the user's code tried to do."""

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class SealRefused(PermissionError):
    """The user's module tried a side effect that `--import` does not allow."""


def _writes(args: tuple[Any, ...]) -> bool:
    path, mode, flags = (tuple(args) + (None, None, None))[:3]
    if isinstance(path, int) and path in (1, 2):
        return False  # the child's stdout/stderr (stdout is redirected to stderr)
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def seal() -> list[str]:
    """Refuse side effects from now on; the returned list collects what was refused (the user's
    code may catch the exception, but nothing was done)."""
    refused: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and _writes(args):
            what = f"write the file {args[0]!s}"
        elif event in REFUSED_EVENTS:
            what = REFUSED_EVENTS[event]
        else:
            return
        if len(refused) < 20:
            refused.append(what)
        raise SealRefused(
            f"evallint --import refused: the model's module tried to {what} "
            f"(the child may only read files and compute)"
        )

    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the limit fails, no kill
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    except (ValueError, OSError):  # pragma: no cover - a platform without the limit
        pass
    sys.dont_write_bytecode = True
    sys.addaudithook(hook)
    return refused
