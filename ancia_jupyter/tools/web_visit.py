"""``web.visit.website``: fetch a web page and give the model its article text.

The model chooses the URL, and a model can be talked into anything by the pages it reads, so the fetch
is treated as hostile: only http(s); every host is resolved and every address checked (loopback, private,
link-local, multicast, reserved, cloud metadata are refused unless the setting ``allow_private_network``
is on); redirects are followed by hand and each hop checked again; the connection goes to the address
that was checked (the URL is rewritten to the IP, with Host and TLS SNI set to the name), so a DNS answer
that changes between check and connect (rebinding) cannot redirect it. Size is bounded, and time by one
deadline for the whole fetch (``http_deadline``), cut short when the tool call is given up. What was
fetched becomes text in ``page_text``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..errors import ToolError
from ..http_deadline import Deadline, client
from .calling import current as current_call
from .page_text import Page, extract

MAX_BYTES = 2_000_000  # body size cap, after decompression
MAX_REDIRECTS = 5
TIMEOUT = 10.0  # seconds for the whole fetch
USER_AGENT = "Mozilla/5.0 (compatible; ancia-jupyter; +https://pypi.org/project/ancia-jupyter/)"
METADATA_IPS = {"169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"}
METADATA_HOSTS = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                  "instance-data.ec2.internal"}


class VisitRefused(ToolError):
    """A URL that must not be fetched; nothing was sent."""


def is_forbidden_ip(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address must not be reached from the kernel (``None``: a public address)."""
    addr = ipaddress.ip_address(str(ip).split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is None and addr in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None:
            return is_forbidden_ip(embedded)
    checks = [("cloud metadata", str(addr) in METADATA_IPS), ("loopback", addr.is_loopback),
              ("unspecified", addr.is_unspecified), ("link-local", addr.is_link_local),
              ("multicast", addr.is_multicast), ("reserved", addr.is_reserved), ("private", addr.is_private)]
    for reason, hit in checks:
        if hit:
            return reason
    return None if addr.is_global else "non-public"


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IP literals come back as themselves)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ToolError(f"could not resolve {host!r}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class Hop:
    """One checked request target: where to connect, and the name to present."""

    url: str  # the URL as asked
    scheme: str
    host: str  # IDNA name (or IP literal) for Host and SNI
    port: int
    ip: str  # the checked address the connection goes to
    target: str  # path and query

    @property
    def connect_url(self) -> str:
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.scheme}://{ip}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def check_hop(url: str, allow_private: bool, resolver: Callable[[str, int], list[str]] | None = None) -> Hop:
    """Check one URL before anything is sent to it; ``VisitRefused`` says why it may not be fetched."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise VisitRefused("refused: only http and https URLs can be visited "
                           f"(got {scheme or 'no scheme'!r})")
    try:
        host = (parts.hostname or "").rstrip(".")
        if host and not re.fullmatch(r"[\w.:-]+", host, re.ASCII):
            host = host.encode("idna").decode("ascii")
        port = parts.port or (443 if scheme == "https" else 80)
    except (ValueError, UnicodeError) as exc:
        raise VisitRefused(f"refused: the URL's host or port is not valid ({exc})") from None
    if not host:
        raise VisitRefused("refused: the URL has no host")
    hint = " (the setting allow_private_network allows it)"
    if not allow_private and host.lower() in METADATA_HOSTS:
        raise VisitRefused(f"refused: {host} is a cloud metadata service{hint}")
    ips = (resolver or resolve)(host, port)
    if not ips:
        raise ToolError(f"could not resolve {host!r}")
    if not allow_private:
        for ip in ips:
            reason = is_forbidden_ip(ip)
            if reason:
                raise VisitRefused(f"refused: {host} is a {reason} address ({ip}){hint}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Hop(url=url, scheme=scheme, host=host, port=port, ip=ips[0], target=target)


def fetch(url: str, *, allow_private: bool, max_bytes: int | None = None, timeout: float | None = None,
          resolver: Callable[[str, int], list[str]] | None = None,
          cancel: threading.Event | None = None) -> Page:
    """GET ``url`` with every hop checked and pinned, at most ``max_bytes``, all of it (connect, headers,
    body, redirects) within ``timeout`` seconds; setting ``cancel`` ends it at once."""
    import httpx

    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    timeout = TIMEOUT if timeout is None else timeout
    headers = {"User-Agent": USER_AGENT,
               "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"}
    current = url
    with Deadline(timeout, cancel) as deadline, \
            client(deadline, trust_env=False, follow_redirects=False) as http:
        def out_of_time() -> ToolError:
            if deadline.cancel.is_set():
                return ToolError(f"stopped fetching {current}: the tool call was cancelled")
            return ToolError(f"timed out after {timeout:.2g} s fetching {current}")

        for _ in range(MAX_REDIRECTS + 1):
            hop = check_hop(current, allow_private, resolver)
            sni = {"sni_hostname": hop.host} if hop.scheme == "https" else {}
            request = http.build_request("GET", hop.connect_url,
                                         headers={**headers, "Host": hop.host_header}, extensions=sni)
            try:
                response = http.send(request, stream=True)
            except httpx.HTTPError as exc:
                if deadline.ran_out(exc):
                    raise out_of_time() from None
                raise ToolError(f"could not fetch {current}: {exc}") from None
            try:
                if response.is_redirect and response.headers.get("location"):
                    current = urljoin(current, response.headers["location"])
                    continue
                if response.status_code >= 400:
                    raise ToolError(f"{current} answered {response.status_code} {response.reason_phrase}")
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > max_bytes:
                    raise ToolError(f"refused: the page is {int(length)} bytes, more than {max_bytes}")
                body = bytearray()
                try:
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise ToolError(f"refused: the page is more than {max_bytes} bytes")
                        deadline.left()
                except (httpx.HTTPError, TimeoutError) as exc:
                    if deadline.ran_out(exc):
                        raise out_of_time() from None
                    raise ToolError(f"could not read {current}: {exc}") from None
                content_type = response.headers.get("content-type", "")
                return Page(current, content_type.split(";")[0].strip().lower(), response.charset_encoding,
                            bytes(body))
            finally:
                response.close()
    raise ToolError(f"too many redirects (more than {MAX_REDIRECTS}) from {url}")


def visit_website(url: str, max_chars: int = 8000) -> str:
    """Open a web page and read its main text (the article, without menus and ads).

    Args:
        url: The http or https address of the page.
        max_chars: At most this many characters of text are returned (500 to 20000).
    """
    if not 500 <= max_chars <= 20_000:
        raise ToolError(f"max_chars must be between 500 and 20000 (got {max_chars}).")
    context = current_call()
    left = TIMEOUT if context.deadline is None else max(context.deadline - time.monotonic(), 0.0)
    try:  # the call's own limit can be the tighter one, and its thread cannot be killed: both bound the fetch
        page = fetch(url, allow_private=bool(context.settings()["allow_private_network"]),
                     timeout=min(TIMEOUT, left), cancel=context.cancelled)
    except ToolError as exc:
        if left < TIMEOUT and str(exc).startswith("timed out"):
            raise ToolError(f"{exc} (the setting tool_timeout)") from None
        raise
    title, text = extract(page)
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] + f"\n[… cut at {max_chars} of {len(text)} characters]"
    head = f"# {title}\n" if title else ""
    return f"{head}URL: {page.url}\n\n{text or '(no text found)'}"


def register(registry: Any) -> None:
    registry.register(visit_website, name="web.visit.website", network=True)
