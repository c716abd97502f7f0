#!/usr/bin/env python
"""Benchmark evallint against the floor it cannot beat (a bare LibCST parse) and its peers.

Why this shape: issue 7 sets every target as a ratio to `libcst.parse_module` on the same
files in the same run, so each measurement here runs as its own subprocess (wall seconds and
peak RSS of the whole process, interpreter start-up included), median of --repeat runs.

    python benchmarks/run.py                          # both built-in corpora
    python benchmarks/run.py --corpus torch-heavy --sample 8
    python benchmarks/run.py --corpus mixed
    python benchmarks/run.py path/to/repo --repeat 5 --json out.json
    python benchmarks/run.py path/to/repo --scale     # + peak RSS at 1x and 4x the files
    python benchmarks/run.py --file-sizes             # per-line cost of 1k, 10k, 100k-line files

Corpora need no network: `torch-heavy` is every .py of the installed torch package,
`mixed` is the standard library (without its tests) plus one torch-using project (this
repository's tests/fixtures and examples, or --project DIR). Each corpus is mirrored as a
tree of symlinks so that every tool lints exactly the same files from one directory argument
(no ARG_MAX limit, no tool-specific excludes such as `build/` or `venv/` dropping files).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

# Directory names some tool skips by default (evallint, flake8, ruff). The mirror renames them
# so each tool sees the same files; the real path is still what symlinks resolve to.
EXCLUDED_DIR_NAMES = frozenset(
    {
        ".bzr",
        ".direnv",
        ".eggs",
        ".evallint_cache",
        ".git",
        ".git-rewrite",
        ".hg",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".nox",
        ".pants.d",
        ".pytest_cache",
        ".pytype",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        "CVS",
        "__pycache__",
        "__pypackages__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "env",
        "node_modules",
        "site-packages",
        "venv",
    }
)
# The nearest peer (issue 20): LibCST-based, installed by the `bench` extra (pure Python).
PREFLIGHT = "torch-preflight"
# --scale lints the corpus once and then this many copies of it side by side in one run.
SCALE_COPIES = 4
STDLIB_SKIP_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib-dynload"}
)

# Runs one measurement: the commands in sequence, then reports wall time and the peak RSS of
# its children. A fresh wrapper per measurement, because RUSAGE_CHILDREN only ever grows.
WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
spec = json.loads(sys.argv[1])
rcs, tail, timed_out = [], "", False
start = time.perf_counter()
for argv in spec["commands"]:
    proc = subprocess.Popen(argv, cwd=spec["cwd"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=spec.get("env"), start_new_session=True)
    try:
        _, err = proc.communicate(timeout=max(1.0, spec["timeout"] - (time.perf_counter() - start)))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        timed_out = True
        break
    rcs.append(proc.returncode)
    tail = err.decode("utf-8", "replace")[-2000:]
wall = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if sys.platform == "darwin":
    rss //= 1024
print(json.dumps({"wall": wall, "maxrss_kb": rss, "rcs": rcs, "stderr": tail, "timeout": timed_out}))
"""

# The floor: parse every listed file, count failures. mode "cst", "cst-nogc" or "ast".
PARSER = r"""
import gc, sys
mode, listing = sys.argv[1], sys.argv[2]
if mode.startswith("cst"):
    import libcst
    parse = libcst.parse_module
else:
    import ast
    parse = ast.parse
if mode == "cst-nogc":
    gc.disable()
failed = 0
with open(listing, encoding="utf-8") as handle:
    for name in handle.read().splitlines():
        with open(name, "rb") as src:
            data = src.read()
        try:
            parse(data)
        except Exception:
            failed += 1
sys.stderr.write("parse failures: %d\n" % failed)
"""

# evallint through its public API, used while the CLI does not exist yet.
API_RUNNER = r"""
import sys, evallint
found = evallint.lint_paths(sys.argv[1:])
sys.stderr.write("findings: %d\n" % len(found))
"""

# flake8 without the evallint plugin: flake8 runs every installed plugin whatever --select
# says, so a true `--select E9` baseline must hide the plugin from flake8's finder.
FLAKE8_WITHOUT_EVALLINT = r"""
import sys
import flake8.plugins.finder as finder
_original = finder._find_importlib_plugins
def _without_evallint():
    for plugin in _original():
        if not plugin.entry_point.value.startswith("evallint"):
            yield plugin
finder._find_importlib_plugins = _without_evallint
from flake8.main.cli import main
sys.argv[0] = "flake8"
raise SystemExit(main())
"""

