"""couponopt's simulator: a synthetic customer world with ground truth, and A/B tests on it.

The rooms (each sub-package's ``__init__`` is its own public API):

* :mod:`simulator.scenario`: a scenario file, a campaign configuration plus a world;
* :mod:`simulator.world`: the population, its true response, the campaign log, generation;
* :mod:`simulator.experiment`: the discrete-event campaign engine (SimPy), its per-user
  reference, replicated A/B tests;
* :mod:`simulator.workflows`: end to end on a scenario: the model cache, what-if grids, the
  HTML report.

The most used names are importable from here (``__init__.pyi`` lists them); they load on
first use.
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
