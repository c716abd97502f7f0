"""Notebooks: IPython syntax masked line for line, cells located back, fixtures linted end to end.

Each fixture notebook carries its expected findings in its own metadata,
`"evallint": {"expect": [[cell, line, "EVL001"], ...]}`, cells numbered 1-based among all cells.
"""

from __future__ import annotations

import json
from pathlib import Path

import libcst as cst
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from evallint.diagnostics import Diagnostic, Edit, Fix, Related
from evallint.engine.run import lint_source
from evallint.source.notebook import (
    NotebookError,
    VirtualSource,
    join_cells,
    map_diagnostic,
    mask_cell,
    read_notebook,
)

NOTEBOOK_DIR = Path(__file__).parent / "fixtures" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _notebook(*cells: nbformat.NotebookNode, **metadata: object) -> str:
    return nbformat.writes(new_notebook(cells=list(cells), metadata=metadata))


def _parses(text: str) -> bool:
    try:
        cst.parse_module(text)
    except cst.ParserSyntaxError:
        return False
    return True


# --- masking -----------------------------------------------------------------------------

MAGIC_CELLS = {
    "line magics": "%matplotlib inline\n%load_ext autoreload\n%autoreload 2\nimport torch",
    "shell escapes": "!pip install timm\nx = !ls\nfiles = %sx ls -la\n!!ls",
    "time cell magic": "%%time\nfor x in y:\n    %time z = model(x)\n    !echo hi\n",
    "bash cell magic": "%%bash\nfor f in *.py; do\n  echo $f\ndone",
    "writefile cell magic": "\n%%writefile train.py\nimport torch\ndef broken(:\n",
    "help": "model?\n?model\nnn.Module.eval??\n%pinfo model",
    "magic alone in a block": "if cuda:\n    %env CUDA_VISIBLE_DEVICES=0\nelse:\n    !nvidia-smi\n",
    "continued magic": "!pip install \\\n    timm\n%time x = f(1,\n            2)\ny = 1",
    "timeit options": "for b in batches:\n    %timeit -n 10 -r3 -q model(b)\n%prun -l 5 -s cumtime train()\n",
    "compound after time": "%time for i in range(3): f(i)\n",
    "automagic": "pip install torchmetrics",
    "escapes in other autocall forms": "/print 1\n,print a b\n;print a b",
}


@pytest.mark.parametrize("cell", list(MAGIC_CELLS.values()), ids=list(MAGIC_CELLS))
def test_masking_keeps_every_line_and_parses(cell: str) -> None:
    lines, shifts = mask_cell(cell)
    assert len(lines) == len(shifts) == cell.count("\n") + 1
    assert _parses("\n".join(lines) + "\n")


def test_python_lines_are_unchanged_and_magics_keep_indentation() -> None:
    cell = "for x in y:\n    %time z = model(x)\n    !echo hi\n    w = 1  # 100% not a magic"
    lines, _ = mask_cell(cell)
    assert lines == [
        "for x in y:",
        "    pass; z = model(x)",
        "    pass  # !echo hi",
        "    w = 1  # 100% not a magic",
    ]


def test_timed_statement_keeps_its_columns() -> None:
    original = "    %timeit -n 10 -r3 -q preds = model(batch)"
    masked = mask_cell("for batch in loader:\n" + original)[0][1]
    assert masked.index("model(batch)") == original.index("model(batch)")
    assert masked.lstrip().startswith("pass;")


def test_strings_brackets_and_comments_are_not_magics() -> None:
    cell = "s = '''\n%not a magic\n!nor this\n'''\nf(a,\n  %b)\nprint('a=%d' % x)  # why?\nx != y"
    assert mask_cell(cell)[0] == cell.split("\n")


def test_non_python_cell_magic_masks_the_whole_cell() -> None:
    lines, _ = mask_cell("%%html\n<b>model(x)</b>\n\n<i>x</i>")
    assert lines == ["# %%html", "# <b>model(x)</b>", "", "# <i>x</i>"]


