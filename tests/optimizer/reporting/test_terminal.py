"""The terminal's progress context prints library notices as one plain line."""

from __future__ import annotations

import io
import warnings

from rich.console import Console

from optimizer.errors import Notice
from optimizer.reporting.terminal import progress_bars


def test_a_notice_is_one_note_line_with_its_text_kept_verbatim():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with progress_bars(console):
        warnings.warn(
            "cached models unusable ([bold]x[/bold].pt); retraining", Notice, stacklevel=1
        )
    assert out.getvalue() == "note: cached models unusable ([bold]x[/bold].pt); retraining\n"
    with warnings.catch_warnings(record=True) as caught:  # other warnings pass through
        warnings.simplefilter("always")
        with progress_bars(console):
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]
