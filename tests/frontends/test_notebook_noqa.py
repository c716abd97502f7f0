"""Issue 18: `--add-noqa` on notebooks writes `# noqa: CODE` into the code cells' own lines,
keeps the notebook's JSON layout, outputs and metadata, and is idempotent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evallint.cli import main
from evallint.engine.config import clear_cache
from evallint.noqa import _reaches_program

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "tests" / "fixtures" / "notebooks" / "buggy_train_eval.ipynb"


@pytest.fixture(autouse=True)
def _fresh_config_cache():  # type: ignore[no-untyped-def]
    clear_cache()
    yield
    clear_cache()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--no-cache", "--jobs", "1", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_add_noqa_writes_into_the_cell_and_keeps_everything_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOK, target)
    before = target.read_bytes()
    code, out, _ = run(capsys, "--add-noqa", str(tmp_path))
    assert code == 0 and "Added 1 noqa directive." in out
    after = target.read_bytes()
    # byte for byte the same file, but for the one cell line that carries the findings
    line = '"    pred = model(xb).squeeze(-1)\\n"'
    assert before.count(line.encode()) == 1
    expected = before.replace(
        line.encode(), b'"    pred = model(xb).squeeze(-1)  # noqa: EVL001, EVL002\\n"'
    )
    assert after == expected
    assert run(capsys, str(tmp_path))[0] == 0  # the findings are suppressed now
    run(capsys, "--add-noqa", str(tmp_path))
    assert target.read_bytes() == after  # idempotent


def _notebook(tmp_path: Path, cells: list[object], indent: int, bom: bool) -> Path:
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 3,
                "id": f"c{n}",
                "metadata": {"tags": ["ünïcode"]},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["0.5\n"]}],
                "source": source,
            }
            for n, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    data = json.dumps(notebook, indent=indent, ensure_ascii=False).encode("utf-8")
    path = tmp_path / "nb.ipynb"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def test_add_noqa_in_string_sources_magics_and_existing_directives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _notebook(
        tmp_path,
        [
            "import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())",
            "for b in val_loader:\n    %time out = model(b)\n",  # a statement magic
            "for c in test_loader:\n    pred = model(c)  # noqa: E501\n",  # string source
        ],
        indent=2,
        bom=True,
    )
    assert run(capsys, str(tmp_path))[0] == 1
    code, out, _ = run(capsys, "--add-noqa", str(tmp_path))
    assert code == 0 and "Added 2 noqa directives." in out
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM stays
    notebook = json.loads(data.decode("utf-8-sig"))
    assert [c["source"] for c in notebook["cells"]][1:] == [
        "for b in val_loader:\n    %time out = model(b)  # noqa: EVL001, EVL002\n",
        "for c in test_loader:\n    pred = model(c)  # noqa: E501, EVL001, EVL002\n",
    ]
    assert notebook["cells"][2]["outputs"][0]["text"] == ["0.5\n"]
    assert notebook["cells"][2]["metadata"] == {"tags": ["ünïcode"]}
    assert '\n  "cells"' in data.decode("utf-8-sig")  # its own indentation (2), not Jupyter's 1
    assert run(capsys, str(tmp_path))[0] == 0
    run(capsys, "--add-noqa", str(tmp_path))
    assert path.read_bytes() == data


def test_a_directive_counts_only_where_the_masked_program_reads_it() -> None:
    lines = ["x = 1\n", "%time y = f(x)  # noqa: EVL001, EVL002\n"]
    assert _reaches_program(lines, 2, {"EVL001", "EVL002"})
    assert not _reaches_program(lines, 2, {"EVL003"})
    assert not _reaches_program(lines, 1, {"EVL001"})
    lines = ["x = 1\n", "!ls  # noqa: EVL001\n"]  # masked as a comment, still read
    assert _reaches_program(lines, 2, {"EVL001"})


def test_add_noqa_leaves_a_broken_notebook_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    code, out, _ = run(capsys, "--add-noqa", str(tmp_path))
    assert code == 0 and "Added 0 noqa directives." in out
    assert path.read_text(encoding="utf-8") == '{"cells": ['
