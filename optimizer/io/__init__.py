"""Data in and out: the data contract, tables, menus, campaign logs, public datasets, files.

Every table that crosses a file boundary has a documented schema (:mod:`.contract`) and is read
through a loader that checks it and reports any problem as one line naming the file, the
column and the first offending rows (:mod:`.tables`). Every output is written to a temporary
name and renamed into place (:mod:`.atomic`), so nothing half-written is left behind.
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
