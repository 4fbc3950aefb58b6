"""How good the scores are.

Metrics as plain functions, model evaluation on held-out rows, population drift, the
article's figures, and the offline value of plans on a randomized log (IPW, self-normalised
IPW, cross-fitted doubly robust, with influence-function and bootstrap intervals).

Metrics follow scikit-uplift's conventions (``(y_true, uplift, treatment)``), so their names and
arguments are the ones uplift practitioners know.
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
