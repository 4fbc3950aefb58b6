"""The campaign configuration: everything a plan needs besides the scores.

A campaign file (TOML) holds the coupon menu, the costs, the budget, the manual practice
operations follow, whom the campaign targets, the business constraints, the what-if grid and,
optionally, where the team's own customer table and campaign log are (``[data]``, see
:mod:`optimizer.io.mapping`).
It is validated by pydantic models that forbid unknown keys, and every problem is reported as
one line naming the key. Nothing here is about a synthetic world: a team plans its own scores
with a campaign file alone (the simulator's scenario adds a world to the same sections).

Money is in ``currency`` units, probabilities and shares in [0, 1].
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optimizer.choices import Policy
from optimizer.io.mapping import DataConfig
from optimizer.io.menu import DEFAULT_MENU, MONEY_MAX, Menu
from optimizer.io.tomlfile import load_validated, validate
from optimizer.solvers.constraints import Constraints, SegmentShare

__all__ = [
    "DEFAULT_MENU",
    "Costs",
    "Budget",
    "Manual",
    "Targeting",
    "SegmentBounds",
    "PlanConstraints",
    "BudgetRange",
    "Vary",
    "WhatIfSettings",
    "Engine",
    "CampaignConfig",
    "load_campaign",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Costs(_Strict):
    """Money per message and margin; money in the configuration's currency units."""

    sms_cost: float = Field(
        0.05, ge=0, le=MONEY_MAX, allow_inf_nan=False, description="cost per message sent"
    )
    margin_rate: float = Field(
        0.30, ge=0, le=1, description="gross margin as a share of GMV, for incremental profit"
    )
    order_value: float | None = Field(
        None,
        gt=0,
        le=MONEY_MAX,
        allow_inf_nan=False,
        description="money per order (value of one conversion) for users without a basket column",
    )


class Budget(_Strict):
    """The campaign budget."""

    amount: float = Field(
        50_000,
        ge=0,
        le=MONEY_MAX,
        allow_inf_nan=False,
        description="campaign budget, currency units",
    )


class Manual(_Strict):
    """What operations do by hand: one uniform treatment to the best-ranked customers.

    The ranking is the RFM score of the synthetic contract's columns by default, or one column
    of the customer table (``rank_by``, highest first unless ``ascending``).
    """

    denomination: str = Field("10off99", description="the uniform treatment operations send")
    rank_by: str | None = Field(
        None, min_length=1, description="customer column operations rank by (default: RFM)"
    )
    ascending: bool = Field(False, description="rank_by: lowest values first")


class Targeting(_Strict):
    """Whom the campaign may send coupons to: users whose segment label is listed."""

    column: str = Field(
        "lifecycle_stage", min_length=1, description="user-table column of the segment labels"
    )
    segments: tuple[str, ...] = Field(
        (), description="labels to target; empty targets every scored user"
    )

    @field_validator("segments")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a segment is listed twice")
        if any(not s for s in value):
            raise ValueError("a segment label is empty")
        return value


class SegmentBounds(_Strict):
    """Bounds on one segment's share of the messages sent."""

    min: float = Field(0.0, ge=0, le=1, description="minimum share of messages, 0..1")
    max: float = Field(1.0, ge=0, le=1, description="maximum share of messages, 0..1")

    @model_validator(mode="after")
    def _ordered(self) -> SegmentBounds:
        if self.min > self.max:
            raise ValueError(f"min {self.min:g} exceeds max {self.max:g}")
        return self


#: The default overrun rule: realised spend above 102% of the budget in at most 5% of campaigns.
OVERRUN_DEFAULT: tuple[float, float] = (0.05, 0.02)


