"""The language server as an editor sees it: a real pytest-lsp client starts
`python -m evallint.lsp` over stdio, opens and edits documents, and applies the code
actions' edits. Position and comment helpers are unit-tested first, without a server."""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from pathlib import Path
from typing import Callable, Optional

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from evallint.engine.fixes import apply_edits, fix_source  # noqa: E402
from evallint.engine.run import lint_source  # noqa: E402
from evallint.lsp import client_units, code_points, line_edits, suppression_edit  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "evl001_evl002_flat_script_missing_both.py"
PUBLISH = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
UTF16 = types.PositionEncodingKind.Utf16
EMOJI = "import torch.nn as nn\nmodel = nn.Dropout(0.5)\nfor x in val_loader:\n    s = '😀'; out = model(x)\n"


# helpers without a server ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "utf16", "utf8", "utf32"),
    [("abc", 3, 3, 3), ("é", 1, 2, 1), ("😀x", 3, 5, 2), ("", 0, 0, 0)],
)
def test_client_units_per_encoding(text: str, utf16: int, utf8: int, utf32: int) -> None:
    assert client_units(text, UTF16) == utf16
    assert client_units(text, types.PositionEncodingKind.Utf8) == utf8
    assert client_units(text, types.PositionEncodingKind.Utf32) == utf32
    assert code_points(text, utf16, UTF16) == len(text)


@pytest.mark.parametrize(
    ("source", "line", "expected"),
    [
        ("out = model(x)\n", 1, "out = model(x)  # noqa: EVL001\n"),
        ("out = model(x)   \r\n", 1, "out = model(x)  # noqa: EVL001\r\n"),
        ("out = model(x)  # a note\n", 1, "out = model(x)  # a note  # noqa: EVL001\n"),
        ("out = model(x)  # noqa: EVL002\n", 1, "out = model(x)  # noqa: EVL002, EVL001\n"),
        (
            "out = model(x)  # NOQA:EVL002,EVL003 - why\n",
            1,
            "out = model(x)  # NOQA:EVL002,EVL003, EVL001 - why\n",
        ),
        (
            'out = model("""\n#  x\n""")\ny = 1\n',
            1,
            'out = model("""\n#  x\n""")  # noqa: EVL001\ny = 1\n',
        ),
        ("out = model(x", 1, "out = model(x  # noqa: EVL001"),
    ],
    ids=[
        "plain",
        "crlf-trailing-space",
        "other-comment",
        "noqa-list",
        "noqa-list-upper",
        "multiline-string",
        "untokenizable",
    ],
)
def test_suppression_edit(source: str, line: int, expected: str) -> None:
    assert apply_edits(source, [suppression_edit(source, line, "EVL001")]) == expected


def test_suppression_edit_silences_the_finding() -> None:
    source = FIXTURE.read_text(encoding="utf-8")
    suppressed = apply_edits(source, [suppression_edit(source, 38, "EVL001")])
    assert [(d.line, d.code) for d in lint_source(suppressed, str(FIXTURE))] == [(38, "EVL002")]


def test_line_edits_replace_only_changed_lines() -> None:
    old, new = "a\nb\nc", "a\nB\nb\nc!"
    edits = line_edits(old, new, UTF16)
    assert apply_text_edits(old, edits) == new
    assert [(e.range.start.line, e.range.end.line) for e in edits] == [(1, 1), (2, 2)]


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """What an editor does with a list of non-overlapping TextEdits (UTF-16 positions)."""
    lines = text.splitlines(keepends=True) or [""]

    def offset(position: types.Position) -> int:
        if position.line >= len(lines):
            return len(text)
        line = lines[position.line]
        return sum(map(len, lines[: position.line])) + code_points(
            line.rstrip("\r\n"), position.character, UTF16
        )

    for edit in sorted(
        edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
    ):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


# a real client and server ----------------------------------------------------------------


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "evallint.lsp"])
)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities())
    )
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "evallint.lsp"])
)
async def utf8_client(lsp_client: LanguageClient):
    general = types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf8])
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities(general=general))
    )
    yield
    await lsp_client.shutdown_session()


