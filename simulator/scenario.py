"""Scenario files: a campaign configuration plus the synthetic world it is played on.

A scenario is a :class:`~optimizer.planning.config.CampaignConfig` (menu, costs, budget, manual
practice, targeting, constraints, what-if grid) with the sections that make a world: the
population, the campaign's timing, the past campaigns of the log, and the simulated A/B test.
It is TOML validated by pydantic models that forbid unknown keys; every problem is reported as
one line naming the key. ``Scenario()`` *is* the embedded default scenario
(``scenarios/default.toml`` spells it out, and a test keeps the two equal).
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optimizer.choices import BASELINES, MatchOn, Objective, Policy
from optimizer.io.contract import ARCHETYPES
from optimizer.io.tomlfile import load_validated, read_toml, validate
from optimizer.planning.config import CampaignConfig, Targeting
from optimizer.segments import STAGES
from simulator.choices import BudgetMode, Design

__all__ = [
    "StageShares",
    "ArchetypeShares",
    "Population",
    "Campaign",
    "History",
    "BudgetMode",
    "Design",
    "Simulation",
    "Scenario",
    "WORLD_SECTIONS",
    "load_scenario",
    "load_configuration",
    "as_scenario",
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


class Campaign(_Strict):
    """The campaign's timing in the synthetic world."""

    window_days: float = Field(14, gt=0, le=365, description="campaign window, days")
    validity_days: float = Field(
        7, gt=0, le=365, description="coupon validity after delivery, days"
    )


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


