"""The file a llama.cpp chat's prompt cache is kept in on disk: a magic string, the length of a JSON header
(the tokens the state holds), the header, then the sequence's KV state as llama.cpp writes it."""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path

MAGIC = b"ANCIA-LLAMA-KV-1"
HEAD = len(MAGIC) + 8  # the magic and the header's length


def write(path: Path, tokens: list[int], state: bytes | bytearray | mmap.mmap | memoryview) -> None:
    header = json.dumps({"tokens": tokens}).encode()
    with open(path, "wb") as f:
        f.write(MAGIC + len(header).to_bytes(8, "little") + header)
        f.write(state)


def read(path: Path) -> tuple[list[int], memoryview] | None:
    """The tokens and the KV state of a file ``write`` wrote, or None for any other file. The state is
    mapped, not read: llama.cpp copies it straight from the page cache when it is placed (on the model
    worker, which is also the only one in this kernel to rewrite or erase these files)."""
    with open(path, "rb") as f:
        head = f.read(HEAD)
        if len(head) < HEAD or not head.startswith(MAGIC):
            return None
        try:
            tokens = [int(t) for t in json.loads(f.read(int.from_bytes(head[len(MAGIC):], "little")))["tokens"]]
        except (ValueError, KeyError, TypeError):
            return None
        start, size = f.tell(), os.fstat(f.fileno()).st_size
        if size <= start:
            return None
        return tokens, memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY))[start:]
