"""What a server model's URL may be: the checks shared by registering one and loading it (no httpx here,
so registering stays cheap)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1, localhost): what offline mode allows."""
    try:
        host = urlsplit(url).hostname or ""
    except (TypeError, ValueError):
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def credentials_error(url: str) -> str | None:
    """Why a server URL holding a user name or password is refused, in one line that does not show them; None
    if it holds none. A password in a URL ends up in the store and in messages: the key belongs in an
    environment variable, named by ``api_key_env``."""
    try:
        parts = urlsplit(url.strip())
        if parts.username is None and parts.password is None:
            return None
        host = parts.hostname or "the server"
    except (AttributeError, ValueError):
        return None  # not a URL at all: the check that follows says so
    return (f"The URL of {host} holds a user name or password, which is never stored: give the URL without "
            "it, and put the key in an environment variable named by api_key_env=....")


def base_url(url: str) -> str:
    """The API base a server model is loaded from, or ``ValueError`` with the one line that says why not."""
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except (AttributeError, ValueError):  # not a string, an unclosed [ipv6], a port that is not a number
        ok = False
    refused = credentials_error(url) if ok else None
    if refused:
        raise ValueError(refused)
    if not ok:
        raise ValueError(f"{url!r} is not a server URL: give the API base, such as http://127.0.0.1:8080/v1.")
    return url.strip().rstrip("/")
