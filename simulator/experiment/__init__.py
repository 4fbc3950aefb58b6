"""Campaigns played on the world: the discrete-event engine and replicated A/B tests.

:func:`simulate_campaign` plays one plan on the world's truth (SimPy gateway and budget
monitor, vectorised purchase draws); :func:`simulate_per_user` is its one-process-per-user
reference; :func:`run_experiment` randomises users into policy arms and a holdout and reports
every metric with 95% intervals over replications.
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
