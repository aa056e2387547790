"""The notebook's folder as the tools may see it: walked and read without ever leaving it.

The folder is the kernel's working directory, taken at each call (a notebook that changes directory moves
it). A link is followed only to a file inside the folder, never to a directory (no loops, no way out);
hidden files and folders (``.git``, ``.env``, ``.ssh``) are never looked at, nor are build and package
folders, and every read is bounded, so a search over a huge folder costs seconds and megabytes at most.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
BINARY_PROBE = 8192  # bytes looked at to tell text from binary


@dataclass
class Skipped:
    """What a walk left out, so the model can say why a file it expected is not in the results."""

    links_out: int = 0  # links to something outside the folder, or to a folder
    hidden: int = 0
    too_big: int = 0
    binary: int = 0
    unreadable: int = 0
    names: list[str] = field(default_factory=list)  # the first few left out, for the model to mention


def root() -> Path:
    """The notebook's folder: the kernel's working directory, resolved (the real path every check uses)."""
    return Path.cwd().resolve()


def hidden(name: str) -> bool:
    return name.startswith(".")


def inside(base: Path, relative: str) -> Path:
    """``relative`` resolved under ``base``; refused when it is absolute, hidden, or lands outside it."""
    if not isinstance(relative, str) or "\x00" in relative:
        raise ValueError("A path is a text relative to the notebook's folder.")
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts:
        raise ValueError(f"{relative!r} is not inside the notebook's folder: give a path relative to it.")
    if any(hidden(p) and p != "." for p in parts):
        raise ValueError(f"{relative!r} is hidden: hidden files and folders are not read.")
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"{relative!r} leads outside the notebook's folder (a link); it is not read.")
    return target


def walk(base: Path, start: Path, skipped: Skipped) -> Iterator[tuple[str, Path, int]]:
    """Every regular file under ``start`` as (path relative to ``base``, real path, size), in name order.

    Links to folders are never followed; a link to a file is followed only when the file is inside ``base``.
    """
    stack = [start]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            skipped.unreadable += 1
            continue
        folders = []
        for entry in entries:
            if hidden(entry.name):
                skipped.hidden += 1
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    real = path.resolve()
                    info = real.stat()
                    if base not in real.parents or not stat.S_ISREG(info.st_mode):
                        _left_out(skipped, "links_out", path.relative_to(base).as_posix())
                        continue
                    yield path.relative_to(base).as_posix(), real, info.st_size
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        folders.append(path)
                elif entry.is_file(follow_symlinks=False):  # not a pipe, a socket or a device
                    yield path.relative_to(base).as_posix(), path, entry.stat(follow_symlinks=False).st_size
            except OSError:  # a broken link, a file gone meanwhile
                skipped.unreadable += 1
        stack.extend(reversed(folders))


def _left_out(skipped: Skipped, reason: str, name: str) -> None:
    setattr(skipped, reason, getattr(skipped, reason) + 1)
    if len(skipped.names) < 5:
        skipped.names.append(f"{name} ({reason.replace('_', ' ')})")


def read_head(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes from the start of a file, opened without following a link (the path given
    is already the real one, so a link put in its place meanwhile is refused)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_binary(head: bytes) -> bool:
    """A NUL byte, or mostly control characters, in the first bytes: not text the model can use."""
    probe = head[:BINARY_PROBE]
    if b"\x00" in probe:
        return True
    control = sum(1 for b in probe if b < 32 and b not in (9, 10, 12, 13, 27))
    return bool(probe) and control / len(probe) > 0.1


def decode(data: bytes) -> str:
    """Text from bytes: UTF-8 (with or without a byte order mark), else Windows-1252, never failing."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut by the read limit
            return data[:exc.start].decode("utf-8-sig", "replace")
        return data.decode("cp1252", "replace")
