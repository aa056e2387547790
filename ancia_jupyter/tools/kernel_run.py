"""Running Python in the user's namespace when no notebook front end can run it as a cell, and what a run
gives back to the model (``RunResult``), wherever it ran.

The code runs on a thread of its own, never the kernel's main thread (it belongs to the kernel, and is often
busy with the very cell that asked) and never the tool's thread, which stays free to notice a stop. A stop
raises KeyboardInterrupt in the running code (``PyThreadState_SetAsyncExc``). Python delivers it at the code's
next step, so a loop stops at once; a call blocked in C (``time.sleep``, a socket read) finishes first. The run
is reported stopped after ``INTERRUPT_WAIT`` anyway, and the code stops as soon as that call returns: nothing
after it runs.

What the code prints is captured per thread: the kernel's own output (another cell, a progress bar) is not
taken, and the code's output does not leak into the cell that asked.
"""

from __future__ import annotations

import ast
import io
import itertools
import linecache
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from .kernel_context import variable_section

INTERRUPT_WAIT = 1.0  # seconds a stopped run has to end before it is reported stopped anyway
POLL = 0.02  # seconds between looks at whether the run was stopped
SECTION_CHARS = 6_000  # each part of a result (stdout, stderr, value, error) at most; the whole is cut later
BLOCKED = ("KeyboardInterrupt: stopped. The code was inside a call that cannot be interrupted from another "
           "thread (time.sleep, I/O); it stops when that call returns, and nothing after it runs.")

_names = itertools.count(1)


@dataclass
class RunResult:
    """What a run gave: where it ran, what it printed, its last line's value, its error, its other outputs."""

    where: str
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    shown: list[str] = field(default_factory=list)  # other outputs (a figure, HTML), described in a line each
    stopped: bool = False

    def text(self) -> str:
        """The result as the model reads it, each part cut to ``SECTION_CHARS``."""
        parts = [self.where]
        for label, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if text:
                parts.append(f"{label}:\n```\n{_cut(text.rstrip())}\n```")
        if self.value is not None:
            parts.append(f"Value of the last line:\n{_cut(self.value)}")
        parts += [f"Output: {line}" for line in self.shown]
        if self.error:
            parts.append(f"Error:\n```\n{_cut(self.error.rstrip())}\n```")
        if len(parts) == 1:
            parts.append("It ran without output (nothing printed, no value on the last line).")
        return "\n\n".join(parts)


def _cut(text: str) -> str:
    if len(text) <= SECTION_CHARS:
        return text
    return f"{text[:SECTION_CHARS]}\n[… {len(text) - SECTION_CHARS} more characters not shown]"


def describe_value(value: Any) -> str:
    """A value as ``kernel.variables`` describes one: shape, dtypes and head of a DataFrame, a short repr
    otherwise; never the object's full repr, which can be huge."""
    lines = variable_section("value", value).splitlines()
    return "\n".join(lines[1:])  # without the section's heading


# -- output captured per thread ----------------------------------------------------------------------------

_lock = threading.Lock()
_buffers: dict[int, tuple[io.StringIO, io.StringIO]] = {}  # thread id -> its (stdout, stderr) while it runs


class _Routed:
    """``sys.stdout`` or ``sys.stderr`` while runs are captured: a running thread's writes go to its buffer,
    everyone else's to the stream this one replaced."""

    def __init__(self, original: TextIO, index: int) -> None:
        self.original = original
        self.index = index

    def write(self, text: str) -> int:
        buffers = _buffers.get(threading.get_ident())
        return buffers[self.index].write(text) if buffers else self.original.write(text)

    def flush(self) -> None:
        if threading.get_ident() not in _buffers:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


@contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """This thread's prints, captured while it runs; the streams are put back when no run is left."""
    buffers = (io.StringIO(), io.StringIO())
    with _lock:
        if not isinstance(sys.stdout, _Routed):
            sys.stdout = _Routed(sys.stdout, 0)
        if not isinstance(sys.stderr, _Routed):
            sys.stderr = _Routed(sys.stderr, 1)
        _buffers[threading.get_ident()] = buffers
    try:
        yield buffers
    finally:
        with _lock:
            _buffers.pop(threading.get_ident(), None)
            if not _buffers:
                for name in ("stdout", "stderr"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _Routed):
                        setattr(sys, name, stream.original)


# -- running ----------------------------------------------------------------------------------------------

def _compile(code: str, filename: str) -> tuple[Any, Any | None]:
    """The code, and its last line apart when it is an expression (its value is the run's value)."""
    tree = ast.parse(code, filename, "exec")
    last, final = None, tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = compile(ast.Expression(final.value), filename, "eval")
    return compile(tree, filename, "exec"), last


def _error_text(exc: BaseException, filename: str) -> str:
    """The exception with the frames of the user's code only (not this module's)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    if tb is None or isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return "".join(traceback.format_exception(type(exc), exc, tb)).strip()


def _interrupt(thread_id: int) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(KeyboardInterrupt))


def run_in_namespace(code: str, namespace: dict[str, Any], *, stop: Callable[[], bool], where: str) -> RunResult:
    """Run ``code`` in ``namespace`` on a thread of its own and wait for it, interrupting it when ``stop()``
    turns true."""
    filename = f"<ancia run_code {next(_names)}>"
    try:
        body, last = _compile(code, filename)
    except SyntaxError as exc:
        return RunResult(where, error=_error_text(exc, filename))
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # lines in tracebacks
    box: dict[str, Any] = {}
    finished = threading.Event()
    state = threading.Lock()  # an interrupt is sent only while the user's code runs
    streams: list[tuple[io.StringIO, io.StringIO]] = []

    def target() -> None:
        try:
            with _captured() as buffers:
                streams.append(buffers)
                try:
                    exec(body, namespace)
                    if last is not None:
                        box["value"] = eval(last, namespace)
                except BaseException as exc:  # the user's error, KeyboardInterrupt included: reported
                    box["error"] = exc
                finally:
                    with state:
                        box["over"] = True
        except BaseException as exc:  # an interrupt that came as the code ended
            box.setdefault("error", exc)
        finally:
            finished.set()

    thread = threading.Thread(target=target, name="ancia-run-code", daemon=True)
    thread.start()
    stopped = False
    while not finished.wait(POLL):
        if stop():
            stopped = True
            with state:
                if not box.get("over") and thread.ident is not None:
                    _interrupt(thread.ident)
            finished.wait(INTERRUPT_WAIT)
            break
    out, err = streams[0] if streams else (io.StringIO(), io.StringIO())
    result = RunResult(where, stdout=out.getvalue(), stderr=err.getvalue(), stopped=stopped)
    if not finished.is_set():
        result.error = BLOCKED
    elif "error" in box:
        result.error = _error_text(box["error"], filename)
    elif box.get("value") is not None:
        result.value = describe_value(box["value"])
    return result
