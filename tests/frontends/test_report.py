"""Output formats: exact text lines, JSON shape, SARIF valid against the official schema, GitHub escaping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evallint import __version__
from evallint.diagnostics import Diagnostic, Related
from evallint.report import format_github, format_json, format_sarif, format_statistics, format_text

SCHEMA = Path(__file__).parent.parent / "data" / "sarif-schema-2.1.0.json"


class FakeRule:
    """EVL001 stand-in so these tests do not depend on the rules' wording."""

    code = "EVL001"
    name = "eval-without-eval-mode"
    summary = "Evaluation runs with the model in training mode."

    __doc__ = "## What it does\nFlags a forward pass over evaluation data in training mode.\n"


class OtherRule:
    """## What it does\nA second page."""

    code = "EVL002"
    name = "eval-with-autograd"
    summary = "Evaluation runs with autograd on."


RULES = (FakeRule, OtherRule)


@pytest.fixture
def diagnostics(tmp_path: Path) -> list[Diagnostic]:
    script = tmp_path / "train.py"
    script.write_text("import torch\nfor x in val_loader:\n\tout = model(x)\n", encoding="utf-8")
    related = (Related(str(script), 1, 1, "model is in training mode here"),)
    return [
        Diagnostic(str(script), 3, 8, 3, 16, "EVL001", "model runs in training mode", related),
        Diagnostic(str(script), 3, 8, 3, 16, "EVL002", "autograd on, 50% more memory: use no_grad"),
        Diagnostic("rel dir/x.py", 1, 1, 1, 2, "EVL001", "second"),
    ]


def test_text(diagnostics: list[Diagnostic]) -> None:
    path = diagnostics[0].path
    assert format_text(diagnostics).splitlines() == [
        f"{path}:3:8: EVL001 model runs in training mode",
        f"{path}:3:8: EVL002 autograd on, 50% more memory: use no_grad",
        "rel dir/x.py:1:1: EVL001 second",
    ]
    assert format_text([]) == ""


def test_text_with_source_keeps_tabs_under_the_caret(diagnostics: list[Diagnostic]) -> None:
    path = diagnostics[0].path
    assert format_text(diagnostics[:1], show_source=True).splitlines() == [
        f"{path}:3:8: EVL001 model runs in training mode",
        "    \tout = model(x)",
        "    \t      ^",
        f"    {path}:1:1: note: model is in training mode here",
    ]


def test_json_is_the_diagnostic_shape(diagnostics: list[Diagnostic]) -> None:
    assert json.loads(format_json(diagnostics)) == [d.to_json() for d in diagnostics]


def test_sarif_validates_against_the_official_schema(diagnostics: list[Diagnostic]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    log = json.loads(format_sarif(diagnostics, rules=RULES))
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))).validate(log)


def test_sarif_content(diagnostics: list[Diagnostic]) -> None:
    run = json.loads(format_sarif(diagnostics, rules=RULES))["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("evallint", __version__)
    assert driver["rules"][0] == {
        "id": "EVL001",
        "name": "eval-without-eval-mode",
        "shortDescription": {"text": FakeRule.summary},
        "fullDescription": {"text": FakeRule.__doc__.strip(), "markdown": FakeRule.__doc__.strip()},
        "help": {"text": FakeRule.__doc__.strip(), "markdown": FakeRule.__doc__.strip()},
        "helpUri": "https://github.com/evallint/evallint#evl001",
        "defaultConfiguration": {"level": "warning"},
    }
    first, second, third = run["results"]
    assert (first["ruleId"], first["ruleIndex"], second["ruleIndex"]) == ("EVL001", 0, 1)
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": Path(diagnostics[0].path).as_uri()},
        "region": {"startLine": 3, "startColumn": 8, "endLine": 3, "endColumn": 16},
    }
    assert first["relatedLocations"][0]["message"] == {"text": "model is in training mode here"}
    assert "relatedLocations" not in second
    assert third["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "rel%20dir/x.py"
    }


def test_sarif_uses_the_rule_registry_by_default(diagnostics: list[Diagnostic]) -> None:
    from evallint.pseudo_rules import PSEUDO_RULES
    from evallint.rules import RULES as REGISTRY

    log = json.loads(format_sarif(diagnostics))
    driver = log["runs"][0]["tool"]["driver"]
    assert [rule["id"] for rule in driver["rules"]] == [
        rule.code for rule in (*REGISTRY, *PSEUDO_RULES)
    ]
    assert all(rule["fullDescription"]["text"].strip() for rule in driver["rules"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))).validate(log)


def test_github_escaping() -> None:
    diagnostic = Diagnostic("a,b:c%.py", 2, 5, 3, 9, "EVL002", "50% slower,\nuse: no_grad\r")
    assert format_github([diagnostic]) == (
        "::warning file=a%2Cb%3Ac%25.py,line=2,col=5,endLine=3,endColumn=9,title=EVL002"
        "::50%25 slower,%0Ause: no_grad%0D\n"
    )


def test_statistics(diagnostics: list[Diagnostic]) -> None:
    assert format_statistics(diagnostics).splitlines() == [
        "2     EVL001 model runs in training mode",
        "1     EVL002 autograd on, 50% more memory: use no_grad",
    ]
