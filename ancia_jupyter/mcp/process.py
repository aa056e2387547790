"""A stdio server's process, seen from the kernel: found by a marker in its environment, killed with its
whole process group when it outlives its teardown, and its stderr's last line read to explain a failure.

The marker makes sure only a process this kernel started is ever killed, even after its pid was reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import IO

import psutil

MARKER = "ANCIA_MCP_SERVER"  # the environment variable that marks a server's process


def find_child(marker: str) -> int | None:
    """The pid of this process's child started with ``MARKER=marker``."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.environ().get(MARKER) == marker:
                return int(child.pid)
    return None


def kill_group(pid: int | None, marker: str) -> None:
    """Kill the server's process and its group (the SDK starts it in a session of its own), if it is still
    the one marked ``marker``."""
    try:
        if pid is None or psutil.Process(pid).environ().get(MARKER) != marker:
            return
        if sys.platform != "win32":
            os.killpg(pid, signal.SIGKILL)
        else:  # pragma: no cover
            for process in [*psutil.Process(pid).children(recursive=True), psutil.Process(pid)]:
                process.kill()
    except (psutil.Error, ProcessLookupError, PermissionError):
        pass


def log_tail(path: Path | None) -> str | None:
    """The last line a server wrote to its stderr log, without the frames of a rich traceback."""
    try:
        data = path.read_bytes()[-4000:] if path is not None else b""
    except OSError:
        return None
    lines = [" ".join(line.split()) for line in data.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line and not set(line) <= set("─│╭╮╰╯ ")]
    return lines[-1][:200] if lines else None


def open_log(path: Path | None) -> IO[str]:
    """Where a stdio server's stderr goes: its log, private to the user and emptied at each start."""
    if path is None:
        return open(os.devnull, "w")
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8")