async def published(
    client: LanguageClient, uri: str, send: Callable[[], None], timeout: float = 10
) -> list[types.Diagnostic]:
    """Send a notification and return the diagnostics the server publishes in answer."""
    waiter = asyncio.ensure_future(client.wait_for_notification(PUBLISH))
    await asyncio.sleep(0)
    send()
    await asyncio.wait_for(waiter, timeout)
    return list(client.diagnostics[uri])


def open_document(client: LanguageClient, path: Path, text: str) -> Callable[[], None]:
    item = types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=text)
    return lambda: client.text_document_did_open(
        types.DidOpenTextDocumentParams(text_document=item)
    )


def change_document(
    client: LanguageClient, path: Path, version: int, text: str
) -> Callable[[], None]:
    params = types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
    )
    return lambda: client.text_document_did_change(params)


def summary(diagnostics: list[types.Diagnostic]) -> list[tuple[object, ...]]:
    return sorted(
        (
            d.code,
            d.range.start.line,
            d.range.start.character,
            d.range.end.line,
            d.range.end.character,
        )
        for d in diagnostics
    )


async def actions_at(
    client: LanguageClient, path: Path, line: int, only: Optional[list[str]] = None
) -> list[types.CodeAction]:
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
        range=types.Range(
            start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
        ),
        context=types.CodeActionContext(diagnostics=[], only=only),
    )
    return [
        a
        for a in await client.text_document_code_action_async(params) or []
        if isinstance(a, types.CodeAction)
    ]


def edits_of(action: types.CodeAction, path: Path) -> list[types.TextEdit]:
    assert action.edit is not None and action.edit.changes is not None
    return list(action.edit.changes[path.as_uri()])


@pytest.mark.integration
@pytest.mark.asyncio
async def test_open_publishes_findings_with_ranges_links_and_related(
    client: LanguageClient,
) -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    diagnostics = await published(client, FIXTURE.as_uri(), open_document(client, FIXTURE, text))
    assert summary(diagnostics) == [("EVL001", 37, 15, 37, 28), ("EVL002", 37, 15, 37, 28)]
    first = min(diagnostics, key=lambda d: str(d.code))
    assert (first.severity, first.source) == (types.DiagnosticSeverity.Warning, "evallint")
    assert first.code_description is not None
    assert (
        first.code_description.href
        == "https://github.com/evallint/evallint/blob/main/docs/rules.md#evl001"
    )
    assert first.message.startswith("`regressor` may be in training mode")
    assert [
        (r.location.uri, r.location.range.start.line, r.location.range.start.character, r.message)
        for r in first.related_information or []
    ] == [
        (FIXTURE.as_uri(), 28, 4, "mode of `regressor` set here"),
        (FIXTURE.as_uri(), 36, 4, "the evaluation starts here"),
    ]