class PlanConstraints(_Strict):
    """Business constraints every plan keeps besides the budget (all optional)."""

    max_per_denomination: dict[str, int] = Field(
        default_factory=dict, description="coupon inventory: at most this many of a denomination"
    )
    max_messages: int | None = Field(None, ge=0, description="at most this many messages")
    min_roi: float | None = Field(
        None,
        ge=0,
        le=1e6,
        allow_inf_nan=False,
        description="expected incremental GMV / expected cost at least this",
    )
    overrun_risk: float | None = Field(
        0.05,
        gt=0,
        le=1,
        description="P(realised spend > (1 + overrun_tolerance) x budget) at most this; the "
        "budget is a cap: plans spend less than it when their spend is uncertain; 1 turns the "
        "rule off (plans spend their expected budget)",
    )
    overrun_tolerance: float = Field(
        0.02, ge=0, lt=1, description="share of the budget realised spend may exceed"
    )
    segment_column: str = Field(
        "lifecycle_stage", min_length=1, description="user-table column the segments come from"
    )
    exclude_file: str | None = Field(
        None,
        min_length=1,
        description="opted-out users: a table with user_id or a .txt list, relative to the "
        "configuration file",
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

    @model_validator(mode="after")
    def _feasible_shares(self) -> PlanConstraints:
        if sum(b.min for b in self.segment_shares.values()) > 1 + 1e-12:
            raise ValueError("segment_shares: the minimum shares add up to more than 1")
        return self

    def to_constraints(self) -> Constraints:
        """The solvers' :class:`~optimizer.solvers.constraints.Constraints` of this section."""
        return Constraints(
            max_per_denomination=dict(self.max_per_denomination) or None,
            max_messages=self.max_messages,
            min_roi=self.min_roi,
            segment_shares=tuple(
                SegmentShare(name, b.min, b.max) for name, b in self.segment_shares.items()
            ),
        )


class BudgetRange(_Strict):
    """Evenly spaced budgets from ``start`` to ``stop`` (money), ``points`` of them."""

    start: float = Field(ge=0, le=MONEY_MAX, allow_inf_nan=False)
    stop: float = Field(ge=0, le=MONEY_MAX, allow_inf_nan=False)
    points: int = Field(ge=2, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> BudgetRange:
        if self.stop <= self.start:
            raise ValueError(f"stop {self.stop:g} must exceed start {self.start:g}")
        return self

    def values(self) -> list[float]:
        """The budgets, ascending (money)."""
        step = (self.stop - self.start) / (self.points - 1)
        return [self.start + i * step for i in range(self.points)]


class Vary(_Strict):
    """The axes of a what-if grid; an axis left out keeps the configuration's value."""

    budget: list[float] | BudgetRange | None = Field(
        None, description="budgets (money): a list, or {start, stop, points}"
    )
    menu: list[str] | None = Field(
        None, min_length=1, description="menu TOML files, relative to the configuration file"
    )
    sms_cost: list[float] | None = Field(None, min_length=1, description="money per message")
    margin_rate: list[float] | None = Field(None, min_length=1, description="shares of GMV")
    segments: list[tuple[str, ...]] | None = Field(
        None, min_length=1, description="sets of targeted segment labels, e.g. [['dormant']]"
    )

    @field_validator("budget")
    @classmethod
    def _budgets(cls, value: list[float] | BudgetRange | None):
        if isinstance(value, list):
            if not value:
                raise ValueError("give at least one budget")
            if any(not math.isfinite(v) or not 0 <= v <= MONEY_MAX for v in value):
                raise ValueError(f"budgets must be finite, >= 0 and <= {MONEY_MAX:g}")
            if len(set(value)) != len(value):
                raise ValueError("a budget is listed twice")
        return value

    @field_validator("menu", "sms_cost", "margin_rate", "segments")
    @classmethod
    def _distinct(cls, value: list | None) -> list | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a value is listed twice")
        return value

    @field_validator("sms_cost")
    @classmethod
    def _costs(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(
            not math.isfinite(v) or not 0 <= v <= MONEY_MAX for v in value
        ):
            raise ValueError(f"SMS costs must be finite, >= 0 and <= {MONEY_MAX:g}")
        return value

    @field_validator("margin_rate")
    @classmethod
    def _margins(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(not 0 <= v <= 1 for v in value):
            raise ValueError("margin rates must be in [0, 1]")
        return value

    @field_validator("segments")
    @classmethod
    def _segment_sets(cls, value: list[tuple[str, ...]] | None):
        if value is not None and any(not s or any(not x for x in s) for s in value):
            raise ValueError("every segment set needs at least one non-empty label")
        return value

    def budgets(self) -> list[float] | None:
        """The budget axis as a list (money), or None when the budget is not varied."""
        if isinstance(self.budget, BudgetRange):
            return self.budget.values()
        return None if self.budget is None else list(self.budget)


class WhatIfSettings(_Strict):
    """The what-if grid a configuration carries (planned when a run gives no grid of its own)."""

    vary: Vary = Field(default_factory=Vary, description="the grid's axes")
    policies: tuple[Policy, ...] = Field(
        (Policy.OPTIMAL, Policy.MANUAL, Policy.V2),
        min_length=1,
        description="policies compared at each point",
    )


class Engine(_Strict):
    """Where a plan and its scores are computed: in memory, streamed in chunks, or on Spark."""

    name: Literal["memory", "stream", "spark"] = Field(
        "memory",
        description="memory: every user in memory (every policy and option); stream: scores "
        "and plan streamed in chunks from Parquet, memory bounded at any number of users; "
        "spark: the same passes as Spark jobs (pip install couponopt[spark])",
    )
    master: str | None = Field(
        None,
        description="Spark master URL (local[2], spark://host:7077, yarn); default: the one "
        "spark-submit gives, else local[*]",
    )
    chunk_rows: int = Field(1_000_000, ge=1_000, description="users per chunk (stream)")
    spark: dict[str, str] = Field(
        default_factory=dict, description="Spark configuration, e.g. spark.executor.memory"
    )


class CampaignConfig(_Strict):
    """A campaign: menu, costs, budget, manual practice, targeting, constraints, what-if grid.

    ``CampaignConfig()`` is the article's campaign (four coupons, budget 50,000) for every
    scored user.
    """

    name: str = Field("default", min_length=1, description="short name shown in reports")
    description: str = Field(
        "The article's four-coupon campaign.", description="one-line description"
    )
    currency: str = Field("CNY", min_length=1, description="currency of all money figures")
    menu: Menu = DEFAULT_MENU
    costs: Costs = Costs()
    budget: Budget = Budget()
    manual: Manual = Manual()
    targeting: Targeting = Targeting()
    constraints: PlanConstraints = PlanConstraints()
    whatif: WhatIfSettings = WhatIfSettings()
    engine: Engine = Engine()
    data: DataConfig | None = Field(
        None, description="the team's customer table and campaign log (see optimizer.io.mapping)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CampaignConfig:
        if self.data is not None:
            problem = self.data.menu_problem(self.menu)
            if problem:
                raise ValueError(f"data.log.arms: {problem}")
        for name in self.constraints.max_per_denomination:
            if name not in self.menu.names:
                raise ValueError(
                    f"constraints.max_per_denomination: {name!r} is not on the menu "
                    f"({', '.join(self.menu.names)})"
                )
        if self.manual.denomination not in self.menu.names:
            raise ValueError(
                f"manual.denomination: {self.manual.denomination!r} is not on the menu "
                f"({', '.join(self.menu.names)})"
            )
        return self

    def with_values(self, **values: Any) -> CampaignConfig:
        """A validated copy with dotted keys replaced (``with_values(**{"budget.amount": 1})``).

        Raises
        ------
        InputError
            One line naming the key, for a value its section refuses.
        """
        data = self.model_dump()
        for key, value in values.items():
            *path, last = key.split(".")
            holder = data
            for part in path:
                holder = holder[part]
            holder[last] = value
        return validate(type(self), data)


def load_campaign(path: str | Path | None = None) -> CampaignConfig:
    """Read and validate a campaign file; ``None`` gives the embedded default.

    Raises
    ------
    InputError
        One line naming the file and the offending key.
    """
    return CampaignConfig() if path is None else load_validated(path, CampaignConfig)