def test_automagic_only_in_a_single_line_cell_that_is_not_python() -> None:
    assert mask_cell("pip install timm")[0] == ["pass  # pip install timm"]
    assert mask_cell("pip = 3")[0] == ["pip = 3"]
    assert not _parses("\n".join(mask_cell("pip install timm\nx = 1")[0]) + "\n")


def test_indented_cell_is_dedented_as_ipython_does() -> None:
    lines, shifts = mask_cell("    x = f(\n)\n    y = 2")
    assert lines == ["x = f(", ")", "y = 2"]
    assert shifts == (4, 0, 4)


# --- read_notebook and locate ---------------------------------------------------------------


def _marked_notebook() -> tuple[str, dict[str, tuple[int, int]]]:
    """Every code line names its own (cell, line); markdown and raw cells interleave."""
    cells = [
        new_markdown_cell("# title"),
        new_code_cell("a_2_1 = 1\nif cond:\n    %time a_2_3 = 2\n"),  # trailing newline: 4 lines
        new_raw_cell("raw"),
        new_code_cell(""),
        new_code_cell("%%time\na_5_2 = [\n    a_5_3,\n]"),
        new_markdown_cell("## more"),
        new_code_cell("    a_7_1 = 1\n    a_7_2 = 2"),
    ]
    where = {
        "a_2_1": (2, 1),
        "a_2_3": (2, 3),
        "a_5_2": (5, 2),
        "a_5_3": (5, 3),
        "a_7_1": (7, 1),
        "a_7_2": (7, 2),
    }
    return _notebook(*cells), where


def test_locate_round_trips_through_all_cell_numbering() -> None:
    text, where = _marked_notebook()
    vs = read_notebook(text)
    assert [c.index for c in vs.cells] == [2, 4, 5, 7]
    assert _parses(vs.text)
    virtual = vs.text.split("\n")
    for marker, expected in where.items():
        (number,) = [n for n, line in enumerate(virtual, start=1) if marker in line]
        assert vs.locate(number) == expected, marker
    for span in vs.cells:
        assert [vs.locate(line)[0] for line in range(span.start, span.end + 1)] == [
            span.index
        ] * len(span.shifts)
    assert read_notebook(text.encode("utf-8")) == vs
    cells = nbformat.reads(text, as_version=4).cells
    assert join_cells((c.cell_type, c.source) for c in cells) == vs  # what a language server has


def test_locate_rejects_lines_before_the_start_and_gives_the_end_to_the_last_cell() -> None:
    vs = read_notebook(_marked_notebook()[0])
    with pytest.raises(ValueError):
        vs.locate(0)
    last = vs.cells[-1]
    assert vs.locate(last.end + 1) == (last.index, len(last.shifts) + 1)


INVALID = {
    "truncated JSON": b'{"cells": [',
    "not UTF-8": b'{"cells": "\xff"}',
    "JSON list": b"[]",
    "empty object": b"{}",
    "JSON string": b'"notebook"',
    "unknown version": b'{"nbformat": 9, "nbformat_minor": 0, "cells": [], "metadata": {}}',
    "no cells": b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
    "cell without source": json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 4,
            "metadata": {},
            "cells": [
                {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
            ],
        }
    ).encode(),
}


@pytest.mark.parametrize("data", list(INVALID.values()), ids=list(INVALID))
def test_invalid_notebook_raises_a_one_line_error(data: bytes) -> None:
    with pytest.raises(NotebookError) as error:
        read_notebook(data)
    message = str(error.value)
    assert message and "\n" not in message


def test_schema_invalid_notebook_is_still_read() -> None:
    nb = new_notebook(
        cells=[new_code_cell("import torch", outputs=[new_output("stream", text="x")])]
    )
    nb.cells[0].outputs[0]["name"] = 42  # a bad output: Jupyter warns and opens it
    vs = read_notebook(json.dumps(nb))
    assert vs.text == "import torch\n"


def test_older_format_is_converted_by_nbformat() -> None:
    v4 = new_notebook(
        cells=[new_markdown_cell("m"), new_code_cell("import torch\n%matplotlib inline")]
    )
    v3 = nbformat.writes(nbformat.convert(v4, 3))
    assert (
        read_notebook(v3).text
        == read_notebook(nbformat.writes(v4)).text
        == "import torch\npass  # %matplotlib inline\n"
    )


