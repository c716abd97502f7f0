"""A result cache that can only make a run slower, never wrong and never fatal (the idea of
ruff's and mypy's caches), in `.evallint_cache/` at the project root.

**Content-addressed.** An entry's key is the hash of the evallint version, the settings
(without the project's location), the file's path relative to the project root (per-file
settings depend on it) and the file's bytes. Entries hold no absolute paths of the project:
dependencies and finding paths are stored relative to the root and re-rooted on the way out,
so a cache filled in one checkout answers in another (a CI runner restoring a shared cache
directory) and findings are named as this run names the file, relative to its own working
directory.

**Validated.** Every cache file starts with a header line carrying the SHA-256 of the JSON
after it, and an entry names its own key; then the JSON is checked against the schema below.
Anything that fails (truncated by a killed run, bit rot, a wrong shape from another version,
an entry copied under another key) is a miss.

**Dependencies.** An entry records the content hash of every project file its analysis
read (`from engine import evaluate`), and, as negative dependencies, the candidate paths of
imports that did not resolve (or that a nearer file would now shadow): the entry is stale
once one of those files exists. Only regular files are hashed, at most MAX_HASHED_BYTES
(a dependency naming /dev/zero or a FIFO is a miss, not a hang).

**Index.** A command-line run also keeps one index per settings, like git's: each file's
stat data (mtime_ns, ctime_ns, size, inode, mode, uid, gid: the fields git compares) with
its content key, and the entries, so a warm run stats files and reads one file. A file
whose stat data differ is hashed again; one modified in the last two seconds is not indexed
(git's "racily clean" rule). The index belongs to one checkout (its name hashes the root):
stat data do not survive a copy anyway.

`EVALLINT_CACHE_DIR` puts the cache in a directory shared by projects, checkouts and CI
runners instead of `.evallint_cache/` at each root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from evallint._version import __version__ as _release
from evallint.diagnostics import Diagnostic, Related

CACHE_DIRECTORY = ".evallint_cache"
CACHE_DIRECTORY_VARIABLE = "EVALLINT_CACHE_DIR"
"""A directory shared by every project and checkout (a CI cache): entries are content-
addressed, so they are valid wherever the project is; the index is one per checkout."""
FORMAT = b"evallint-cache-2"
RACY_NANOSECONDS = 2_000_000_000
"""A file modified this recently is not indexed by its stat data (coarse file-system clocks
could hide a second edit); it is hashed again next run (git's "racily clean" rule)."""
MAX_HASHED_BYTES = 64 * 1024 * 1024
"""Files larger than this are not hashed (and entries depending on them are misses)."""
MAX_CACHE_FILE_BYTES = 512 * 1024 * 1024
ABSENT = "-"
"""The digest of a file that does not exist."""


def _code_version(package: Path = Path(__file__).resolve().parent.parent) -> str:
    """The release plus a fingerprint (name, size, modification time) of evallint's own
    modules: an editable install or a patched copy changes its analysis without changing its
    version, and its cached results must not outlive that. Costs one stat per module."""
    digest = hashlib.sha256(_release.encode())
    base = str(package)
    found: list[str] = []
    for directory, dirs, files in os.walk(base):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        found.extend(os.path.join(directory, name) for name in files if name.endswith(".py"))
    for path in sorted(found):
        try:
            info = os.stat(path)
        except OSError:
            continue
        relative = Path(os.path.relpath(path, base))
        digest.update(f"\0{relative}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    return f"{_release}+{digest.hexdigest()[:16]}"


__version__ = _code_version()
"""What entries are keyed and stamped with (see `_code_version`)."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def settings_of(config: Any) -> str:
    """The settings part of the key: the configuration without the project's location."""
    if dataclasses.is_dataclass(config) and hasattr(config, "root"):
        config = dataclasses.replace(config, root=None)  # type: ignore[type-var]
    return repr(config)


class ResultCache:
    def __init__(self, root: Path, settings: str) -> None:
        self.root = os.path.abspath(root)
        self._real_root = os.path.realpath(self.root)
        self._prefixes = tuple(
            dict.fromkeys(root.rstrip(os.sep) + os.sep for root in (self.root, self._real_root))
        )
        shared = os.environ.get(CACHE_DIRECTORY_VARIABLE)
        self.directory = Path(shared) if shared else Path(self.root) / CACHE_DIRECTORY
        self._settings = settings
        digest = hashlib.sha256(
            f"{__version__}\0{settings}\0{self.root}".encode("utf-8", "surrogateescape")
        ).hexdigest()
        self._index_path = self.directory / f"index-{digest[:16]}.json"
        self._index: Optional[dict[str, Any]] = None
        self._seen: dict[str, tuple[Optional[list[int]], str, dict[str, Any]]] = {}
        """Stored path -> (stat data, key, entry) of every file this run answered or linted."""
        self._hashes: dict[str, Optional[str]] = {}
        """Stored dependency path -> content hash, each file hashed once per run."""
        self._exists: dict[str, bool] = {}
        """Stored negative dependency -> whether it exists, each path tested once per run."""

    # -- paths -------------------------------------------------------------------------------
    def _stored(self, path: str, *, normalized: bool = False) -> str:
        """`path` as entries store it: relative to the root when under it, else absolute.
        `normalized`: `path` is already an `os.path.abspath`."""
        absolute = path if normalized else os.path.abspath(path)
        for prefix in self._prefixes:
            if absolute.startswith(prefix):
                relative = absolute[len(prefix) :]
                return relative if os.sep == "/" else relative.replace(os.sep, "/")
        return absolute

    def _portable(self, path: str) -> str:
        """A dependency's path relative to the root, even outside it (`../x`): a candidate
        import in a parent directory moves with the checkout."""
        try:
            return os.path.relpath(os.path.abspath(path), self.root).replace(os.sep, "/")
        except ValueError:  # another drive
            return os.path.abspath(path)

    def _absolute(self, stored: str) -> str:
        if os.path.isabs(stored):
            return stored
        return os.path.normpath(os.path.join(self.root, stored))

    def _encode_path(self, path: str, name: str) -> str:
        """A finding's path: '=' is the linted file; '/x' the file x under the root named
        absolutely; '.x' named relative to the working directory; '!p' outside the root."""
        if path == name:
            return "="
        stored = self._stored(path)
        if os.path.isabs(stored):
            return "!" + path
        if os.path.isabs(path) == os.path.isabs(name):
            return "~" + stored  # named as the linted file is named
        return ("/" if os.path.isabs(path) else ".") + stored

    def _decode_path(self, encoded: str, name: str) -> str:
        if encoded == "=":
            return name
        kind, rest = encoded[:1], encoded[1:]
        if kind == "~":
            kind = "/" if os.path.isabs(name) else "."
        if kind == "/":
            return os.path.join(self.root, rest)
        if kind == ".":
            return os.path.relpath(os.path.join(self.root, rest))
        if kind == "!":
            return rest
        raise ValueError(f"bad stored path {encoded!r}")

    # -- keys and lookups --------------------------------------------------------------------
    def key(self, path: str, data: bytes) -> str:
        digest = hashlib.sha256()
        for part in (__version__, self._settings, self._stored(path)):
            digest.update(part.encode("utf-8", "surrogateescape"))
            digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str, name: str = "") -> Optional[list[Diagnostic]]:
        """The findings stored under `key`, named for the file `name` as this run names it.
        Reads the entry's own file only: a worker process asks after the run's parent has
        looked in the index already."""
        stored = self._entry(key, indexed=False)
        return None if stored is None else self._restore_all(stored, name)

    def lookup(self, path: Path) -> Optional[list[Diagnostic]]:
        """The cached findings for the file as it is now, through the index when its stat
        data are unchanged; None when it must be linted."""
        absolute = os.path.abspath(path)
        stored_path = self._stored(absolute, normalized=True)
        stamp = _stamp(absolute)
        known = self._loaded_index()["files"].get(stored_path)
        if (
            stamp is not None
            and isinstance(known, list)
            and len(known) == 2
            and known[0] == stamp
            and isinstance(known[1], str)
        ):
            key = known[1]
        else:
            data = _read_regular(absolute, MAX_HASHED_BYTES)
            if data is None:
                return None
            key = self.key(str(path), data)
        stored = self._entry(key)
        if stored is None:
            return None
        found = self._restore_all(stored, str(path))
        if found is not None:
            self._seen[stored_path] = (stamp, key, stored)
        return found

    def _entry(self, key: str, *, indexed: bool = True) -> Optional[dict[str, Any]]:
        """A valid, current entry for `key` (from the index, else its own file), or None."""
        stored = self._loaded_index()["entries"].get(key) if indexed else None
        if stored is None:
            stored = _read_verified(self.directory / key[:2] / f"{key}.json")
        if not _valid_entry(stored, key):
            return None
        assert isinstance(stored, dict)
        if not self._dependencies_unchanged(stored["dependencies"], stored["missing"]):
            return None
        return stored

    def _restore_all(self, stored: dict[str, Any], name: str) -> Optional[list[Diagnostic]]:
        try:
            return [self._restore(item, name) for item in stored["diagnostics"]]
        except (KeyError, TypeError, ValueError):
            return None

    def _restore(self, item: dict[str, Any], name: str) -> Diagnostic:
        data = item["diagnostic"]
        related = tuple(
            Related(
                self._decode_path(r["path"], name), r["line"], r["column"], r["message"], r["cell"]
            )
            for r in data["related"]
        )
        return Diagnostic(
            self._decode_path(data["path"], name),
            data["line"],
            data["column"],
            data["end_line"],
            data["end_column"],
            data["code"],
            data["message"],
            related,
            subject=item["subject"],
            cell=data["cell"],
        )

    # -- writing -----------------------------------------------------------------------------
    def put(
        self,
        key: str,
        diagnostics: Iterable[Diagnostic],
        dependencies: Iterable[str],
        missing: Iterable[str] = (),
        name: str = "",
    ) -> None:
        """Store the findings of the file `name`. Not stored when a dependency cannot be
        hashed (not a regular file, too large, gone since it was read)."""
        hashes = {self._portable(p): _hash_file(p) for p in sorted(dependencies)}
        if any(digest in (None, ABSENT) for digest in hashes.values()):
            return
        payload = {
            "key": key,
            "version": __version__,
            "dependencies": hashes,
            "missing": sorted({self._portable(p) for p in missing}),
            "diagnostics": [
                {"diagnostic": self._encode(d, name), "subject": d.subject} for d in diagnostics
            ],
        }
        try:
            self._ensure_directory()
            folder = self.directory / key[:2]
            folder.mkdir(exist_ok=True)
            _write_atomically(folder / f"{key}.json", payload)
        except OSError:
            pass  # a read-only checkout lints without a cache

    def _encode(self, diagnostic: Diagnostic, name: str) -> dict[str, Any]:
        return {
            "path": self._encode_path(diagnostic.path, name),
            "line": diagnostic.line,
            "column": diagnostic.column,
            "end_line": diagnostic.end_line,
            "end_column": diagnostic.end_column,
            "code": diagnostic.code,
            "message": diagnostic.message,
            "cell": diagnostic.cell,
            "related": [
                {
                    "path": self._encode_path(r.path, name),
                    "line": r.line,
                    "column": r.column,
                    "message": r.message,
                    "cell": r.cell,
                }
                for r in diagnostic.related
            ],
        }

    def save_index(self, linted: Iterable[str]) -> None:
        """Record the files this run linted (their entries were written by whoever linted
        them) next to those it answered, and write the index when anything changed."""
        for name in linted:
            data = _read_regular(os.path.abspath(name), MAX_HASHED_BYTES)
            if data is None:
                continue
            key = self.key(name, data)
            stored = self._entry(key, indexed=False)
            if stored is not None:
                absolute = os.path.abspath(name)
                self._seen[self._stored(absolute)] = (_stamp(absolute), key, stored)
        index = self._loaded_index()
        files = dict(index["files"])
        entries: dict[str, Any] = dict(index["entries"])
        changed = False
        racy = time.time_ns() - RACY_NANOSECONDS
        for stored_path, (stamp, key, stored) in self._seen.items():
            if stamp is None or stamp[0] > racy:
                continue  # modified just now: a later edit could keep its stat data
            if files.get(stored_path) != [stamp, key] or key not in entries:
                files[stored_path], entries[key], changed = [stamp, key], stored, True
        if not changed:
            return
        referenced = {record[1] for record in files.values() if _valid_record(record)}
        payload = {
            "version": __version__,
            "files": {p: r for p, r in files.items() if _valid_record(r)},
            "entries": {k: v for k, v in entries.items() if k in referenced},
        }
        try:
            self._ensure_directory()
            _write_atomically(self._index_path, payload)
        except OSError:
            pass

    def _loaded_index(self) -> dict[str, Any]:
        if self._index is None:
            index = _read_verified(self._index_path)
            if (
                isinstance(index, dict)
                and index.get("version") == __version__
                and isinstance(index.get("files"), dict)
                and isinstance(index.get("entries"), dict)
            ):
                self._index = index
            else:
                self._index = {"files": {}, "entries": {}}
        return self._index

    def _dependencies_unchanged(self, dependencies: dict[str, str], missing: list[str]) -> bool:
        hashes, exists = self._hashes, self._exists  # keyed by the stored (relative) path
        for stored, digest in dependencies.items():
            if stored not in hashes:
                hashes[stored] = _hash_file(self._absolute(stored))
            if hashes[stored] is None or hashes[stored] != digest:
                return False
        for stored in missing:
            if stored not in exists:
                exists[stored] = os.path.isfile(self._absolute(stored))
            if exists[stored]:
                return False
        return True

    def _ensure_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / ".gitignore").write_text(
                "# created by evallint\n*\n", encoding="utf-8"
            )


