"""`--plot DIR`: one PNG per confirmed finding, readable at a glance.

Why a picture: people look at a plot before they read numbers. For EVL001/EVL003 the left
panel overlays the train-mode and eval-mode output distributions of the first simulated
mode-dependent layer; when a BatchNorm/InstanceNorm is present the right panel shows its
running mean/var drifting batch by batch through the simulated validation loop. For EVL002
a bar chart compares the bytes autograd keeps alive with grad on and under `no_grad`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

from evallint.verifier.finding import VerifiedFinding  # noqa: E402
from evallint.verifier.torch_run import LayerRun  # noqa: E402

_TRAIN_COLOUR = "#d62728"
_EVAL_COLOUR = "#1f77b4"


def write_plots(findings: list[VerifiedFinding], directory: str) -> list[str]:
    """Write `<file>_<line>_<code>.png` for each confirmed finding; return the paths written."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for finding in findings:
        if finding.verdict != "confirmed":
            continue
        d = finding.diagnostic
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(d.path).stem)
        target = out_dir / f"{stem}_{d.line}_{d.code}.png"
        figure = _memory_figure(finding) if finding.memory is not None else _mode_figure(finding)
        if figure is None:
            continue
        figure.savefig(target, dpi=110)
        plt.close(figure)
        written.append(str(target))
    return written


def _title(finding: VerifiedFinding) -> str:
    d = finding.diagnostic
    return f"{d.code} {Path(d.path).name}:{d.line}  `{d.subject}`"


def _mode_figure(finding: VerifiedFinding) -> Any:
    outputs = [
        run for run in finding.runs if run.train_output is not None and run.eval_output is not None
    ]
    drifts = [run for run in finding.runs if run.trace]
    if not outputs:
        return None
    panels = 2 if drifts else 1
    figure, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
    _distribution(axes[0][0], outputs[0], finding.diagnostic.code)
    if drifts:
        _drift(axes[0][1], drifts[0], finding.diagnostic.code)
    figure.suptitle(_title(finding), fontsize=11, fontweight="bold")
    figure.tight_layout()
    return figure


def _distribution(ax: Any, run: LayerRun, code: str) -> None:
    assert run.train_output is not None and run.eval_output is not None
    train, evaluated = run.train_output, run.eval_output
    low, high = np.percentile(np.concatenate([train, evaluated]), [0.5, 99.5])
    bins = np.linspace(low, high, 60)
    ax.hist(
        evaluated,
        bins=bins,
        alpha=0.55,
        color=_EVAL_COLOUR,
        label="eval mode (what evaluation should see)",
    )
    ax.hist(
        train,
        bins=bins,
        alpha=0.55,
        color=_TRAIN_COLOUR,
        label="train mode (what this code runs)"
        if code == "EVL001"
        else "train mode (what training should see)",
    )
    figures = run.figures
    ax.set_title(
        f"{run.layer.label()} at {run.layer.location}: output\n"
        f"mean |Δ| = {figures['train_vs_eval_mean_abs']:.2f}, max {figures['train_vs_eval_max_abs']:.1f}",
        fontsize=10,
    )
    ax.set_xlabel("activation value")
    ax.set_ylabel("count")
    ax.legend(fontsize=8, loc="upper right")


def _drift(ax: Any, run: LayerRun, code: str) -> None:
    steps = np.arange(len(run.trace["running_mean"]))
    ax.plot(steps, run.trace["running_mean"], marker="o", color="#2ca02c", label="running_mean")
    ax.plot(steps, run.trace["running_var"], marker="s", color="#9467bd", label="running_var")
    ax.axhline(
        0.0,
        color="grey",
        linewidth=0.8,
        linestyle="--",
        label="eval mode: no change" if code == "EVL001" else "eval mode (this code): no update",
    )
    ax.set_title(
        f"{run.layer.label()} at {run.layer.location}: running-stat drift\n"
        f"mean |change| from the start, batch by batch",
        fontsize=10,
    )
    ax.set_xlabel("validation batch" if code == "EVL001" else "training batch")
    ax.set_ylabel("mean |Δ| over channels")
    ax.legend(fontsize=8, loc="upper left")


def _memory_figure(finding: VerifiedFinding) -> Any:
    memory = finding.memory
    assert memory is not None
    figure, ax = plt.subplots(figsize=(6.5, 4.2))
    mib = [memory.grad_bytes / 2**20, memory.no_grad_bytes / 2**20]
    bars = ax.bar(
        ["grad enabled\n(this code)", "torch.no_grad()"], mib, color=[_TRAIN_COLOUR, _EVAL_COLOUR]
    )
    for bar, value in zip(bars, mib):
        ax.annotate(
            f"{value:.2f} MiB",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=10,
        )
    ax.set_ylim(0, max(mib) * 1.15 or 1.0)
    ax.set_ylabel(f"MiB kept for backward per batch of {memory.batch_size}")
    ax.set_title(
        f"activations autograd keeps alive ({len(memory.per_layer)} layers measured)", fontsize=10
    )
    figure.suptitle(_title(finding), fontsize=11, fontweight="bold")
    figure.tight_layout()
    return figure
