"""What the monitoring and collections pages' tests share: parsing a self-contained HTML page
(sections, headings, images, every URL) and rendering it in headless Chromium with an error probe."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image as PILImage

from test_report import render_in_chromium

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Runs before anything else on the page: counts script errors, failed loads (images included) and
# content-security-policy violations, and console.error calls; --dump-dom then shows the count.
ERROR_PROBE = """<script>
(function () {
  var root = document.documentElement, seen = [];
  function note(kind, text) {
    seen.push(kind + ': ' + text);
    root.setAttribute('data-errors', String(seen.length));
    root.setAttribute('data-error-text', seen.join(' | '));
  }
  root.setAttribute('data-errors', '0');
  window.addEventListener('error', function (e) {
    var t = e.target;
    var what = t && t.tagName ? t.tagName + ' ' + String(t.src || t.href || '').slice(0, 60) : '';
    note('error', what || String(e.message));
  }, true);
  document.addEventListener('securitypolicyviolation', function (e) {
    note('csp', e.violatedDirective + ' ' + e.blockedURI);
  });
  var original = console.error;
  console.error = function () {
    note('console', Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
})();
</script>"""


def browse(page: str, workdir: Path) -> tuple[list[str], tuple[int, int], list[str], str]:
    """Sections shown, (images, images decoded), the errors and the DOM, as Chromium saw the page."""
    assert page.count("</head>") == 1
    dom = render_in_chromium(page.replace("</head>", ERROR_PROBE + "</head>", 1), workdir)
    errors = re.search(r'<html[^>]*data-errors="(\d+)"', dom)
    assert errors, f"the error probe did not run; DOM starts {dom[:300]!r}"
    text = re.search(r'data-error-text="([^"]*)"', dom)
    messages = text.group(1).split(" | ") if text else []
    assert len(messages) == int(errors.group(1))
    body = re.search(r'<body[^>]*data-images="(\d+)/(\d+)"[^>]*data-sections="([^"]*)"', dom)
    assert body, f"the probe did not run; DOM starts {dom[:300]!r}"
    return body.group(3).split(), (int(body.group(1)), int(body.group(2))), messages, dom


class Page(HTMLParser):
    """Section ids and headings, images (src and name), every URL-bearing attribute, all tags."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.headings: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(values.get("id") or "")
        if tag == "h2":
            self._in_h2 = True
            self.headings.append("")
        if tag == "img":
            self.images.append((values.get("src") or "", values.get("data-name") or ""))
        for name in ("src", "href", "action", "poster", "data", "srcset", "background"):
            if values.get(name):
                self.urls.append(values[name] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings[-1] += data


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    return parser


def section_html(page: str, sid: str) -> str:
    return page.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def assert_self_contained(page: str) -> None:
    """No script, frame or stylesheet tag, no outside URL: only #anchors and embedded PNGs."""
    parsed = parse(page)
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(parsed.tags)
    assert "url(" not in page and "@import" not in page
    assert not re.search(r"(?i)<script[^>]*\ssrc\s*=", page)
    assert not any(re.match(r"(?i)\s*(https?:)?//", url) for url in parsed.urls)
    assert all(url.startswith(("#", "data:image/png;base64,")) for url in parsed.urls)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(?i)(https?:|ftp:|file:|//[a-z0-9])", text)


def assert_pngs_decode(images: list[tuple[str, str]]) -> None:
    """Every (src, name) image is an embedded PNG that decodes whole and is not tiny."""
    for src, name in images:
        assert src.startswith("data:image/png;base64,"), name
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_SIGNATURE), name
        with PILImage.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            image.load()  # decodes the whole image, not just the header
            assert image.width > 200 and image.height > 150, name
