"""The child process of `--import`: import the user's model file, build the model, measure it.

`python -m evallint.verifier.import_child` reads one request (a Python literal) on stdin and
writes one JSON answer on stdout. It is the only place evallint runs a user's code, and it
runs it the way `python -c "import model_file"` would: the module's top-level code, class
bodies, decorators and imports all execute. What contains it:

- the network is off: `socket.socket`, `socket.create_connection` and `getaddrinfo` raise
  before the user's module is imported (and the parent set every proxy variable to an
  address that refuses);
- memory: after torch is imported, the address space may grow by at most the budget
  (RLIMIT_AS), so an allocation over it raises MemoryError instead of swapping the machine;
- time: the parent kills the process at its time limit;
- the model is built on the `meta` device first (no storage); if its parameters and buffers
  would need more than the budget, it is never built for real;
- side effects: from just before the user's file is imported, an audit hook refuses writing
  or deleting files, starting or signalling processes, sockets and ctypes
  (`import_seal.seal`), and RLIMIT_FSIZE 0 keeps native code from writing file data.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import resource
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

from evallint.verifier.import_seal import SealRefused, seal


def _no_network(*args: Any, **kwargs: Any) -> NoReturn:
    raise OSError("network access is disabled while evallint --import measures a model")


class _NoSocket(socket.socket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _no_network()


def _cut_network() -> None:
    socket.socket = _NoSocket  # type: ignore[misc]
    socket.create_connection = _no_network
    socket.getaddrinfo = _no_network


def _address_space() -> int:
    """The process's current virtual memory size in bytes (Linux), else 0."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_memory(budget: int) -> None:
    limit = _address_space() + budget
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _load(path: Path) -> Any:
    name = "_evallint_import_" + hashlib.sha1(str(path).encode()).hexdigest()[:12] + "_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))  # sibling imports of the model file resolve
    spec.loader.exec_module(module)
    return module


def _storage_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers, each storage counted once."""
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        key = id(tensor)
        if key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _measure(request: dict[str, Any]) -> dict[str, Any]:
    import torch

    from evallint.verifier.live import check_module, mode_dependence

    budget = int(request["budget"])
    _limit_memory(budget)
    _cut_network()
    refused = seal()
    path = Path(request["path"])
    try:
        module = _load(path)
    except MemoryError:
        return {
            "refused": f"importing {path.name} needs more memory than the {_gib(budget)} budget"
        }
    cls = getattr(module, request["class_name"])
    args, kwargs = request["args"], request["kwargs"]
    try:
        with torch.device("meta"):
            meta = cls(*args, **kwargs)
        needed = _storage_bytes(meta)
        del meta
    except MemoryError:
        return {"refused": f"building the model needs more than the {_gib(budget)} budget"}
    except Exception:  # noqa: BLE001 - a model that cannot be built on meta is built for real
        needed = None
    if needed is not None and needed > budget:
        return {
            "refused": f"the model's parameters and buffers need {_gib(needed)}, over the "
            f"{_gib(budget)} budget of --import (raise it with --import-memory)"
        }
    torch.manual_seed(int(request["seed"]))
    try:
        model = cls(*args, **kwargs)
    except MemoryError:
        return {"refused": f"building the model needs more than the {_gib(budget)} budget"}
    if request["code"] == "EVL005":
        value = bool(request["training_value"])
        model.train(not value)
        model.training = value  # evallint: ignore[EVL005]  reproduces the mistake on purpose
        children = [(n, type(m).__name__, m) for n, m in model.named_modules() if n]
        stale = [(n, k) for n, k, m in children if m.training != value]
        dependent = [
            (n, k) for n, k, m in children if m.training != value and mode_dependence(m) is not None
        ]
        return {
            "training": {"value": value, "stale": stale, "dependent": dependent},
            "contained": sorted(set(refused)),
        }
    report = check_module(model, seed=int(request["seed"]))
    return {
        "report": report.to_json(),
        "summary": report.summary(),
        "affected": report.affected,
        "mode_dependent": bool(report.mode_dependent),
        "problem": report.problem,
        "contained": sorted(set(refused)),
    }


def main() -> int:
    request = ast.literal_eval(sys.stdin.read())
    try:
        answer = _measure(request)
    except MemoryError:
        answer = {"refused": f"the model needs more than the {_gib(int(request['budget']))} budget"}
    except SealRefused as exc:
        answer = {"refused": str(exc)[:300]}
    except BaseException as exc:  # noqa: BLE001 - the user's code failing is the answer
        text = str(exc).splitlines()[0][:160] if str(exc) else ""
        answer = {"error": f"{type(exc).__name__}: {text}"}
    sys.stdout.flush()
    os.write(_ANSWER_FD, (json.dumps(answer) + "\n").encode())
    return 0


_ANSWER_FD: int = 1

if __name__ == "__main__":
    # the user's prints must not corrupt the answer: keep the real stdout for it, and send
    # everything else the process prints to stderr
    _ANSWER_FD = os.dup(1)
    os.dup2(2, 1)
    raise SystemExit(main())
