"""``web.visit.website`` against a real local HTTP server, and every way it refuses to fetch."""

from __future__ import annotations

import gzip
import io
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.errors import ToolError
from ancia_jupyter.tools import web_visit

ARTICLE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Why Otters Hold Hands | Nature Weekly</title>
<style>body { font-family: serif }</style><script>var tracking = "do not show";</script></head>
<body>
<nav class="menu"><a href="/">Home</a> <a href="/news">News</a> <a href="/shop">Shop</a>
<a href="/login">Login</a></nav>
<div class="sidebar"><h3>Trending</h3><ul><li><a href="/a">Ten cats</a></li>
<li><a href="/b">Dog news</a></li></ul></div>
<article class="post-content">
<h1>Why Otters Hold Hands</h1>
<p class="byline">By Jane Rivers — 12 March 2025</p>
<p>Sea otters are famous for floating on their backs in rafts, and for holding paws while they sleep.
This behaviour keeps them from drifting apart on the currents of the open sea during the night.</p>
<p>Researchers at the coastal institute observed more than two hundred otters over three winters. They
found that young otters stay closest to their mothers, and that groups of females rest apart from males.</p>
<h2>Kelp as an anchor</h2>
<p>When no partner is near, an otter will wrap itself in long strands of kelp, which anchors it in place
while it rests. The kelp forests along the coast therefore matter a great deal to the animals' safety.</p>
<ul><li>Otters have the densest fur of any animal.</li><li>They use stones as tools to open shells.</li></ul>
</article>
<footer class="site-footer">© 2025 Nature Weekly. <a href="/privacy">Privacy</a>
<a href="/terms">Terms</a></footer>
</body></html>"""

@pytest.fixture(autouse=True)
def trusted():
    """These tests are about what the tool does once it runs: it is trusted, so no call waits for a yes
    (tests/test_tools_privacy.py is about the asking)."""
    ancia.tools.trust("web.visit.website")



class Server:
    """A threaded HTTP server on 127.0.0.1 that records every request it gets."""

    def __init__(self, routes):
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append((self.path, self.headers.get("Host", "")))
                try:
                    routes.get(self.path, routes["default"])(self)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def send(handler, status=200, body=b"", content_type="text/html; charset=utf-8", headers=None, length=True):
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def trickle(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.end_headers()
    for _ in range(40):
        handler.wfile.write(b"x" * 10_000)
        handler.wfile.flush()


def slow(handler):
    time.sleep(3)
    send(handler, body=b"<p>too late</p>")


ROUTES = {
    "/article": lambda h: send(h, body=ARTICLE.encode()),
    "/notes.txt": lambda h: send(h, body=b"plain notes\nsecond line", content_type="text/plain"),
    "/to-article": lambda h: send(h, 302, headers={"Location": "/article"}),
    "/to-file": lambda h: send(h, 302, headers={"Location": "file:///etc/passwd"}),
    "/to-other-host": None,  # set per test
    "/loop": lambda h: send(h, 302, headers={"Location": "/loop"}),
    "/big": lambda h: send(h, body=b"<p>" + b"y" * 300_000 + b"</p>"),
    "/big-unannounced": trickle,
    "/slow": slow,
    "/image.png": lambda h: send(h, body=b"\x89PNG\r\n\x1a\n" + b"\0" * 100, content_type="image/png"),
    "/missing": lambda h: send(h, 404, body=b"not here"),
    "default": lambda h: send(h, body=b"<p>default</p>"),
}


def zipped(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


LATIN1_PAGE = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'>"
               "<title>Caf\xe9</title></head><body><p>Le caf\xe9 cr\xe8me co\xfbte trois euros, "
               "servi en terrasse.</p></body></html>").encode("latin-1")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


@pytest.fixture
def server():
    routes = dict(ROUTES)
    s = Server(routes)
    s.routes = routes
    yield s
    s.close()


def visit(url, **kwargs):
    return ancia.tools.call("web.visit.website", url=url, **kwargs)


def test_reads_the_article_of_a_real_looking_page(server):
    ancia.settings.update(allow_private_network=True)
    text = visit(f"{server.url}/article")
    assert text.startswith(f"# Why Otters Hold Hands\nURL: {server.url}/article\n\n")
    assert "holding paws while they sleep" in text and "wrap itself in long strands of kelp" in text
    assert "## Kelp as an anchor" in text and "- They use stones as tools to open shells." in text
    for junk in ("Login", "Trending", "Privacy", "tracking", "font-family"):
        assert junk not in text
    assert server.requests == [("/article", f"127.0.0.1:{server.port}")]
    assert visit(f"{server.url}/to-article").startswith(f"# Why Otters Hold Hands\nURL: {server.url}/article")
    assert visit(f"{server.url}/notes.txt") == f"URL: {server.url}/notes.txt\n\nplain notes\nsecond line"
    cut = visit(f"{server.url}/article", max_chars=500)
    assert "[… cut at 500 of" in cut and len(cut) < 700


@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", "only http and https URLs"),
    ("ftp://127.0.0.1/x", "only http and https URLs"),
    ("http://127.0.0.1:{port}/article", "loopback address (127.0.0.1)"),
    ("http://localhost:{port}/article", "loopback address"),
    ("http://[::1]:{port}/article", "loopback address (::1)"),
    ("http://2130706433:{port}/article", "loopback address (127.0.0.1)"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address (169.254.169.254)"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
    ("http://10.0.0.8/", "private address (10.0.0.8)"),
    ("http://[::ffff:192.168.1.1]/", "private address (::ffff:192.168.1.1)"),
])
def test_refuses_schemes_and_addresses_that_are_not_public(server, url, reason):
    with pytest.raises(ToolError, match=reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        visit(url.format(port=server.port))
    assert server.requests == []


def test_every_redirect_hop_is_checked(server):
    ancia.settings.update(allow_private_network=True)
    with pytest.raises(ToolError, match="only http and https URLs"):
        visit(f"{server.url}/to-file")
    with pytest.raises(ToolError, match="too many redirects"):
        visit(f"{server.url}/loop")
    assert len([r for r in server.requests if r[0] == "/loop"]) == web_visit.MAX_REDIRECTS + 1


def test_a_redirect_from_an_allowed_host_to_a_loopback_one_is_refused(server, monkeypatch):
    real = web_visit.is_forbidden_ip
    monkeypatch.setattr(web_visit, "is_forbidden_ip", lambda ip: None if ip == "127.0.0.1" else real(ip))
    server.routes["/to-other-host"] = lambda h: send(h, 302, headers={
        "Location": f"http://127.0.0.2:{server.port}/secret"})
    assert "default" in visit(f"{server.url}/start")  # the first host counts as public here
    with pytest.raises(ToolError, match=r"refused: 127\.0\.0\.2 is a loopback address"):
        visit(f"{server.url}/to-other-host")
    assert [r[0] for r in server.requests] == ["/start", "/to-other-host"]


def test_the_connection_goes_to_the_checked_address(server, monkeypatch):
    """Pinned: the name is resolved once, by the check; the client never resolves it again."""
    ancia.settings.update(allow_private_network=True)
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.9.9.9"]  # a rebinding DNS answer

    monkeypatch.setattr(web_visit, "resolve", resolver)
    text = visit(f"http://otters.example.test:{server.port}/article")
    assert "Why Otters Hold Hands" in text
    assert f"URL: http://otters.example.test:{server.port}/article" in text
    assert lookups == ["otters.example.test"]
    assert server.requests == [("/article", f"otters.example.test:{server.port}")]


def test_size_time_and_content_limits(server, monkeypatch):
    ancia.settings.update(allow_private_network=True)
    monkeypatch.setattr(web_visit, "MAX_BYTES", 100_000)
    with pytest.raises(ToolError, match="the page is 300007 bytes, more than 100000"):
        visit(f"{server.url}/big")
    with pytest.raises(ToolError, match="the page is more than 100000 bytes"):
        visit(f"{server.url}/big-unannounced")
    with pytest.raises(ToolError, match="is not a web page or text"):
        visit(f"{server.url}/image.png")
    with pytest.raises(ToolError, match="answered 404"):
        visit(f"{server.url}/missing")
    monkeypatch.setattr(web_visit, "TIMEOUT", 0.5)
    started = time.perf_counter()
    with pytest.raises(ToolError, match="timed out after 0.5 s"):
        visit(f"{server.url}/slow")
    assert time.perf_counter() - started < 2.5
    with pytest.raises(ToolError, match="max_chars must be between 500 and 20000"):
        visit(f"{server.url}/article", max_chars=10)


def test_the_address_classifier():
    forbidden = {
        "127.0.0.1": "loopback", "127.8.9.10": "loopback", "10.1.2.3": "private", "172.16.0.1": "private",
        "192.168.1.1": "private", "169.254.169.254": "cloud metadata", "169.254.1.1": "link-local",
        "100.100.100.200": "cloud metadata", "224.0.0.1": "multicast", "240.0.0.1": "reserved",
        "0.0.0.0": "unspecified", "100.64.0.1": "non-public", "::1": "loopback", "fe80::1%eth0": "link-local",
        "fc00::1": "private", "fd00:ec2::254": "cloud metadata", "::ffff:127.0.0.1": "loopback",
        "2002:7f00:1::": "loopback", "64:ff9b::a00:1": "private", "ff02::1": "multicast", "::": "unspecified",
    }
    for ip, reason in forbidden.items():
        assert web_visit.is_forbidden_ip(ip) == reason, ip
    for ip in ("8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4007:80e::200e"):
        assert web_visit.is_forbidden_ip(ip) is None, ip


def test_the_hop_check_resolves_and_checks_every_address():
    def resolver(host, port):
        return {"public.test": ["93.184.215.14", "2606:4700:4700::1111"],
                "mixed.test": ["93.184.215.14", "10.0.0.1"]}[host]

    hop = web_visit.check_hop("https://public.test/a/b?q=1#frag", False, resolver)
    assert (hop.ip, hop.port, hop.target) == ("93.184.215.14", 443, "/a/b?q=1")
    assert hop.host_header == "public.test"
    assert hop.connect_url == "https://93.184.215.14:443/a/b?q=1"
    with pytest.raises(web_visit.VisitRefused, match=r"mixed\.test is a private address \(10\.0\.0\.1\)"):
        web_visit.check_hop("http://mixed.test:8080/", False, resolver)
    assert web_visit.check_hop("http://mixed.test:8080/", True, resolver).host_header == "mixed.test:8080"
    idn = web_visit.check_hop("http://bücher.example/", True, lambda host, port: [host and "93.184.215.14"])
    assert idn.host == "xn--bcher-kva.example"
    v6 = web_visit.check_hop("http://[2606:4700:4700::1111]:8443/", False, lambda h, p: [h])
    assert v6.connect_url == "http://[2606:4700:4700::1111]:8443/"
    assert v6.host_header == "[2606:4700:4700::1111]:8443"
    with pytest.raises(web_visit.VisitRefused, match="no host"):
        web_visit.check_hop("http:///path", True, resolver)


def test_an_unknown_charset_falls_back_instead_of_failing(server):
    ancia.settings.update(allow_private_network=True)
    server.routes["/odd.html"] = lambda h: send(h, body=ARTICLE.encode(), content_type="text/html; charset=x-no-such")
    server.routes["/odd.txt"] = lambda h: send(h, body="café crème".encode(), content_type="text/plain; charset=x-nope")
    server.routes["/odd-meta.html"] = lambda h: send(h, body=ARTICLE.replace('charset="utf-8"', 'charset="x-bogus"')
                                                     .replace("—", "–").encode(), content_type="text/html")
    server.routes["/latin1.html"] = lambda h: send(h, body=LATIN1_PAGE, content_type="text/html")
    assert "holding paws while they sleep" in visit(f"{server.url}/odd.html")
    assert visit(f"{server.url}/odd.txt").endswith("\n\ncafé crème")
    assert "Jane Rivers – 12 March" in visit(f"{server.url}/odd-meta.html")
    assert "Le café crème coûte trois euros" in visit(f"{server.url}/latin1.html")


@pytest.mark.parametrize("body, content_type, kind", [
    (PNG, "text/html; charset=utf-8", "a PNG image"),
    (zipped("page.html", ARTICLE), None, "a ZIP archive"),
    (b"<" + PNG, None, "binary data"),  # starts like markup, is not
    (gzip.compress(ARTICLE.encode()), "text/html", "gzip data"),  # compressed, but not announced as such
    (b"%PDF-1.7\n" + bytes(range(200)), "text/plain", "a PDF document"),
    (b"\x7fELF\x02\x01\x01" + bytes(100), "application/json", "a program (ELF)"),
    (bytes(range(256)) * 4, "text/plain", "binary data"),
])
def test_binary_bodies_are_refused_whatever_their_content_type(server, body, content_type, kind):
    ancia.settings.update(allow_private_network=True)
    server.routes["/thing"] = lambda h: send(h, body=body, content_type=content_type)
    with pytest.raises(ToolError, match=re.escape(f"refused: {server.url}/thing is not a web page or text but {kind}")):
        visit(f"{server.url}/thing")


def test_untyped_and_unusual_text_is_still_read(server):
    ancia.settings.update(allow_private_network=True)
    server.routes["/untyped"] = lambda h: send(h, body=ARTICLE.encode(), content_type=None)
    server.routes["/untyped.txt"] = lambda h: send(h, body=b"just some notes\twith a tab", content_type=None)
    server.routes["/utf16.txt"] = lambda h: send(h, body="wide notes, ünïcode".encode("utf-16"),
                                                  content_type="text/plain")
    server.routes["/log.txt"] = lambda h: send(h, body=b"\x1b[31merror\x1b[0m: disk full\r\n" * 20,
                                               content_type="text/plain")
    assert visit(f"{server.url}/untyped").startswith("# Why Otters Hold Hands\n")
    assert visit(f"{server.url}/untyped.txt").endswith("\n\njust some notes\twith a tab")
    assert visit(f"{server.url}/utf16.txt").endswith("\n\nwide notes, ünïcode")
    assert "error\x1b[0m: disk full" in visit(f"{server.url}/log.txt")
