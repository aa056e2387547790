"""What a fetched page says: its text, whatever the server claimed about it.

A body that is really binary (an image, an archive, a program) is refused whatever its content type says;
the charset comes from a byte-order mark, the header or a ``<meta>`` tag, and one Python does not know is
skipped; HTML is reduced to its article (readability), or to all of its text when that finds too little.
``lxml`` and ``readability`` are imported only when a page is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ToolError

TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json", "application/xml", "text/xml")
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class Page:
    """A fetched response: where it ended up (after redirects), what it claims to be, and its bytes."""

    url: str
    content_type: str
    charset: str | None
    body: bytes


_BLOCKS = {"p", "div", "section", "article", "blockquote", "pre", "table", "tr", "ul", "ol", "dl", "figure"}


def html_to_text(html: str) -> str:
    """Readable text from an HTML fragment: paragraphs, headings (``#``) and list items kept apart."""
    import lxml.html

    root = lxml.html.fromstring(html or "<div></div>")
    for el in root.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "br":
            el.tail = "\n" + (el.tail or "")
        elif re.fullmatch(r"h[1-6]", tag):
            el.text = "\n\n" + "#" * int(tag[1]) + " " + (el.text or "")
            el.tail = "\n\n" + (el.tail or "")
        elif tag == "li":
            el.text = "\n- " + (el.text or "")
        elif tag in _BLOCKS or tag in ("td", "th"):
            el.text = ("\n\n" if tag in _BLOCKS else " | ") + (el.text or "")
            if tag in _BLOCKS:
                el.tail = "\n\n" + (el.tail or "")
    lines = [" ".join(line.split()) for line in root.text_content().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


MAGIC = [(b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"),
         (b"GIF89a", "a GIF image"), (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"),
         (b"PK\x05\x06", "a ZIP archive"), (b"\x1f\x8b", "gzip data"), (b"\xfd7zXZ\x00", "xz data"),
         (b"(\xb5/\xfd", "zstd data"), (b"7z\xbc\xaf\x27\x1c", "a 7z archive"), (b"\x7fELF", "a program (ELF)"),
         (b"\xcf\xfa\xed\xfe", "a program (Mach-O)"), (b"\x00asm", "WebAssembly"),
         (b"SQLite format 3\x00", "an SQLite database"), (b"OggS\x00", "Ogg media"), (b"wOFF", "a web font"),
         (b"wOF2", "a web font")]  # short, unambiguous prefixes; other binaries fail the control-byte test
_UNICODE_BOMS = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                 (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]
_CONTROL = bytes(set(range(32)) - set(b"\t\n\v\f\r\x1b"))
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.I)


def sniff_binary(page: Page) -> str | None:
    """What a body really is when it is not text, whatever its content type says (``None``: text)."""
    head = page.body[:1024]
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp" or (head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI ")):
        return "media (video, audio or an image)"
    wide = any(head.startswith(bom) for bom, name in _UNICODE_BOMS if name != "utf-8-sig") or \
        (page.charset or "").lower().startswith(("utf-16", "utf-32"))
    if head and not wide and len(head) - len(head.translate(None, _CONTROL)) > len(head) // 20:
        return "binary data"
    return None


def decode(body: bytes, charset: str | None) -> str:
    """Text of a body: its BOM, the declared charset, a ``<meta>`` one, else UTF-8 or Windows-1252.

    A charset Python does not know (``x-no-such-charset``) is skipped, not raised.
    """
    for bom, name in _UNICODE_BOMS:
        if body.startswith(bom):
            return body.decode(name, "replace")
    for name in (charset, *(m.decode("ascii") for m in _META_CHARSET.findall(body[:4096]))):
        if name:
            try:
                return body.decode(name, "replace")
            except (LookupError, UnicodeError):  # unknown, or not a text encoding ("base64")
                continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def extract(page: Page) -> tuple[str, str]:
    """(title, text) of a fetched page: the article for HTML, the text itself for text types."""
    kind = sniff_binary(page)
    if kind is not None:
        raise ToolError(f"refused: {page.url} is not a web page or text but {kind} "
                        f"(content type {page.content_type or 'none'!r})")
    untyped = not page.content_type
    source = decode(page.body, page.charset)
    if page.content_type in HTML_TYPES or (untyped and source.lstrip("\ufeff \t\r\n").startswith("<")):
        from readability import Document

        source = re.sub(r"^\ufeff?\s*<\?xml[^>]*\?>", "", source)  # lxml refuses a str that declares one
        try:
            document = Document(source)
            title, text = document.short_title(), html_to_text(document.summary(html_partial=True))
        except Exception:  # readability gives up on some pages: fall back to all of the text
            title, text = "", ""
        if len(text) < 40:
            import lxml.html

            root = lxml.html.document_fromstring(source or "<html></html>")
            for junk in root.xpath("//script|//style|//noscript"):
                junk.drop_tree()
            title = title or (root.findtext(".//title") or "").strip()
            body = root.body if root.body is not None else root
            text = html_to_text(lxml.html.tostring(body, encoding="unicode"))
        return title, text
    if untyped or page.content_type.startswith("text/") or page.content_type in TEXT_TYPES:
        return "", source.strip()
    raise ToolError(f"{page.url} is not a web page or text (content type {page.content_type!r})")