@pytest.mark.integration
@pytest.mark.asyncio
async def test_columns_are_utf16_code_units(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "emoji.py"
    text = EMOJI
    diagnostics = await published(client, path.as_uri(), open_document(client, path, text))
    assert ("EVL001", 3, 20, 3, 28) in summary(diagnostics)


@pytest.mark.integration
@pytest.mark.asyncio
async def test_columns_follow_a_negotiated_utf8_encoding(
    utf8_client: LanguageClient, tmp_path: Path
) -> None:
    path = tmp_path / "emoji.py"
    text = EMOJI
    diagnostics = await published(
        utf8_client, path.as_uri(), open_document(utf8_client, path, text)
    )
    assert ("EVL001", 3, 22, 3, 30) in summary(diagnostics)


@pytest.mark.integration
@pytest.mark.asyncio
async def test_edits_debounce_clear_and_a_syntax_error_keeps_the_old_findings(
    client: LanguageClient,
) -> None:
    uri, text = FIXTURE.as_uri(), FIXTURE.read_text(encoding="utf-8")
    before = await published(client, uri, open_document(client, FIXTURE, text))
    broken = text.replace("total = 0.0\n", "total = (0.0\n", 1)
    diagnostics = await published(client, uri, change_document(client, FIXTURE, 2, broken))
    assert summary(diagnostics)[:2] == summary(before)
    assert [d.code for d in diagnostics] == ["EVL001", "EVL002", "EVL999"]
    assert "cannot parse" in diagnostics[-1].message

    fixed = (FIXTURES / "fixed" / FIXTURE.name).read_text(encoding="utf-8")
    for version, stale in enumerate([broken + "x", text, broken], start=3):
        change_document(client, FIXTURE, version, stale)()
    assert await published(client, uri, change_document(client, FIXTURE, 6, fixed)) == []
    with pytest.raises(asyncio.TimeoutError):  # the stale versions were never linted
        await asyncio.wait_for(client.wait_for_notification(PUBLISH), 0.8)


@pytest.mark.integration
@pytest.mark.asyncio
async def test_quick_fixes_suppression_and_fix_all_edit_the_text_as_expected(
    client: LanguageClient,
) -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    await published(client, FIXTURE.as_uri(), open_document(client, FIXTURE, text))
    actions = {a.title: a for a in await actions_at(client, FIXTURE, 37)}
    assert sorted(actions) == [
        "Call `regressor.eval()` before evaluating",
        "Fix all evallint findings",
        "Run the evaluation under `torch.no_grad()`",
        "Suppress EVL001 on this line",
        "Suppress EVL002 on this line",
    ]
    quick = actions["Call `regressor.eval()` before evaluating"]
    assert (quick.kind, quick.is_preferred, [d.code for d in quick.diagnostics or []]) == (
        types.CodeActionKind.QuickFix,
        True,
        ["EVL001"],
    )
    assert apply_text_edits(text, edits_of(quick, FIXTURE)) == text.replace(
        "    for xb, yb in test_dl:", "    regressor.eval()\n    for xb, yb in test_dl:"
    )
    assert apply_text_edits(text, edits_of(actions["Fix all evallint findings"], FIXTURE)) == (
        FIXTURES / "fixed" / FIXTURE.name
    ).read_text(encoding="utf-8")

    suppressed = apply_text_edits(text, edits_of(actions["Suppress EVL001 on this line"], FIXTURE))
    assert suppressed.splitlines()[37].endswith("# expect: EVL001, EVL002  # noqa: EVL001")
    diagnostics = await published(
        client, FIXTURE.as_uri(), change_document(client, FIXTURE, 2, suppressed)
    )
    assert [d.code for d in diagnostics] == ["EVL002"]
    actions = {
        a.title: a
        for a in await actions_at(client, FIXTURE, 37, only=[types.CodeActionKind.QuickFix])
    }
    assert "Fix all evallint findings" not in actions
    both = apply_text_edits(suppressed, edits_of(actions["Suppress EVL002 on this line"], FIXTURE))
    assert both.splitlines()[37].endswith("# noqa: EVL001, EVL002")
    assert (
        await published(client, FIXTURE.as_uri(), change_document(client, FIXTURE, 3, both)) == []
    )


@pytest.mark.integration
@pytest.mark.asyncio
async def test_fix_all_is_offered_as_a_source_action(client: LanguageClient) -> None:
    await published(
        client,
        FIXTURE.as_uri(),
        open_document(client, FIXTURE, FIXTURE.read_text(encoding="utf-8")),
    )
    actions = await actions_at(client, FIXTURE, 0, only=[types.CodeActionKind.SourceFixAll])
    assert [(a.title, a.kind) for a in actions] == [
        ("Fix all evallint findings", "source.fixAll.evallint")
    ]


@pytest.mark.integration
@pytest.mark.asyncio
async def test_hover_on_a_noqa_code_shows_the_rule_page(
    client: LanguageClient, tmp_path: Path
) -> None:
    path = tmp_path / "hover.py"
    text = "x = 1  # noqa: EVL002, EVL001\n"
    await published(client, path.as_uri(), open_document(client, path, text))
    params = types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
        position=types.Position(line=0, character=25),
    )
    hover = await client.text_document_hover_async(params)
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.value.startswith("**EVL001** `eval-without-eval-mode`")
    assert "## What it does" in hover.contents.value
    assert hover.range == types.Range(
        start=types.Position(line=0, character=23), end=types.Position(line=0, character=29)
    )
    params.position = types.Position(line=0, character=2)
    assert await client.text_document_hover_async(params) is None


