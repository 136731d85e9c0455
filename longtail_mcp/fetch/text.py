"""HTML to readable text: the title and the main text, without scripts, styles and navigation."""

import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

# Never text a reader wants: dropped with everything inside them.
SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object",
                     "head", "nav", "aside", "footer", "form", "button", "select", "dialog"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                  "wbr"})
BLOCKS = frozenset({"address", "article", "blockquote", "body", "dd", "details", "div", "dl", "dt", "figcaption",
                    "figure", "header", "hr", "li", "main", "ol", "p", "pre", "section", "summary", "table", "tr",
                    "ul", "h1", "h2", "h3", "h4", "h5", "h6", "br", "caption"})
MAIN = frozenset({"main", "article"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
MAIN_MIN_CHARS = 200  # a <main> or <article> shorter than this is probably a teaser: use the whole body


@dataclass(frozen=True)
class Page:
    title: str | None
    text: str


def decode(body: bytes, charset: str | None, *, html: bool = False) -> str:
    """Text of a body: the declared charset, else a <meta charset> (HTML), else UTF-8; bad bytes replaced."""
    candidates = [charset]
    if html and (found := _META_CHARSET.search(body[:2048])):
        candidates.append(found.group(1).decode("ascii"))
    for name in candidates:
        if name:
            try:
                return body.decode(codecs.lookup(name).name, errors="replace")
            except LookupError:
                continue
    return body.decode("utf-8", errors="replace")


class _Reader(HTMLParser):
    def __init__(self, base_url: str | None, links: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.links = links
        self.skip: list[str] = []  # open dropped elements, innermost last
        self.main_depth = 0
        self.pre_depth = 0
        self.title: str | None = None
        self.in_title = False
        self.title_parts: list[str] = []
        self.h1_parts: list[str] | None = None  # the first <h1>, while it is open
        self.h1: str | None = None
        self.all: list[str] = []
        self.main: list[str] = []
        self.href: list[str | None] = []
        self.pending = 0  # line breaks owed before the next text: blocks never stack blank lines

    def brk(self, lines: int) -> None:
        self.pending = max(self.pending, lines)

    def emit(self, text: str) -> None:
        if self.pending:
            if not text.strip():
                return
            text = "\n" * self.pending + text
            self.pending = 0
        self.all.append(text)
        if self.main_depth:
            self.main.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title is None and self.skip in ([], ["head"]):  # not an <svg> <title>
            self.in_title = True
            return
        if tag in VOID:
            if tag in ("br", "hr") and not self.skip:
                self.brk(1)
            return
        hidden = any(k == "hidden" or (k == "aria-hidden" and v == "true") for k, v in attrs)
        if self.skip or tag in SKIPPED or hidden:
            self.skip.append(tag)
            return
        if tag in MAIN:
            self.main_depth += 1
        if tag == "pre":
            self.pre_depth += 1
        if tag in BLOCKS:
            self.brk(2 if tag in ("p", "pre", "blockquote", "table") or tag[0] == "h" else 1)
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.emit("#" * int(tag[1]) + " ")
            if tag == "h1" and self.h1 is None:
                self.h1_parts = []
        elif tag == "li":
            self.emit("- ")
        elif tag in ("td", "th"):
            self.emit(" | ")
        elif tag == "a":
            href = dict(attrs).get("href")
            self.href.append(href if self.links and href and not href.startswith(("javascript:", "#")) else None)
            if self.href[-1]:
                self.emit("[")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            self.title = " ".join("".join(self.title_parts).split()) or None
            return
        if self.skip:
            if tag in self.skip:  # close up to the matching element (browsers tolerate missing end tags)
                while self.skip and self.skip.pop() != tag:
                    pass
            return
        if tag in MAIN and self.main_depth:
            self.main_depth -= 1
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if tag == "a" and self.href:
            href = self.href.pop()
            if href:
                self.emit(f"]({urljoin(self.base_url, href) if self.base_url else href})")
        if tag == "h1" and self.h1_parts is not None:
            self.h1 = " ".join("".join(self.h1_parts).split())
            self.h1_parts = None
        if tag in BLOCKS:
            self.brk(2 if tag in ("p", "pre", "blockquote", "table") or tag[0] == "h" else 1)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.skip:
            return
        if self.h1_parts is not None:
            self.h1_parts.append(data)
        self.emit(data if self.pre_depth else _SPACES.sub(" ", data.replace("\n", " ")))


def _tidy(parts: list[str]) -> str:
    lines = [line.strip() if not line.startswith("    ") else line.rstrip() for line in "".join(parts).split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str, *, base_url: str | None = None, links: bool = False) -> Page:
    """The page's title (its <title>, else its first <h1>) and readable text.

    The text of <main> (or <article>) when it has some substance, else of the whole body; headings
    become `#` lines, list items `- `; with `links=True` links read `[text](absolute url)`.
    """
    reader = _Reader(base_url, links)
    reader.feed(html)
    reader.close()
    main = _tidy(reader.main)
    text = main if len(main) >= MAIN_MIN_CHARS else _tidy(reader.all)
    return Page(title=reader.title or reader.h1 or None, text=text)
