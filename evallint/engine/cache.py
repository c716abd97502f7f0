"""A result cache keyed by file content, evallint version and effective configuration
(the idea of ruff's and mypy's caches), in `.evallint_cache/` at the project root.

Entries are written atomically (temporary file + rename) and validated on read, so a run
killed mid-write or two runs sharing the cache never read back a broken entry. An entry
also records the content hash of every project file its analysis read (`from engine import
evaluate`): editing engine.py invalidates train.py's entry.

A run started from the command line also keeps one index per settings, the way git's index
works: each file's size and modification time (ns) with its content key, and the entries
themselves, so a warm run stats files and reads one JSON file instead of reading, hashing
and opening an entry for every file. A file whose size or time changed is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from evallint._version import __version__
from evallint.diagnostics import Diagnostic

CACHE_DIRECTORY = ".evallint_cache"
RACY_NANOSECONDS = 2_000_000_000
"""A file modified this recently is not indexed by its time (coarse file-system clocks
could hide a second edit); it is hashed again next run (git's "racily clean" rule)."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ResultCache:
    def __init__(self, root: Path, settings: str) -> None:
        self.directory = root / CACHE_DIRECTORY
        self._settings = settings
        digest = hashlib.sha256(
            f"{__version__}\0{settings}".encode("utf-8", "surrogateescape")
        ).hexdigest()
        self._index_path = self.directory / f"index-{digest[:16]}.json"
        self._index: Optional[dict[str, Any]] = None
        self._seen: dict[str, tuple[Optional[list[int]], str, dict[str, Any]]] = {}
        """Absolute path -> (stamp, key, entry) of every file this run answered or linted."""
        self._hashes: dict[str, str] = {}
        """Dependency path -> content hash, each file hashed once per run."""

    def key(self, path: str, data: bytes) -> str:
        digest = hashlib.sha256()
        for part in (__version__, self._settings, os.path.abspath(path)):
            digest.update(part.encode("utf-8", "surrogateescape"))
            digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str) -> Optional[list[Diagnostic]]:
        """The entry's own file only: a worker process asks after the run's parent has
        looked in the index already."""
        stored = self._entry(key, indexed=False)
        return None if stored is None else [_restore(item) for item in stored["diagnostics"]]

    def lookup(self, path: Path) -> Optional[list[Diagnostic]]:
        """The cached findings for the file as it is now, through the index when its size
        and modification time are unchanged; None when it must be linted."""
        absolute = os.path.abspath(path)
        stamp = _stamp(absolute)
        known = self._loaded_index()["files"].get(absolute)
        if stamp is not None and isinstance(known, list) and len(known) == 2 and known[0] == stamp:
            key = known[1]
        else:
            try:
                key = self.key(str(path), path.read_bytes())
            except OSError:
                return None
        stored = self._entry(key)
        if stored is None:
            return None
        self._seen[absolute] = (stamp, key, stored)
        return [_restore(item) for item in stored["diagnostics"]]

    def _entry(self, key: str, *, indexed: bool = True) -> Optional[dict[str, Any]]:
        """A valid entry for `key` (from the index, else its own file), or None."""
        stored = self._loaded_index()["entries"].get(key) if indexed else None
        try:
            if stored is None:
                stored = json.loads(
                    (self.directory / key[:2] / f"{key}.json").read_text(encoding="utf-8")
                )
            if stored.get("version") != __version__ or not self._dependencies_unchanged(
                stored["dependencies"]
            ):
                return None
            return stored
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing, half-written by a killed run, or from another format

    def put(self, key: str, diagnostics: Iterable[Diagnostic], dependencies: Iterable[str]) -> None:
        try:
            self._ensure_directory()
            folder = self.directory / key[:2]
            folder.mkdir(exist_ok=True)
            payload = {
                "version": __version__,
                "dependencies": {path: _hash_file(path) for path in sorted(dependencies)},
                "diagnostics": [
                    {"diagnostic": d.to_json(), "subject": d.subject} for d in diagnostics
                ],
            }
            _write_atomically(folder / f"{key}.json", payload)
        except OSError:
            pass  # a read-only checkout lints without a cache

    def save_index(self, linted: Iterable[str]) -> None:
        """Record the files this run linted (their entries were written by whoever linted
        them) next to those it answered, and write the index when anything changed."""
        for name in linted:
            path = Path(name)
            try:
                key = self.key(name, path.read_bytes())
            except OSError:
                continue
            stored = self._entry(key, indexed=False)
            if stored is not None:
                self._seen[os.path.abspath(path)] = (_stamp(os.path.abspath(path)), key, stored)
        index = self._loaded_index()
        files = dict(index["files"])
        entries: dict[str, Any] = dict(index["entries"])
        changed = False
        racy = time.time_ns() - RACY_NANOSECONDS
        for absolute, (stamp, key, stored) in self._seen.items():
            if stamp is None or stamp[0] > racy:
                continue  # modified just now: a later edit could keep its size and time
            if files.get(absolute) != [stamp, key] or key not in entries:
                files[absolute], entries[key], changed = [stamp, key], stored, True
        if not changed:
            return
        referenced = {record[1] for record in files.values()}
        payload = {
            "version": __version__,
            "files": files,
            "entries": {k: v for k, v in entries.items() if k in referenced},
        }
        try:
            self._ensure_directory()
            _write_atomically(self._index_path, payload)
        except OSError:
            pass

    def _loaded_index(self) -> dict[str, Any]:
        if self._index is None:
            try:
                index = json.loads(self._index_path.read_text(encoding="utf-8"))
                if (
                    index.get("version") != __version__
                    or not isinstance(index.get("files"), dict)
                    or not isinstance(index.get("entries"), dict)
                ):
                    raise ValueError("another version or format")
                self._index = index
            except (OSError, ValueError, AttributeError):
                self._index = {"files": {}, "entries": {}}
        return self._index

    def _dependencies_unchanged(self, dependencies: dict[str, str]) -> bool:
        for path, digest in dependencies.items():
            if path not in self._hashes:
                self._hashes[path] = _hash_file(path)
            if self._hashes[path] != digest:
                return False
        return True

    def _ensure_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / ".gitignore").write_text(
                "# created by evallint\n*\n", encoding="utf-8"
            )


def _write_atomically(target: Path, payload: dict[str, Any]) -> None:
    """Temporary file + rename: a killed run or a concurrent one never leaves a broken file."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _stamp(path: str) -> Optional[list[int]]:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_mtime_ns, status.st_size]


def _restore(item: dict[str, Any]) -> Diagnostic:
    from dataclasses import replace

    return replace(Diagnostic.from_json(item["diagnostic"]), subject=item.get("subject", ""))


def _hash_file(path: str) -> str:
    try:
        return content_hash(Path(path).read_bytes())
    except OSError:
        return ""
