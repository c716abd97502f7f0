#!/usr/bin/env python
"""A peer's own test suite as an external check (issue 21): torch-preflight's rule tests.

torch-preflight writes its rule tests as inline snippets and the rule ids they must (or must
not) produce, e.g. `assert "TG001" in codes('''...''')`, `assert codes('''...''') == []`, or
`diagnostics = analyze('''...''')` followed by `assert [d.code for d in diagnostics] ==
["TG001"]`. This script downloads the peer's sdist at benchmark time into a cache directory
(its sources are never committed here), rebuilds each snippet exactly as the peer's own
`conftest.analyze` does (`textwrap.dedent(source).lstrip("\\n")`), reads the expectation from
the assertion around it, lints the snippet with evallint, maps evallint's codes to the peer's
rules and reports agreement per mapped rule, listing every disagreement by case name.

    python benchmarks/peer_cases.py                        # latest torch-preflight on the index
    python benchmarks/peer_cases.py --version 0.5.0 --json out.json
    python benchmarks/peer_cases.py --sdist path/to/torch_preflight-0.5.0.tar.gz
    python benchmarks/peer_cases.py --map TG001=EVL006,EVL010   # widen a mapping

Snippets are rebuilt statically: the test file is parsed, never imported or run. String
literals, f-strings, `+`, `.format()`/`.replace()`/`str.join` over a comprehension, module
constants, loops over literal tuples and the test module's own string-building helpers (small
functions made of assignments and a `return`) are evaluated by a small interpreter here; any
other expression makes that case "not rebuilt", counted and named in the report. Only the
snippet text of a case is linted; nothing of the peer is executed unless `--peer` is given and
torch-preflight is importable, in which case its own engine is run on each rebuilt case as a
check of the rebuild (its tests pass upstream, so it should meet every expectation).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

PEER = "torch-preflight"
# Test files whose snippets are rule cases. test_engine.py and test_cli.py exercise the peer's
# suppression comments, config and output formats, which have no counterpart to compare.
CASE_FILES = ("tests/test_rules.py",)

# The peer's rules and the evallint codes that report the same mistake. The other peer rules
# (DataLoader workers, softmax before CE, BCE activations, device syncs, seeding, projected
# OOM, DDP samplers, redundant transfers, accumulation scaling) have no evallint counterpart;
# EVL001, EVL004, EVL005, EVL007 and EVL009 have none in the peer.
DEFAULT_MAP: Dict[str, Tuple[str, ...]] = {
    "TG001": ("EVL006",),  # graph-retention: tensor stored with its autograd graph
    "TG002": ("EVL002",),  # missing-no-grad: evaluation without no_grad/inference_mode
    "TG003": ("EVL008",),  # missing-zero-grad: backward() in a loop without zero_grad()
    "TG011": ("EVL003",),  # stuck-in-eval-mode: eval() in an epoch loop with no train()
}
# The names the peer's tests call to lint a snippet: dedented (conftest) or as given.
DEDENTING_CALLS = frozenset({"codes", "analyze"})
RAW_CALLS = frozenset({"check_source"})
STR_METHODS = frozenset(
    {"format", "replace", "join", "split", "splitlines", "strip", "lstrip", "rstrip"}
)
RULE_IN_NAME = re.compile(r"tg(\d{3})", re.IGNORECASE)
RULE_ID = re.compile(r"^TG\d{3}$")


class Unsupported(Exception):
    """An expression the static rebuild does not evaluate."""


@dataclass(frozen=True)
class PathValue:
    """`Path(__file__)`-style paths inside the sdist, relative to its root."""

    path: PurePosixPath


@dataclass
class Case:
    """One snippet and what the peer's test asserts about it.

    `asserted` maps peer rule ids to whether they must be reported. With `exact`, the test
    pins the whole list of codes, so every peer rule not in `asserted` must be absent."""

    name: str
    source: str
    asserted: Dict[str, bool] = field(default_factory=dict)
    exact: bool = False
    line: int = 0

    def expects(self, rule: str) -> Optional[bool]:
        if rule in self.asserted:
            return self.asserted[rule]
        return False if self.exact else None

    def focus(self, mapped: Sequence[str]) -> List[str]:
        """The mapped rules this case is about: named in the assertion, expected present, or
        named in the test function's name."""
        named = {f"TG{m}" for m in RULE_IN_NAME.findall(self.name)}
        rules = set(self.asserted) | (named if self.exact else set())
        return [r for r in mapped if r in rules]


