"""A result cache keyed by file content, evallint version and effective configuration
(the idea of ruff's and mypy's caches), in `.evallint_cache/` at the project root.

Entries are written atomically (temporary file + rename) and validated on read, so a run
killed mid-write or two runs sharing the cache never read back a broken entry. An entry
also records the content hash of every project file its analysis read (`from engine import
evaluate`): editing engine.py invalidates train.py's entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from evallint import __version__
from evallint.diagnostics import Diagnostic

CACHE_DIRECTORY = ".evallint_cache"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ResultCache:
    def __init__(self, root: Path, settings: str) -> None:
        self.directory = root / CACHE_DIRECTORY
        self._settings = settings

    def key(self, path: str, data: bytes) -> str:
        digest = hashlib.sha256()
        for part in (__version__, self._settings, os.path.abspath(path)):
            digest.update(part.encode("utf-8", "surrogateescape"))
            digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str) -> Optional[list[Diagnostic]]:
        entry = self.directory / key[:2] / f"{key}.json"
        try:
            stored = json.loads(entry.read_text(encoding="utf-8"))
            if stored.get("version") != __version__ or not _dependencies_unchanged(stored["dependencies"]):
                return None
            return [_restore(item) for item in stored["diagnostics"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing, half-written by a killed run, or from another format

    def put(self, key: str, diagnostics: Iterable[Diagnostic], dependencies: Iterable[str]) -> None:
        try:
            self._ensure_directory()
            folder = self.directory / key[:2]
            folder.mkdir(exist_ok=True)
            payload = {
                "version": __version__,
                "dependencies": {path: _hash_file(path) for path in sorted(dependencies)},
                "diagnostics": [{"diagnostic": d.to_json(), "subject": d.subject} for d in diagnostics],
            }
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(payload, stream)
            os.replace(temporary, folder / f"{key}.json")
        except OSError:
            pass  # a read-only checkout lints without a cache

    def _ensure_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / ".gitignore").write_text("# created by evallint\n*\n", encoding="utf-8")


def _restore(item: dict[str, Any]) -> Diagnostic:
    from dataclasses import replace

    return replace(Diagnostic.from_json(item["diagnostic"]), subject=item.get("subject", ""))


def _hash_file(path: str) -> str:
    try:
        return content_hash(Path(path).read_bytes())
    except OSError:
        return ""


def _dependencies_unchanged(dependencies: dict[str, str]) -> bool:
    return all(_hash_file(path) == digest for path, digest in dependencies.items())
