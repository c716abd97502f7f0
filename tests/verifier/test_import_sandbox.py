"""`--import` runs the model's file only in a child process with a memory budget, a time limit
and no network; the parent (evallint itself) never runs the user's code."""

from __future__ import annotations

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


def test_import_refuses_the_users_side_effects_in_the_child(tmp_path: Path) -> None:
    diagnostic = _project(tmp_path, MARKER_MODEL)
    [found] = verify([diagnostic], import_modules=True)
    # the model file's first statement writes a file: the import is refused, nothing written,
    # and the static verdict (found without running anything) is kept
    assert found.verdict == "confirmed", found.summary
    assert "--import not used" in found.summary and "tried to write the file" in found.summary
    assert not list(tmp_path.glob("*.txt"))


# Every way the issue lists in which a sibling module's code ran past the old fence; each one
# tries to write a marker file (suppressing the refusal so that the import goes on to the next)
# and a few start processes that would create one.
CONSTRUCTS_MODEL = """
    import contextlib, os, subprocess
    from pathlib import Path
    from torch import nn

    HERE = Path(__file__).parent

    def mark(name):
        with contextlib.suppress(OSError):
            (HERE / f"{name}.marker").write_text(str(os.getpid()))
        return name

    def deco(function):
        mark("decorator")
        return function

    def with_default(x=mark("default_argument")):
        return x

    def annotated(x: mark("annotation")) -> mark("return_annotation"):
        return x

    class Meta(type(nn.Module)):
        def __new__(mcs, name, bases, namespace):
            mark("metaclass")
            return super().__new__(mcs, name, bases, namespace)

    class Base(nn.Module):
        def __init_subclass__(cls, **kwargs):
            mark("init_subclass")
            super().__init_subclass__(**kwargs)

    from helpers import dynamic_layer  # helpers' module __getattr__ runs
    import colorsys  # a sibling colorsys.py shadows the standard library's

    if __name__ != "__main__":
        mark("name_not_main")
    if __name__ == "__main__":
        pass
    else:
        mark("main_guard_else")

    TYPE_CHECKING = True  # home-made
    if TYPE_CHECKING:
        mark("type_checking")

    try:
        pass
    finally:
        mark("try_finally")
    try:
        pass
    except Exception:
        pass
    else:
        mark("try_else")

    print(len(mark("call_allowed_by_name")))
    holder = {}
    holder[mark("assignment_target")] = 1
    with contextlib.suppress(OSError):
        subprocess.run(["touch", str(HERE / "subprocess.marker")], check=False)
    with contextlib.suppress(OSError):
        os.system("touch " + str(HERE / "os_system.marker"))
    with contextlib.suppress(OSError):
        os.mkdir(HERE / "directory_marker")

    class Net(Base, metaclass=Meta):
        mark("class_body")

        @deco
        def __init__(self):
            super().__init__()
            import sched  # a sibling sched.py, imported when the model is built
            self.fc = nn.Linear(4, 4)
            self.drop = dynamic_layer
"""

SIBLINGS = {
    "helpers.py": """
        import contextlib
        from pathlib import Path
        from torch import nn

        def __getattr__(name):
            with contextlib.suppress(OSError):
                Path(__file__).with_name("module_getattr.marker").write_text("x")
            return nn.Dropout(0.5)
    """,
    "colorsys.py": """
        import contextlib
        from pathlib import Path
        with contextlib.suppress(OSError):
            Path(__file__).with_name("stdlib_shadow.marker").write_text("x")
    """,
    "sched.py": """
        import contextlib
        from pathlib import Path
        with contextlib.suppress(OSError):
            Path(__file__).with_name("local_import.marker").write_text("x")
    """,
}


def _constructs_project(tmp_path: Path) -> Diagnostic:
    for name, text in SIBLINGS.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return _project(tmp_path, CONSTRUCTS_MODEL)


def test_every_listed_construct_runs_sealed_and_writes_no_marker(tmp_path: Path) -> None:
    diagnostic = _constructs_project(tmp_path)
    [static] = verify([diagnostic])
    assert not list(tmp_path.glob("*marker*")), "static verify ran the user's code"
    [found] = verify([diagnostic], import_modules=True)
    assert list(tmp_path.glob("*marker*")) == []
    # the constructs did run (in the child), and each side effect was refused
    assert found.verdict == "confirmed", found.summary
    assert "in a child process (refused while it ran:" in found.summary
    refused = found.summary
    assert "start a process" in refused or "write the file" in refused
    assert static.verdict in ("confirmed", "unresolved")


def test_memory_of_a_class_body_allocation_stays_under_the_budget(tmp_path: Path) -> None:
    # run the verifier in a subprocess of its own with an address-space limit, then read the
    # peak resident size of the --import child it started
    import subprocess
    import sys

    diagnostic = _project(
        tmp_path,
        """
        from torch import nn

        class Net(nn.Module):
            HOARD = bytearray(3_800_000_000)  # 3.8 GB in a class body

            def __init__(self, width=getattr(nn, "Linear")(4, 4)):
                super().__init__()
                self.fc = width
        """,
    )
    script = textwrap.dedent(
        f"""
        import resource
        from evallint.diagnostics import Diagnostic
        from evallint.verifier import verify
        from evallint.verifier.dynamic import ImportBudget
        d = Diagnostic({diagnostic.path!r}, 3, 1, 3, 10, "EVL001", "m", (), "model")
        [found] = verify([d], import_modules=True, budget=ImportBudget(memory=256 << 20))
        print(found.verdict)
        print(found.evidence["dynamic"].get("refused", ""))
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        """
    )

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
        check=False,
    )
    verdict, refused, peak_kib = done.stdout.strip().splitlines()[-3:]
    assert verdict == "unresolved" and "0.25 GiB budget" in refused, done.stdout + done.stderr
    # torch's own footprint plus the budget; the 3.8 GB were never resident
    assert int(peak_kib) * 1024 < (1 << 30) + (256 << 20), peak_kib


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
            def __init__(self):
                super().__init__()
                self.fc = getattr(nn, "Linear")(4, 4)  # static extraction cannot follow this
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
            def __init__(self):
                super().__init__()
                self.fc = getattr(nn, "Linear")(4, 4)
        """,
    )
    start = time.monotonic()
    [found] = verify([spinning], import_modules=True, budget=ImportBudget(seconds=8))
    assert time.monotonic() - start < 40
    assert found.verdict == "unresolved" and "took over 8 s" in found.summary
