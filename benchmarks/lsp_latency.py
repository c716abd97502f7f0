"""How long an editor waits for evallint's diagnostics: first open, then while typing.

Starts `python -m evallint.lsp` (initializationOptions `{"debounce": 0}`, so what is timed
is the server's work, not its wait after a keystroke), opens a generated training script
(1,000 and 5,000 lines by default) and replays an editing session: 200 single-character
edits sent as incremental changes at typing speed (one every --interval seconds, or as
soon as the previous edit's diagnostics arrived if that took longer), typing a comment, a
statement (mostly not parsable until its brackets close), a backspace run and a retype,
in the middle of the file. Each edit is timed from didChange to the publishDiagnostics of
its version. Printed per size: time to first diagnostics (from didOpen, and from process
start), p50/p95/max per edit, and a bare LibCST parse of the same text for scale.

    python benchmarks/lsp_latency.py [--edits 200] [--sizes 1000 5000] [--interval 0.12]
    python benchmarks/lsp_latency.py --in-process   # CPU time per edit, no client

With `--in-process` the same session goes through the server's lint method in the
benchmark's own process and is timed in CPU seconds (what a loaded machine distorts least).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

BLOCK = """

class Net{i}(nn.Module):
    def __init__(self, width=128):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.body(x))


def train_epoch_{i}(model, loader, optimizer):
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)


def evaluate_{i}(model, loader):
    correct = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def run_{i}(train_loader, val_loader, epochs=3):
    model = Net{i}()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        loss = train_epoch_{i}(model, train_loader, optimizer)
        acc = evaluate_{i}(model, val_loader)
        print(epoch, loss, acc)
"""

SESSION = [
    ("type", "\n    # average over batches, not samples"),
    ("type", "\n    batches = max(len(loader), 1)"),
    ("erase", 3),
    ("type", "2)"),
    ("type", "\n    scale = 1.0 / batches"),
    ("type", "\n    # keep the running total in float32"),
    ("type", "\n    total = total * scale"),
]
"""What is typed after `total = 0.0` of the middle block's training function."""


def training_script(lines: int = 1000) -> str:
    """A realistic file: many small models, each with a train and an (unfixed) eval loop."""
    parts = ["import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"]
    index = 0
    while sum(part.count("\n") for part in parts) < lines:
        parts.append(BLOCK.format(i=index))
        index += 1
    return "".join(parts)


def keystrokes(text: str, count: int) -> list[tuple[int, int, int, str]]:
    """(line, character, characters removed, text inserted) per edit, 0-based positions
    in the text as it is when the edit is sent; the session repeats until `count`."""
    lines = text.split("\n")
    anchor = [n for n, line in enumerate(lines) if line == "    total = 0.0"]
    line, character = anchor[len(anchor) // 2], len("    total = 0.0")
    edits: list[tuple[int, int, int, str]] = []
    while len(edits) < count:
        for action, value in SESSION:
            if action == "type":
                for char in str(value):
                    edits.append((line, character, 0, char))
                    line, character = (line + 1, 0) if char == "\n" else (line, character + 1)
            else:
                for _ in range(int(value)):
                    character -= 1
                    edits.append((line, character, 1, ""))
    return edits[:count]


@dataclass
class Measured:
    lines: int
    findings: int
    open_seconds: float
    start_seconds: float
    per_edit: list[float]
    initialize_seconds: float = 0.0
    """From process start to the `initialize` result (0 in process)."""


async def session(text: str, edits: int, interval: float) -> Measured:
    client = LanguageClient("evallint-benchmark", "1")
    arrived: dict[int, asyncio.Future[tuple[float, int]]] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_publish(params: types.PublishDiagnosticsParams) -> None:
        future = arrived.get(params.version or 0)
        if future is not None and not future.done():
            future.set_result((time.perf_counter(), len(params.diagnostics)))

    started = time.perf_counter()
    await client.start_io(sys.executable, "-m", "evallint.lsp")
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options={"debounce": 0}
        )
    )
    answered = time.perf_counter()
    client.initialized(types.InitializedParams())
    # a project of its own: in a shared directory (/tmp) the project index would read every
    # script there looking for callers of the document's functions
    directory = Path(tempfile.mkdtemp(prefix="evallint-lsp-latency-"))
    (directory / "README.md").write_text("A training script.\n", encoding="utf-8")
    uri = (directory / "train.py").as_uri()
    loop = asyncio.get_running_loop()
    arrived[1] = loop.create_future()
    item = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
    opened = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    first, findings = await asyncio.wait_for(arrived[1], 120)
    per_edit = []
    last_sent = 0.0
    for version, (line, character, removed, inserted) in enumerate(
        keystrokes(text, edits), start=2
    ):
        await asyncio.sleep(max(0.0, last_sent + interval - time.perf_counter()))
        arrived[version] = loop.create_future()
        change = types.TextDocumentContentChangePartial(
            range=types.Range(
                start=types.Position(line=line, character=character),
                end=types.Position(line=line, character=character + removed),
            ),
            text=inserted,
        )
        last_sent = time.perf_counter()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[change],
            )
        )
        done, _ = await asyncio.wait_for(arrived[version], 120)
        per_edit.append(done - last_sent)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    shutil.rmtree(directory, ignore_errors=True)
    return Measured(
        text.count("\n"), findings, first - opened, first - started, per_edit, answered - started
    )