@dataclass
class Skipped:
    name: str
    line: int
    reason: str


# -------------------------------------------------------------------------- static rebuild


class Interpreter:
    """Evaluates the string-building expressions of one test module, without running it."""

    def __init__(self, module: ast.Module, module_path: str, files: Mapping[str, str]) -> None:
        self.module_path = PurePosixPath(module_path)
        self.files = files
        self.helpers: Dict[str, ast.FunctionDef] = {}
        self.constants: Dict[str, Any] = {}
        for node in module.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("test"):
                self.helpers[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    try:
                        self.constants[target.id] = self.eval(node.value, {})
                    except Unsupported:
                        pass

    def eval(self, node: ast.expr, env: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self.eval(v, env)) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            value = self.eval(node.value, env)
            convert: Dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}
            if node.conversion in convert:
                value = convert[node.conversion](value)
            spec = self.eval(node.format_spec, env) if node.format_spec else ""
            return format(value, spec)
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in self.constants:
                return self.constants[node.id]
            if node.id == "__file__":
                return PathValue(self.module_path)
            raise Unsupported(f"name `{node.id}`")
        if isinstance(node, (ast.Tuple, ast.List)):
            return [self.eval(e, env) for e in node.elts]
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left, env), self.eval(node.right, env)
            if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
                return left + right
            if isinstance(node.op, ast.Div) and isinstance(left, PathValue):
                return PathValue(left.path / str(right))
            raise Unsupported("operator")
        if isinstance(node, ast.Attribute):
            value = self.eval(node.value, env)
            if isinstance(value, PathValue) and node.attr == "parent":
                return PathValue(value.path.parent)
            raise Unsupported(f"attribute `.{node.attr}`")
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            return list(self._comprehension(node, env))
        if isinstance(node, ast.Call):
            return self._call(node, env)
        raise Unsupported(type(node).__name__)

    def _comprehension(
        self, node: ast.GeneratorExp | ast.ListComp, env: Mapping[str, Any]
    ) -> Iterator[Any]:
        if len(node.generators) != 1 or node.generators[0].ifs:
            raise Unsupported("comprehension shape")
        generator = node.generators[0]
        if not isinstance(generator.target, ast.Name):
            raise Unsupported("comprehension target")
        for item in self.eval(generator.iter, env):
            yield self.eval(node.elt, {**env, generator.target.id: item})

    def _call(self, node: ast.Call, env: Mapping[str, Any]) -> Any:
        func = node.func
        args = [self.eval(a, env) for a in node.args if not isinstance(a, ast.Starred)]
        if len(args) != len(node.args):
            raise Unsupported("starred argument")
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise Unsupported("** argument")
            kwargs[keyword.arg] = self.eval(keyword.value, env)
        if isinstance(func, ast.Name):
            if func.id in self.helpers:
                return self._run_helper(self.helpers[func.id], args, kwargs)
            if func.id == "Path" and len(args) == 1 and isinstance(args[0], PathValue):
                return args[0]
            if func.id == "str" and len(args) == 1 and isinstance(args[0], PathValue):
                return str(args[0].path)
            raise Unsupported(f"call of `{func.id}`")
        if isinstance(func, ast.Attribute):
            if (
                isinstance(func.value, ast.Name)
                and func.value.id == "textwrap"
                and func.attr == "dedent"
            ):
                return textwrap.dedent(*args)
            receiver = self.eval(func.value, env)
            if isinstance(receiver, str) and func.attr in STR_METHODS:
                return getattr(receiver, func.attr)(*args, **kwargs)
            if isinstance(receiver, PathValue) and func.attr == "read_text" and not args:
                key = str(receiver.path)
                if key not in self.files:
                    raise Unsupported(f"file `{key}` not in the sdist")
                return self.files[key]
            raise Unsupported(f"method `.{func.attr}`")
        raise Unsupported("call")

    def _run_helper(self, fn: ast.FunctionDef, args: List[Any], kwargs: Dict[str, Any]) -> Any:
        """A helper made of assignments and one `return`, with its arguments bound."""
        spec = fn.args
        if spec.posonlyargs or spec.kwarg:
            raise Unsupported(f"signature of `{fn.name}`")
        env: Dict[str, Any] = {}
        positional = [a.arg for a in spec.args]
        defaults = dict(zip(positional[len(positional) - len(spec.defaults) :], spec.defaults))
        for name, value in zip(positional, args):
            env[name] = value
        rest = args[len(positional) :]
        if spec.vararg:
            env[spec.vararg.arg] = list(rest)
        elif rest:
            raise Unsupported(f"too many arguments to `{fn.name}`")
        keyword_only = dict(zip((a.arg for a in spec.kwonlyargs), spec.kw_defaults))
        for name, value in kwargs.items():
            if name not in positional and name not in keyword_only:
                raise Unsupported(f"unknown argument `{name}` to `{fn.name}`")
            env[name] = value
        for name, default in list(defaults.items()) + list(keyword_only.items()):
            if name not in env:
                if default is None:
                    raise Unsupported(f"missing argument `{name}` to `{fn.name}`")
                env[name] = self.eval(default, {})
        for statement in fn.body:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                continue  # docstring
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name):
                    env[target.id] = self.eval(statement.value, env)
                    continue
            if isinstance(statement, ast.Return) and statement.value is not None:
                return self.eval(statement.value, env)
            raise Unsupported(f"statement in `{fn.name}`")
        raise Unsupported(f"`{fn.name}` returns nothing")


