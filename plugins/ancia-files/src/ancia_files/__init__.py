"""Search and read the files of the notebook's folder: an ancia-jupyter plugin (``files.search``, ``files.read``).

The model can look for a file by name or by what it says, then read the part it needs, without any network
and without leaving the folder the kernel runs in (``folder.py`` says how). Every search is bounded: files
looked at, bytes read per file and in all, results, and seconds; what was left out is counted and named,
so the model can tell the user why a file is not there.
"""

from __future__ import annotations

import time
from typing import Any

from .folder import Skipped, decode, inside, is_binary, read_head, root, walk

__version__ = "1.0.0"

MAX_FILES = 5_000  # files looked at by one search
MAX_FILE_BYTES = 2_000_000  # a bigger file is matched by its name only: its text is not read
MAX_READ_BYTES = 256_000  # read from the start of each file a search looks into
MAX_TOTAL_BYTES = 32_000_000  # read by one search in all
MAX_SECONDS = 10.0  # one search's time
MAX_RESULTS = 100
MAX_LINE_CHARS = 200  # of each matching line
MAX_READ_LINES = 400
MAX_READ_CHARS = 12_000  # of text returned by one read


def search(query: str, folder: str = ".", max_results: int = 20, case_sensitive: bool = False) -> dict[str, Any]:
    """Find files in the notebook's folder whose name or text contains the query. Hidden files, binary
    files and files over 2 MB are not searched; results name the file and the line number.

    Args:
        query: The text to look for, in file names and in the files' lines.
        folder: A sub-folder to search, relative to the notebook's folder (default: all of it).
        max_results: The most matches to return (1 to 100).
        case_sensitive: Whether upper and lower case must match.
    """
    if not isinstance(query, str) or not query.strip() or len(query) > 500:
        raise ValueError("The query is the text to look for: 1 to 500 characters.")
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
        raise ValueError(f"max_results is a whole number from 1 to {MAX_RESULTS}.")
    base = root()
    start = inside(base, folder)
    if not start.is_dir():
        raise ValueError(f"{folder!r} is not a folder inside the notebook's folder.")
    needle = query if case_sensitive else query.casefold()
    skipped = Skipped()
    matches: list[dict[str, Any]] = []
    scanned = read = 0
    stopped = None
    began = time.monotonic()
    for relative, path, size in walk(base, start, skipped):
        if scanned >= MAX_FILES or read >= MAX_TOTAL_BYTES or time.monotonic() - began > MAX_SECONDS:
            stopped = (f"stopped after {scanned} files ({read // 1_000_000} MB, "
                       f"{time.monotonic() - began:.0f} s): search a sub-folder to go further")
            break
        scanned += 1
        name = relative.rsplit("/", 1)[-1]
        if needle in (name if case_sensitive else name.casefold()):
            matches.append({"path": relative, "line": None, "text": "(the file's name)"})
        if size > MAX_FILE_BYTES:
            skipped.too_big += 1
            continue
        try:
            head = read_head(path, MAX_READ_BYTES)
        except OSError:
            skipped.unreadable += 1
            continue
        read += len(head)
        if is_binary(head):
            skipped.binary += 1
            continue
        for number, line in enumerate(decode(head).splitlines(), 1):
            if needle in (line if case_sensitive else line.casefold()):
                text = line.strip()
                matches.append({"path": relative, "line": number,
                                "text": text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + "…"})
                if len(matches) > max_results:
                    break
        if len(matches) > max_results:
            break
    more = len(matches) > max_results
    counts = {k: v for k, v in vars(skipped).items() if k != "names" and v}
    return {"folder": start.relative_to(base).as_posix(), "query": query, "matches": matches[:max_results],
            "more_matches": more, "files_searched": scanned, "skipped": counts,
            "skipped_examples": skipped.names,
            "note": stopped or ("there are more matches: use a longer query or a sub-folder" if more else None)}


def read(path: str, start_line: int = 1, max_lines: int = 200) -> str:
    """Read lines of a text file in the notebook's folder, numbered.

    Args:
        path: The file, relative to the notebook's folder (as files.search gives it).
        start_line: The first line to read (1 is the first line of the file).
        max_lines: How many lines to read (1 to 400).
    """
    for name, value, high in (("start_line", start_line, 10**9), ("max_lines", max_lines, MAX_READ_LINES)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ValueError(f"{name} is a whole number from 1 to {high}.")
    target = inside(root(), path)
    if not target.is_file():
        raise ValueError(f"{path!r} is not a file in the notebook's folder; files.search finds files.")
    size = target.stat().st_size
    head = read_head(target, MAX_FILE_BYTES)
    if is_binary(head):
        raise ValueError(f"{path!r} is a binary file ({size} bytes), not text.")
    lines = decode(head).splitlines()
    chosen = lines[start_line - 1:start_line - 1 + max_lines]
    if not chosen:
        raise ValueError(f"{path!r} has {len(lines)} lines; start_line {start_line} is past its end.")
    out, used = [], 0
    for number, line in enumerate(chosen, start_line):
        row = f"{number:>5}  {line[:1000]}"
        if used + len(row) > MAX_READ_CHARS:
            break
        out.append(row)
        used += len(row) + 1
    last = start_line + len(out) - 1
    whole = "" if size <= MAX_FILE_BYTES else f" (only its first {MAX_FILE_BYTES} bytes are read)"
    more = f"; read on with start_line={last + 1}" if last < len(lines) else ""
    return f"{path}: lines {start_line}-{last} of {len(lines)}{whole}{more}\n" + "\n".join(out)


def register(registry: Any) -> None:
    """Called by ancia-jupyter when the plugin loads: the tools work offline and need no approval."""
    registry.register(search, name="files.search")
    registry.register(read, name="files.read")