def in_process(text: str, edits: int) -> Measured:
    """The same session through the server's lint method in this process (as its lint
    thread calls it, then the conversion to LSP diagnostics), timed in CPU seconds of this
    process: on a machine other processes load, a fairer measure than the wall clock."""
    from evallint.lsp.convert import to_lsp
    from evallint.lsp.program import Program
    from evallint.lsp.server import EvallintServer
    from evallint.source.text import split_lines

    directory = Path(tempfile.mkdtemp(prefix="evallint-lsp-latency-"))
    (directory / "README.md").write_text("A training script.\n", encoding="utf-8")
    path = directory / "train.py"
    server = EvallintServer()

    def lint(version: int, text: str) -> tuple[float, int]:
        started = time.process_time()
        program = Program.of_text(path.as_uri(), str(path), version, text)
        found = server.lint(program)
        lines = [split_lines(text)]
        for finding in found:
            to_lsp(finding, program, 0, "utf-16", server.lines_of, None, lines)
        return time.process_time() - started, len(found)

    started = time.process_time()
    first, findings = lint(1, text)
    per_edit = []
    for version, (line, character, removed, inserted) in enumerate(
        keystrokes(text, edits), start=2
    ):
        lines = text.split("\n")
        offset = sum(len(each) + 1 for each in lines[:line]) + character
        text = text[:offset] + inserted + text[offset + removed :]
        per_edit.append(lint(version, text)[0])
    shutil.rmtree(directory, ignore_errors=True)
    return Measured(text.count("\n"), findings, first, time.process_time() - started, per_edit)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200, help="edits to replay (default 200)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 5000], help="script lengths in lines"
    )
    parser.add_argument(
        "--interval", type=float, default=0.12, help="seconds between keystrokes (default 0.12)"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no client or server process: the server's lint in this process, timed in CPU "
        "seconds (on a loaded machine, the fairer measure)",
    )
    args = parser.parse_args()
    import libcst as cst

    for size in args.sizes:
        text = training_script(size)
        parse_times = []
        for _ in range(3):
            start = time.perf_counter()
            cst.parse_module(text)
            parse_times.append(time.perf_counter() - start)
        if args.in_process:
            measured = in_process(text, args.edits)
            ms = [t * 1000 for t in measured.per_edit]
            print(
                f"{measured.lines} lines, {measured.findings} findings, bare LibCST parse "
                f"{statistics.median(parse_times) * 1000:.0f} ms (wall); load average "
                f"{os.getloadavg()[0]:.1f}"
            )
            print(f"  first lint: {measured.open_seconds * 1000:.0f} ms CPU")
            print(
                f"  CPU per edit ({len(ms)} edits): p50 {percentile(ms, 0.5):.0f} ms, "
                f"p95 {percentile(ms, 0.95):.0f} ms, max {max(ms):.0f} ms"
            )
            continue
        measured = asyncio.run(session(text, args.edits, args.interval))
        ms = [t * 1000 for t in measured.per_edit]
        print(
            f"{measured.lines} lines, {measured.findings} findings, bare LibCST parse "
            f"{statistics.median(parse_times) * 1000:.0f} ms"
        )
        print(
            f"  first diagnostics: {measured.open_seconds * 1000:.0f} ms after didOpen, "
            f"{measured.start_seconds * 1000:.0f} ms after the process started "
            f"(initialize answered {measured.initialize_seconds * 1000:.0f} ms after it); "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"  per edit ({len(ms)} edits): p50 {percentile(ms, 0.5):.0f} ms, "
            f"p95 {percentile(ms, 0.95):.0f} ms, max {max(ms):.0f} ms; "
            f"{sum(1 for t in ms if t <= 50)} edits answered within 50 ms"
        )


if __name__ == "__main__":
    main()
