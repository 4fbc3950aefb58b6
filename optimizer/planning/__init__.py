"""From a campaign configuration and scores to checked plans.

A :class:`CampaignConfig` (menu, costs, budget, manual practice, targeting, constraints,
what-if grid) and the overrides of one run resolve once into a :class:`PlanningRequest`
(:func:`resolve_request`); :func:`plan_campaign` plans its policies on the scored candidates,
the optimal one and the baselines it is compared with, each a checked :class:`Plan`;
:func:`plan_grid` plans a what-if grid of budgets, menus, costs and segments.
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