# --file-sizes: a training script is this header plus the chunk repeated with distinct names
# (a model, its training epoch, a correct evaluation, an evaluation missing `model.eval()`,
# and the loop tying them together), so every size has the same mix of code per line.
SCRIPT_HEADER = """import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
"""
SCRIPT_CHUNK = """

class Classifier{i}(nn.Module):
    def __init__(self, width=256, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.features(x))


def train_epoch_{i}(model, loader, optimizer, device):
    model.train()
    total = 0.0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / max(len(loader), 1)


@torch.no_grad()
def evaluate_{i}(model, loader, device):
    model.eval()
    correct = 0
    for inputs, targets in loader:
        predictions = model(inputs.to(device)).argmax(dim=1)
        correct += (predictions == targets.to(device)).sum().item()
    return correct / max(len(loader.dataset), 1)


def validation_loss_{i}(model, loader):
    losses = [F.cross_entropy(model(x), y).item() for x, y in loader]
    return sum(losses) / max(len(losses), 1)


def fit_{i}(train_set, val_set, epochs=3, device="cpu"):
    model = Classifier{i}().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=256)
    for epoch in range(epochs):
        loss = train_epoch_{i}(model, train_loader, optimizer, device)
        val_loss = validation_loss_{i}(model, val_loader)
        accuracy = evaluate_{i}(model, val_loader, device)
        print(f"epoch {{epoch}}: loss {{loss:.3f}} val loss {{val_loss:.3f}} acc {{accuracy:.3f}}")
    return model
"""
# Target lines per generated script; the one-chunk script is the baseline subtracted from each.
FILE_SIZES = (1_000, 10_000, 100_000)


@dataclass
class Corpus:
    """A named set of files, mirrored under `root` as symlinks."""

    name: str
    files: List[Path]
    root: Path = Path()
    mirrored: List[Path] = field(default_factory=list)
    lines: int = 0
    note: str = ""


@dataclass
class Result:
    """One measurement: all runs' wall times and peak RSS."""

    name: str
    walls: List[float] = field(default_factory=list)
    rss_kb: List[int] = field(default_factory=list)
    note: str = ""
    failed: str = ""

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.walls) if self.walls else None

    @property
    def peak_mb(self) -> Optional[float]:
        return max(self.rss_kb) / 1024 if self.rss_kb else None


# ---------------------------------------------------------------------------------------- corpora


def _package_dir(name: str) -> Optional[Path]:
    """A package's directory without importing it (importing torch costs seconds and memory)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _walk_py(root: Path, skip_dirs: frozenset = frozenset()) -> List[Path]:
    """Every .py file under root, sorted, following no directory symlinks (no loops)."""
    if root.is_file():
        return [root] if root.suffix == ".py" else []
    found: List[Path] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip_dirs)
        found.extend(
            Path(directory) / f
            for f in sorted(files)
            if f.endswith(".py") and os.path.isfile(os.path.join(directory, f))
        )
    return found


def _evallint_repo() -> Optional[Path]:
    directory = _package_dir("evallint")
    return directory.parent if directory is not None else None


def build_corpus(name: str, project: Optional[Path]) -> Corpus:
    if name == "torch-heavy":
        torch_dir = _package_dir("torch")
        if torch_dir is None:
            raise SystemExit(
                "torch is not installed: the torch-heavy corpus needs it (or pass a directory)"
            )
        return Corpus(name, _walk_py(torch_dir), note=f"every .py of {torch_dir}")
    if name == "mixed":
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        files = _walk_py(stdlib, STDLIB_SKIP_DIRS)
        roots = [project] if project else []
        if not roots:
            repo = _evallint_repo()
            roots = [repo / "tests" / "fixtures", repo / "examples"] if repo else []
        extra = [f for root in roots if root.exists() for f in _walk_py(root)]
        return Corpus(
            name,
            files + extra,
            note=f"{len(files)} stdlib files ({stdlib}, no test dirs) + {len(extra)} from {', '.join(map(str, roots))}",
        )
    path = Path(name)
    if not path.exists():
        raise SystemExit(f"no such corpus directory: {name}")
    return Corpus(path.name or str(path), _walk_py(path), note=str(path.resolve()))


def _mirror_name(part: str) -> str:
    return (
        part + "_" if part in EXCLUDED_DIR_NAMES or part.endswith((".egg-info", ".egg")) else part
    )


def mirror(corpus: Corpus, into: Path) -> None:
    """Symlink every file under `into`, keeping package layout so imports still resolve."""
    corpus.root = into
    common = (
        Path(os.path.commonpath([str(f.parent) for f in corpus.files])) if corpus.files else into
    )
    anchor = common.parent
    for source in corpus.files:
        relative = source.relative_to(anchor)
        parts = [_mirror_name(p) for p in relative.parts[:-1]] + [relative.name]
        target = into.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.symlink(source.resolve(), target)
            corpus.mirrored.append(target)
    corpus.lines = sum(f.read_bytes().count(b"\n") for f in corpus.files)


def prefilter_stats(corpus: Corpus) -> Tuple[Optional[int], Optional[int], str]:
    """Files and lines evallint's byte prefilter lets through to the parser."""
    try:
        from evallint.engine.run import may_have_findings
    except ImportError as exc:
        return None, None, f"prefilter not measured: {exc}"
    try:
        from evallint.source.text import decode_source
    except ImportError:  # pragma: no cover - older layouts

        def decode_source(data: bytes) -> str:
            return data.decode("utf-8", "replace")

    files = lines = 0
    for path in corpus.files:
        data = path.read_bytes()
        try:
            text = decode_source(data)
        except Exception:
            text = data.decode("utf-8", "replace")
        if may_have_findings(text):
            files += 1
            lines += data.count(b"\n")
    return files, lines, ""