def _lint_call(node: ast.expr) -> Optional[ast.Call]:
    """`codes(src)` / `analyze(src)` / `check_source(name, src)` with no config argument."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id in DEDENTING_CALLS and len(node.args) == 1 and not node.keywords:
        return node
    if node.func.id in RAW_CALLS and len(node.args) == 2 and not node.keywords:
        return node
    return None


def _snippet(call: ast.Call, interp: Interpreter, env: Mapping[str, Any]) -> str:
    assert isinstance(call.func, ast.Name)
    if call.func.id in DEDENTING_CALLS:
        source = interp.eval(call.args[0], env)
        if not isinstance(source, str):
            raise Unsupported("snippet is not a string")
        return textwrap.dedent(source).lstrip("\n")  # as the peer's conftest.analyze
    source = interp.eval(call.args[1], env)
    if not isinstance(source, str):
        raise Unsupported("snippet is not a string")
    return source


def _rule_list(node: ast.expr) -> Optional[List[str]]:
    """A literal list or set of rule ids, e.g. `["TG001"]` or `{"TG001", "TG002"}`."""
    if not isinstance(node, (ast.List, ast.Set, ast.Tuple)):
        return None
    items = [
        e.value
        for e in node.elts
        if isinstance(e, ast.Constant) and isinstance(e.value, str) and RULE_ID.match(e.value)
    ]
    return items if len(items) == len(node.elts) else None


def _codes_of(node: ast.expr) -> Optional[str]:
    """`[d.code for d in VAR]` / `{d.code for d in VAR}` / `sorted(...)` of it: VAR."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sorted":
        node = node.args[0] if len(node.args) == 1 else node
    if not isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
        return None
    if len(node.generators) != 1 or node.generators[0].ifs:
        return None
    generator = node.generators[0]
    if not (isinstance(generator.target, ast.Name) and isinstance(generator.iter, ast.Name)):
        return None
    elt = node.elt
    if (
        isinstance(elt, ast.Attribute)
        and elt.attr == "code"
        and isinstance(elt.value, ast.Name)
        and elt.value.id == generator.target.id
    ):
        return generator.iter.id
    return None