@pytest.mark.integration
@pytest.mark.asyncio
async def test_project_configuration_and_noqa_apply(client: LanguageClient, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.evallint]\nignore = ["EVL002"]\n', encoding="utf-8"
    )
    path = tmp_path / "train.py"
    text = FIXTURE.read_text(encoding="utf-8")
    assert [
        d.code for d in await published(client, path.as_uri(), open_document(client, path, text))
    ] == ["EVL001"]
    silenced = text.replace("# expect: EVL001, EVL002", "# noqa: EVL001")
    assert await published(client, path.as_uri(), change_document(client, path, 2, silenced)) == []


@pytest.mark.integration
@pytest.mark.asyncio
async def test_close_clears(client: LanguageClient) -> None:
    await published(
        client,
        FIXTURE.as_uri(),
        open_document(client, FIXTURE, FIXTURE.read_text(encoding="utf-8")),
    )
    close = types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=FIXTURE.as_uri())
    )
    assert (
        await published(client, FIXTURE.as_uri(), lambda: client.text_document_did_close(close))
        == []
    )


# verification (initializationOptions) -------------------------------------------------------


def test_server_knows_the_verifiers_codes() -> None:
    from evallint.lsp import VERIFIED_CODES
    from evallint.verifier.finding import VERIFIED_CODES as MEASURED

    assert frozenset(MEASURED) == VERIFIED_CODES


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "evallint.lsp"])
)
async def verifying_client(lsp_client: LanguageClient):
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(), initialization_options={"verify": True}
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.integration
@pytest.mark.asyncio
async def test_verify_option_republishes_saved_findings_with_verdicts(
    verifying_client: LanguageClient, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    path = tmp_path / "train.py"
    text = FIXTURE.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    linted = await published(
        verifying_client, path.as_uri(), open_document(verifying_client, path, text)
    )
    assert all(
        "[verified" not in d.message for d in linted
    )  # the lint is not held back by the verifier
    deadline = asyncio.get_running_loop().time() + 120
    diagnostics = linted
    while not any("[verified" in d.message for d in diagnostics):  # then republished, measured
        assert asyncio.get_running_loop().time() < deadline, "no verdicts within 120 s"
        await asyncio.sleep(0.2)
        diagnostics = list(verifying_client.diagnostics[path.as_uri()])
    assert summary(diagnostics) == summary(linted)
    for diagnostic in diagnostics:
        assert "[verified confirmed: " in diagnostic.message
        assert diagnostic.data == {"verdict": "confirmed"}
        assert diagnostic.severity == types.DiagnosticSeverity.Warning


@pytest.mark.integration
@pytest.mark.asyncio
async def test_verify_option_leaves_unsaved_text_unmeasured(
    verifying_client: LanguageClient, tmp_path: Path
) -> None:
    path = tmp_path / "train.py"
    text = FIXTURE.read_text(encoding="utf-8")
    path.write_text("# not what the editor shows\n", encoding="utf-8")
    linted = await published(
        verifying_client, path.as_uri(), open_document(verifying_client, path, text)
    )
    assert [d.code for d in linted] == ["EVL001", "EVL002"]
    with pytest.raises(
        asyncio.TimeoutError
    ):  # the verifier reads disk, which differs: nothing to measure
        await published(verifying_client, path.as_uri(), lambda: None, timeout=3)


# moving findings between versions (no server) ------------------------------------------------


def test_line_map_moves_lines_around_an_insertion_and_keeps_lines_edited_in_place() -> None:
    from evallint.lsp.text import line_map

    old = "a\nb\nc\nd\n"
    new = "x\na\nB!\nc\nd\n"
    moved = line_map(old, new).moved
    assert moved == {1: 2, 2: 3, 3: 4, 4: 5}
    assert line_map("a\nb\nc\n", "a\nc\n").moved == {1: 1, 3: 2}


def test_code_lines_ignore_comments_and_blank_lines_but_not_strings() -> None:
    from evallint.lsp.text import code_lines, same_code_map

    old = 'import torch\nx = """a\n\n# b\n"""  # hi\n\ny = model(x)  # c\n'
    assert code_lines(old) == (
        ["import torch", 'x = """a', "", "# b", '"""  ', "y = model(x)"],
        [1, 2, 3, 4, 5, 7],
    )
    commented = old.replace("# c", "# noqa: EVL001").replace("\n\ny", "\n\n# new\n\ny")
    same = same_code_map(old, code_lines(old), commented)
    assert same is not None and same[0].moved == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 7: 9}
    assert same_code_map(old, code_lines(old), old.replace("model", "modal")) is None
    assert same_code_map(old, code_lines(old), old.replace("# b", "# bb")) is None  # a string
    assert same_code_map(old, code_lines(old), old + "x = 1  # don't\n") is None  # a quote
    assert same_code_map(old, code_lines(old), old.replace('"""a', '"""a  ')) is None


