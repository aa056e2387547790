"""What a user may give to add an MCP server, checked before anything is stored, and resolved when it starts.

Secrets never reach the store: what a server is given from the kernel's environment is written as a
reference, ``env={"GITHUB_TOKEN": "$GITHUB_TOKEN"}`` (or ``"${NAME}"``), and the value is read from the
kernel's environment only when the server starts. A literal value is refused, and so are the obvious places a
secret could slip into a command or a URL (``--token abc``, ``ghp_…``, ``https://user:pass@host``).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidValueError
from ..runtimes.server_url import credentials_error, is_loopback_url

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
VAR = r"[A-Za-z_][A-Za-z0-9_]*"
REFERENCE_RE = re.compile(rf"^\$(?:\{{({VAR})\}}|({VAR}))$")
REFERENCE_IN_TEXT = re.compile(rf"\$(?:\{{({VAR})\}}|({VAR}))")
HEADER_VALUE_RE = re.compile(rf"^(?:(?:Bearer|Basic|Token|token|Bot) )?\$(?:\{{({VAR})\}}|({VAR}))$")
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
_SECRET_FLAG = re.compile(r"^--?[\w-]*(token|secret|passw|pwd|api[-_]?key|access[-_]?key|private[-_]?key|"
                          r"credential)[\w-]*$", re.IGNORECASE)
_SECRET_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])(?:(?:ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|sk-|xox[abpr]-|AIza)"
                           r"[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16})")
_PATH = re.compile(r"^(/|~|\.{1,2}/)")  # a key *file* is not a secret: --private-key ./id.pem
HOW = ('write a reference to a variable of the kernel\'s environment instead, such as {"GITHUB_TOKEN": '
       '"$GITHUB_TOKEN"}: its value is read when the server starts and never stored')


@dataclass(frozen=True)
class Launch:
    """How to start one server, references replaced by their values (kept in memory only)."""

    name: str
    kind: str  # "stdio" or "http"
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    trust_env: bool = True  # proxies from the environment: not for a server on this machine
    log_path: Path | None = None  # a stdio server's stderr
    start_timeout: float = 30.0


class MissingVariable(Exception):
    """A referenced environment variable that is not set when the server starts (the message says which)."""


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidValueError(f"MCP server name {name!r} is not allowed: use 1 to 40 letters, digits, '_' "
                                "or '-'.")
    return name


def is_reference(value: object) -> bool:
    return isinstance(value, str) and bool(REFERENCE_RE.match(value))


def _secret_in(text: str) -> bool:
    return bool(_SECRET_SHAPE.search(REFERENCE_IN_TEXT.sub("", text)))


def check_command(command: object) -> list[str]:
    """The program and its arguments: a list of strings, or one string split like a shell would."""
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as exc:
            raise InvalidValueError(f"The command {command!r} cannot be split into words: {exc}.") from None
    if (not isinstance(command, (list, tuple)) or not command
            or not all(isinstance(w, str) and w and "\0" not in w for w in command)):
        raise InvalidValueError("command must be the program and its arguments, a non-empty list of strings, "
                                "such as ['npx', '-y', '@modelcontextprotocol/server-everything'].")
    words = list(command)
    for i, word in enumerate(words):
        flag, eq, value = word.partition("=")
        following = words[i + 1] if i + 1 < len(words) else None
        given = value if eq else following
        after_flag = (_SECRET_FLAG.match(flag if eq else word) and given is not None and not given.startswith("-")
                      and not is_reference(given) and not _PATH.match(given))
        if after_flag or _secret_in(word):  # said by its place, never shown: the output is saved in the notebook
            where = f"after {flag if eq else word}" if after_flag else f"word {i + 1}"
            raise InvalidValueError(f"The command holds what looks like a secret ({where}), and secrets are never "
                                    "stored: write $NAME in its place, NAME being a variable of the kernel's "
                                    "environment; its value is read when the server starts.")
    return words


def check_env(env: object) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise InvalidValueError('env must be a dict such as {"GITHUB_TOKEN": "$GITHUB_TOKEN"}.')
    for key, value in env.items():
        if not isinstance(key, str) or not re.fullmatch(VAR, key):
            raise InvalidValueError(f"env key {key!r} is not an environment variable name.")
        if not is_reference(value):
            raise InvalidValueError(f"env[{key!r}] is a value, and values are never stored: {HOW}.")
    return dict(env)


def check_headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidValueError('headers must be a dict such as {"Authorization": "Bearer $API_TOKEN"}.')
    for key, value in headers.items():
        if not isinstance(key, str) or not HEADER_NAME_RE.match(key):
            raise InvalidValueError(f"{key!r} is not an HTTP header name.")
        if not isinstance(value, str) or not HEADER_VALUE_RE.match(value):
            raise InvalidValueError(f"headers[{key!r}] must be a reference such as \"Bearer $API_TOKEN\" or "
                                    "\"$API_TOKEN\", read from the kernel's environment when the server starts: "
                                    "header values are never stored.")
    return dict(headers)


def check_url(url: object) -> str:
    try:
        parts = urlsplit(url.strip()) if isinstance(url, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        ok = ok and parts is not None and (parts.port or 0) >= 0
    except ValueError:
        ok = False
    if not ok:
        raise InvalidValueError(f"{url!r} is not an MCP server URL: give its streamable-HTTP endpoint, such as "
                                "http://127.0.0.1:8000/mcp.")
    assert isinstance(url, str)
    refused = credentials_error(url)
    if refused:
        raise InvalidValueError(refused.replace("api_key_env=...", 'headers={"Authorization": "Bearer $NAME"}'))
    if _secret_in(url):
        raise InvalidValueError('The URL holds what looks like a secret, and secrets are never stored: pass it as '
                                'headers={"Authorization": "Bearer $NAME"}, NAME being a variable of the kernel\'s '
                                "environment.")
    return url.strip()


def server_fields(command: object, url: object, env: object, headers: object) -> dict[str, Any]:
    """The store's fields for a server, every part checked: one clear line for the first thing wrong."""
    if (command is None) == (url is None):
        raise InvalidValueError("Give either command=[...] (a server the kernel starts, over stdio) or url=... "
                                "(a streamable-HTTP server), not both.")
    if isinstance(command, str) and command.strip().startswith(("http://", "https://")):
        raise InvalidValueError(f"{command!r} is a URL: add a streamable-HTTP server with url=..., as in "
                                f"ancia.mcp.add(name, url={command.strip()!r}).")
    if command is not None:
        if headers:
            raise InvalidValueError("headers are for a server at a URL; a command's server takes env={...}.")
        return {"kind": "stdio", "command": check_command(command), "url": None, "env": check_env(env),
                "headers": {}}
    if env:
        raise InvalidValueError("env is for a server the kernel starts (command=...); a URL's server takes "
                                "headers={...}.")
    return {"kind": "http", "command": None, "url": check_url(url), "env": {}, "headers": check_headers(headers)}


