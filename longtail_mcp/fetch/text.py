"""HTML to Markdown for reading: the title and the main content, without scripts, styles and navigation.

`markdownify` does the rendering (headings, lists with their numbers, code blocks, tables, links);
this module decides what is worth rendering and turns the body's bytes into text.
"""

import codecs
import re
from dataclasses import dataclass
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag
from markdownify import ATX, MarkdownConverter

# Never text a reader wants: dropped with everything inside them.
SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object",
                     "embed", "head", "nav", "aside", "footer", "form", "button", "select", "dialog"})
MAIN = ("main", "article")
MAIN_MIN_CHARS = 200  # a <main> or <article> shorter than this is probably a teaser: use the whole body
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_MANY_NEWLINES = re.compile(r"\n{3,}")
_INNER_SPACES = re.compile(r"(?<=\S)  +(?=\S)")
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_LANGUAGE = re.compile(r"^(?:language|lang)-([\w+#.-]+)$")
_LINKED = ("http://", "https://", "mailto:")


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


def _hidden(tag: Tag) -> bool:
    return (tag.has_attr("hidden") or tag.get("aria-hidden") == "true"
            or bool(_DISPLAY_NONE.search(str(tag.get("style") or ""))))


def _code_language(pre: Tag) -> str | None:
    """The language a <pre> (or its <code>) names in a `language-*` class, for the code fence."""
    code = pre.find("code")
    for tag in (pre, code if isinstance(code, Tag) else None):
        for name in tag.get_attribute_list("class") if tag is not None else []:
            if name and (found := _LANGUAGE.match(name)):
                return found.group(1)
    return None


class _Converter(MarkdownConverter):
    """markdownify with our choices: ATX headings, '-' bullets, no escaping of `_` and `*` (the reader is
    usually a model), links made absolute or reduced to their text."""

    def __init__(self, base_url: str | None, links: bool) -> None:
        super().__init__(heading_style=ATX, bullets="-", escape_underscores=False, escape_asterisks=False,
                         code_language_callback=_code_language)
        self.base_url = base_url
        self.links = links

    def _absolute(self, url: str) -> str | None:
        url = url.strip()
        absolute = urljoin(self.base_url, url) if self.base_url else url
        return absolute if absolute.lower().startswith(_LINKED) else None  # no javascript:, data:, #fragment

    def convert_a(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        href = self._absolute(str(el.get("href") or "")) if self.links else None
        inner = text.strip()
        if href is None or not inner or "_noformat" in parent_tags:  # _noformat: inside code
            return text
        lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        return f"{lead}[{inner}]({href}){trail}"

    def convert_img(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        alt = " ".join(str(el.get("alt") or "").split())
        src = self._absolute(str(el.get("src") or "")) if self.links else None
        return f"![{alt}]({src})" if src is not None else alt


def _drop_unread(soup: BeautifulSoup) -> None:
    """Remove what a reader never wants (SKIPPED elements, hidden ones) with everything inside them."""
    for tag in soup.find_all(True):
        if isinstance(tag, Tag) and not tag.decomposed and (tag.name in SKIPPED or _hidden(tag)):
            tag.decompose()


def _tidy(markdown: str) -> str:
    """Trailing spaces gone, runs of spaces inside a line made one (not in code blocks), at most one blank line."""
    lines, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            line = _INNER_SPACES.sub(" ", line)
        lines.append(line.rstrip())
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def _render(converter: _Converter, node: Tag) -> str:
    try:
        return _tidy(converter.convert_soup(node))
    except RecursionError:  # nested deeper than the converter can recurse: the words, without structure
        return _tidy(node.get_text("\n"))


def _title(soup: BeautifulSoup) -> str | None:
    title = soup.find("title")
    for candidate in (title if isinstance(title, Tag) and not title.find_parent("svg") else None, soup.find("h1")):
        if isinstance(candidate, Tag) and (text := " ".join(candidate.get_text().split())):
            return text
    return None


def html_to_markdown(html: str, *, base_url: str | None = None, links: bool = False) -> Page:
    """The page's title (its <title>, else its first <h1>) and its content as Markdown.

    The content of <main> (or <article>) when it has some substance, else of the whole body:
    headings as `#` lines, lists with `-` or their numbers, code blocks fenced, tables as pipe
    tables; scripts, styles, navigation, forms and hidden elements dropped. With `links=True`
    links read `[text](absolute url)` and images `![alt](absolute url)`; else only their text.
    """
    soup = BeautifulSoup(html, "html.parser")
    title = _title(soup)
    _drop_unread(soup)
    converter = _Converter(base_url, links)
    mains = [tag for tag in soup.find_all(MAIN) if isinstance(tag, Tag) and not tag.find_parent(MAIN)]
    main = "\n\n".join(part for tag in mains if (part := _render(converter, tag)))
    if len(main) >= MAIN_MIN_CHARS:
        return Page(title=title, text=main)
    body = soup.find("body")
    return Page(title=title, text=_render(converter, body if isinstance(body, Tag) else soup))
