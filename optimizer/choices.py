"""The fixed choices the library accepts, shared by every room and the command line.

Each is a :class:`~enum.StrEnum`, so a plain string works wherever a member does
(``objective="gmv"``) and a member prints as its value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Objective",
    "OBJECTIVES",
    "Policy",
    "POLICIES",
    "BASELINES",
    "Solver",
    "SOLVERS",
    "MatchOn",
    "Architecture",
    "ARCHITECTURES",
    "Head",
    "HEADS",
    "Calibration",
    "CALIBRATIONS",
    "STAGES",
    "EngineName",
]


class Objective(StrEnum):
    """What a plan maximises: incremental conversions, incremental GMV or incremental profit."""

    CONVERSIONS = "conversions"
    GMV = "gmv"
    PROFIT = "profit"


class Policy(StrEnum):
    """Who makes a plan: the optimizer, or one of the baselines it is compared with.

    ``optimal``: the solver's personalised plan; ``manual``: operations' RFM ranking with one
    uniform coupon; ``v1``: the article's first model, top P(buy | coupon); ``v2``: its
    second, drop likely natural buyers then top P(buy | coupon); ``uplift``: top P(buy |
    coupon) - P(buy | no coupon); ``random``: the uniform coupon in random order.
    """

    OPTIMAL = "optimal"
    MANUAL = "manual"
    V1 = "v1"
    V2 = "v2"
    UPLIFT = "uplift"
    RANDOM = "random"


class Solver(StrEnum):
    """How the optimal plan is solved.

    ``pulp``: the exact MILP; ``dual``: the decomposition with a certified gap, any size;
    ``auto``: exact up to a few thousand users, the dual above.
    """

    AUTO = "auto"
    PULP = "pulp"
    DUAL = "dual"


class MatchOn(StrEnum):
    """What a matched optimal plan equals its baselines on.

    ``value``: it spends only the least budget at which its expected objective reaches the
    best matched plan's; ``spend``: its budget is the matched plans' expected spend;
    ``spend_conversions``: that budget and at least their expected incremental conversions.
    """

    VALUE = "value"
    SPEND = "spend"
    SPEND_CONVERSIONS = "spend_conversions"


class Architecture(StrEnum):
    """How the two probabilities are modelled.

    ``shared_trunk``: one network with a treatment input (measured better); ``two_models``:
    the article's, one network per question; ``t_learner``, ``s_learner``, ``x_learner``,
    ``dr_learner``: gradient-boosted meta-learners (LightGBM,
    :class:`~optimizer.models.boosted.BoostedConversionModel`).
    """

    SHARED_TRUNK = "shared_trunk"
    TWO_MODELS = "two_models"
    T_LEARNER = "t_learner"
    S_LEARNER = "s_learner"
    X_LEARNER = "x_learner"
    DR_LEARNER = "dr_learner"


class Head(StrEnum):
    """The coupon model's output head.

    ``shared``: monotone in face value and threshold, scores denominations never sent;
    ``per_denomination``: one output per trained denomination.
    """

    SHARED = "shared"
    PER_DENOMINATION = "per_denomination"


class Calibration(StrEnum):
    """How probabilities are calibrated on the validation rows: Platt, isotonic or none."""

    PLATT = "platt"
    ISOTONIC = "isotonic"
    NONE = "none"


#: What a plan can maximise.
OBJECTIVES: tuple[str, ...] = tuple(o.value for o in Objective)
#: Every policy, the optimal one first.
POLICIES: tuple[str, ...] = tuple(p.value for p in Policy)
#: The policies the optimal plan is compared with.
BASELINES: tuple[str, ...] = POLICIES[1:]
#: The solvers of the optimal plan.
SOLVERS: tuple[str, ...] = tuple(s.value for s in Solver)
#: How the two probabilities can be modelled.
ARCHITECTURES: tuple[str, ...] = tuple(a.value for a in Architecture)
#: The coupon model's heads.
HEADS: tuple[str, ...] = tuple(h.value for h in Head)
#: The calibrations of probabilities.
CALIBRATIONS: tuple[str, ...] = tuple(c.value for c in Calibration)
#: Lifecycle stages, in order of growing recency (cut by :mod:`optimizer.segments`).
STAGES: tuple[str, ...] = ("active", "cooling", "lapsed", "dormant")


class EngineName(StrEnum):
    """Where scores and plans are computed (the configuration's ``engine.name``).

    ``memory``: every user in memory; ``stream``: chunks streamed from Parquet, memory bounded;
    ``spark``: Spark jobs (``pip install couponopt[spark]``).
    """

    MEMORY = "memory"
    STREAM = "stream"
    SPARK = "spark"
