"""Results as tables and pages: the same table objects for the terminal and the HTML report.

:class:`TableData` is plain text cells with a title, a caption and highlights; builders turn the
optimizer's results into them (:mod:`.tables`); :func:`render_page` renders sections of notes,
tables and figures as one self-contained HTML page (Jinja2, autoescaped).
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