# quick fixes in linear time (no server) --------------------------------------------------------

BLOCK = """
model_{i} = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
total_{i} = 0.0
for xb, yb in test_dl:
    pred_{i} = model_{i}(xb)
    total_{i} += (pred_{i} - yb).abs().sum().item()
"""


def many_findings(blocks: int) -> str:
    """`blocks` * 6 lines, two findings (EVL001, EVL002) per block."""
    return "import torch\nimport torch.nn as nn\n" + "".join(
        BLOCK.format(i=i) for i in range(blocks)
    )


def test_fix_all_lints_once_per_round_not_once_per_finding(tmp_path: Path) -> None:
    import threading

    from evallint.lsp import fixes
    from evallint.lsp.program import Program

    path = str(tmp_path / "train.py")
    text = many_findings(8)
    calls = []

    def lint(source: str) -> list:
        calls.append(1)
        return lint_source(source, path, fixes=True)

    idle = threading.Event()
    idle.set()
    job = fixes.Job(idle)
    plan = fixes.make_plan(Program.of_text("file:///t.py", path, 1, text), lint, job)
    assert len(plan.findings) == 16
    (fixed,) = fixes.fix_all(plan, lint, job)
    assert lint_source(fixed, path) == []
    assert fixed == fix_source(text, path).new_source  # what `evallint --fix` writes
    assert len(calls) <= 4  # the plan, then one lint per round (eval() and no_grad overlap)
    cancelled = fixes.Job(idle)
    cancelled.cancel()
    with pytest.raises(fixes.Cancelled):
        fixes.proven(plan, 0, lint, cancelled)


# notebooks -------------------------------------------------------------------------------------

NOTEBOOK_CELLS = [
    (
        types.NotebookCellKind.Code,
        "import torch\nimport torch.nn as nn\nnet = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))",
    ),
    (types.NotebookCellKind.Markup, "# Evaluate"),
    (types.NotebookCellKind.Code, "%matplotlib inline\nfor xb, yb in test_dl:\n    pred = net(xb)"),
]


async def open_notebook(client: LanguageClient, path: Path) -> list[str]:
    """Open the notebook; the cells' URIs once the third cell's findings are published."""
    uris = [f"vscode-notebook-cell:{path}#cell{n}" for n in range(len(NOTEBOOK_CELLS))]
    client.notebook_document_did_open(
        types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(
                uri=path.as_uri(),
                notebook_type="jupyter-notebook",
                version=1,
                cells=[
                    types.NotebookCell(kind=kind, document=uri)
                    for (kind, _), uri in zip(NOTEBOOK_CELLS, uris)
                ],
            ),
            cell_text_documents=[
                types.TextDocumentItem(
                    uri=uri,
                    language_id="python" if kind == types.NotebookCellKind.Code else "markdown",
                    version=1,
                    text=text,
                )
                for (kind, text), uri in zip(NOTEBOOK_CELLS, uris)
            ],
        )
    )
    deadline = asyncio.get_running_loop().time() + 30
    while not client.diagnostics.get(uris[2]):
        assert asyncio.get_running_loop().time() < deadline, "no diagnostics for the cell"
        await asyncio.sleep(0.05)
    return uris


