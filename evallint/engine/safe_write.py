"""Writing a fixed file without losing what the file system knows about it.

The new bytes always go first to a temporary file beside the target,
`.<name>.<random>.evallint-fix`, which is flushed, synced and read back. Then either:

- **rename** (the common case: one link, and the copy got the target's mode, owner, group and
  extended attributes): `os.replace`, atomic for readers and for a killed run;
- **in place** (the file has several hard links, or its owner or an attribute cannot be
  reproduced, as editors do with `backupcopy=auto`): the verified copy is renamed to
  `.<name>.<random>.inplace.evallint-fix`, the target is truncated and written through its
  own inode (links, owner, attributes and mode stay by construction), read back, and the copy
  is removed.

A run killed in between leaves one of those files. The next `--fix` of the same file removes
a plain one (the target was never touched) and finishes an interrupted in-place write (the
target is then a proper prefix of the copy, because it was truncated before being written).
A read-only file (no write bit, or not writable by this user) is refused unless forced.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path

TEMPORARY_SUFFIX = ".evallint-fix"
IN_PLACE_SUFFIX = ".inplace" + TEMPORARY_SUFFIX
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class WriteError(Exception):
    """The file was left as it was; the message says why (one line)."""


def is_read_only(path: Path) -> bool:
    status = os.stat(path)
    return not status.st_mode & _WRITE_BITS or not os.access(path, os.W_OK)


def write_preserving(path: Path, data: bytes, *, force: bool = False) -> None:
    """Replace the content of `path` (a symlink's target) by `data`, keeping its mode,
    owner, group, extended attributes and hard links.

    :raises WriteError: nothing was changed (read-only without `force`, not a regular file,
        or an OS error, whose text is in the message).
    """
    target = Path(os.path.realpath(path))
    try:
        status = os.stat(target)
        if not stat.S_ISREG(status.st_mode):
            raise WriteError("not a regular file")
        if is_read_only(target) and not force:
            raise WriteError("the file is read-only (pass --force to fix it anyway)")
        temporary = _verified_copy(target, data)
    except OSError as exc:
        raise WriteError(exc.strerror or str(exc)) from None
    try:
        if status.st_nlink == 1 and _reproduce_metadata(target, temporary, status):
            os.replace(temporary, target)
            return
        _write_in_place(target, temporary, data, status)
    except OSError as exc:
        raise WriteError(exc.strerror or str(exc)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def clean_stale_temporaries(path: Path) -> list[str]:
    """Remove what killed runs left beside `path`; finish an interrupted in-place write.
    Returns one line per action taken, for the user."""
    target = Path(os.path.realpath(path))
    pattern = re.compile(
        rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]+({re.escape(IN_PLACE_SUFFIX)}|"
        rf"{re.escape(TEMPORARY_SUFFIX)})\Z"
    )
    done: list[str] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return done
    for name in sorted(names):
        match = pattern.match(name)
        if match is None:
            continue
        stale = target.parent / name
        try:
            if match.group(1) == IN_PLACE_SUFFIX:
                copy, current = stale.read_bytes(), target.read_bytes()
                if current != copy and copy.startswith(current):
                    with open(target, "r+b") as stream:
                        stream.truncate(0)
                        stream.write(copy)
                        stream.flush()
                        os.fsync(stream.fileno())
                    done.append(f"{path}: finished a fix interrupted while it was being written")
            os.unlink(stale)
            done.append(f"{path}: removed {name} left by an interrupted run")
        except OSError:
            continue
    return done


def _verified_copy(target: Path, data: bytes) -> str:
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if Path(temporary).read_bytes() != data:
            raise OSError(0, "the temporary copy did not read back as written")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary


def _reproduce_metadata(target: Path, temporary: str, status: os.stat_result) -> bool:
    """Give the copy the target's mode, owner, group and extended attributes; False when
    something cannot be reproduced (the caller then writes in place)."""
    try:
        copy = os.stat(temporary)
        if (copy.st_uid, copy.st_gid) != (status.st_uid, status.st_gid):
            os.chown(temporary, status.st_uid, status.st_gid)
        os.chmod(temporary, stat.S_IMODE(status.st_mode))
        if hasattr(os, "listxattr"):
            for name in os.listxattr(target):
                os.setxattr(temporary, name, os.getxattr(target, name))
    except OSError:
        return False
    return True


def _write_in_place(target: Path, temporary: str, data: bytes, status: os.stat_result) -> None:
    """Truncate, then write through the target's own inode. The verified copy stays beside it
    until the write is read back, so a killed run can be finished by the next one."""
    marked = temporary[: -len(TEMPORARY_SUFFIX)] + IN_PLACE_SUFFIX
    os.rename(temporary, marked)
    original = target.read_bytes()
    forced = not status.st_mode & stat.S_IWUSR
    if forced:
        os.chmod(target, stat.S_IMODE(status.st_mode) | stat.S_IWUSR)
    try:
        try:
            _overwrite(target, data)
            if target.read_bytes() != data:
                raise OSError(0, "the file did not read back as written")
        except OSError:
            _overwrite(target, original)  # e.g. the disk filled up: put the bytes back
            os.unlink(marked)
            raise
        os.unlink(marked)
    finally:
        if forced:
            os.chmod(target, stat.S_IMODE(status.st_mode))


def _overwrite(target: Path, data: bytes) -> None:
    with open(target, "r+b") as stream:
        stream.truncate(0)
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
