"""Scenario files: the population, coupon menu, costs, campaign and budget of one what-if.

A scenario is TOML validated by pydantic models that forbid unknown keys; every problem is
reported as one line naming the key. ``Scenario()`` *is* the embedded default scenario
(``scenarios/default.toml`` spells it out, and a test keeps the two equal).
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optimizer.constraints import Constraints, SegmentShare
from optimizer.errors import InputError
from optimizer.lifecycle import STAGES
from optimizer.menu import Denomination, Menu
from optimizer.schema import ARCHETYPES
from optimizer.tomlio import read_toml, validation_error_line

__all__ = [
    "StageShares",
    "ArchetypeShares",
    "Population",
    "Costs",
    "Campaign",
    "Budget",
    "Manual",
    "History",
    "Scenario",
    "DEFAULT_MENU",
    "load_scenario",
]

_SHARE_TOLERANCE = 1e-6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Shares(_Strict):
    """Shares in [0, 1] that sum to 1."""

    @model_validator(mode="after")
    def _sum_to_one(self) -> _Shares:
        values = self.model_dump()
        total = sum(values.values())
        if not math.isclose(total, 1.0, abs_tol=_SHARE_TOLERANCE):
            raise ValueError(f"shares sum to {total:g}; expected 1 ({', '.join(values)})")
        return self

    def as_tuple(self) -> tuple[float, ...]:
        """Shares in declaration order."""
        return tuple(self.model_dump().values())


class StageShares(_Shares):
    """Share of the customer base in each lifecycle stage (by days since the last order)."""

    active: float = Field(0.25, ge=0, le=1, description="<= 30 days since last order")
    cooling: float = Field(0.20, ge=0, le=1, description="31-90 days")
    lapsed: float = Field(0.20, ge=0, le=1, description="91-180 days")
    dormant: float = Field(0.35, ge=0, le=1, description="> 180 days")


class ArchetypeShares(_Shares):
    """Share of each uplift archetype in the population."""

    sure_thing: float = Field(0.15, ge=0, le=1, description="buys anyway; a coupon adds ~nothing")
    persuadable: float = Field(0.30, ge=0, le=1, description="buys because of a coupon")
    lost_cause: float = Field(0.50, ge=0, le=1, description="buys neither way")
    sleeping_dog: float = Field(0.05, ge=0, le=1, description="a message makes them buy less")


assert tuple(StageShares.model_fields) == STAGES
assert tuple(ArchetypeShares.model_fields) == ARCHETYPES


class Population(_Strict):
    """The synthetic customer base."""

    users: int = Field(200_000, ge=1, description="number of customers")
    seed: int = Field(20261129, ge=0, description="random seed of the world")
    stages: StageShares = StageShares()
    archetypes: ArchetypeShares = ArchetypeShares()


class Costs(_Strict):
    """Money per message and margin; money in the scenario's currency units."""

    sms_cost: float = Field(0.05, ge=0, description="cost per message sent, currency units")
    margin_rate: float = Field(
        0.30, ge=0, le=1, description="gross margin as a share of GMV, for incremental profit"
    )


class Campaign(_Strict):
    """When and whom the campaign targets."""

    window_days: float = Field(14, gt=0, le=365, description="campaign window, days")
    validity_days: float = Field(
        7, gt=0, le=365, description="coupon validity after delivery, days"
    )
    target_stages: tuple[str, ...] = Field(
        ("dormant",), min_length=1, description="lifecycle stages the campaign targets"
    )

    @field_validator("target_stages")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage {unknown[0]!r}; expected some of {', '.join(STAGES)}")
        if len(set(value)) != len(value):
            raise ValueError("a stage is listed twice")
        return value


class Budget(_Strict):
    """The campaign budget."""

    amount: float = Field(50_000, ge=0, description="campaign budget, currency units")


class Manual(_Strict):
    """What operations do by hand: one uniform denomination to the best RFM scores."""

    denomination: str = Field("10off99", description="the uniform coupon operations send")


class History(_Strict):
    """The past campaigns recorded in the log that models are trained on."""

    randomized_share: float = Field(
        0.30, gt=0, le=1, description="share of all users in the past randomized campaign"
    )
    holdout_share: float = Field(
        0.20, gt=0, lt=1, description="share of randomized-log users assigned no coupon"
    )
    manual_share: float = Field(
        0.50, ge=0, le=1, description="share of target-stage users in the past manual campaign"
    )
    manual_min_rfm: int = Field(
        8, ge=3, le=15, description="manual campaign sent its coupon to RFM score >= this"
    )


