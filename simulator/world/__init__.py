"""The synthetic customer world: a seeded population whose true response is known.

:func:`build_world` makes a world in memory and :func:`write_world` streams one of any size to
disk: users (features), the campaign log (a randomized and a manual past campaign) and the
ground truth (for tests and benchmarks, never for models).
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