# -- files -------------------------------------------------------------------------------------
def _write_atomically(target: Path, payload: dict[str, Any]) -> None:
    """Header with the body's hash, then the body; temporary file + rename, so a killed or
    concurrent run never leaves a file that reads back as valid but different."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(FORMAT + b" " + content_hash(body).encode("ascii") + b"\n" + body)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _read_verified(path: Path) -> Any:
    """The JSON of a cache file whose header hash matches its body; None otherwise."""
    data = _read_regular(str(path), MAX_CACHE_FILE_BYTES)
    if data is None:
        return None
    header, _, body = data.partition(b"\n")
    if header != FORMAT + b" " + content_hash(body).encode("ascii"):
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _read_regular(path: str, limit: int) -> Optional[bytes]:
    """A regular file's bytes, or None: missing, unreadable, not a regular file (a FIFO
    or a device would block or never end), or larger than `limit`."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError):
        return None
    try:
        status = os.fstat(handle)
        if not stat.S_ISREG(status.st_mode) or status.st_size > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(handle, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(handle)


def _hash_file(path: str) -> Optional[str]:
    """Content hash; ABSENT when there is no such file; None when it cannot be hashed."""
    if not os.path.lexists(path):
        return ABSENT
    data = _read_regular(path, MAX_HASHED_BYTES)
    return None if data is None else content_hash(data)


def _stamp(path: str) -> Optional[list[int]]:
    """The stat fields git's index compares."""
    try:
        s = os.stat(path)
    except (OSError, ValueError):
        return None
    return [s.st_mtime_ns, s.st_ctime_ns, s.st_size, s.st_ino, s.st_mode, s.st_uid, s.st_gid]


# -- schema ------------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return type(value) is int


def _is_str(value: object) -> bool:
    return type(value) is str


def _valid_path(value: object) -> bool:
    return _is_str(value) and (value == "=" or value[:1] in ("/", ".", "!", "~"))  # type: ignore[index]


def _valid_related(item: object) -> bool:
    return (
        isinstance(item, dict)
        and _valid_path(item.get("path"))
        and _is_int(item.get("line"))
        and _is_int(item.get("column"))
        and _is_str(item.get("message"))
        and (item.get("cell") is None or _is_int(item.get("cell")))
    )


def _valid_diagnostic(item: object) -> bool:
    if not isinstance(item, dict) or not _is_str(item.get("subject")):
        return False
    data = item.get("diagnostic")
    return (
        isinstance(data, dict)
        and _valid_path(data.get("path"))
        and all(_is_int(data.get(k)) for k in ("line", "column", "end_line", "end_column"))
        and _is_str(data.get("code"))
        and _is_str(data.get("message"))
        and (data.get("cell") is None or _is_int(data.get("cell")))
        and isinstance(data.get("related"), list)
        and all(map(_valid_related, data["related"]))
    )


def _valid_entry(entry: object, key: str) -> bool:
    """The schema of an entry: {key, version, dependencies: {path: sha256}, missing:
    [path], diagnostics: [{diagnostic: {...}, subject}]}."""
    return (
        isinstance(entry, dict)
        and entry.get("key") == key
        and entry.get("version") == __version__
        and isinstance(entry.get("dependencies"), dict)
        and all(_is_str(k) and _is_str(v) for k, v in entry["dependencies"].items())
        and isinstance(entry.get("missing"), list)
        and all(map(_is_str, entry["missing"]))
        and isinstance(entry.get("diagnostics"), list)
        and all(map(_valid_diagnostic, entry["diagnostics"]))
    )


def _valid_record(record: object) -> bool:
    return (
        isinstance(record, list)
        and len(record) == 2
        and isinstance(record[0], list)
        and all(map(_is_int, record[0]))
        and _is_str(record[1])
    )
