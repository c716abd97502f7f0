"""Score evallint against the hand labels of the real-code corpus (issue 16).

For every labels file in `labels/` (one per public repository, written by hand before any
evallint output was seen; format in README.md), export the repository at the labelled commit
from a local git mirror, run the evallint CLI on it and compare:

- TP: a labelled finding matched by at least one evallint finding of the same code in the same
  file (and notebook cell) inside its line range. Several findings in one range count once.
- FN: a labelled finding nothing matched.
- FP: an evallint finding in a labelled file that lies in no finding or `accept` range of its
  code. Findings inside `accept` ranges are neither right nor wrong; unlabelled files are not
  scored.

Recall and precision are printed per rule, for EVL001-003 together and per corpus kind, then
every miss and false alarm with file:line and the reason. A repository whose mirror (or commit)
is missing is skipped with a one-line note, so this runs anywhere (CI without the mirror
scores nothing and exits 0).

    python benchmarks/realcode/score.py                  # whole repository roots
    python benchmarks/realcode/score.py --files-only     # only the labelled files
    python benchmarks/realcode/score.py --json out.json  # machine-readable result
    python benchmarks/realcode/score.py --manifest       # rewrite manifest.md, no scoring
    python benchmarks/realcode/score.py --list EVL004-EVL009,EVL999  # + every such finding

`--list` records every finding of the given codes anywhere in the repository (labelled file or
not) with how it was scored: `tp`, `fp`, `accept` (inside an accept range) or `unlabelled`
(a file nobody labelled), so rules labelled only "where noticed" can be judged by hand.

Nothing from the mirrored repositories is copied into this tree: each is exported into a
temporary directory that is deleted after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
"""The evallint checkout this scorer belongs to: the code it scores."""
DEFAULT_LABELS = HERE / "labels"
DEFAULT_MIRROR = Path(os.environ.get("EVALLINT_MIRROR", "/work/.mirror"))
CORE = ("EVL001", "EVL002", "EVL003")
CORE_NAME = "EVL001-003"


@dataclass(frozen=True)
class Finding:
    """One evallint finding, path relative to the repository root."""

    path: str
    line: int
    code: str
    cell: Optional[int] = None
    message: str = ""


@dataclass
class Outcome:
    """What happened to one labelled finding or one evallint finding."""

    repo: str
    kind: str
    path: str
    line: str
    code: str
    text: str


@dataclass
class Tally:
    tp: int = 0
    fn: int = 0
    fp: int = 0

    def add(self, other: Tally) -> None:
        self.tp += other.tp
        self.fn += other.fn
        self.fp += other.fp

    @property
    def recall(self) -> Optional[float]:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def precision(self) -> Optional[float]:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None


@dataclass
class RepoScore:
    repo: str
    kind: str
    per_rule: dict[str, Tally] = field(default_factory=dict)
    misses: list[Outcome] = field(default_factory=list)
    false_alarms: list[Outcome] = field(default_factory=list)
    hits: list[Outcome] = field(default_factory=list)
    listed: list[dict[str, Any]] = field(default_factory=list)

    def tally(self, code: str) -> Tally:
        return self.per_rule.setdefault(code, Tally())


def _norm(path: str) -> str:
    return Path(os.path.normpath(path)).as_posix() if path else path


def _in_range(entry: dict[str, Any], finding: Finding) -> bool:
    if entry["code"] != finding.code:
        return False
    if entry.get("cell") is not None and entry["cell"] != finding.cell:
        return False
    first, last = entry["lines"]
    return bool(first <= finding.line <= last)


def _where(path: str, entry: dict[str, Any]) -> str:
    first, last = entry["lines"]
    lines = str(first) if first == last else f"{first}-{last}"
    return f"cell {entry['cell']}:{lines}" if entry.get("cell") is not None else lines


def parse_codes(spec: str) -> set[str]:
    """`EVL004-EVL009,EVL999` -> the set of codes (ranges inclusive)."""
    codes: set[str] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        first, _, last = part.partition("-")
        if not last:
            codes.add(first)
            continue
        prefix = first.rstrip("0123456789")
        width = len(first) - len(prefix)
        for number in range(int(first[len(prefix) :]), int(last[len(prefix) :]) + 1):
            codes.add(f"{prefix}{number:0{width}d}")
    return codes


def _verdict(labelled: Optional[dict[str, Any]], finding: Finding) -> str:
    if labelled is None:
        return "unlabelled"
    if any(_in_range(e, finding) for e in labelled.get("findings", [])):
        return "tp"
    if any(_in_range(e, finding) for e in labelled.get("accept", [])):
        return "accept"
    return "fp"


def score_repo(
    labels: dict[str, Any], findings: Iterable[Finding], listed: frozenset[str] = frozenset()
) -> RepoScore:
    """Compare one repository's labels with evallint's findings on it (pure, no I/O)."""
    result = RepoScore(labels["repo"], labels.get("kind", "?"))
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_path[_norm(finding.path)].append(finding)
    labelled_files = {_norm(f["path"]): f for f in labels["files"]}
    for path, found in sorted(by_path.items()):
        for finding in sorted(found, key=lambda f: (f.cell or 0, f.line, f.code)):
            if finding.code in listed:
                result.listed.append(
                    {
                        "repo": result.repo,
                        "commit": labels.get("commit", ""),
                        "path": path,
                        "cell": finding.cell,
                        "line": finding.line,
                        "code": finding.code,
                        "scored": _verdict(labelled_files.get(path), finding),
                        "message": finding.message,
                    }
                )
    for labelled in labels["files"]:
        path = _norm(labelled["path"])
        found = by_path.get(path, [])
        for entry in labelled.get("findings", []):
            matched = [f for f in found if _in_range(entry, f)]
            outcome = Outcome(
                result.repo, result.kind, path, _where(path, entry), entry["code"], entry["reason"]
            )
            if matched:
                result.tally(entry["code"]).tp += 1
                result.hits.append(outcome)
            else:
                result.tally(entry["code"]).fn += 1
                result.misses.append(outcome)
        ranges = labelled.get("findings", []) + labelled.get("accept", [])
        for finding in found:
            if any(_in_range(entry, finding) for entry in ranges):
                continue
            result.tally(finding.code).fp += 1
            line = f"cell {finding.cell}:{finding.line}" if finding.cell else str(finding.line)
            result.false_alarms.append(
                Outcome(result.repo, result.kind, path, line, finding.code, finding.message)
            )
    return result


def load_labels(directory: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SystemExit(f"{path}: cannot read labels: {err}") from None
        for key in ("repo", "commit", "files"):
            if key not in doc:
                raise SystemExit(f"{path}: labels file has no {key!r}")
        doc["_file"] = path.name
        docs.append(doc)
    return docs


def git_dir(mirror: Path, repo: str) -> Optional[Path]:
    """The git directory of `owner/name` under the mirror (bare `repo/` or `repo/.git`)."""
    base = mirror / repo.replace("/", "+") / "repo"
    for candidate in (base / ".git", base):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def export(gitdir: Path, commit: str, dest: Path) -> Optional[str]:
    """Export the commit into dest (`git archive`); None on success, else why not.

    A snapshot may lack its largest blobs, which makes `git archive` fail: then every blob
    the mirror does have is written instead (the missing ones are data files, not code)."""
    check = subprocess.run(
        ["git", "--git-dir", str(gitdir), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
    )
    if check.returncode != 0:
        return f"commit {commit[:12]} not in the mirror"
    try:
        with subprocess.Popen(
            ["git", "--git-dir", str(gitdir), "archive", "--format=tar", commit],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as proc:
            assert proc.stdout is not None
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                try:
                    archive.extractall(dest, filter="data")
                except TypeError:  # Python without extraction filters
                    archive.extractall(dest)
        if proc.returncode == 0:
            return None
    except tarfile.TarError:
        pass
    shutil.rmtree(dest)
    dest.mkdir()
    return None if export_present_blobs(gitdir, commit, dest) else "cannot list the commit"


def export_present_blobs(gitdir: Path, commit: str, dest: Path) -> bool:
    """Write every blob of the commit that the mirror has; False if the tree is unreadable."""
    listing = subprocess.run(
        ["git", "--git-dir", str(gitdir), "ls-tree", "-r", "-z", commit],
        capture_output=True,
    )
    if listing.returncode != 0:
        return False
    entries: list[tuple[str, str]] = []
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_name = record.partition(b"\t")
        mode, kind, object_id = meta.split()
        if kind == b"blob" and mode != b"120000":
            entries.append((object_id.decode(), os.fsdecode(raw_name)))
    with subprocess.Popen(
        ["git", "--git-dir", str(gitdir), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for blob, name in entries:
            proc.stdin.write(blob.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) < 3 or header[1] == b"missing":
                continue
            data = proc.stdout.read(int(header[2]))
            proc.stdout.read(1)  # the newline after the object
            target = dest / name
            if dest.resolve() not in target.resolve().parents:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        proc.stdin.close()
    return True


def evallint_environment() -> dict[str, str]:
    """The environment evallint runs in: this checkout first on PYTHONPATH, and the caller's
    own entries made absolute. evallint runs inside each exported repository, so a relative
    entry (`PYTHONPATH=.`) would name the export, and an editable install of another checkout
    would be scored instead of this one."""
    env = dict(os.environ)
    entries = [os.path.abspath(e) for e in env.get("PYTHONPATH", "").split(os.pathsep) if e]
    env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *entries])
    return env


def run_evallint(root: Path, targets: list[str], evallint: list[str]) -> list[Finding]:
    command = [*evallint, "--format", "json", "--no-cache", "--exit-zero", "--quiet", *targets]
    proc = subprocess.run(
        command, cwd=root, capture_output=True, text=True, env=evallint_environment()
    )
    if proc.returncode != 0:
        raise RuntimeError(f"evallint exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    out = proc.stdout.strip()
    raw = json.loads(out) if out else []
    findings = []
    for item in raw:
        path = item["path"]
        if os.path.isabs(path):
            path = os.path.relpath(path, root)
        findings.append(
            Finding(_norm(path), item["line"], item["code"], item.get("cell"), item["message"])
        )
    return findings


def summarise(scores: list[RepoScore]) -> dict[str, Any]:
    per_rule: dict[str, Tally] = defaultdict(Tally)
    per_kind: dict[str, Tally] = defaultdict(Tally)
    for score in scores:
        for code, tally in score.per_rule.items():
            per_rule[code].add(tally)
            if code in CORE:
                per_rule[CORE_NAME].add(tally)
                per_kind[score.kind].add(tally)

    def row(t: Tally) -> dict[str, Any]:
        return {"tp": t.tp, "fn": t.fn, "fp": t.fp, "recall": t.recall, "precision": t.precision}

    return {
        "repos": len(scores),
        "per_rule": {code: row(t) for code, t in sorted(per_rule.items())},
        "per_kind": {kind: row(t) for kind, t in sorted(per_kind.items())},
        "misses": [asdict(o) for s in scores for o in s.misses],
        "false_alarms": [asdict(o) for s in scores for o in s.false_alarms],
        "listed": [item for s in scores for item in s.listed],
    }


def _fmt(value: Optional[float]) -> str:
    return "  -  " if value is None else f"{value:.2f}"


def print_report(summary: dict[str, Any], out: Any = sys.stdout) -> None:
    print(f"scored {summary['repos']} repositories", file=out)
    print(f"\n{'rule':<12}{'TP':>5}{'FN':>5}{'FP':>5}  recall  precision", file=out)
    for code, r in summary["per_rule"].items():
        print(
            f"{code:<12}{r['tp']:>5}{r['fn']:>5}{r['fp']:>5}  {_fmt(r['recall']):>6}"
            f"  {_fmt(r['precision']):>9}",
            file=out,
        )
    print(f"\n{CORE_NAME} by kind:", file=out)
    for kind, r in summary["per_kind"].items():
        print(
            f"  {kind:<12}{r['tp']:>5}{r['fn']:>5}{r['fp']:>5}  {_fmt(r['recall']):>6}"
            f"  {_fmt(r['precision']):>9}",
            file=out,
        )
    for title, key in (("misses", "misses"), ("false alarms", "false_alarms")):
        items = summary[key]
        print(f"\n{title} ({len(items)}):", file=out)
        for o in items:
            print(f"  {o['repo']}: {o['path']}:{o['line']}: {o['code']} {o['text']}", file=out)
    listed = summary.get("listed", [])
    if listed:
        print(f"\nlisted findings ({len(listed)}):", file=out)
        for item in listed:
            where = f"cell {item['cell']}:{item['line']}" if item["cell"] else str(item["line"])
            print(
                f"  [{item['scored']}] {item['repo']}@{item['commit'][:12]}: "
                f"{item['path']}:{where}: {item['code']} {item['message']}",
                file=out,
            )


def write_manifest(docs: list[dict[str, Any]], path: Path) -> None:
    lines = [
        "# Real-code corpus manifest",
        "",
        "Generated by `python benchmarks/realcode/score.py --manifest` from `labels/`.",
        "Each repository is public; fetch it at the commit shown to reproduce the scores.",
        "",
        "| repository | commit | kind | labeller | files | clean files | findings | accept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals = [0, 0, 0, 0]
    for doc in sorted(docs, key=lambda d: d["repo"].lower()):
        files = doc["files"]
        counts = [
            len(files),
            sum(1 for f in files if not f.get("findings")),
            sum(len(f.get("findings", [])) for f in files),
            sum(len(f.get("accept", [])) for f in files),
        ]
        totals = [a + b for a, b in zip(totals, counts)]
        lines.append(
            f"| [{doc['repo']}](https://github.com/{doc['repo']}) | `{doc['commit'][:12]}` "
            f"| {doc.get('kind', '?')} | {doc.get('labeller', '?')} | "
            + " | ".join(str(c) for c in counts)
            + " |"
        )
    lines.append(
        f"| **{len(docs)} repositories** | | | | " + " | ".join(str(t) for t in totals) + " |"
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="labels directory")
    parser.add_argument(
        "--mirror", type=Path, default=DEFAULT_MIRROR, help="directory of <owner>+<name>/repo"
    )
    parser.add_argument(
        "--files-only",
        action="store_true",
        help="lint only the labelled files (default: the whole repository root, so "
        "cross-file analysis sees the callers)",
    )
    parser.add_argument("--repo", action="append", default=[], help="only this owner/name")
    parser.add_argument("--labeller", help="only labels written by this labeller")
    parser.add_argument(
        "--json", metavar="FILE", help="also write the result as JSON ('-': stdout)"
    )
    parser.add_argument(
        "--list",
        metavar="CODES",
        default="",
        help="also list every finding of these codes anywhere in the repository, e.g. "
        "EVL004-EVL009,EVL999",
    )
    parser.add_argument(
        "--manifest", action="store_true", help="write manifest.md from the labels and exit"
    )
    parser.add_argument(
        "--evallint",
        default=f"{sys.executable} -m evallint",
        help="command that runs evallint (default: this interpreter's -m evallint; this "
        "checkout comes first on its PYTHONPATH, so the code scored is this checkout's)",
    )
    args = parser.parse_args(argv)

    docs = load_labels(args.labels)
    if args.manifest:
        write_manifest(docs, HERE / "manifest.md")
        print(f"wrote {HERE / 'manifest.md'} ({len(docs)} repositories)")
        return 0
    if args.repo:
        docs = [d for d in docs if d["repo"] in args.repo]
    if args.labeller:
        docs = [d for d in docs if d.get("labeller") == args.labeller]

    scores: list[RepoScore] = []
    report_to = sys.stderr if args.json == "-" else sys.stdout
    for doc in docs:
        gitdir = git_dir(args.mirror, doc["repo"])
        if gitdir is None:
            print(f"skip {doc['repo']}: no mirror under {args.mirror}", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory(prefix="realcode-") as tmp:
            root = Path(tmp)
            why = export(gitdir, doc["commit"], root)
            if why:
                print(f"skip {doc['repo']}: {why}", file=sys.stderr)
                continue
            targets = [f["path"] for f in doc["files"]] if args.files_only else ["."]
            try:
                findings = run_evallint(root, targets, args.evallint.split())
            except (RuntimeError, ValueError) as err:
                print(f"skip {doc['repo']}: {err}", file=sys.stderr)
                continue
        scores.append(score_repo(doc, findings, frozenset(parse_codes(args.list))))

    summary = summarise(scores)
    print_report(summary, report_to)
    if args.json:
        text = json.dumps(summary, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
