"""How long an editor waits for evallint's diagnostics after a keystroke.

Starts `python -m evallint.lsp`, opens a generated ~1,000-line training script, sends
full-text didChange notifications and times each until the matching publishDiagnostics.
The server waits DEBOUNCE_SECONDS before linting on purpose, so the work it does is the
measured time minus that wait; it is printed next to a bare LibCST parse of the same text
(in this process, same run) because absolute numbers mean little across machines.

    python benchmarks/lsp_latency.py [--edits 21]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import libcst as cst
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from evallint.engine.run import lint_source
from evallint.lsp import DEBOUNCE_SECONDS

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


def training_script(lines: int = 1000) -> str:
    """A realistic file: many small models, each with a train and an (unfixed) eval loop."""
    parts = ["import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"]
    index = 0
    while sum(part.count("\n") for part in parts) < lines:
        parts.append(BLOCK.format(i=index))
        index += 1
    return "".join(parts)


def median_seconds(function: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def server_latencies(text: str, edits: int) -> list[float]:
    """Seconds from each didChange to the publishDiagnostics for that version."""
    client = LanguageClient("evallint-benchmark", "1")
    arrived: dict[int, asyncio.Future[float]] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_publish(params: types.PublishDiagnosticsParams) -> None:
        future = arrived.get(params.version or 0)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    await client.start_io(sys.executable, "-m", "evallint.lsp")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    uri = "file:///tmp/evallint_benchmark_train.py"
    loop = asyncio.get_running_loop()
    arrived[1] = loop.create_future()
    item = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    await asyncio.wait_for(arrived[1], 60)
    latencies = []
    for version in range(2, edits + 2):
        arrived[version] = loop.create_future()
        changed = text + f"# edit {version}\n"
        sent = time.perf_counter()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=changed)],
            )
        )
        latencies.append(await asyncio.wait_for(arrived[version], 60) - sent)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--edits", type=int, default=21, help="didChange notifications to time (default: 21)"
    )
    args = parser.parse_args()
    text = training_script()
    findings = lint_source(text, "train.py")
    parse = median_seconds(lambda: cst.parse_module(text), args.edits)
    lint = median_seconds(lambda: lint_source(text, "train.py"), args.edits)
    total = statistics.median(asyncio.run(server_latencies(text, args.edits)))
    work = total - DEBOUNCE_SECONDS
    print(f"script: {text.count(chr(10))} lines, {len(findings)} findings")
    print(f"bare LibCST parse (median):          {parse * 1000:7.1f} ms")
    print(
        f"lint_source in process (median):     {lint * 1000:7.1f} ms  ({lint / parse:.2f}x parse)"
    )
    print(
        f"didChange -> publishDiagnostics:     {total * 1000:7.1f} ms  (includes the {DEBOUNCE_SECONDS * 1000:.0f} ms debounce)"
    )
    print(
        f"server work after the debounce:      {work * 1000:7.1f} ms  ({work / parse:.2f}x parse; target < 100 ms)"
    )


if __name__ == "__main__":
    main()