DEFAULT_MENU = Menu(
    denomination=(
        Denomination(name="5off49", face_value=5, threshold=49),
        Denomination(name="10off99", face_value=10, threshold=99),
        Denomination(name="20off199", face_value=20, threshold=199),
        Denomination(name="50off399", face_value=50, threshold=399),
    )
)


class SegmentBounds(_Strict):
    """Bounds on one segment's share of the messages sent."""

    min: float = Field(0.0, ge=0, le=1, description="minimum share of messages, 0..1")
    max: float = Field(1.0, ge=0, le=1, description="maximum share of messages, 0..1")

    @model_validator(mode="after")
    def _ordered(self) -> SegmentBounds:
        if self.min > self.max:
            raise ValueError(f"min {self.min:g} exceeds max {self.max:g}")
        return self


class PlanConstraints(_Strict):
    """Business constraints every plan keeps besides the budget (all optional)."""

    max_per_denomination: dict[str, int] = Field(
        default_factory=dict, description="coupon inventory: at most this many of a denomination"
    )
    max_messages: int | None = Field(None, ge=0, description="at most this many messages")
    min_roi: float | None = Field(
        None, ge=0, description="expected incremental GMV / expected cost at least this"
    )
    overrun_risk: float | None = Field(
        None, gt=0, lt=1, description="P(realised spend > budget) at most this"
    )
    segment_column: str = Field(
        "lifecycle_stage", min_length=1, description="user-table column the segments come from"
    )
    exclude_file: str | None = Field(
        None,
        min_length=1,
        description="opted-out users: a table with user_id or a .txt list, relative to the "
        "scenario file",
    )
    segment_shares: dict[str, SegmentBounds] = Field(
        default_factory=dict, description="share of messages per segment label: {min, max}"
    )

    @field_validator("max_per_denomination")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for name, cap in value.items():
            if cap < 0:
                raise ValueError(f"cap of {name} must be >= 0")
        return value

    def to_constraints(self) -> Constraints:
        """The optimizer's :class:`~optimizer.constraints.Constraints` of this section."""
        return Constraints(
            max_per_denomination=dict(self.max_per_denomination) or None,
            max_messages=self.max_messages,
            min_roi=self.min_roi,
            segment_shares=tuple(
                SegmentShare(name, b.min, b.max) for name, b in self.segment_shares.items()
            ),
        )


#: Arms an experiment can have: the optimizer's policies and the untreated holdout.
ARMS: tuple[str, ...] = ("optimal", "manual", "v1", "v2", "uplift", "random", "holdout")


class Simulation(_Strict):
    """The simulated A/B test: gateway, budget behaviour, arms and replications."""

    sms_per_hour: float = Field(
        20_000, gt=0, description="SMS gateway throughput, messages per hour"
    )
    failure_rate: float = Field(0.03, ge=0, lt=1, description="share of messages never delivered")
    view_rate: float = Field(0.6, ge=0, le=1, description="share of delivered coupons viewed")
    on_budget_spent: str = Field(
        "stop_issuing",
        description="continue, stop_issuing (held coupons honoured) or stop_honouring",
    )
    arms: tuple[str, ...] = Field(
        ("optimal", "manual"), min_length=1, description="policy arms besides the holdout"
    )
    holdout_share: float = Field(
        0.1, gt=0, lt=1, description="share of the target users kept untreated"
    )
    replications: int = Field(5, ge=2, le=1000, description="independent repetitions")
    objective: str = Field(
        "conversions", description="what the optimal arm maximises: conversions, gmv or profit"
    )
    match: tuple[str, ...] = Field(
        (),
        description="baseline policies the optimal arm matches: it spends only the least budget "
        "at which its expected objective reaches the best of their plans on its own users",
    )
    match_on: str = Field(
        "value",
        description="value: the least budget reaching the matched plans' expected objective; "
        "spend: the matched plans' expected cost as the optimal arm's budget; "
        "spend_conversions: that budget and at least their expected incremental conversions",
    )
    screen: bool = Field(
        False,
        description="the optimal arm leaves out users above v2's natural-probability cut",
    )
    seed: int = Field(7, ge=0, description="seed of assignment and simulation draws")

    @field_validator("on_budget_spent")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        modes = ("continue", "stop_issuing", "stop_honouring")
        if value not in modes:
            raise ValueError(f"unknown mode {value!r}; expected one of {', '.join(modes)}")
        return value

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        if value not in ("conversions", "gmv", "profit"):
            raise ValueError(f"unknown objective {value!r}; expected conversions, gmv or profit")
        return value

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in ARMS or a == "holdout"]
        if unknown:
            raise ValueError(
                f"unknown arm {unknown[0]!r}; expected some of {', '.join(ARMS[:-1])} "
                "(the holdout is always there)"
            )
        if len(set(value)) != len(value):
            raise ValueError("an arm is listed twice")
        return value

    @field_validator("match_on")
    @classmethod
    def _known_match_on(cls, value: str) -> str:
        if value not in ("value", "spend", "spend_conversions"):
            raise ValueError(
                f"unknown match_on {value!r}; expected value, spend or spend_conversions"
            )
        return value

    @field_validator("match")
    @classmethod
    def _known_match(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in ARMS or a in ("holdout", "optimal")]
        if unknown:
            raise ValueError(
                f"cannot match {unknown[0]!r}; expected some of {', '.join(ARMS[1:-1])}"
            )
        return value