def _value(name: str, environ: Mapping[str, str], where: str) -> str:
    if name not in environ:
        raise MissingVariable(f"the environment variable {name} ({where}) is not set in the kernel's "
                              "environment")
    return environ[name]


def _expand(text: str, environ: Mapping[str, str], where: str) -> str:
    return REFERENCE_IN_TEXT.sub(lambda m: _value(m.group(1) or m.group(2), environ, where), text)


def resolve(row: Mapping[str, Any], log_dir: Path, start_timeout: float,
            environ: Mapping[str, str] | None = None) -> Launch:
    """How a server starts now: references replaced by the kernel's values (kept in memory only);
    ``MissingVariable`` names a reference that is not set."""
    environ = os.environ if environ is None else environ
    command = [_expand(w, environ, "in the command") if i else w for i, w in enumerate(row.get("command") or [])]
    env = {k: _expand(v, environ, f"env {k}") for k, v in (row.get("env") or {}).items()}
    headers = {k: _expand(v, environ, f"header {k}") for k, v in (row.get("headers") or {}).items()}
    return Launch(name=row["name"], kind=row["kind"], command=tuple(command), env=env, url=row.get("url"),
                  headers=headers, trust_env=not is_loopback_url(row.get("url") or ""),
                  log_path=log_dir / f"{row['name']}.log", start_timeout=start_timeout)
