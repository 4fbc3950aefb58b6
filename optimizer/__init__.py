"""couponopt's optimizer: who gets which coupon under a budget, and what it returns.

The public API, by room (each sub-package's ``__init__`` is its own public API):

* :mod:`optimizer.io`: the data contract, tables, menus, campaign logs, datasets, files;
* :mod:`optimizer.models`: the conversion models (PyTorch) and scoring;
* :mod:`optimizer.evaluation`: metrics, model evaluation, drift;
* :mod:`optimizer.solvers`: the optimisation problem and its solvers;
* :mod:`optimizer.planning`: campaign configuration, requests, policies, plans, what-if grids;
* :mod:`optimizer.reporting`: tables and the HTML report.

The most used names are importable from here (``from optimizer import ConversionModels,
plan_campaign``); ``__init__.pyi`` lists them. Every package loads its names on first use, so
importing one costs nothing until a name is needed (PyTorch loads with the models only).
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