@pytest.mark.integration
@pytest.mark.asyncio
async def test_notebook_cells_are_one_program_with_diagnostics_per_cell(
    client: LanguageClient, tmp_path: Path
) -> None:
    uris = await open_notebook(client, tmp_path / "eval.ipynb")
    assert summary(client.diagnostics[uris[2]]) == [
        ("EVL001", 2, 11, 2, 18),
        ("EVL002", 2, 11, 2, 18),
    ]
    assert list(client.diagnostics[uris[0]]) == []  # published empty, so a stale list clears
    (first,) = [d for d in client.diagnostics[uris[2]] if d.code == "EVL001"]
    related = [
        (r.location.uri, r.location.range.start.line) for r in first.related_information or []
    ]
    assert related[0] == (uris[0], 2)  # where the model was built: another cell


@pytest.mark.integration
@pytest.mark.asyncio
async def test_notebook_quick_fixes_and_fix_all_edit_the_cell(
    client: LanguageClient, tmp_path: Path
) -> None:
    uris = await open_notebook(client, tmp_path / "eval.ipynb")
    cell = NOTEBOOK_CELLS[2][1]
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uris[2]),
        range=types.Range(
            start=types.Position(line=2, character=0), end=types.Position(line=2, character=0)
        ),
        context=types.CodeActionContext(diagnostics=[]),
    )
    actions = {
        a.title: a
        for a in await client.text_document_code_action_async(params) or []
        if isinstance(a, types.CodeAction)
    }
    assert sorted(actions) == [
        "Call `net.eval()` before evaluating",
        "Fix all evallint findings",
        "Run the evaluation under `torch.no_grad()`",
        "Suppress EVL001 on this line",
        "Suppress EVL002 on this line",
    ]

    def applied(title: str) -> str:
        edit = actions[title].edit
        assert edit is not None and edit.changes is not None and list(edit.changes) == [uris[2]]
        return apply_text_edits(cell, list(edit.changes[uris[2]]))

    assert applied("Call `net.eval()` before evaluating") == cell.replace(
        "for xb", "net.eval()\nfor xb"
    )
    assert applied("Run the evaluation under `torch.no_grad()`") == (
        "%matplotlib inline\nwith torch.no_grad():\n    for xb, yb in test_dl:\n        pred = net(xb)"
    )
    assert applied("Suppress EVL002 on this line").endswith("pred = net(xb)  # noqa: EVL002")
    assert applied("Fix all evallint findings") == (
        "%matplotlib inline\nnet.eval()\nwith torch.no_grad():\n    for xb, yb in test_dl:\n"
        "        pred = net(xb)"
    )


# moved findings, cancellation, exit -----------------------------------------------------------


def shifted(found: list[tuple[object, ...]], lines: int) -> list[tuple[object, ...]]:
    return [
        (c, line + lines, char, end + lines, end_char) for c, line, char, end, end_char in found
    ]  # type: ignore[operator]


@pytest.mark.integration
@pytest.mark.asyncio
async def test_findings_move_with_lines_inserted_while_the_text_does_not_parse(
    client: LanguageClient,
) -> None:
    uri, text = FIXTURE.as_uri(), FIXTURE.read_text(encoding="utf-8")
    before = await published(client, uri, open_document(client, FIXTURE, text))
    broken = "x = (\n\n" + text
    diagnostics = await published(client, uri, change_document(client, FIXTURE, 2, broken))
    assert [d.code for d in diagnostics] == ["EVL001", "EVL002", "EVL999"]
    assert shifted(summary(before), 2) == summary(diagnostics)[:2]
    commented = text.replace("    total = 0.0\n", "    total = 0.0\n    # a note\n\n")
    diagnostics = await published(client, uri, change_document(client, FIXTURE, 3, commented))
    assert summary(diagnostics) == shifted(summary(before), 2)


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_new_module_resolves_an_import_that_missed(
    client: LanguageClient, tmp_path: Path
) -> None:
    path = tmp_path / "main.py"
    text = "import torch\nfrom parts import Block\n\nb = Block()\nfor x, y in test_dl:\n    pred = b(x)\n"
    path.write_text(text, encoding="utf-8")
    assert await published(client, path.as_uri(), open_document(client, path, text)) == []
    module = tmp_path / "parts.py"
    module.write_text(
        "import torch.nn as nn\n\n\nclass Block(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.drop = nn.Dropout(0.5)\n\n"
        "    def forward(self, x):\n        return self.drop(x)\n",
        encoding="utf-8",
    )
    created = types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=module.as_uri(), type=types.FileChangeType.Created)]
    )
    diagnostics = await published(
        client, path.as_uri(), lambda: client.workspace_did_change_watched_files(created)
    )
    assert [d.code for d in diagnostics] == ["EVL001", "EVL002"]


