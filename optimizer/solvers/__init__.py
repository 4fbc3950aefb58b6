"""The campaign as an optimisation problem, and the algorithms that solve it.

A :class:`CampaignProblem` holds each user's value and expected cost per coupon; every business
constraint is a linear row over the choices (:mod:`.constraints`). The solvers: the hull greedy
(exact LP bound under the budget alone, :mod:`.hull`), the bracketed budget solve for millions
of users (:mod:`.budget`), the Lagrangian dual with a certified gap for every constraint kind
(:mod:`.dual`), both streamed over chunks of users for more users than memory holds
(:mod:`.streaming`, :mod:`.streamed_dual`), and the exact MILP in PuLP/HiGHS (:mod:`.milp`).
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