def _unversioned(cells: list[dict[str, object]], **metadata: object) -> str:
    """A notebook JSON as some generators write it: current-shaped cells, no `nbformat` keys."""
    return json.dumps({"cells": cells, "metadata": metadata})


def test_notebook_without_version_keys_is_read_from_its_cells() -> None:
    text = _unversioned(
        [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
            {"cell_type": "code", "metadata": {}, "source": ["import torch\n", "%time x = 1"]},
            {"cell_type": "code", "metadata": {}, "source": "y = 2"},
        ]
    )
    vs = read_notebook(text)
    assert vs.text == "import torch\npass; x = 1\ny = 2\n"  # %time masked, the statement kept
    assert [(span.index, span.start) for span in vs.cells] == [(2, 1), (3, 3)]


def test_notebook_without_version_keys_of_another_language_has_no_program() -> None:
    text = _unversioned(
        [{"cell_type": "code", "source": "library(torch)"}], kernelspec={"language": "R"}
    )
    assert read_notebook(text) == VirtualSource("", [])


@pytest.mark.parametrize(
    "cells",
    [[{"cell_type": "code", "source": 3}], [{"source": "x = 1"}], ["x = 1"]],
    ids=["source not text", "no cell type", "cell not an object"],
)
def test_notebook_without_version_keys_and_odd_cells_is_a_one_line_error(
    cells: list[object],
) -> None:
    with pytest.raises(NotebookError) as error:
        read_notebook(json.dumps({"cells": cells, "metadata": {}}))
    assert str(error.value).startswith("not a notebook") and "\n" not in str(error.value)


def test_notebook_of_another_language_has_no_program() -> None:
    text = _notebook(new_code_cell("library(torch)\n%%R"), language_info={"name": "R"})
    assert read_notebook(text) == VirtualSource("", [])


# --- map_diagnostic ------------------------------------------------------------------------


def test_map_diagnostic_moves_lines_columns_and_related_into_cells() -> None:
    vs = read_notebook(
        _notebook(
            new_markdown_cell("m"),
            new_code_cell("x = 1"),
            new_code_cell("  model = f()\n  y = model(x)"),
        )
    )
    fix = Fix("insert eval()", (Edit(2, 1, 2, 1, "model.eval()\n"),))
    d = Diagnostic(
        "nb.ipynb",
        3,
        5,
        3,
        13,
        "EVL001",
        "m",
        (Related("nb.ipynb", 2, 1, "created here"), Related("helpers.py", 7, 3, "elsewhere")),
        fix=fix,
    )
    mapped = map_diagnostic(d, vs)
    assert (mapped.cell, mapped.line, mapped.column, mapped.end_line, mapped.end_column) == (
        3,
        2,
        7,
        2,
        15,
    )
    here, elsewhere = mapped.related
    assert (here.cell, here.line, here.column) == (3, 1, 3)
    assert elsewhere == d.related[1]
    assert mapped.fix is None


def test_map_diagnostic_keeps_a_node_that_runs_on_into_the_next_cell_in_its_cell() -> None:
    # (read_notebook masks such cells, each unparsable alone; the language server joins them)
    vs = join_cells([("code", "y = f(a,"), ("code", "  b)")])
    assert _parses(vs.text)
    mapped = map_diagnostic((Diagnostic("nb.ipynb", 1, 5, 2, 4, "EVL001", "m")), vs)
    assert (mapped.cell, mapped.line, mapped.end_line, mapped.end_column) == (1, 1, 1, 9)


# --- fixtures end to end ----------------------------------------------------------------------


