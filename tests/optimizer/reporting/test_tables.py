"""Tables as data: the same TableData rendered in a terminal and in HTML, text never markup."""

from __future__ import annotations

import io
import re

from rich.console import Console

from optimizer.reporting import (
    Cards,
    Column,
    Images,
    Note,
    Section,
    TableData,
    render_page,
    rich_table,
)
from optimizer.reporting.table import best_index, fmt_compact, fmt_interval, fmt_share

NASTY = "[/x] [link=https://example.com]click[/link] <script>alert(1)</script> & co"


def _table() -> TableData:
    table = TableData("Title " + NASTY, [Column("label", "left"), Column("value")])
    table.add_row(NASTY, "1", best=(1,))
    table.add_row("plain", "2")
    table.caption = "caption " + NASTY
    return table


def test_terminal_rendering_shows_text_as_it_is():
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(rich_table(_table()))
    text = buffer.getvalue()
    assert "[/x]" in text and "[link=https://example.com]click[/link]" in text
    assert text.count(NASTY) == 3  # title, cell and caption, unchanged


def test_html_rendering_escapes_everything():
    page = render_page(
        "Report " + NASTY,
        NASTY,
        [
            Section(
                "Part " + NASTY,
                [Note(NASTY), Cards([(NASTY, "1")]), _table(), Images([(NASTY, b"\x89PNG")])],
            )
        ],  # fmt: skip
        footer=NASTY,
    )
    assert "<script>" not in page
    # <title>, <h1>, lead, section, note, card, table title, cell, caption, image alt, footer
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 11
    assert re.search(r'<td class="right best">1</td>', page)  # the highlighted cell
    assert 'src="data:image/png;base64,iVBORw=="' in page


def test_rows_need_one_cell_per_column_and_best_is_the_largest_finite():
    table = TableData("t", [Column("a"), Column("b")])
    try:
        table.add_row("1")
    except ValueError as exc:
        assert "1 cells for 2 columns" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a short row was accepted")
    assert best_index([1.0, float("nan"), 3.0, 2.0]) == 2
    assert best_index([float("nan"), None]) is None
    assert fmt_share(0.1234) == "12.34%" and fmt_share(float("nan")) == "n/a"
    assert fmt_compact(9_999.4) == "9,999" and fmt_compact(20_000) == "20.0k"
    assert fmt_interval(2.5, 1.0, 4.0, "ratio") == "2.50 [1.00, 4.00]"
    assert fmt_interval(1234.0, float("nan"), float("nan"), "count") == "1,234"
