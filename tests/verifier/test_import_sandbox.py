"""`--import` runs the model's file only in a child process with a memory budget, a time limit
and no network; the parent (evallint itself) never runs the user's code."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from evallint.diagnostics import Diagnostic  # noqa: E402
from evallint.verifier import verify  # noqa: E402
from evallint.verifier.dynamic import ImportBudget  # noqa: E402


def _project(tmp_path: Path, model_source: str) -> Diagnostic:
    (tmp_path / "model_file.py").write_text(textwrap.dedent(model_source))
    user = tmp_path / "evaluate.py"
    user.write_text("from model_file import Net\nmodel = Net()\nmodel(None)\n")
    return Diagnostic(str(user), 3, 1, 3, 10, "EVL001", "m", (), "model")


MARKER_MODEL = """
    import os
    from pathlib import Path
    from torch import nn

    Path(__file__).with_name("marker.txt").write_text(str(os.getpid()))

    class Meta(type(nn.Module)):
        def __new__(mcs, name, bases, ns):
            Path(__file__).with_name("metaclass.txt").write_text(str(os.getpid()))
            return super().__new__(mcs, name, bases, ns)

    class Net(nn.Module, metaclass=Meta):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.drop = nn.Dropout(0.5)
"""


def test_static_verify_never_runs_the_users_code(tmp_path: Path) -> None:
    diagnostic = _project(tmp_path, MARKER_MODEL)
    [found] = verify([diagnostic])
    assert found.verdict == "confirmed"
    assert not (tmp_path / "marker.txt").exists() and not (tmp_path / "metaclass.txt").exists()


def test_import_runs_the_users_code_only_in_a_child_process(tmp_path: Path) -> None:
    diagnostic = _project(tmp_path, MARKER_MODEL)
    [found] = verify([diagnostic], import_modules=True)
    assert found.verdict == "confirmed", found.summary
    assert "in a child process" in found.summary
    for marker in ("marker.txt", "metaclass.txt"):
        pid = int((tmp_path / marker).read_text())
        assert pid != os.getpid()  # written by the child, never by this process


def test_a_module_allocating_over_the_budget_at_import_is_unresolved_quickly(
    tmp_path: Path,
) -> None:
    diagnostic = _project(
        tmp_path,
        """
        from torch import nn
        HOARD = bytearray(3_800_000_000)  # 3.8 GB at import time

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = getattr(nn, "Linear")(4, 4)  # static extraction cannot follow this
        """,
    )
    start = time.monotonic()
    [found] = verify([diagnostic], import_modules=True)
    assert time.monotonic() - start < 60
    assert found.verdict == "unresolved", found.summary
    assert "1.00 GiB budget" in found.evidence["dynamic"]["refused"]


def test_a_huge_model_is_sized_on_the_meta_device_and_never_built(tmp_path: Path) -> None:
    diagnostic = _project(
        tmp_path,
        """
        from pathlib import Path
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = getattr(nn, "Linear")(30000, 30000)  # 3.35 GiB of float32 weights
                if next(self.fc.parameters()).device.type != "meta":
                    Path(__file__).with_name("built.txt").write_text("real storage")
        """,
    )
    start = time.monotonic()
    [found] = verify([diagnostic], import_modules=True)
    assert time.monotonic() - start < 60
    assert found.verdict == "unresolved", found.summary
    assert "need 3.35 GiB, over the 1.00 GiB budget" in found.summary
    assert not (tmp_path / "built.txt").exists()


def test_the_budget_is_configurable(tmp_path: Path) -> None:
    diagnostic = _project(
        tmp_path,
        """
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2048, 2048)  # 16 MiB
                self.drop = nn.Dropout(0.1)
        """,
    )
    [small] = verify([diagnostic], import_modules=True, budget=ImportBudget(memory=8 << 20))
    assert "over the 0.01 GiB budget" in small.summary
    [large] = verify([diagnostic], import_modules=True)
    assert large.verdict == "confirmed" and "in a child process" in large.summary


def test_no_network_and_a_time_limit_in_the_child(tmp_path: Path) -> None:
    network = _project(
        tmp_path,
        """
        import socket
        socket.create_connection(("example.com", 80), timeout=5)
        from torch import nn
        class Net(nn.Module):
            pass
        """,
    )
    [found] = verify([network], import_modules=True)
    assert found.verdict == "unresolved" and "network access is disabled" in found.summary
    slow = tmp_path / "slow"
    slow.mkdir()
    spinning = _project(
        slow,
        """
        from torch import nn
        while True:
            pass
        class Net(nn.Module):  # found statically, never reached at import
            pass
        """,
    )
    start = time.monotonic()
    [found] = verify([spinning], import_modules=True, budget=ImportBudget(seconds=8))
    assert time.monotonic() - start < 40
    assert found.verdict == "unresolved" and "took over 8 s" in found.summary
