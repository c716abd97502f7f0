"""A finding in a Python file whose related place is a cell of another notebook (a caller of
the helper in the notebook's cells), shown by a real pytest-lsp client: the place is that
cell and its line, not a line of the notebook's joined source (which is no place an editor
can show, and was read from the notebook's JSON text before)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")
nbformat = pytest.importorskip("nbformat")

from lsprotocol import types  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

HELPERS = (
    "import torch.nn.functional as F\n\n\n"
    "def batch_loss(x, y, model):\n"
    "    logits = model(x)\n"
    "    return F.cross_entropy(logits, y)\n\n\n"
    "def loader_loss(loader, model):\n"
    "    total = 0.0\n"
    "    for x, y in loader:\n"
    "        total += batch_loss(x, y, model).item()\n"
    "    return total / len(loader)\n"
)
CELLS = [
    ("markdown", "# Train"),
    ("code", "import torch\nimport torch.nn as nn\nfrom losses import batch_loss, loader_loss"),
    (
        "code",
        "model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "loader = [(torch.rand(3, 4), torch.tensor([0, 1, 0]))]",
    ),
    (
        "code",
        "for epoch in range(3):\n"
        "    for x, y in loader:\n"
        "        loss = batch_loss(x, y, model)\n"
        "        optimizer.zero_grad()\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "    print(loader_loss(loader, model))",
    ),
]
"""The caller is cell 4 (markdown counted), line 7, column 11: `loader_loss(loader, model)`."""


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "evallint.lsp"])
)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities())
    )
    yield
    await lsp_client.shutdown_session()


def _project(tmp_path: Path) -> Path:
    (tmp_path / "losses.py").write_text(HELPERS, encoding="utf-8")
    notebook = new_notebook(
        cells=[
            new_markdown_cell(text) if kind == "markdown" else new_code_cell(text)
            for kind, text in CELLS
        ]
    )
    nbformat.write(notebook, str(tmp_path / "train.ipynb"))
    return tmp_path / "losses.py"


async def _open_helpers(client: LanguageClient, path: Path) -> list[types.Diagnostic]:
    item = types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=HELPERS)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    deadline = asyncio.get_running_loop().time() + 30
    while path.as_uri() not in client.diagnostics:  # an open notebook publishes its cells too
        assert asyncio.get_running_loop().time() < deadline, "no diagnostics for the file"
        await asyncio.sleep(0.05)
    return list(client.diagnostics[path.as_uri()])


def _notebook_places(diagnostics: list[types.Diagnostic], notebook: Path, cells: list[str]):
    return [
        (r.location.uri, r.location.range.start.line, r.location.range.start.character, r.message)
        for d in diagnostics
        if d.code == "EVL001"
        for r in d.related_information or []
        if r.location.uri == notebook.as_uri() or r.location.uri in cells
    ]


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_caller_in_a_notebook_the_editor_does_not_show_names_its_cell(
    client: LanguageClient, tmp_path: Path
) -> None:
    path = _project(tmp_path)
    diagnostics = await _open_helpers(client, path)
    places = _notebook_places(diagnostics, tmp_path / "train.ipynb", [])
    assert places, [d.code for d in diagnostics]
    for uri, line, character, message in places:
        assert (uri, line, character) == ((tmp_path / "train.ipynb").as_uri(), 0, 0)
        assert message.endswith("(cell 4, line 7)")


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_caller_in_an_open_notebook_is_its_cell_s_document(
    client: LanguageClient, tmp_path: Path
) -> None:
    path = _project(tmp_path)
    notebook = tmp_path / "train.ipynb"
    cells = [f"vscode-notebook-cell:{notebook}#cell{n}" for n in range(len(CELLS))]
    client.notebook_document_did_open(
        types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(
                uri=notebook.as_uri(),
                notebook_type="jupyter-notebook",
                version=1,
                cells=[
                    types.NotebookCell(
                        kind=types.NotebookCellKind.Code
                        if kind == "code"
                        else types.NotebookCellKind.Markup,
                        document=uri,
                    )
                    for (kind, _), uri in zip(CELLS, cells)
                ],
            ),
            cell_text_documents=[
                types.TextDocumentItem(
                    uri=uri,
                    language_id="python" if kind == "code" else "markdown",
                    version=1,
                    text=text,
                )
                for (kind, text), uri in zip(CELLS, cells)
            ],
        )
    )
    diagnostics = await _open_helpers(client, path)
    places = _notebook_places(diagnostics, notebook, cells)
    assert places, [d.code for d in diagnostics]
    assert {(uri, line, character) for uri, line, character, _ in places} == {(cells[3], 6, 10)}