class WhatIfSettings(_Strict):
    """The what-if grid a scenario file carries, run by ``couponopt whatif --scenario``."""

    vary: tuple[str, ...] = Field(
        (),
        description="axes and values as for --vary, e.g. budget=10000:150000:15 (menu files "
        "relative to the scenario file)",
    )
    policies: tuple[str, ...] = Field(
        ("optimal", "manual", "v2"), min_length=1, description="policies compared at each point"
    )

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in ARMS or a == "holdout"]
        if unknown:
            raise ValueError(
                f"unknown policy {unknown[0]!r}; expected some of {', '.join(ARMS[:-1])}"
            )
        return value


class Scenario(_Strict):
    """One complete what-if: population, menu, costs, campaign, budget, manual practice, history.

    ``Scenario()`` is the embedded default (about 200k users, four denominations, dormant
    customers targeted, budget 50,000).
    """

    name: str = Field("default", min_length=1, description="short name shown in reports")
    description: str = Field(
        "Embedded default: 200k customers, dormant stage targeted, four-coupon menu.",
        description="one-line description",
    )
    currency: str = Field("CNY", min_length=1, description="currency of all money figures")
    population: Population = Population()
    menu: Menu = DEFAULT_MENU
    costs: Costs = Costs()
    campaign: Campaign = Campaign()
    budget: Budget = Budget()
    manual: Manual = Manual()
    history: History = History()
    constraints: PlanConstraints = PlanConstraints()
    simulation: Simulation = Simulation()
    whatif: WhatIfSettings = WhatIfSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        for name in self.constraints.max_per_denomination:
            if name not in self.menu.names:
                raise ValueError(
                    f"constraints.max_per_denomination names {name!r}, which is not on the menu "
                    f"({', '.join(self.menu.names)})"
                )
        if self.manual.denomination not in self.menu.names:
            raise ValueError(
                f"manual.denomination {self.manual.denomination!r} is not on the menu "
                f"({', '.join(self.menu.names)})"
            )
        if self.campaign.validity_days > self.campaign.window_days:
            raise ValueError(
                f"campaign.validity_days {self.campaign.validity_days:g} exceeds "
                f"campaign.window_days {self.campaign.window_days:g}"
            )
        targeted = sum(getattr(self.population.stages, s) for s in self.campaign.target_stages)
        if targeted <= 0:
            raise ValueError(
                "campaign.target_stages select no users: their population.stages shares are 0"
            )
        return self

    def with_overrides(
        self, *, users: int | None = None, seed: int | None = None, budget: float | None = None
    ) -> Scenario:
        """A validated copy with the population size, seed or budget replaced."""
        data = self.model_dump()
        if users is not None:
            data["population"]["users"] = users
        if seed is not None:
            data["population"]["seed"] = seed
        if budget is not None:
            data["budget"]["amount"] = budget
        return Scenario.model_validate(data)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario TOML file; ``None`` gives the embedded default.

    Raises
    ------
    InputError
        One line naming the file and the offending key.
    """
    if path is None:
        return Scenario()
    data = read_toml(path)
    try:
        return Scenario.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError
        raise InputError(validation_error_line(exc, Scenario), source=path) from None
