"""The manual: README.md is a short front page, docs/ holds the rest, and mkdocs builds it strictly.

Fast and offline: one `mkdocs build --strict` into a temporary folder, the rest reads files.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from markdown.extensions.toc import slugify

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
MKDOCS_YML = ROOT / "mkdocs.yml"
DOCS = ROOT / "docs"
README_MAX_BYTES = 8000

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target "title") and ![alt](target), then reference definitions `[id]: target`
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def _prose(markdown_text: str) -> str:
    """The text outside fenced code blocks and code spans (links there are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", markdown_text))


def relative_links(markdown_text: str) -> list[str]:
    """Every link target in the text that is neither external nor a bare #anchor."""
    text = _prose(markdown_text)
    targets = _INLINE_LINK.findall(text) + _REFERENCE.findall(text)
    return [t for t in targets if not _EXTERNAL.match(t) and not t.startswith("#")]


def heading_anchors(markdown_text: str) -> set[str]:
    """The ids mkdocs gives the headings (Python-Markdown's toc slugify)."""
    anchors = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown_text)):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        anchors.add(slugify(plain, "-"))
    return anchors


def broken_links(page: Path) -> list[str]:
    """The relative links of a Markdown page whose file (or heading anchor) does not exist."""
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path_part, _, anchor = unquote(target).partition("#")
        resolved = (page.parent / path_part).resolve()
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
            continue
        anchors = heading_anchors(resolved.read_text(encoding="utf-8")) if resolved.suffix == ".md" else None
        if anchor and anchors is not None and anchor not in anchors:
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    return broken


def nav_pages(nav: object) -> list[str]:
    """The page paths of an mkdocs nav (strings, {title: page} and {title: [section...]})."""
    if isinstance(nav, str):
        return [] if _EXTERNAL.match(nav) else [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    raise TypeError(f"unexpected nav entry {nav!r}")


def _mkdocs_config() -> dict[str, object]:
    config = yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))
    assert isinstance(config, dict), "mkdocs.yml is not a mapping"
    return config


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (site / "index.html").is_file()


def test_readme_relative_links_exist() -> None:
    links = relative_links(README.read_text(encoding="utf-8"))
    assert any(link.startswith("docs/") for link in links), "README.md links to no page under docs/"
    assert broken_links(README) == []


def test_every_docs_page_is_in_nav() -> None:
    config = _mkdocs_config()
    docs_dir = ROOT / str(config.get("docs_dir", "docs"))
    listed = nav_pages(config.get("nav"))
    pages = sorted(p.relative_to(docs_dir).as_posix() for p in docs_dir.rglob("*.md"))
    assert pages, f"no pages under {docs_dir}"
    assert sorted(set(pages) - set(listed)) == [], "pages under docs/ missing from mkdocs.yml's nav"
    assert sorted(set(listed) - set(pages)) == [], "nav entries with no page under docs/"
    assert len(listed) == len(set(listed)), "a page is listed twice in nav"


def test_readme_stays_a_front_page() -> None:
    """What a reader sees: the figure markers (HTML comments, never rendered) do not count."""
    size = len(re.sub(r"<!--.*?-->", "", README.read_text(encoding="utf-8"), flags=re.S).encode())
    assert size < README_MAX_BYTES, (
        f"README.md shows {size} bytes (limit {README_MAX_BYTES}): move the detail into docs/ and link it"
    )


# The checkers themselves, on made-up input, so that a checker that finds nothing cannot pass silently.


def test_broken_links_finds_missing_file_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Some `code` heading\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/page.md) [ok](docs/page.md#some-code-heading) [web](https://example.org/x.md)\n"
        "[gone](docs/gone.md) [bad anchor](docs/page.md#nope) `[in code](docs/none.md)`\n"
        "```\n[in a block](docs/none.md)\n```\n[ref]: docs/missing.md\n",
        encoding="utf-8",
    )
    found = broken_links(readme)
    assert [f.split(":")[0] for f in found] == ["docs/gone.md", "docs/page.md#nope", "docs/missing.md"]


def test_nav_pages_flattens_sections() -> None:
    nav = ["index.md", {"Guide": ["a.md", {"B": "b/b.md"}]}, {"Ext": "https://example.org"}]
    assert nav_pages(nav) == ["index.md", "a.md", "b/b.md"]
    with pytest.raises(TypeError):
        nav_pages([3])