class CaseCollector:
    """Walks each test function in order, rebuilding snippets and pairing them with asserts."""

    def __init__(self, interp: Interpreter) -> None:
        self.interp = interp
        self.cases: List[Case] = []
        self.skipped: List[Skipped] = []

    def collect(self, module: ast.Module) -> None:
        for node in module.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                before = len(self.cases)
                self._block(node.body, node.name, {}, {})
                added = self.cases[before:]
                if len(added) > 1:
                    for index, case in enumerate(added, 1):
                        case.name = f"{case.name}[{index}]"

    def _new(self, name: str, call: ast.Call, env: Mapping[str, Any]) -> Optional[Case]:
        try:
            return Case(name, _snippet(call, self.interp, env), line=call.lineno)
        except Unsupported as exc:
            self.skipped.append(Skipped(name, call.lineno, str(exc)))
            return None

    def _block(
        self,
        body: Sequence[ast.stmt],
        name: str,
        env: Dict[str, Any],
        pending: Dict[str, Optional[Case]],
    ) -> None:
        """`pending` maps a variable holding `analyze(...)`'s result to its case."""
        for statement in body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Tuple) and target.elts:
                    target = target.elts[0]  # `diagnostics, _ = check_source(...)`
                if not isinstance(target, ast.Name):
                    continue
                call = _lint_call(statement.value)
                if call is not None:
                    pending[target.id] = self._new(name, call, env)
                    continue
                try:
                    env[target.id] = self.interp.eval(statement.value, env)
                except Unsupported:
                    env.pop(target.id, None)
            elif isinstance(statement, ast.For) and isinstance(statement.target, ast.Name):
                try:
                    items = self.interp.eval(statement.iter, env)
                except Unsupported as exc:
                    self.skipped.append(Skipped(name, statement.lineno, f"loop over {exc}"))
                    continue
                for item in items:
                    self._block(statement.body, name, {**env, statement.target.id: item}, pending)
            elif isinstance(statement, (ast.With, ast.If)):
                self._block(statement.body, name, env, pending)
            elif isinstance(statement, ast.Assert):
                self._assert(statement.test, name, env, pending)

    def _assert(
        self,
        test: ast.expr,
        name: str,
        env: Mapping[str, Any],
        pending: Dict[str, Optional[Case]],
    ) -> None:
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            return
        left, op, right = test.left, test.ops[0], test.comparators[0]
        # "TG001" in codes(...) / "TG001" not in codes(...)
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(left, ast.Constant):
            rule = left.value
            if not (isinstance(rule, str) and RULE_ID.match(rule)):
                return
            call = _lint_call(right)
            if call is not None:
                case = self._new(name, call, env)
                if case is not None:
                    case.asserted[rule] = isinstance(op, ast.In)
                    self.cases.append(case)
            return
        if not isinstance(op, ast.Eq):
            return
        expected = _rule_list(right)
        if expected is None:
            return
        # codes(...) == [...]
        call = _lint_call(left)
        if call is not None:
            case = self._new(name, call, env)
            if case is not None:
                case.asserted.update({rule: True for rule in expected})
                case.exact = True
                self.cases.append(case)
            return
        # [d.code for d in diagnostics] == [...]  /  diagnostics == []
        variable = _codes_of(left)
        if variable is None and isinstance(left, ast.Name) and not expected:
            variable = left.id
        if variable is not None and variable in pending:
            case = pending.pop(variable)
            if case is not None:
                case.asserted.update({rule: True for rule in expected})
                case.exact = True
                self.cases.append(case)


def extract_cases(
    test_source: str, test_path: str, files: Mapping[str, str]
) -> Tuple[List[Case], List[Skipped]]:
    """Every (snippet, expectation) pair in one of the peer's test modules, statically."""
    module = ast.parse(test_source)
    collector = CaseCollector(Interpreter(module, test_path, files))
    collector.collect(module)
    return collector.cases, collector.skipped


# --------------------------------------------------------------------------------- sdist


def latest_version(index: str) -> str:
    """The newest version on the package index, through pip (its configured index)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", PEER],
        capture_output=True,
        text=True,
    )
    match = re.search(rf"^{re.escape(PEER)} \(([^)]+)\)", out.stdout, re.MULTILINE)
    if match:
        return match.group(1)
    # No pip index: read the simple index page and take the highest sdist version.
    with urllib.request.urlopen(f"{index.rstrip('/')}/{PEER}/", timeout=60) as page:
        html = page.read().decode("utf-8", "replace")
    versions = re.findall(r"torch[_-]preflight-([0-9][0-9A-Za-z.]*)\.tar\.gz", html)
    if not versions:
        raise SystemExit(f"{PEER}: no sdist found on {index}")
    return max(versions, key=lambda v: [int(p) if p.isdigit() else -1 for p in v.split(".")])


def fetch_sdist(version: Optional[str], cache: Path, index: str) -> Path:
    """The peer's sdist in `cache`, downloaded once per version with pip."""
    version = version or latest_version(index)
    cache.mkdir(parents=True, exist_ok=True)
    wanted = cache / f"torch_preflight-{version}.tar.gz"
    if wanted.exists():
        return wanted
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"{PEER}=={version}",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(cache),
        ],
        capture_output=True,
        text=True,
    )
    if not wanted.exists():
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"{PEER} {version}: sdist download failed: {tail}")
    return wanted