class RawClient:
    """A bare JSON-RPC client over the server's stdio: nothing between the test and the
    process, so what the test sees is what an editor would see."""

    def __init__(self) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, "-m", "evallint.lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.next_id = 0
        # Read the server's output all the time, as an editor does: a client that stops
        # reading fills the pipe, and a server writing 400 diagnostics then waits for it.
        self.messages: queue.Queue[Optional[dict[str, object]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def send(self, method: str, params: object, *, request: bool = False) -> int:
        import json

        message: dict[str, object] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()
        return self.next_id

    def _read(self) -> None:
        import json

        assert self.process.stdout is not None
        while True:
            length = 0
            while True:
                line = self.process.stdout.readline()
                if not line:
                    self.messages.put(None)
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            self.messages.put(json.loads(self.process.stdout.read(length)))

    def receive(self) -> dict[str, object]:
        answer = self.messages.get(timeout=120)
        assert answer is not None, "the server closed its output"
        return answer

    def until(self, wanted: Callable[[dict[str, object]], bool]) -> dict[str, object]:
        while True:
            message = self.receive()
            if wanted(message):
                return message

    def initialize(self) -> None:
        self.send(
            "initialize", {"processId": None, "rootUri": None, "capabilities": {}}, request=True
        )
        self.until(lambda m: m.get("id") == 1)
        self.send("initialized", {})

    def open(self, uri: str, text: str) -> dict[str, object]:
        """Open a document; its first diagnostics."""
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        self.send("textDocument/didOpen", {"textDocument": item})
        return self.until(lambda m: m.get("method") == "textDocument/publishDiagnostics")

    def code_action(self, uri: str, line: int, only: Optional[list[str]] = None) -> int:
        where = {"line": line, "character": 0}
        context: dict[str, object] = {"diagnostics": []}
        if only is not None:
            context["only"] = only
        params = {
            "textDocument": {"uri": uri},
            "range": {"start": where, "end": where},
            "context": context,
        }
        return self.send("textDocument/codeAction", params, request=True)


@pytest.fixture
def raw_client():
    client = RawClient()
    yield client
    if client.process.poll() is None:
        client.process.kill()
        client.process.wait()


@pytest.mark.integration
def test_exit_during_a_pending_code_action_ends_the_process_at_once(
    raw_client: RawClient, tmp_path: Path
) -> None:
    """1,200 lines with 400 findings: the code action takes seconds; exit must not wait."""
    import time

    text = many_findings(200)
    uri = (tmp_path / "big.py").as_uri()
    raw_client.initialize()
    published = raw_client.open(uri, text)
    assert len(published["params"]["diagnostics"]) == 400  # type: ignore[index]
    pending = raw_client.code_action(uri, 0)  # fix-all too: every finding's fix is at stake
    time.sleep(0.5)
    raw_client.send("shutdown", None, request=True)
    answered = raw_client.until(lambda m: m.get("id") in (pending, pending + 1))
    assert answered["id"] == pending + 1  # shut down while the code action is still pending
    sent = time.monotonic()
    raw_client.send("exit", None)
    assert raw_client.process.wait(timeout=5) in (0, 1)
    assert time.monotonic() - sent < 1.0


@pytest.mark.integration
def test_exit_without_shutdown_while_linting_ends_the_process_with_status_1(
    raw_client: RawClient, tmp_path: Path
) -> None:
    import time

    raw_client.initialize()
    item = {"uri": (tmp_path / "big.py").as_uri(), "languageId": "python", "version": 1}
    raw_client.send("textDocument/didOpen", {"textDocument": {**item, "text": many_findings(1000)}})
    time.sleep(0.3)  # the lint is under way on its thread
    sent = time.monotonic()
    raw_client.send("exit", None)
    assert raw_client.process.wait(timeout=5) == 1
    assert time.monotonic() - sent < 1.0


@pytest.mark.integration
def test_a_newer_version_cancels_a_pending_code_action_and_diagnostics_do_not_wait(
    raw_client: RawClient, tmp_path: Path
) -> None:
    import time

    text = many_findings(300)
    uri = (tmp_path / "mid.py").as_uri()
    raw_client.initialize()
    raw_client.open(uri, text)
    pending = raw_client.code_action(uri, 0)
    time.sleep(0.2)
    changed = {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"text": text + "x = 1\n"}],
    }
    raw_client.send("textDocument/didChange", changed)
    seen: list[dict[str, object]] = []
    raw_client.until(
        lambda m: (
            seen.append(m) is None  # type: ignore[func-returns-value]
            and any(s.get("id") == pending for s in seen)
            and any(s.get("method") == "textDocument/publishDiagnostics" for s in seen)
        )
    )
    (answer,) = [m for m in seen if m.get("id") == pending]
    assert answer.get("result") == []  # abandoned: its text is gone
    (diagnostics,) = [m for m in seen if m.get("method") == "textDocument/publishDiagnostics"]
    assert diagnostics["params"]["version"] == 2  # type: ignore[index]

    pending = raw_client.code_action(uri, 0)
    time.sleep(0.2)
    raw_client.send("$/cancelRequest", {"id": pending})
    answer = raw_client.until(lambda m: m.get("id") == pending)
    assert answer.get("error", {}).get("code") == -32800 or answer.get("result") == []  # type: ignore[union-attr]


