"""The HTML toolkit that every page of the project builds on.

The reviewer report (:mod:`scoring.reporting.report`, with its Scorecard section from
:mod:`scoring.reporting.scorecard_section`), the monitoring page
(:mod:`scoring.reporting.monitoring_page`) and the collections page
(:mod:`scoring.reporting.collections_page`) are each one self-contained HTML file that opens
offline: the style sheet is inline (:data:`CSS`), plots are PNGs embedded as ``data:`` URIs
(:class:`Image`, :func:`figure_png`, :func:`img`), the page may load nothing from outside itself
(:data:`CONTENT_SECURITY_POLICY`), and every piece of text from the data is escaped (:func:`esc`)
before it reaches the page. The helpers here are the shared pieces: the style sheet, escaping,
numbers and percentages as the pages show them, tables, figures and the "nothing to show" line.

Matplotlib is imported only when a plot is drawn (:func:`pyplot`, :func:`figure_png`), so
importing this module stays light.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The page may load nothing: inline style, images only as data: URIs, no scripts, no fetches.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232b;
background:#fafbfc}
header{background:#1f3a5f;color:#fff;padding:18px 28px}header h1{margin:0;font-size:1.5em}
header p{margin:4px 0 0;opacity:.85}
nav{padding:8px 28px;background:#e8edf3;font-size:.9em}nav a{margin-right:14px;color:#1f3a5f}
main{padding:0 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:6px 18px 16px;margin:18px 0}
h2{color:#1f3a5f;border-bottom:2px solid #e8edf3;padding-bottom:4px}h3{margin:18px 0 6px;font-size:1.02em}
table{border-collapse:collapse;margin:8px 0;font-size:.86em}
th,td{border:1px solid #dde3ea;padding:3px 8px;text-align:right}th{background:#f0f3f7}
td:first-child,th:first-child{text-align:left}
table.kv td:first-child{font-weight:600}
table.scroll{display:block;max-height:420px;overflow-y:auto}
.flag{display:inline-block;padding:0 6px;border-radius:3px;font-size:.85em}
.flag.ok{background:#d8f0dc;color:#185c26}.flag.warn{background:#fff1c2;color:#7a5a00}
.flag.bad{background:#f9d2d0;color:#8c1d18}.flag.na{background:#eceff2;color:#555}
.alert{border:2px solid #8c1d18;background:#f9d2d0;color:#8c1d18;padding:8px 12px;margin:12px 0}
.alert ul{margin:4px 0 0 18px}
.figs{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:6px 0}figure img{max-width:100%;border:1px solid #eef1f4}
figcaption{font-size:.82em;color:#555}
.missing{color:#8c1d18;font-style:italic}
h4{margin:14px 0 4px;font-size:.95em}
ul.notes{color:#555;font-size:.9em}
"""
"""The pages' shared style sheet, inlined in each page's ``<style>`` (a page may append its own)."""


@dataclass(frozen=True)
class Image:
    """One embedded plot: a PNG's bytes, a stable name and a caption."""

    name: str
    title: str
    png: bytes

    def __post_init__(self) -> None:
        if not self.png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError(f"image {self.name!r} is not a PNG (expected the PNG signature)")

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (fixed metadata, so equal figures give equal bytes)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def esc(value: Any) -> str:
    """``str(value)`` escaped for HTML text and attribute values (quotes included)."""
    return html.escape(str(value), quote=True)


def num(value: Any, digits: int = 4) -> str:
    """A number as the pages show it: ``n/a`` for None and non-finite values, yes/no for a bool,
    thousands separators for integers (and whole floats from 1,000 up), else ``digits`` decimals;
    anything that is not a number is shown escaped, as text."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if not math.isfinite(number):
        return "n/a"
    if number.is_integer() and abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.{digits}f}"


def pct(value: Any, digits: int = 2) -> str:
    """A share as a percentage with ``digits`` decimals (0.125 -> ``12.50%``); ``n/a`` for None or
    a non-finite value."""
    if value is None:
        return "n/a"
    number = float(value)
    return f"{100.0 * number:.{digits}f}%" if math.isfinite(number) else "n/a"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """An HTML table; cells are trusted HTML (escape them when building the rows)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def img(image: Image) -> str:
    """An embedded plot as a ``<figure>``: the PNG as a ``data:`` URI, its title as alt text and
    caption, its name in ``data-name`` (a stable handle: the tests find plots by it)."""
    return (
        f'<figure><img src="{image.data_uri}" alt="{esc(image.title)}" data-name="{esc(image.name)}">'
        f"<figcaption>{esc(image.title)}</figcaption></figure>"
    )


def missing(what: str) -> str:
    """A line saying plainly what the page has nothing to show for, and why (escaped)."""
    return f'<p class="missing">{esc(what)}</p>'
