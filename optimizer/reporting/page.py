"""One self-contained HTML page from sections of notes, cards, tables and figures.

The page is rendered by a Jinja2 template with autoescaping on, so no text of the data (a
segment label, a file name) can become markup. Everything is inline: figures are PNGs embedded
as base64 ``data:`` URIs and the style sheet sits in the page, so the file opens anywhere,
offline, and can be mailed as it is.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from optimizer.io.figures import plain_text
from optimizer.reporting.table import TableData

__all__ = ["Note", "Cards", "Images", "Section", "render_page", "figure_png"]


@dataclass
class Note:
    """A paragraph of plain text."""

    text: str
    kind: str = field(default="note", init=False)


@dataclass
class Cards:
    """Headline figures: (label, value) pairs shown large."""

    items: list[tuple[str, str]]
    kind: str = field(default="cards", init=False)


@dataclass
class Images:
    """PNG figures: (alt text, PNG bytes) pairs, laid out in a grid."""

    items: list[tuple[str, bytes]]
    kind: str = field(default="images", init=False)

    def data_uris(self) -> list[tuple[str, str]]:
        """(alt, ``data:image/png;base64,...``) pairs."""
        return [
            (alt, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
            for alt, png in self.items
        ]


@dataclass
class Section:
    """A titled part of the page: notes, cards, tables and images, in order."""

    title: str
    blocks: list[Note | Cards | Images | TableData] = field(default_factory=list)


def figure_png(figure: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    with plain_text():  # labels from users' files are never mathtext
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


_ENV = Environment(
    loader=PackageLoader("optimizer.reporting", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(title: str, lead: str, sections: Sequence[Section], footer: str = "") -> str:
    """The HTML page (a string): title, a lead paragraph, the sections and a footer note."""
    template = _ENV.get_template("report.html.j2")
    return template.render(title=title, lead=lead, sections=list(sections), footer=footer)