def read_sdist(sdist: Path) -> Dict[str, str]:
    """Text files of the sdist by their path below its top directory, read in memory."""
    files: Dict[str, str] = {}
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            for member in archive.getmembers():
                if not member.isfile() or not member.name.endswith(".py"):
                    continue
                parts = PurePosixPath(member.name).parts
                handle = archive.extractfile(member)
                if handle is None or len(parts) < 2:
                    continue
                data = handle.read()
                files[str(PurePosixPath(*parts[1:]))] = data.decode("utf-8", "replace")
    except (OSError, tarfile.TarError) as exc:
        raise SystemExit(f"{sdist}: cannot read the sdist: {exc}") from None
    return files


# ---------------------------------------------------------------------------- comparison


@dataclass
class Verdict:
    case: Case
    evallint_codes: List[str]
    # rule -> (expected by the peer's test, reported by evallint through the mapping)
    checks: Dict[str, Tuple[bool, bool]]
    peer_codes: Optional[List[str]] = None

    @property
    def agrees(self) -> bool:
        return all(expected == got for expected, got in self.checks.values())


def parse_map(items: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    mapping = dict(DEFAULT_MAP)
    for item in items:
        rule, _, codes = item.partition("=")
        if not RULE_ID.match(rule) or not codes:
            raise SystemExit(f"--map {item}: expected TGnnn=EVLnnn[,EVLnnn]")
        mapping[rule] = tuple(c.strip() for c in codes.split(",") if c.strip())
    return mapping


def judge(
    cases: Sequence[Case],
    mapping: Mapping[str, Sequence[str]],
    lint: Callable[[str], List[str]],
    peer: Optional[Callable[[str], List[str]]] = None,
) -> List[Verdict]:
    """Each case with a mapped rule, linted by evallint; `peer` checks the rebuild."""
    verdicts = []
    for case in cases:
        rules = [r for r in mapping if case.expects(r) is not None]
        # A pinned list in a test about an unmapped rule (`test_tg004_...`) is not a case here;
        # one in a test naming no rule (a generic clean snippet) is, for every mapped rule.
        generic = case.exact and not RULE_IN_NAME.search(case.name)
        if not rules or not (case.focus(list(mapping)) or generic):
            continue
        found = lint(case.source)
        checks = {}
        for rule in rules:
            expected = case.expects(rule)
            assert expected is not None
            checks[rule] = (expected, any(code in mapping[rule] for code in found))
        verdicts.append(
            Verdict(case, sorted(found), checks, sorted(peer(case.source)) if peer else None)
        )
    return verdicts


def evallint_linter() -> Callable[[str], List[str]]:
    from evallint import lint_source

    def lint(source: str) -> List[str]:
        return [d.code for d in lint_source(source, "t.py")]

    return lint


def peer_linter() -> Optional[Callable[[str], List[str]]]:
    try:
        from torch_preflight.engine import check_source
    except ImportError:
        return None

    def lint(source: str) -> List[str]:
        diagnostics, _ = check_source("t.py", source)
        return [d.code for d in diagnostics]

    return lint


def summarise(
    verdicts: Sequence[Verdict], mapping: Mapping[str, Sequence[str]]
) -> Dict[str, Dict[str, int]]:
    """Per mapped rule: cases about it (focus) and how many agree on every checked rule;
    cases about no mapped rule by name (clean snippets) under "(clean)"."""
    table: Dict[str, Dict[str, int]] = {}
    for verdict in verdicts:
        focus = verdict.case.focus(list(mapping)) or ["(clean)"]
        for rule in focus:
            row = table.setdefault(rule, {"cases": 0, "agree": 0})
            row["cases"] += 1
            row["agree"] += verdict.agrees
    total = {"cases": len(verdicts), "agree": sum(v.agrees for v in verdicts)}
    ordered = {r: table[r] for r in list(mapping) + ["(clean)"] if r in table}
    ordered["all cases"] = total
    return ordered


def _fmt_expectation(case: Case, mapping: Mapping[str, Sequence[str]]) -> str:
    if case.exact:
        return "exactly [" + ", ".join(sorted(r for r, v in case.asserted.items() if v)) + "]"
    return ", ".join(f"{r} {'present' if v else 'absent'}" for r, v in case.asserted.items())


def report(
    verdicts: Sequence[Verdict],
    skipped: Sequence[Skipped],
    total_cases: int,
    mapping: Mapping[str, Sequence[str]],
    version: str,
) -> Dict[str, Any]:
    table = summarise(verdicts, mapping)
    print(f"# {PEER} {version}: its rule tests against evallint")
    print()
    print(
        f"{total_cases} cases rebuilt from {', '.join(CASE_FILES)}; {len(verdicts)} assert a mapped "
        f"rule; {len(skipped)} snippet(s) not rebuilt."
    )
    print("Mapping: " + "; ".join(f"{r} -> {'/'.join(c)}" for r, c in mapping.items()))
    print()
    print("| peer rule | evallint | cases | agree | % |")
    print("|---|---|---|---|---|")
    for rule, row in table.items():
        codes = "/".join(mapping.get(rule, ())) or "—"
        share = 100.0 * row["agree"] / row["cases"] if row["cases"] else 0.0
        print(f"| {rule} | {codes} | {row['cases']} | {row['agree']} | {share:.1f} |")
    if verdicts and verdicts[0].peer_codes is not None:
        own = sum(
            all(
                (rule in (v.peer_codes or [])) == expected
                for rule, (expected, _) in v.checks.items()
            )
            for v in verdicts
        )
        print()
        print(f"Check of the rebuild: the peer itself meets {own} of {len(verdicts)} expectations.")
    disagreements = [v for v in verdicts if not v.agrees]
    print()
    print(f"## {len(disagreements)} disagreement(s)")
    for verdict in disagreements:
        case = verdict.case
        wrong = [
            f"{rule}: peer {'expects' if exp else 'rules out'} it, evallint "
            f"{'reports' if got else 'does not report'} {'/'.join(mapping[rule])}"
            for rule, (exp, got) in verdict.checks.items()
            if exp != got
        ]
        print()
        print(f"### {case.name} (test_rules.py line {case.line})")
        print(f"- expected: {_fmt_expectation(case, mapping)}; " + "; ".join(wrong))
        print(f"- evallint reports: {', '.join(verdict.evallint_codes) or 'nothing'}")
        if verdict.peer_codes is not None:
            print(f"- peer reports: {', '.join(verdict.peer_codes) or 'nothing'}")
        print("```python")
        print(case.source.rstrip("\n"))
        print("```")
    if skipped:
        print()
        print("## Not rebuilt")
        for item in skipped:
            print(f"- {item.name} (line {item.line}): {item.reason}")
    return {
        "peer": PEER,
        "version": version,
        "mapping": {r: list(c) for r, c in mapping.items()},
        "summary": table,
        "cases": [
            {
                "name": v.case.name,
                "line": v.case.line,
                "agrees": v.agrees,
                "checks": {r: {"expected": e, "evallint": g} for r, (e, g) in v.checks.items()},
                "evallint": v.evallint_codes,
                "peer": v.peer_codes,
            }
            for v in verdicts
        ],
        "not_rebuilt": [s.__dict__ for s in skipped],
    }


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "evallint-bench" / "peers"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", help=f"{PEER} version (default: the newest on the index)")
    parser.add_argument("--sdist", type=Path, help="use this sdist instead of downloading one")
    parser.add_argument(
        "--cache-dir", type=Path, default=default_cache(), help="where downloaded sdists are kept"
    )
    parser.add_argument(
        "--index",
        default="https://pypi.org/simple",
        help="simple index read only when `pip index versions` is unavailable",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="TGnnn=EVLnnn[,EVLnnn]",
        help="map a peer rule to evallint codes (repeatable; replaces that rule's default)",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help=f"also run {PEER} (if importable) on each rebuilt case, to check the rebuild",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    mapping = parse_map(args.map)
    sdist = args.sdist or fetch_sdist(args.version, args.cache_dir, args.index)
    match = re.search(r"torch[_-]preflight-(.+)\.tar\.gz$", sdist.name)
    version = match.group(1) if match else sdist.name
    files = read_sdist(sdist)
    cases: List[Case] = []
    skipped: List[Skipped] = []
    for name in CASE_FILES:
        if name not in files:
            raise SystemExit(f"{sdist}: no {name} in the sdist")
        found, missed = extract_cases(files[name], name, files)
        cases += found
        skipped += missed
    peer = peer_linter() if args.peer else None
    if args.peer and peer is None:
        print(f"note: {PEER} is not importable here; the rebuild is not cross-checked")
    verdicts = judge(cases, mapping, evallint_linter(), peer)
    result = report(verdicts, skipped, len(cases), mapping, version)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