def test_fixture_notebooks_cover_buggy_clean_magics_and_cross_cell() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert len(NOTEBOOKS) >= 4
    assert {"buggy_train_eval", "clean_train_eval", "magics", "cross_cell_model"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_fixture_notebook(path: Path) -> None:
    notebook = nbformat.read(str(path), as_version=4)
    expected = {tuple(item) for item in notebook.metadata["evallint"]["expect"]}
    vs = read_notebook(path.read_bytes())
    virtual = vs.text.split("\n")
    pairs = [(d, map_diagnostic((d), vs)) for d in lint_source(vs.text, str(path))]
    assert {(m.cell, m.line, m.code) for _, m in pairs} == expected
    for d, m in pairs:  # the cell text under the mapped range is the text the analysis saw
        cell_line = notebook.cells[m.cell - 1].source.split("\n")[m.line - 1]
        seen = virtual[d.line - 1][
            d.column - 1 : d.end_column - 1 if d.end_line == d.line else None
        ]
        assert seen.strip() and cell_line[m.column - 1 :].startswith(seen), (m.code, cell_line)
        for r in m.related:
            assert 1 <= r.line <= len(notebook.cells[r.cell - 1].source.split("\n"))


def test_noqa_in_a_cell_silences_its_finding() -> None:
    path = NOTEBOOK_DIR / "buggy_train_eval.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    notebook.cells[5].source = notebook.cells[5].source.replace(
        ".squeeze(-1)\n", ".squeeze(-1)  # noqa: EVL001\n", 1
    )
    vs = read_notebook(nbformat.writes(notebook))
    found = [map_diagnostic((d), vs) for d in lint_source(vs.text, str(path))]
    assert {(d.cell, d.line, d.code) for d in found} == {(6, 3, "EVL002")}


def test_a_cell_that_does_not_parse_stops_only_itself() -> None:
    """Jupyter compiles every cell apart: an exercise cell left unfinished (`n = `) fails
    alone. It is reported, and the evaluation in a later cell is still analysed."""
    from evallint.engine.run import lint_bytes

    notebook = _notebook(
        new_code_cell("import torch\nnet = torch.nn.Sequential(torch.nn.Dropout(0.5))"),
        new_markdown_cell("## Exercise"),
        new_code_cell("x = 1\nbatches = \n"),
        new_code_cell("net.eval()\nfor x in test_loader:\n    out = net(x)\n"),
    )
    vs = read_notebook(notebook)
    assert [line for line, _, _ in vs.unparsable] == [4]
    assert _parses(vs.text) and all(not line.startswith("batches") for line in vs.text.split("\n"))
    found = lint_bytes(notebook.encode(), "exercise.ipynb")
    assert {(d.cell, d.line, d.code) for d in found} == {(3, 2, "EVL999"), (4, 3, "EVL002")}


def test_unparsable_cells_are_kept_whole_for_the_language_server() -> None:
    vs = join_cells([("code", "x = \n"), ("code", "y = 1\n")])
    assert vs.unparsable == () and vs.text.split() == ["x", "=", "y", "=", "1"]


def test_a_caller_in_another_notebook_is_given_by_cell_and_line(tmp_path: Path) -> None:
    """A helper file's finding reached from a notebook's cell names that cell and its line,
    not a line of the notebook's virtual source (which means nothing to a reader)."""
    from evallint.engine.run import lint_file

    (tmp_path / "losses.py").write_text(
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
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# Train"),
            new_code_cell(
                "import torch\nimport torch.nn as nn\nfrom losses import batch_loss, loader_loss"
            ),
            new_code_cell(
                "model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))\n"
                "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                "loader = [(torch.rand(3, 4), torch.tensor([0, 1, 0]))]"
            ),
            new_code_cell(
                "for epoch in range(3):\n"
                "    for x, y in loader:\n"
                "        loss = batch_loss(x, y, model)\n"
                "        optimizer.zero_grad()\n"
                "        loss.backward()\n"
                "        optimizer.step()\n"
                "    print(loader_loss(loader, model))"
            ),
        ]
    )
    nbformat.write(notebook, str(tmp_path / "train.ipynb"))
    found = lint_file(tmp_path / "losses.py")
    callers = [
        (r.cell, r.line, r.column)
        for d in found
        for r in d.related
        if r.path.endswith("train.ipynb")
    ]
    assert {d.code for d in found} >= {"EVL001"}
    assert callers and set(callers) == {(4, 7, 11)}