# a real editor ---------------------------------------------------------------------------------

NVIM_INIT = """
local function start()
  local config = {
    name = "evallint",
    cmd = { os.getenv("EVALLINT_PYTHON"), "-m", "evallint.lsp" },
    root_dir = vim.fn.getcwd(),
  }
  if vim.lsp.start then  -- Neovim 0.8+
    vim.lsp.start(config)
  else  -- 0.7 (Debian bookworm)
    vim.lsp.buf_attach_client(0, vim.lsp.start_client(config))
  end
end
vim.api.nvim_create_autocmd("FileType", { pattern = "python", callback = start })

function Collect()
  vim.wait(60000, function() return #vim.diagnostic.get(0) > 0 end, 50)
  local lines = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
    table.insert(lines, string.format("%s %d %d %s", code, d.lnum, d.col, d.source or ""))
  end
  table.sort(lines)
  vim.fn.writefile(lines, os.getenv("EVALLINT_OUT"))
  vim.cmd("qa!")
end
"""


@pytest.mark.integration
def test_neovim_shows_the_findings(tmp_path: Path) -> None:
    """Neovim's built-in client (`nvim --headless`) opens a file, the server's findings
    land in vim.diagnostic at the lines and columns the CLI reports."""
    import shutil
    import subprocess

    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("nvim is not installed (apt-get install neovim)")
    init = tmp_path / "init.lua"
    init.write_text(NVIM_INIT, encoding="utf-8")
    source = tmp_path / "train.py"
    source.write_text(FIXTURE.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "diagnostics.txt"
    env = {
        **__import__("os").environ,
        "EVALLINT_PYTHON": sys.executable,
        "EVALLINT_OUT": str(out),
    }
    subprocess.run(
        [
            nvim,
            "--headless",
            "-n",
            "-i",
            "NONE",
            "-u",
            str(init),
            str(source),
            "-c",
            "lua Collect()",
        ],
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    assert out.read_text(encoding="utf-8").splitlines() == [
        "EVL001 37 15 evallint",
        "EVL002 37 15 evallint",
    ]


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_broken_config_is_shown_once_and_defaults_lint(
    client: LanguageClient, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.evallint]\nselect = "EVL001"\n', "utf-8")
    path = tmp_path / "train.py"
    text = FIXTURE.read_text(encoding="utf-8")
    diagnostics = await published(client, path.as_uri(), open_document(client, path, text))
    assert [d.code for d in diagnostics] == ["EVL001", "EVL002"]
    await published(client, path.as_uri(), change_document(client, path, 2, text + "x = 1\n"))
    shown = [m.message for m in client.messages if "evallint:" in m.message]
    assert len(shown) == 1 and "pyproject.toml" in shown[0] and "select" in shown[0]
