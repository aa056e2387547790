"""Each chat's prompt cache kept on disk, so a long chat answers at once after a kernel restart.

A chat whose whole window was read once keeps that KV state in a file of its own (llama.cpp's sequence state,
mlx-lm's prompt-cache file), named by the chat and the model's identity (its runtime and its file as it is
now: a changed model file is another model, whose caches are never trusted). Files are private (0600 in a
0700 folder of the data directory), kept within a size budget (the setting ``prompt_cache_disk_mb``, least
recently used dropped first, all of them at once when it is lowered to 0), and deleted with their chat or
when its history is edited: a cache holds the chat's tokens, so it goes wherever the chat's words go, even when
another kernel deletes the chat while this one saves it. Writing happens on the model worker when nothing
else waits (the runtime owns its state); reading, when the chat is answered next.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..paths import private_dir
from ..runtimes import PromptCache, Runtime

FOLDER = "prompt-caches"
# <chat id>-<model identity>.<suffix>, and the partial file a save writes first (left behind when a kernel dies
# mid-save: it holds the chat's tokens too, so it goes with the chat and counts in the budget)
NAME = re.compile(r"^(\d+)-([0-9a-f]{8,64})\.[a-z]+(?:\.\d+\.partial\.[a-z]+)?$")
MB = 1024 * 1024


class DiskCaches:
    def __init__(self, data_dir: Path, budget_mb: Callable[[], int],
                 chat_exists: Callable[[int], bool] = lambda chat_id: True) -> None:
        self.folder = data_dir / FOLDER
        self.budget_mb = budget_mb
        self.chat_exists = chat_exists

    def _path(self, chat_id: int, identity: str, runtime: Runtime) -> Path:
        return self.folder / f"{int(chat_id)}-{identity}{runtime.cache_suffix}"

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.iterdir() if p.is_file() and NAME.match(p.name)]

    def load(self, runtime: Runtime, chat_id: int) -> PromptCache | None:
        """The chat's cache for this model as it is now, or None (no file, another model, unreadable)."""
        identity = runtime.identity()
        if identity is None or self.budget_mb() <= 0:
            return None
        path = self._path(chat_id, identity, runtime)
        if not path.is_file():
            return None
        try:
            cache = runtime.load_cache(path)
            os.utime(path)  # recently used: kept longest
        except OSError:
            return None
        if cache is not None:
            cache.on_disk = (path, list(cache.tokens))
        return cache

    def save(self, runtime: Runtime, chat_id: int, cache: PromptCache) -> bool:
        """Write the chat's cache (replacing the old one atomically); whether one was written."""
        identity = runtime.identity()
        if identity is None or self.budget_mb() <= 0:
            return False
        private_dir(self.folder)
        final = self._path(chat_id, identity, runtime)
        partial = final.with_name(f"{final.name}.{os.getpid()}.partial{runtime.cache_suffix}")
        try:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            partial.touch(mode=0o600)
            tokens = runtime.save_cache(cache, partial)
            if not tokens:
                partial.unlink()
                return False
            os.chmod(partial, 0o600)
            for stale in self._files():  # the chat's caches for an older model file are of no use now
                if stale not in (final, partial) and NAME.match(stale.name)[1] == str(chat_id):  # type: ignore[index]
                    _erase(stale)
            os.replace(partial, final)
        except OSError:  # a full disk: the cache only saves time, so do without it
            with contextlib.suppress(OSError):
                _erase(partial)
            return False
        if not self._exists(chat_id):  # deleted meanwhile (by another kernel, whose sweep ran before the file was
            _erase(final)              # there): its tokens must not outlive it
            return False
        cache.on_disk = (final, tokens)  # a sequence holding just these tokens can be emptied for free
        self.trim()
        return True

    def delete(self, chat_id: int | None = None) -> None:
        """Erase one chat's caches, or every cache."""
        for path in self._files():
            if chat_id is None or NAME.match(path.name)[1] == str(chat_id):  # type: ignore[index]
                _erase(path)

    def trim(self) -> None:
        """Keep the folder within the budget, the least recently used caches first, and drop the caches of
        chats that are gone (a kernel that died mid-save, a chat deleted while another kernel saved it)."""
        budget = self.budget_mb() * MB
        files = []
        for path in self._files():
            if not self._exists(int(NAME.match(path.name)[1])):  # type: ignore[index]
                _erase(path)
                continue
            with contextlib.suppress(FileNotFoundError):  # another kernel's trim took it
                info = path.stat()
                files.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= budget:
                break
            total -= size
            _erase(path)

    def _exists(self, chat_id: int) -> bool:
        """Whether the chat is still there; when the database cannot say (locked, unreadable), it is kept."""
        try:
            return bool(self.chat_exists(chat_id))
        except Exception:
            return True


def _erase(path: Path) -> None:
    """Overwrite a cache with zeros, then remove it: it holds a chat's tokens."""
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        with open(path, "r+b") as f:
            while size > 0:
                chunk = min(size, MB)
                f.write(bytes(chunk))
                size -= chunk
            f.flush()
            os.fsync(f.fileno())
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
