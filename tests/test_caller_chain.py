"""A helper reached in the wrong mode from a caller in another file is reported at the
helper, and the path to it (the caller's call) is shown in every output format."""

from __future__ import annotations

import json
import os
from pathlib import Path

from evallint import lint_paths
from evallint.report import format_sarif, format_text

PROJECT = Path(__file__).parent / "fixtures" / "projects"


def _helper_finding(project: str, helper: str, code: str):
    found = lint_paths([str(PROJECT / project)])
    return [d for d in found if Path(d.path).name == helper and d.code == code], found


def test_helper_finding_names_the_caller_in_another_file() -> None:
    found, _ = _helper_finding(
        "evl001_predict_after_evaluate_restores_train", "helpers.py", "EVL001"
    )
    assert len(found) == 1 and found[0].line == 19
    callers = [r for r in found[0].related if Path(r.path).name == "main.py"]
    assert [(r.line, "another file" in r.message) for r in callers] == [(20, True)]


def test_caller_chain_in_sarif_and_show_source() -> None:
    found, _ = _helper_finding(
        "evl001_predict_after_evaluate_restores_train", "helpers.py", "EVL001"
    )
    sarif = json.loads(format_sarif(found))
    locations = sarif["runs"][0]["results"][0]["relatedLocations"]
    uris = [loc["physicalLocation"]["artifactLocation"]["uri"] for loc in locations]
    assert any(uri.endswith("main.py") for uri in uris)
    text = format_text(found, show_source=True)
    assert "main.py:20:" in text and "reached from this call" in text


def test_helper_whose_every_caller_switches_is_clean() -> None:
    found = lint_paths([str(PROJECT / "clean_helper_every_caller_switches")])
    assert found == []


def test_same_helper_alone_is_judged_as_a_library_function(tmp_path: Path) -> None:
    """Without the calling script, nothing in the project calls the helper: it is judged
    by itself (a data loop with no eval()), so the caller is what made it clean."""
    source = PROJECT / "clean_helper_every_caller_switches" / "metrics.py"
    (tmp_path / "metrics.py").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        codes = sorted(d.code for d in lint_paths(["metrics.py"]))
    finally:
        os.chdir(cwd)
    assert codes == ["EVL001", "EVL002"]


def test_one_finding_reached_through_several_callers_is_printed_once() -> None:
    """The same evaluation lifted to one call through several callee classes (a script that
    builds one of several model classes, then `model.train(loader)`) is one finding with every
    caller's path among its related locations, not one line per class."""
    from evallint.diagnostics import Diagnostic, Related
    from evallint.engine.run import _merge_duplicates

    def finding(line: int, related: tuple, code: str = "EVL001") -> Diagnostic:
        return Diagnostic("main.py", line, 9, line, 30, code, "`self.G` ...", related)

    gan = Related("models/gan.py", 40, 19, "the forward, reached from this call")
    wgan = Related("models/wgan.py", 236, 27, "the forward, reached from this call")
    merged = _merge_duplicates(
        [finding(30, (gan,)), finding(30, (wgan,)), finding(30, (gan,)), finding(34, (gan,))]
    )
    assert [(d.line, d.related) for d in merged] == [(30, (gan, wgan)), (34, (gan,))]
    assert len(_merge_duplicates([finding(30, ()), finding(30, (), "EVL002")])) == 2


def test_region_start_is_placed_in_the_file_the_region_belongs_to() -> None:
    """An evaluation region that a caller's context made (a loop of another file or notebook)
    is named in that file, at its own position, not at line 1 of the reporting file."""
    from types import SimpleNamespace

    import libcst as cst

    from evallint.analysis.facts import EvalForward, Place, UnitRef
    from evallint.analysis.regions import Region, RegionKind
    from evallint.rules.base import region_start

    helper = cst.parse_module("def f(model, x):\n    return model(x)\n")
    caller = cst.parse_module("import h\n\nfor x in data:\n    print(h.f(model, x))\n")
    loop = caller.body[1]
    call = helper.body[0].body.body[0].body[0].value  # type: ignore[attr-defined]
    here = UnitRef("h.py", lambda node: (1, 1, 1, 1) if node is not call else (2, 12, 2, 20))
    there = UnitRef("run.py", lambda node: (3, 1, 4, 24) if node is loop else (1, 1, 1, 1))
    forward = EvalForward(
        call=Place(call, here),
        subject="model",
        region=Region(loop, RegionKind.EVAL, "check inside the training loop"),
        region_unit=there,
    )
    facts = SimpleNamespace(unit=here)
    related = region_start(facts, forward)  # type: ignore[arg-type]
    assert (related.path, related.line, related.column) == ("run.py", 3, 1)
    assert related.message == "the evaluation starts here"
    own = region_start(
        facts,
        EvalForward(
            call=Place(call, here), subject="model", region=Region(call, RegionKind.EVAL, "f()")
        ),
    )  # type: ignore[arg-type]
    assert (own.path, own.line) == ("h.py", 2)


def test_findings_at_one_place_come_out_in_one_order_whatever_the_input_order() -> None:
    """Two findings of one code at one place (two modules reached through the same call) and
    one finding reached by several callers: the printed order and the merged related
    locations do not depend on the order the analysis produced them in (set iteration
    follows string hashing, which changes between runs)."""
    import itertools

    from evallint.diagnostics import Diagnostic, Related
    from evallint.engine.run import _merge_duplicates

    gan = Related("models/gan.py", 40, 19, "the forward, reached from this call")
    wgan = Related("models/wgan.py", 236, 27, "the forward, reached from this call")
    found = [
        Diagnostic("main.py", 30, 9, 30, 30, "EVL001", "`self.G` ...", (gan,)),
        Diagnostic("main.py", 30, 9, 30, 30, "EVL001", "`self.G` ...", (wgan,)),
        Diagnostic("main.py", 30, 9, 30, 30, "EVL001", "`self.D` ...", ()),
    ]
    outputs = {
        tuple(_merge_duplicates(sorted(order, key=Diagnostic.sort_key)))
        for order in itertools.permutations(found)
    }
    assert len(outputs) == 1
    (output,) = outputs
    assert [(d.message, d.related) for d in output] == [
        ("`self.D` ...", ()),
        ("`self.G` ...", (gan, wgan)),
    ]
