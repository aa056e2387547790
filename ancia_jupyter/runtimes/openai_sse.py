"""Reading a server's answer as server-sent events, with every size bounded while it is read.

A server is not trusted to be reasonable: one line may never end, and a small gzip body can inflate a
thousand-fold. So the body is inflated here (not by httpx, which inflates a whole received chunk at once) in
pieces of at most ``PIECE`` bytes, lines are split as the pieces come, and a line or an event that grows past
its cap ends the answer before it is held whole: the memory an answer takes is about its cap, whatever the
server sends. What the body turned out to be, when it is not an event stream, is described in words.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

PIECE = 64 * 1024  # the most bytes inflated at once
HEAD_BYTES = 64 * 1024  # what is kept of a body's start, to say what it was when it is not an event stream
SSE_FIELDS = frozenset({"data", "event", "id", "retry"})
_LINE_END = re.compile(rb"\r\n|\r|\n")


class WireError(Exception):
    """What the server sent that cannot be read: ``what`` ends a sentence that starts "The server at URL",
    ``shown`` is the server's own text to quote, which the caller redacts and cuts."""

    def __init__(self, what: str, shown: str = "") -> None:
        super().__init__(what)
        self.what, self.shown = what, shown


def setting_hint(name: str) -> str:
    """How a limit that ended an answer is raised, for the end of its message."""
    return f"the setting {name}: raise it with `ancia.settings.update({name}=...)`"


@dataclass(frozen=True)
class Event:
    """One server-sent event: its data lines joined, or None for a comment (a keep-alive). ``complete`` is
    False for the last one when the body ended before its blank line."""

    data: str | None
    complete: bool = True


def _inflater(encoding: str) -> zlib._Decompress | None:
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"], ["deflate"]):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # a gzip or a zlib header, told apart by zlib
    raise WireError(f"answered with Content-Encoding {encoding[:40]!r}, which this client did not ask for "
                    "(it asks for gzip or deflate)")


def inflate(raw: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """The body's bytes with its Content-Encoding undone, in pieces of at most ``PIECE`` bytes."""
    inflater = _inflater(encoding)
    if inflater is None:
        yield from raw
        return
    raw_deflate = encoding.strip().lower() == "deflate"  # many servers send deflate without the zlib header
    for data in raw:
        while data and not inflater.eof:
            try:
                piece = inflater.decompress(data, PIECE)
            except zlib.error:
                if not raw_deflate:
                    raise WireError(f"sent a body that is not valid {encoding.strip()}") from None
                inflater, raw_deflate = zlib.decompressobj(-zlib.MAX_WBITS), False
                continue
            raw_deflate = False
            data = inflater.unconsumed_tail
            if piece:
                yield piece


def lines(pieces: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    """Lines (CRLF, LF or CR ended, without the ending) of at most ``max_bytes``, checked before a line is
    held whole; the last one even without its ending."""
    buffer = bytearray()
    for piece in pieces:
        scan = max(len(buffer) - 1, 0)  # a CR at the end may be half of a CRLF
        buffer += piece
        start = 0
        while (found := _LINE_END.search(buffer, max(scan, start))) is not None:
            if found.group() == b"\r" and found.end() == len(buffer):
                break  # wait for the next piece: it may start with the LF
            if found.start() - start > max_bytes:  # a whole line that came within one piece
                raise WireError(f"sent an event line of more than {max_bytes} bytes "
                                f"({setting_hint('server_max_event_bytes')})")
            yield bytes(buffer[start:found.start()])
            start = found.end()
        del buffer[:start]
        if len(buffer) > max_bytes:
            raise WireError(f"sent an event line of more than {max_bytes} bytes "
                            f"({setting_hint('server_max_event_bytes')})")
    if buffer:
        yield bytes(buffer.rstrip(b"\r"))


class EventReader:
    """The events of one body, and what was read of it: its size and the start of it."""

    def __init__(self, raw: Iterable[bytes], encoding: str, max_event_bytes: int) -> None:
        self.size, self.head, self.max_event_bytes = 0, bytearray(), max_event_bytes
        self._pieces = self._count(inflate(raw, encoding))

    def _count(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self.size += len(piece)
            if len(self.head) < HEAD_BYTES:
                self.head += piece[:HEAD_BYTES - len(self.head)]
            yield piece

    def events(self) -> Iterator[Event]:
        """Each event's data, a comment as ``Event(None)``. A body whose first line is not an event-stream
        field is not an event stream: ``WireError`` says what it is instead."""
        data: list[str] = []
        held, first = 0, True
        for raw_line in lines(self._pieces, self.max_event_bytes):
            line = raw_line.decode("utf-8", errors="replace")
            if not line:
                if data:
                    yield Event("\n".join(data))
                    data, held = [], 0
                continue
            if first:
                line = line.removeprefix("\ufeff")  # a byte order mark, which the format allows
            name, _, value = line.partition(":")
            if first and name not in SSE_FIELDS | {""}:
                raise WireError(*self.describe())
            first = False
            if not name:
                yield Event(None)
            elif name == "data":
                data.append(value[1:] if value.startswith(" ") else value)
                held += len(raw_line)
                if held > self.max_event_bytes:
                    raise WireError(f"sent an event of more than {self.max_event_bytes} bytes "
                                    f"({setting_hint('server_max_event_bytes')})")
        if data:
            yield Event("\n".join(data), complete=False)

    def describe(self, status: int = 200, content_type: str = "") -> tuple[str, str]:
        """What the body is, when it is not an event stream (read on up to ``HEAD_BYTES``), and the server's
        text to quote, as ``WireError`` takes them."""
        for _ in self._pieces:
            if len(self.head) >= HEAD_BYTES:
                break
        text = self.head.decode("utf-8", errors="replace").strip()
        if not text:
            return f"answered {status} with an empty body, not an event stream", ""
        if "html" in content_type.lower() or text.startswith("<"):
            return ("answered with an HTML page, not an event stream: is the URL the API base (often ending "
                    "in /v1)?"), ""
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            return "answered with something that is not an event stream", text
        if isinstance(document, dict) and document.get("error"):
            return "stopped with an error", error_text(document)
        return "answered with one JSON document, not an event stream", text


def error_text(document: object) -> str:
    """The message in an error document: OpenAI's ``{"error": {"message"}}``, a plain ``{"error"}``,
    ``{"detail"}`` or ``{"message"}``; else the document itself, as text."""
    if isinstance(document, dict):
        error = document.get("error", document.get("detail", document.get("message", document)))
        if isinstance(error, dict) and "message" in error:
            error = error["message"]
        document = error
    return document if isinstance(document, str) else json.dumps(document, default=str)