class Simulation(_Strict):
    """The simulated A/B test: gateway, budget behaviour, policy arms and replications."""

    sms_per_hour: float = Field(
        20_000, gt=0, description="SMS gateway throughput, messages per hour"
    )
    failure_rate: float = Field(0.03, ge=0, lt=1, description="share of messages never delivered")
    view_rate: float = Field(0.6, ge=0, le=1, description="share of delivered coupons viewed")
    on_budget_spent: BudgetMode = Field(
        BudgetMode.STOP_ISSUING,
        description="continue, stop_issuing (held coupons honoured) or stop_honouring",
    )
    policies: tuple[Policy, ...] = Field(
        (Policy.OPTIMAL, Policy.MANUAL),
        min_length=1,
        description="policy arms; an untreated holdout is always added",
    )
    design: Design = Field(Design.SPLIT, description="split or paired")
    holdout_share: float = Field(
        0.1, gt=0, lt=1, description="share of the target users kept untreated"
    )
    replications: int = Field(5, ge=2, le=1000, description="independent repetitions")
    objective: Objective = Field(
        Objective.CONVERSIONS,
        description="what the optimal arm maximises: conversions, gmv or profit",
    )
    match: tuple[Policy, ...] = Field(
        (),
        description="baseline policies the optimal arm matches: it spends only the least budget "
        "at which its expected objective reaches the best of their plans on its own users",
    )
    match_on: MatchOn = Field(
        MatchOn.VALUE,
        description="value: the least budget reaching the matched plans' expected objective; "
        "spend: the matched plans' expected cost as the optimal arm's budget; "
        "spend_conversions: that budget and at least their expected incremental conversions",
    )
    screen: bool = Field(
        False,
        description="the optimal arm leaves out users above v2's natural-probability cut",
    )
    seed: int = Field(7, ge=0, description="seed of assignment and simulation draws")

    @field_validator("policies")
    @classmethod
    def _distinct(cls, value: tuple[Policy, ...]) -> tuple[Policy, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a policy is listed twice")
        return value

    @field_validator("match")
    @classmethod
    def _baselines(cls, value: tuple[Policy, ...]) -> tuple[Policy, ...]:
        if Policy.OPTIMAL in value:
            raise ValueError(f"the optimal arm matches baselines: some of {', '.join(BASELINES)}")
        return value

    @model_validator(mode="after")
    def _match_needs_optimal(self) -> Simulation:
        if self.match and Policy.OPTIMAL not in self.policies:
            raise ValueError("match makes the optimal arm like-for-like: add optimal to policies")
        return self


class Scenario(CampaignConfig):
    """A campaign configuration and the synthetic world it is played on.

    ``Scenario()`` is the embedded default (200k users, four denominations, dormant customers
    targeted, budget 50,000). The world's sections: ``population``, ``campaign`` (timing),
    ``history`` (the past campaigns of the log) and ``simulation`` (the A/B test).
    """

    description: str = Field(
        "Embedded default: 200k customers, dormant stage targeted, four-coupon menu.",
        description="one-line description",
    )
    targeting: Targeting = Targeting(segments=("dormant",))
    population: Population = Population()
    campaign: Campaign = Campaign()
    history: History = History()
    simulation: Simulation = Simulation()

    @model_validator(mode="after")
    def _world_consistent(self) -> Scenario:
        if self.campaign.validity_days > self.campaign.window_days:
            raise ValueError(
                f"campaign.validity_days: {self.campaign.validity_days:g} exceeds "
                f"campaign.window_days {self.campaign.window_days:g}"
            )
        if not self.menu.plain:
            raise ValueError(
                "menu: the synthetic world plays coupons with no costs of their own (no "
                "messages, send_cost or conversion_cost); plan such menus on your own scores"
            )
        if self.data is not None:
            raise ValueError("data: a scenario plays its own world; put [data] in a campaign file")
        targeting = self.targeting
        if targeting.column != "lifecycle_stage":
            raise ValueError(
                "targeting.column: the synthetic world targets by lifecycle_stage "
                f"(got {targeting.column!r})"
            )
        unknown = [s for s in targeting.segments if s not in STAGES]
        if unknown or not targeting.segments:
            raise ValueError(
                f"targeting.segments: expected some of {', '.join(STAGES)}"
                + (f" (got {unknown[0]!r})" if unknown else "")
            )
        targeted = sum(getattr(self.population.stages, s) for s in targeting.segments)
        if targeted <= 0:
            raise ValueError(
                "targeting.segments select no users: their population.stages shares are 0"
            )
        return self

    @property
    def target_stages(self) -> tuple[str, ...]:
        """The lifecycle stages the campaign targets (``targeting.segments``)."""
        return tuple(self.targeting.segments)

    def with_campaign(self, campaign: CampaignConfig) -> Scenario:
        """The same world played with ``campaign`` (its menu, costs, budget, targeting...).

        A scenario is taken whole; a plain campaign replaces what it sets explicitly.
        """
        if isinstance(campaign, Scenario):
            return campaign
        return validate(Scenario, self.model_dump() | campaign.model_dump(exclude_unset=True))

    def with_overrides(
        self, *, users: int | None = None, seed: int | None = None, budget: float | None = None
    ) -> Scenario:
        """A validated copy with the population size, seed or budget replaced.

        Raises
        ------
        InputError
            One line naming the key (``population.users``...) of a value it refuses.
        """
        values: dict[str, object] = {}
        if users is not None:
            values["population.users"] = users
        if seed is not None:
            values["population.seed"] = seed
        if budget is not None:
            values["budget.amount"] = budget
        return self.with_values(**values) if values else self


#: Top-level sections that make a file a scenario rather than a plain campaign file.
WORLD_SECTIONS: tuple[str, ...] = ("population", "campaign", "history", "simulation")


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario TOML file; ``None`` gives the embedded default.

    A campaign file without world sections is a scenario with the default world.

    Raises
    ------
    InputError
        One line naming the file and the offending key.
    """
    return Scenario() if path is None else load_validated(path, Scenario)


def load_configuration(path: str | Path) -> CampaignConfig:
    """A campaign file, or a scenario file (one with world sections: :data:`WORLD_SECTIONS`).

    Raises
    ------
    InputError
        One line naming the file and the offending key.
    """
    data = read_toml(path)
    world = any(section in data for section in WORLD_SECTIONS)
    return validate(Scenario if world else CampaignConfig, data, source=path)


def as_scenario(config: CampaignConfig) -> Scenario:
    """``config`` played on a world.

    Itself when it is a scenario, else the campaign it sets (what its file or code gave
    explicitly) on the default world.

    Raises
    ------
    InputError
        One line naming the key the world refuses (its targeting must be lifecycle stages).
    """
    if isinstance(config, Scenario):
        return config
    return validate(Scenario, config.model_dump(exclude_unset=True))
