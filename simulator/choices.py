"""The fixed choices of a simulated experiment, shared with the command line."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Design", "BudgetMode"]


class Design(StrEnum):
    """How a simulated A/B test assigns users.

    ``split``: users randomised into the arms, as a real test; ``paired``: every policy on the
    whole population with the same per-user draws (common random numbers).
    """

    SPLIT = "split"
    PAIRED = "paired"


class BudgetMode(StrEnum):
    """What the simulated campaign does once its budget is spent.

    ``continue``: nothing changes; ``stop_issuing``: no more messages, coupons already held are
    honoured (redemptions may still overrun); ``stop_honouring``: no more messages and coupons
    are declined at checkout from then on.
    """

    CONTINUE = "continue"
    STOP_ISSUING = "stop_issuing"
    STOP_HONOURING = "stop_honouring"