def evallint_sees(corpus: Corpus) -> Optional[int]:
    """How many files evallint's own directory walk yields for the mirror (should be all)."""
    try:
        from evallint.engine.files import iter_source_files
    except ImportError:
        return None
    return sum(1 for _ in iter_source_files([str(corpus.root)]))


# ------------------------------------------------------------------------------------ measurement


def measure(
    name: str,
    commands: Sequence[Sequence[str]],
    cwd: Path,
    args: argparse.Namespace,
    note: str = "",
    env: Optional[Dict[str, str]] = None,
    ok_codes: Sequence[int] = (0, 1),
) -> Result:
    """Median of --repeat runs; a run slower than --budget seconds is not repeated."""
    result = Result(name, note=note)
    spec = {
        "commands": [list(c) for c in commands],
        "cwd": str(cwd),
        "timeout": args.timeout,
        "env": env,
    }
    for attempt in range(args.repeat):
        out = subprocess.run(
            [sys.executable, "-c", WRAPPER, json.dumps(spec)], capture_output=True, text=True
        )
        if out.returncode != 0:
            result.failed = f"wrapper failed: {out.stderr.strip()[-300:]}"
            break
        report = json.loads(out.stdout)
        if report["timeout"]:
            result.failed = f"timed out after {args.timeout:.0f}s"
            break
        bad = [rc for rc in report["rcs"] if rc not in ok_codes]
        if bad or "Traceback (most recent call last)" in report["stderr"]:
            result.failed = (
                f"exit {bad or report['rcs']}: {report['stderr'].strip().splitlines()[-1:] or ''}"
            )
            break
        result.walls.append(report["wall"])
        result.rss_kb.append(report["maxrss_kb"])
        print(
            f"    {name}: run {attempt + 1}: {report['wall']:.2f}s, {report['maxrss_kb'] / 1024:.0f} MB, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if report["wall"] > args.budget and attempt + 1 < args.repeat:
            result.note = (
                result.note + "; " if result.note else ""
            ) + f"1 run only (> {args.budget:.0f}s budget)"
            break
    if result.failed:
        print(f"    {name}: FAILED: {result.failed}", flush=True)
    return result


def evallint_cli() -> Tuple[Optional[List[str]], str]:
    """The evallint command and its --help text, or None if the CLI cannot run."""
    exe = shutil.which(
        "evallint", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    candidates = ([[exe]] if exe else []) + [[sys.executable, "-m", "evallint"]]
    for command in candidates:
        try:
            out = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and "usage" in out.stdout.lower():
            return command, out.stdout
    return None, ""


def evallint_cold_serial() -> Optional[List[str]]:
    """`evallint --no-cache --jobs 1`: one process, nothing read from or written to the cache;
    None when the CLI or either flag is missing."""
    cli, help_text = evallint_cli()
    if cli is None or "--jobs" not in help_text or "--no-cache" not in help_text:
        return None
    return cli + ["--no-cache", "--jobs", "1"]


def job_levels(cores: int) -> List[int]:
    """`--jobs` values to time: 1, 2 and the machine's maximum (issue 20), without repeats."""
    return sorted({1, 2, max(1, cores)})


def _peer_map() -> Dict[str, Tuple[str, ...]]:
    """The peer-rule -> evallint-codes mapping, shared with benchmarks/peer_cases.py."""
    spec = importlib.util.spec_from_file_location(
        "peer_cases", Path(__file__).resolve().parent / "peer_cases.py"
    )
    if spec is None or spec.loader is None:
        return {}
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("peer_cases", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return dict(module.DEFAULT_MAP)


def _json_findings(
    command: Sequence[str], root: Path, timeout: float, expected_files: int
) -> Tuple[Optional[List[Tuple[str, str]]], str]:
    """(resolved path, code) of each finding a tool prints as JSON, or None and why not."""
    try:
        out = subprocess.run(
            list(command), cwd=root, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        tail = (out.stderr.strip().splitlines() or ["no JSON output"])[-1]
        return None, f"exit {out.returncode}: {tail}"
    items = data.get("diagnostics", []) if isinstance(data, dict) else data
    if isinstance(data, dict) and isinstance(data.get("summary"), dict):
        checked = data["summary"].get("files_checked")
        if checked is not None and checked != expected_files:
            print(f"    warning: {command[0]} checked {checked} of {expected_files} files")
    found = []
    for item in items:
        path = Path(item["path"])
        found.append((str((path if path.is_absolute() else root / path).resolve()), item["code"]))
    return found, ""


def count_findings(corpus: Corpus, args: argparse.Namespace) -> Optional[Dict[str, object]]:
    """Findings evallint and torch-preflight each report on the same mirror (one untimed run
    each, all cores), per code and per mapped rule pair, with the files each pair flags."""
    cli, help_text = evallint_cli()
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    preflight = shutil.which(PREFLIGHT, path=path)
    if cli is None or preflight is None:
        print(f"    findings count: skipped (needs the evallint CLI and {PREFLIGHT})")
        return None
    root, cores = corpus.root, str(os.cpu_count() or 1)
    flags = ["--format", "json"] + (["--no-cache"] if "--no-cache" in help_text else [])
    ours, why_ours = _json_findings(
        cli + flags + ["--jobs", cores, str(root)], root, args.timeout, len(corpus.mirrored)
    )
    theirs, why_theirs = _json_findings(
        [preflight, "check", "--format", "json", "--no-color", "--jobs", cores, str(root)],
        root,
        args.timeout,
        len(corpus.mirrored),
    )
    if ours is None or theirs is None:
        print(f"    findings count: failed ({why_ours or why_theirs})")
        return None
    per_code: Dict[str, int] = {}
    for _, code in ours + theirs:
        per_code[code] = per_code.get(code, 0) + 1
    pairs = []
    for rule, codes in _peer_map().items():
        peer_files = {p for p, c in theirs if c == rule}
        our_files = {p for p, c in ours if c in codes}
        pairs.append(
            {
                "peer": rule,
                "evallint": "/".join(codes),
                "peer_findings": sum(1 for _, c in theirs if c == rule),
                "evallint_findings": sum(1 for _, c in ours if c in codes),
                "files_both": len(peer_files & our_files),
                "files_peer_only": len(peer_files - our_files),
                "files_evallint_only": len(our_files - peer_files),
            }
        )
    return {
        "evallint_total": len(ours),
        "peer_total": len(theirs),
        "evallint_files": len({p for p, _ in ours}),
        "peer_files": len({p for p, _ in theirs}),
        "per_code": dict(sorted(per_code.items())),
        "pairs": pairs,
    }


def replicate(corpus: Corpus, into: Path, copies: int) -> List[Path]:
    """`copies` sibling directories `copy<i>`, each a full copy of the mirror; returns them.

    Real copies, not symlinks: evallint's project index keys files by their resolved path,
    so symlinked copies could share entries and hide memory that grows with the files."""
    roots = [into / f"copy{i}" for i in range(copies)]
    for link in corpus.mirrored:
        relative = link.relative_to(corpus.root)
        for root in roots:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(link, root / relative)
    return roots


def run_corpus(corpus: Corpus, args: argparse.Namespace, workdir: Path) -> List[Result]:
    listing = workdir / f"{corpus.name}.files"
    listing.write_text("\n".join(str(p) for p in corpus.mirrored) + "\n", encoding="utf-8")
    root = corpus.root
    cores = os.cpu_count() or 1
    results: List[Result] = []
    skip = set(args.skip)

    def add(result: Result) -> None:
        results.append(result)

    py = sys.executable
    if "parse" not in skip:
        add(
            measure(
                "libcst.parse_module (floor)", [[py, "-c", PARSER, "cst", str(listing)]], root, args
            )
        )
        add(
            measure(
                "libcst.parse_module, gc off",
                [[py, "-c", PARSER, "cst-nogc", str(listing)]],
                root,
                args,
                note="evallint pauses the GC around its parse",
            )
        )
        add(measure("ast.parse", [[py, "-c", PARSER, "ast", str(listing)]], root, args))

    if "evallint" not in skip:
        cli, help_text = evallint_cli()
        if cli is None:
            add(
                measure(
                    "evallint cold, 1 process (API)",
                    [[py, "-c", API_RUNNER, str(root)]],
                    root,
                    args,
                    note="no evallint CLI: evallint.lint_paths in one process",
                )
            )
        else:
            has_jobs, has_cache = "--jobs" in help_text, "--no-cache" in help_text
            base = cli + (["--no-cache"] if has_cache else [])
            missing = [
                flag
                for flag, present in (("--jobs", has_jobs), ("--no-cache", has_cache))
                if not present
            ]
            note = f"CLI lacks {', '.join(missing)}" if missing else ""
            add(
                measure(
                    "evallint cold, --jobs 1",
                    [base + (["--jobs", "1"] if has_jobs else []) + [str(root)]],
                    root,
                    args,
                    note=note,
                )
            )
            if has_jobs:
                for jobs in job_levels(cores)[1:]:
                    add(
                        measure(
                            f"evallint cold, --jobs {jobs}",
                            [base + ["--jobs", str(jobs)] + [str(root)]],
                            root,
                            args,
                            note="more processes than cores" if jobs > cores else "",
                        )
                    )
            else:
                print("    evallint --jobs: skipped (not in evallint --help)")
            if has_cache:
                subprocess.run(
                    cli + [str(root)],
                    cwd=root,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                add(measure("evallint warm (cache filled)", [cli + [str(root)]], root, args))
            else:
                print("    evallint warm: skipped (no --no-cache in evallint --help, so no cache)")

    if "flake8" not in skip and importlib.util.find_spec("flake8") is not None:
        flake8 = [py, "-m", "flake8", "--isolated", "--jobs", "1"]
        add(
            measure(
                "flake8 --select EVL",
                [flake8 + ["--select", "EVL", str(root)]],
                root,
                args,
                note="all installed plugins run; --jobs 1",
            )
        )
        add(
            measure(
                "flake8 --select E9 (no evallint)",
                [
                    [
                        py,
                        "-c",
                        FLAKE8_WITHOUT_EVALLINT,
                        "--isolated",
                        "--jobs",
                        "1",
                        "--select",
                        "E9",
                        str(root),
                    ]
                ],
                root,
                args,
                note="evallint plugin hidden; --jobs 1",
            )
        )
        versions = subprocess.run(
            [py, "-m", "flake8", "--version"], capture_output=True, text=True
        ).stdout
        if "torchfix" in versions.lower():
            add(
                measure(
                    "flake8 --select TOR (no evallint)",
                    [
                        [
                            py,
                            "-c",
                            FLAKE8_WITHOUT_EVALLINT,
                            "--isolated",
                            "--jobs",
                            "1",
                            "--select",
                            "TOR",
                            str(root),
                        ]
                    ],
                    root,
                    args,
                )
            )
        else:
            print("    flake8 --select TOR: skipped (TorchFix flake8 plugin not installed)")
    elif "flake8" not in skip:
        print("    flake8: skipped (not installed)")

    if "peers" not in skip:
        path = os.path.dirname(py) + os.pathsep + os.environ.get("PATH", "")
        torchfix = shutil.which("torchfix", path=path)
        if torchfix:
            add(measure("torchfix", [[torchfix, str(root)]], root, args))
        else:
            print("    torchfix: skipped (not installed)")
        preflight = shutil.which(PREFLIGHT, path=path)
        if preflight:
            command = [preflight, "check", "--quiet", "--format", "json", "--no-color"]
            add(
                measure(
                    f"{PREFLIGHT} check -j 1",
                    [command + ["--jobs", "1", str(root)]],
                    root,
                    args,
                    note="no result cache",
                )
            )
            if cores > 1:
                add(
                    measure(
                        f"{PREFLIGHT} check -j {cores}",
                        [command + ["--jobs", str(cores), str(root)]],
                        root,
                        args,
                    )
                )
        else:
            print(f"    {PREFLIGHT}: skipped (not installed; `pip install -e '.[bench]'`)")
        ruff = shutil.which("ruff", path=path)
        if ruff:
            add(
                measure(
                    "ruff check --select E9",
                    [[ruff, "check", "--isolated", "--no-cache", "--select", "E9", str(root)]],
                    root,
                    args,
                )
            )
        else:
            print("    ruff: skipped (not installed)")

    if args.scale:
        cold = evallint_cold_serial()
        if cold is None:
            print("    scale: skipped (needs the evallint CLI with --jobs and --no-cache)")
        else:
            copies = replicate(corpus, workdir / f"{corpus.name}-scale", SCALE_COPIES)
            add(
                measure(
                    "scale 1x: evallint cold, --jobs 1",
                    [cold + [str(copies[0])]],
                    copies[0],
                    args,
                    note=f"{len(corpus.mirrored)} files (copy0)",
                )
            )
            add(
                measure(
                    f"scale {SCALE_COPIES}x: evallint cold, --jobs 1",
                    [cold + [str(copies[0].parent)]],
                    copies[0].parent,
                    args,
                    note=f"{SCALE_COPIES * len(corpus.mirrored)} files ({SCALE_COPIES} copies)",
                )
            )
    return results


# ---------------------------------------------------------------------------------------- report


def _fmt(value: Optional[float], spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def report(
    corpus: Corpus,
    results: List[Result],
    passed: Tuple[Optional[int], Optional[int], str],
    counts: Optional[Dict[str, object]] = None,
) -> Dict[str, object]:
    floor = next(
        (
            r.median
            for r in results
            if r.name.startswith("libcst.parse_module (floor)") and not r.failed
        ),
        None,
    )
    print()
    print(f"## {corpus.name}: {len(corpus.mirrored)} files, {corpus.lines:,} lines ({corpus.note})")
    print()
    print("| measurement | wall s (median) | runs | range s | peak RSS MB | x bare parse | note |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ratio = r.median / floor if (r.median is not None and floor) else None
        spread = f"{min(r.walls):.2f}-{max(r.walls):.2f}" if r.walls else "—"
        note = "; ".join(x for x in (r.note, f"FAILED: {r.failed}" if r.failed else "") if x)
        print(
            f"| {r.name} | {_fmt(r.median)} | {len(r.walls)} | {spread} | {_fmt(r.peak_mb, '.0f')} | {_fmt(ratio)} | {note} |"
        )

    # A measurement that failed part-way keeps its earlier runs for the table, not for ratios.
    def med(prefix: str) -> Optional[float]:
        return next(
            (
                r.median
                for r in results
                if r.name.startswith(prefix) and r.median is not None and not r.failed
            ),
            None,
        )

    def peak(prefix: str) -> Optional[float]:
        return next(
            (
                r.peak_mb
                for r in results
                if r.name.startswith(prefix) and r.peak_mb is not None and not r.failed
            ),
            None,
        )

    def exact(name: str) -> Optional[float]:
        return next(
            (r.median for r in results if r.name == name and r.median is not None and not r.failed),
            None,
        )

    cold = med("evallint cold, 1") or exact("evallint cold, --jobs 1")
    # --jobs N speed-ups over --jobs 1, for every N measured above 1; "parallel" is the largest.
    speedups: Dict[int, Optional[float]] = {}
    for r in results:
        if r.name.startswith("evallint cold, --jobs ") and r.name != "evallint cold, --jobs 1":
            jobs = int(r.name.rsplit(" ", 1)[1])
            wall = exact(r.name)
            speedups[jobs] = cold / wall if cold and wall else None
    parallel = exact(f"evallint cold, --jobs {max(speedups)}") if speedups else None
    preflight = exact(f"{PREFLIGHT} check -j 1")
    warm, evl, e9, torchfix = (
        med("evallint warm"),
        med("flake8 --select EVL"),
        med("flake8 --select E9"),
        med("torchfix"),
    )
    ruff = med("ruff check")
    scaled = f"scale {SCALE_COPIES}x"
    wall_1x, wall_nx, rss_1x, rss_nx = med("scale 1x"), med(scaled), peak("scale 1x"), peak(scaled)
    ratios: Dict[str, Optional[float]] = {
        "evallint cold / bare parse": cold / floor if cold and floor else None,
        "evallint warm / cold": warm / cold if warm and cold else None,
        "evallint warm / ruff check": warm / ruff if warm and ruff else None,
        "evallint parallel / serial": parallel / cold if parallel and cold else None,
        "(flake8 EVL - flake8 E9) / bare parse": (evl - e9) / floor
        if evl and e9 and floor
        else None,
        "torchfix / bare parse": torchfix / floor if torchfix and floor else None,
        f"{PREFLIGHT} -j 1 / bare parse": preflight / floor if preflight and floor else None,
        f"{PREFLIGHT} -j 1 / evallint cold --jobs 1": preflight / cold
        if preflight and cold
        else None,
        f"evallint peak RSS, {SCALE_COPIES}x corpus / 1x": rss_nx / rss_1x
        if rss_nx and rss_1x
        else None,
        f"evallint wall, {SCALE_COPIES}x corpus / 1x": wall_nx / wall_1x
        if wall_nx and wall_1x
        else None,
    }
    for jobs, speedup in sorted(speedups.items()):
        ratios[f"evallint --jobs {jobs} speed-up over --jobs 1 (ideal {jobs})"] = speedup
    files_in, lines_in, why = passed
    print()
    for label, value in ratios.items():
        print(f"- {label}: {_fmt(value)}x" if value is not None else f"- {label}: not measured")
    if counts is not None:
        print()
        print(
            f"Findings on the same files (one untimed run each): evallint {counts['evallint_total']} "
            f"in {counts['evallint_files']} files, {PREFLIGHT} {counts['peer_total']} in "
            f"{counts['peer_files']} files; per code: "
            + ", ".join(f"{code} {n}" for code, n in counts["per_code"].items())  # type: ignore[attr-defined]
        )
        print()
        print(
            f"| {PREFLIGHT} rule | findings | evallint | findings | files both | peer only | evallint only |"
        )
        print("|---|---|---|---|---|---|---|")
        for pair in counts["pairs"]:  # type: ignore[attr-defined]
            print(
                f"| {pair['peer']} | {pair['peer_findings']} | {pair['evallint']} | "
                f"{pair['evallint_findings']} | {pair['files_both']} | {pair['files_peer_only']} | "
                f"{pair['files_evallint_only']} |"
            )
        print()
    if rss_1x and rss_nx:
        print(
            f"- evallint peak RSS (cold, --jobs 1): {rss_1x:.0f} MB at 1x, {rss_nx:.0f} MB at {SCALE_COPIES}x (target: flat)"
        )
    if files_in is None:
        print(f"- prefilter: {why}")
    else:
        total = len(corpus.files) or 1
        print(
            f"- prefilter skip rate: {1 - files_in / total:.1%} of files ({total - files_in} of {total} not parsed), "
            f"{1 - (lines_in or 0) / max(corpus.lines, 1):.1%} of lines"
        )
    return {
        "corpus": corpus.name,
        "files": len(corpus.mirrored),
        "lines": corpus.lines,
        "note": corpus.note,
        "results": [
            {
                "name": r.name,
                "median": r.median,
                "walls": r.walls,
                "peak_mb": r.peak_mb,
                "note": r.note,
                "failed": r.failed,
            }
            for r in results
        ],
        "ratios": ratios,
        "prefilter_files_parsed": files_in,
        "prefilter_lines_parsed": lines_in,
        "findings": counts,
    }


# ------------------------------------------------------------------------------------ file sizes


def training_script(min_lines: int) -> str:
    """Valid Python of at least `min_lines` lines: SCRIPT_CHUNK repeated with distinct names."""
    chunks = max(1, math.ceil((min_lines - SCRIPT_HEADER.count("\n")) / SCRIPT_CHUNK.count("\n")))
    return SCRIPT_HEADER + "".join(SCRIPT_CHUNK.format(i=i) for i in range(chunks))


def run_file_sizes(args: argparse.Namespace, workdir: Path) -> Dict[str, object]:
    """Seconds per 1k lines of one file at each of FILE_SIZES, for the bare parse and evallint.

    Each run pays interpreter start-up and imports, which would swamp a 1k-line file, so the
    figures are marginal: (wall - wall of the one-chunk script) / (lines - its lines)."""
    directory = workdir / "file-sizes"
    directory.mkdir()
    cold = evallint_cold_serial()
    if cold is None:
        print(
            "    file sizes: evallint skipped (needs the evallint CLI with --jobs and --no-cache)"
        )
    py = sys.executable
    rows = []
    for target in (0,) + FILE_SIZES:  # 0: the one-chunk baseline
        script = directory / f"train_{target}.py"
        script.write_text(training_script(target), encoding="utf-8")
        listing = directory / f"train_{target}.files"
        listing.write_text(f"{script}\n", encoding="utf-8")
        lines = script.read_bytes().count(b"\n")
        label = f"{lines:,}-line script"
        print(f"\n== file sizes: {label}", flush=True)
        commands = {
            "parse": ("libcst.parse_module", [py, "-c", PARSER, "cst", str(listing)]),
            "parse_nogc": (
                "libcst.parse_module, gc off",
                [py, "-c", PARSER, "cst-nogc", str(listing)],
            ),
            "evallint": ("evallint cold, --jobs 1", cold + [str(script)] if cold else None),
        }
        row: Dict[str, Optional[float]] = {"lines": lines}
        for tool, (name, command) in commands.items():
            result = measure(f"{label}: {name}", [command], directory, args) if command else None
            row[tool] = result.median if result and not result.failed else None
        rows.append(row)

    baseline = rows[0]

    def per_kloc(row: Dict[str, Optional[float]], tool: str) -> Optional[float]:
        if row[tool] is None or baseline[tool] is None:
            return None
        return (row[tool] - baseline[tool]) / ((row["lines"] - baseline["lines"]) / 1000)

    print()
    print(
        f"## seconds per 1k lines by file size (marginal over the {baseline['lines']}-line one-chunk script)"
    )
    print()
    print(
        f"start-up + one chunk: parse {_fmt(baseline['parse'])} s, parse gc off {_fmt(baseline['parse_nogc'])} s, "
        f"evallint {_fmt(baseline['evallint'])} s"
    )
    print()
    print(
        "| lines | libcst.parse_module s/1k | parse, gc off s/1k | evallint cold --jobs 1 s/1k | evallint / parse |"
    )
    print("|---|---|---|---|---|")
    for row in rows[1:]:
        for tool in ("parse", "parse_nogc", "evallint"):
            row[f"{tool}_per_kloc"] = per_kloc(row, tool)
        parse, evallint = row["parse_per_kloc"], row["evallint_per_kloc"]
        row["evallint_over_parse"] = evallint / parse if parse and evallint else None
        print(
            f"| {row['lines']:,} | {_fmt(parse, '.3f')} | {_fmt(row['parse_nogc_per_kloc'], '.3f')} | "
            f"{_fmt(evallint, '.3f')} | {_fmt(row['evallint_over_parse'])} |"
        )
    return {"file_sizes": rows}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "dirs", nargs="*", metavar="CORPUS_DIR", help="directories to use as corpora"
    )
    parser.add_argument(
        "--corpus",
        action="append",
        choices=("torch-heavy", "mixed"),
        help="built-in corpus (repeatable); default: both when neither CORPUS_DIR nor --file-sizes is given",
    )
    parser.add_argument(
        "--project",
        type=Path,
        help="the torch-using project added to `mixed` (default: this repo's tests/fixtures and examples)",
    )
    parser.add_argument("--sample", type=int, default=1, metavar="N", help="keep every Nth file")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the median is reported"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="a run slower than this many seconds is not repeated",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="give up on a measurement after this many seconds",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("parse", "evallint", "flake8", "peers"),
        help="leave out a group of measurements",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help=f"also measure evallint cold --jobs 1 (--no-cache) wall and peak RSS on each corpus at 1x and "
        f"at {SCALE_COPIES}x ({SCALE_COPIES} copies of it side by side); target: flat RSS",
    )
    parser.add_argument(
        "--file-sizes",
        action="store_true",
        help="also time one generated training script of ~1k, 10k and 100k lines: seconds per 1k lines "
        "of libcst.parse_module and of evallint cold --jobs 1, and their ratio; alone, it runs no corpus",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    names = list(args.corpus or []) + list(args.dirs)
    if not names and not args.file_sizes:
        names = ["torch-heavy", "mixed"]
    print(
        f"# evallint benchmark, {time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}; sample every {args.sample}, repeat {args.repeat}",
        flush=True,
    )
    summary = []
    with tempfile.TemporaryDirectory(prefix="evallint-bench-") as tmp:
        workdir = Path(tmp)
        for index, name in enumerate(names):
            corpus = build_corpus(name, args.project)
            corpus.files = corpus.files[:: max(1, args.sample)]
            mirror(corpus, workdir / f"corpus{index}")
            seen = evallint_sees(corpus)
            print(
                f"\n== {corpus.name}: {len(corpus.mirrored)} files, {corpus.lines:,} lines",
                flush=True,
            )
            if seen is not None and seen != len(corpus.mirrored):
                print(
                    f"    warning: evallint's directory walk yields {seen} of {len(corpus.mirrored)} files"
                )
            passed = prefilter_stats(corpus)
            results = run_corpus(corpus, args, workdir)
            counts = count_findings(corpus, args) if "peers" not in args.skip else None
            summary.append(report(corpus, results, passed, counts))
        if args.file_sizes:
            summary.append(run_file_sizes(args, workdir))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
