"""benchmarks/peer_cases.py: rebuilding a peer's test cases statically, and the rule mapping.

The peer-style test module below is written here for the test (not copied from the peer); it
uses each assertion shape and source-building idiom the rebuild claims to read."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import List

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "peer_cases.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_cases", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["peer_cases"] = module
    spec.loader.exec_module(module)
    return module


peer_cases = _load()

MINI_TESTS = '''
from conftest import analyze, codes

HEADER = """
import torch
"""


def loop(*, body: str = "", name: str = "model") -> str:
    """A helper made of assignments and a return."""
    lines = "\\n".join(f"    {line}" for line in body.split(";"))
    return "def f():\\n" + f"    {name}.eval()\\n" + lines


def test_tg001_present():
    assert "TG001" in codes(
        """
        def f():
            x = 1
        """
    )


def test_tg002_absent_in_a_loop():
    for guard in ("@a", "@b"):
        assert "TG002" not in codes(
            f"""
            {guard}
            def g():
                pass
            """
        ), guard


def test_exact_through_a_variable():
    diagnostics = analyze(HEADER + "y = 2\\n")
    assert [d.code for d in diagnostics] == ["TG003"]
    assert diagnostics[0].fixable


def test_clean_list():
    assert codes(loop(body="a = 1;b = 2", name="net")) == []


def test_named_source_then_unknown():
    source = "z = 3\\n"
    assert "TG011" in codes(source)
    assert "TG011" in codes(unknown_helper())


def test_example_file():
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "ex.py"
    diagnostics, _ = check_source(str(path), path.read_text())
    assert {d.code for d in diagnostics} == {"TG001", "TG004"}


def test_with_config_is_not_a_case(cfg):
    assert codes("w = 1\\n", cfg) == []


def test_not_a_rule_id():
    assert "num_workers" in codes("v = 1\\n")
'''


def _cases():
    return peer_cases.extract_cases(
        MINI_TESTS, "tests/test_rules.py", {"examples/ex.py": "print('example')\n"}
    )


def test_each_assertion_shape_becomes_a_case_with_its_expectation() -> None:
    cases, skipped = _cases()
    by_name = {c.name: c for c in cases}
    assert sorted(by_name) == [
        "test_clean_list",
        "test_exact_through_a_variable",
        "test_example_file",
        "test_named_source_then_unknown",
        "test_tg001_present",
        "test_tg002_absent_in_a_loop[1]",
        "test_tg002_absent_in_a_loop[2]",
    ]
    present = by_name["test_tg001_present"]
    assert present.asserted == {"TG001": True} and not present.exact
    assert present.source == "def f():\n    x = 1\n"  # dedented, leading newline stripped
    absent = by_name["test_tg002_absent_in_a_loop[2]"]
    assert absent.asserted == {"TG002": False}
    assert absent.source == "@b\ndef g():\n    pass\n"
    exact = by_name["test_exact_through_a_variable"]
    assert exact.exact and exact.asserted == {"TG003": True}
    assert exact.source == "import torch\ny = 2\n"
    assert exact.expects("TG001") is False and exact.expects("TG003") is True
    assert present.expects("TG002") is None
    clean = by_name["test_clean_list"]
    assert clean.exact and clean.asserted == {}
    assert clean.source == "def f():\n    net.eval()\n    a = 1\n    b = 2"
    example = by_name["test_example_file"]
    assert example.source == "print('example')\n"  # check_source: as given, not dedented
    assert example.asserted == {"TG001": True, "TG004": True} and example.exact
    assert by_name["test_named_source_then_unknown"].source == "z = 3\n"
    # The call of a helper the module does not define is named, not silently dropped.
    assert [(s.name, s.reason) for s in skipped] == [
        ("test_named_source_then_unknown", "call of `unknown_helper`")
    ]


def test_mapping_and_agreement() -> None:
    cases, _ = _cases()
    mapping = peer_cases.parse_map(["TG003=EVL008,EVL010"])
    assert mapping["TG003"] == ("EVL008", "EVL010") and mapping["TG001"] == ("EVL006",)
    reports = {
        "def f():\n    x = 1\n": ["EVL006"],  # TG001 expected and reported: agrees
        "import torch\ny = 2\n": ["EVL010", "EVL002"],  # TG003 via the widened map; TG002 not
    }

    def lint(source: str) -> List[str]:
        return reports.get(source, [])

    verdicts = {v.case.name: v for v in peer_cases.judge(cases, mapping, lint)}
    assert verdicts["test_tg001_present"].agrees
    exact = verdicts["test_exact_through_a_variable"]
    assert exact.checks["TG003"] == (True, True)
    assert exact.checks["TG002"] == (False, True) and not exact.agrees
    # A pinned list in a test naming an unmapped rule only is not a case; one naming no rule
    # counts for every mapped rule.
    assert "test_example_file" in verdicts and set(verdicts["test_clean_list"].checks) == set(
        mapping
    )
    table = peer_cases.summarise(list(verdicts.values()), mapping)
    assert table["TG003"] == {"cases": 1, "agree": 0}
    assert table["TG001"]["cases"] == 2  # the tg001 case and the example file expecting it
    assert table["all cases"]["cases"] == len(verdicts)


def test_bad_map_argument_is_one_line_error() -> None:
    with pytest.raises(SystemExit, match="expected TGnnn=EVLnnn"):
        peer_cases.parse_map(["EVL006"])


def test_sdist_members_are_read_below_the_top_directory(tmp_path: Path) -> None:
    sdist = tmp_path / "torch_preflight-9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in (
            ("torch_preflight-9.9/tests/test_rules.py", MINI_TESTS),
            ("torch_preflight-9.9/README.md", "not python"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    files = peer_cases.read_sdist(sdist)
    assert list(files) == ["tests/test_rules.py"]
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(SystemExit, match="cannot read the sdist"):
        peer_cases.read_sdist(broken)


def _load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", SCRIPT.parent / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def test_jobs_levels_are_one_two_and_the_core_count() -> None:
    run = _load_run()
    assert run.job_levels(1) == [1, 2]
    assert run.job_levels(2) == [1, 2]
    assert run.job_levels(16) == [1, 2, 16]


def test_findings_of_both_json_shapes_resolve_to_the_same_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """evallint prints a list with paths relative to its working directory; the peer prints
    `{"summary": ..., "diagnostics": [...]}` with the paths it was given. Both must land on
    the same resolved file, and a peer that checked fewer files than the corpus is named."""
    run = _load_run()
    (tmp_path / "a.py").write_text("x = 1\n")
    ours = '[{"path": "a.py", "code": "EVL006"}]'
    theirs = (
        '{"summary": {"files_checked": 1}, "diagnostics": [{"path": "%s", "code": "TG001"}]}'
        % (tmp_path / "a.py")
    )
    found, why = run._json_findings(
        [sys.executable, "-c", f"print({ours!r})"], tmp_path, 60, expected_files=1
    )
    assert why == "" and found == [(str((tmp_path / "a.py").resolve()), "EVL006")]
    found, _ = run._json_findings(
        [sys.executable, "-c", f"print({theirs!r})"], tmp_path, 60, expected_files=2
    )
    assert found == [(str((tmp_path / "a.py").resolve()), "TG001")]
    assert "checked 1 of 2 files" in capsys.readouterr().out
    missing, why = run._json_findings(
        [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path, 60, expected_files=1
    )
    assert missing is None and why.startswith("exit 3")
