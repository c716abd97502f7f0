"""pytest plugin: the runtime checker around a project's own test suite.

`pytest -p evallint.runtime.pytest_plugin` enables it; installed, it is also registered as a
`pytest11` entry point that stays inert (imports no torch, installs no hook) unless
`--evallint` is given. Enabled, it installs the same global forward and optimizer-step hooks
as `evallint run` when pytest starts, and at the end prints the events, matched to the
static findings on the rootdir, in the terminal summary (`--evallint-output FILE` also writes
them in `--evallint-format`). An event whose user frames all lie in test files (a test calling
`model(x)` itself) is left out unless `--evallint-include-tests`: library code is what the
static findings are about. The network is not touched: tests run as they always do.
"""

from __future__ import annotations

import gc
import os
import re
from typing import Any, Optional

import pytest

PLUGIN = "evallint.runtime.pytest_plugin"
_TEST_FILE = re.compile(r"(^test_.*\.py$|_test\.py$|^conftest\.py$)")
_HARNESS = (f"{os.sep}_pytest{os.sep}", f"{os.sep}pluggy{os.sep}")
_RECORDER = pytest.StashKey[Any]()
_TEXT = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evallint", "evallint runtime checker")
    group.addoption(
        "--evallint",
        action="store_true",
        help="record every top-level forward and optimizer step; report EVL001-003 events",
    )
    group.addoption("--evallint-format", choices=("text", "json", "sarif"), default="text")
    group.addoption("--evallint-output", metavar="FILE", help="also write the report to FILE")
    group.addoption(
        "--evallint-include-tests",
        action="store_true",
        help="keep events whose every user frame is in a test file",
    )
    group.addoption(
        "--evallint-no-static", action="store_true", help="do not lint the rootdir to compare"
    )


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("evallint")) or PLUGIN in (
        getattr(config.option, "plugins", None) or []
    )


def pytest_configure(config: pytest.Config) -> None:
    if not _enabled(config):
        return
    from evallint.runtime.recorder import Recorder

    recorder = Recorder()
    recorder.install()
    config.stash[_RECORDER] = recorder


def _is_test_location(location: list[Any]) -> bool:
    path = str(location[0])
    return bool(_TEST_FILE.search(os.path.basename(path))) or f"{os.sep}tests{os.sep}" in path


def _trim(chain: list[list[Any]], keep_tests: bool) -> list[list[Any]]:
    chain = [loc for loc in chain if not any(h in str(loc[0]) for h in _HARNESS)]
    if keep_tests:
        return chain
    while chain and _is_test_location(chain[0]):
        chain = chain[1:]
    return chain


def _filtered(summary: dict[str, Any], keep_tests: bool) -> dict[str, Any]:
    sites, dropped = [], 0
    for site in summary["sites"]:
        chain = _trim(site["chain"], keep_tests)
        if not chain:
            dropped += 1
            continue
        sites.append({**site, "chain": chain})
    resumed = []
    for event in summary["resumed"]:
        chain = _trim(event["backward_chain"], keep_tests) or _trim(
            event["forward_chain"], keep_tests
        )
        if chain:
            resumed.append({**event, "backward_chain": chain})
        else:
            dropped += 1
    notes = list(summary.get("notes", []))
    if dropped:
        notes.append(
            f"{dropped} call site(s) lie only in test files and are left out "
            "(--evallint-include-tests keeps them)"
        )
    return {**summary, "sites": sites, "resumed": resumed, "notes": notes}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    recorder = config.stash.get(_RECORDER, None)
    if recorder is None:
        return
    gc.collect()
    recorder.finish()
    summary = _filtered(recorder.summary(), bool(config.getoption("evallint_include_tests")))
    summary["outcome"] = {"status": "completed", "reason": f"pytest exit status {exitstatus}"}
    summary["command"] = ["pytest", *config.invocation_params.args]
    static: Optional[list[Any]] = None
    if not config.getoption("evallint_no_static"):
        from evallint import lint_paths

        try:
            static = lint_paths([str(config.rootpath)], jobs=1, use_cache=False)
        except Exception as exc:  # the comparison is optional: say why it is missing
            summary["static_error"] = f"{type(exc).__name__}: {exc}"
    else:
        summary["static_error"] = "--evallint-no-static"
    from evallint.runtime.report import render

    text, _ = render(summary, static, "text")
    config.stash[_TEXT] = text
    output = config.getoption("evallint_output")
    if output:
        chosen = config.getoption("evallint_format")
        written = text if chosen == "text" else render(summary, static, chosen)[0]
        from evallint.runtime.cli import _write_atomically

        _write_atomically(str(output), written)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    text = config.stash.get(_TEXT, None)
    if text is None:
        return
    terminalreporter.section("evallint runtime checker")
    terminalreporter.write(text)
