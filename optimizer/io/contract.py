"""The data contract: one documented schema per table that crosses a file boundary.

Tables
------
users
    One row per customer: the features in the article's three families (static, behaviour,
    coupon behaviour) and the lifecycle stage derived from recency.
log (``history.parquet``)
    One row per (campaign, user) of past campaigns: which denomination (or ``none``) the user
    was assigned, how (``randomized`` or ``manual``), and the outcome in the campaign window.
truth
    The synthetic world's ground truth per user; for tests and benchmarks, never for models.
scores
    Model output per user: natural and per-denomination coupon conversion probabilities, and
    optionally per-denomination redemption probabilities (a redemption model's output).

Columns named ``p_coupon__<name>`` (and ``p_redeem__<name>``) follow the coupon menu, so the
log, truth and scores schemas are built for a given menu.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optimizer.io.menu import MONEY_MAX, NO_COUPON, Menu
from optimizer.segments import STAGES

__all__ = [
    "ColumnSpec",
    "TableSchema",
    "GENDERS",
    "ARCHETYPES",
    "ASSIGNMENTS",
    "USERS",
    "FEATURE_FAMILIES",
    "log_schema",
    "truth_schema",
    "scores_schema",
    "coupon_column",
    "redeem_column",
]

GENDERS: tuple[str, ...] = ("F", "M", "U")
#: Uplift archetypes of the synthetic world.
ARCHETYPES: tuple[str, ...] = ("sure_thing", "persuadable", "lost_cause", "sleeping_dog")
#: How a logged campaign assigned its coupons.
ASSIGNMENTS: tuple[str, ...] = ("randomized", "manual")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table.

    Parameters
    ----------
    name : str
        Column name.
    dtype : str
        Storage dtype after loading: a numpy integer or float dtype name, ``"flag"`` (0/1 as
        int8) or ``"category"`` (text labels).
    description : str
        What the column means.
    unit : str
        ``"money"`` (currency units, >= 0), ``"probability"`` (in [0, 1]), ``"days"``,
        ``"count"``, ``"years"``, ``"per day"``, ``"ratio"`` or ``""``.
    nullable : bool
        Whether missing values (NaN / empty CSV fields) are allowed.
    min, max : float, optional
        Inclusive bounds (money implies min 0, probability implies [0, 1]).
    categories : tuple of str, optional
        Allowed labels of a category column; None allows any non-empty text.
    """

    name: str
    dtype: str
    description: str
    unit: str = ""
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None

    @property
    def lower(self) -> float | None:
        """Inclusive lower bound, with the unit's implied bound."""
        if self.unit in ("money", "probability", "count", "days") and self.min is None:
            return 0.0
        return self.min

    @property
    def upper(self) -> float | None:
        """Inclusive upper bound, with the unit's implied bound."""
        if self.unit == "probability" and self.max is None:
            return 1.0
        if self.unit == "money" and self.max is None:
            return MONEY_MAX
        return self.max

    @property
    def kind(self) -> str:
        """``"int"``, ``"float"``, ``"flag"`` or ``"category"``."""
        if self.dtype in ("flag", "category"):
            return self.dtype
        return "int" if self.dtype.startswith(("int", "uint")) else "float"


@dataclass(frozen=True)
class TableSchema:
    """A table's columns, in order, and the columns that identify a row."""

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()
    description: str = ""
    families: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnSpec:
        """The spec of column ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def coupon_column(name: str) -> str:
    """Column holding P(convert | coupon ``name``)."""
    return f"p_coupon__{name}"


def redeem_column(name: str) -> str:
    """Column holding P(redeem | converted holding coupon ``name``)."""
    return f"p_redeem__{name}"


_USER_ID = ColumnSpec("user_id", "int64", "customer identifier, unique per row", min=0)

#: Feature columns by the article's three families.
FEATURE_FAMILIES: dict[str, tuple[str, ...]] = {
    "static": ("gender", "age", "region", "city_tier", "days_since_registration"),
    "behaviour": (
        "orders_365d",
        "days_since_last_order",
        "avg_order_value",
        "sessions_7d",
        "sessions_30d",
        "cart_adds_30d",
    ),
    "coupon": ("coupons_received_365d", "coupon_views_365d", "coupon_redeem_share"),
}

USERS = TableSchema(
    name="users",
    description="one row per customer: features and lifecycle stage",
    key=("user_id",),
    families=FEATURE_FAMILIES,
    columns=(
        _USER_ID,
        ColumnSpec("gender", "category", "F, M or U (unknown)", categories=GENDERS),
        ColumnSpec("age", "float32", "age; missing when not given", "years", True, 14, 100),
        ColumnSpec("region", "category", "sales region (free text label)"),
        ColumnSpec("city_tier", "int8", "city tier, 1 (largest cities) to 4", min=1, max=4),
        ColumnSpec("days_since_registration", "int32", "account age", "days"),
        ColumnSpec("orders_365d", "int32", "orders in the last 365 days", "count"),
        ColumnSpec("days_since_last_order", "int32", "recency: days since the last order", "days"),
        ColumnSpec("avg_order_value", "float64", "average order value", "money"),
        ColumnSpec("sessions_7d", "int32", "app/web sessions in the last 7 days", "count"),
        ColumnSpec("sessions_30d", "int32", "app/web sessions in the last 30 days", "count"),
        ColumnSpec("cart_adds_30d", "int32", "add-to-cart events in the last 30 days", "count"),
        ColumnSpec("coupons_received_365d", "int32", "coupons received, last 365 days", "count"),
        ColumnSpec("coupon_views_365d", "int32", "coupon views, last 365 days", "count"),
        ColumnSpec(
            "coupon_redeem_share",
            "float32",
            "share of received coupons redeemed; missing when none received",
            "probability",
            nullable=True,
        ),
        ColumnSpec(
            "lifecycle_stage",
            "category",
            "active <= 30 days since last order, cooling 31-90, lapsed 91-180, dormant > 180",
            categories=STAGES,
        ),
    ),
)


def log_schema(menu: Menu) -> TableSchema:
    """Schema of the campaign log (``history.parquet``) for ``menu``."""
    return TableSchema(
        name="log",
        description="one row per (campaign, user) of past campaigns with outcomes",
        key=("campaign_id", "user_id"),
        columns=(
            ColumnSpec("campaign_id", "int32", "past campaign identifier", min=0),
            _USER_ID,
            ColumnSpec(
                "assignment",
                "category",
                "randomized (RCT arm drawn at random) or manual (operations rule)",
                categories=ASSIGNMENTS,
            ),
            ColumnSpec("lifecycle_stage", "category", "stage at campaign time", categories=STAGES),
            ColumnSpec(
                "denomination",
                "category",
                f"coupon sent: a menu denomination or '{NO_COUPON}'",
                categories=(*menu.names, NO_COUPON),
            ),
            ColumnSpec("converted", "flag", "1 if the user ordered in the campaign window"),
            ColumnSpec("redeemed", "flag", "1 if the order redeemed the coupon"),
            ColumnSpec(
                "order_value", "float64", "first order's value before discount; 0 if none", "money"
            ),
            ColumnSpec("discount", "float64", "face value paid on redemption; 0 if none", "money"),
        ),
    )


def truth_schema(menu: Menu) -> TableSchema:
    """Schema of the synthetic world's ground truth for ``menu``."""
    per_coupon = []
    for name in menu.names:
        per_coupon.append(
            ColumnSpec(coupon_column(name), "float64", f"P(convert | coupon {name})", "probability")
        )
    for name in menu.names:
        per_coupon.append(
            ColumnSpec(
                redeem_column(name),
                "float64",
                f"P(redeem | converted holding coupon {name})",
                "probability",
            )
        )
    return TableSchema(
        name="truth",
        description="ground truth per user (tests and benchmarks only, never models)",
        key=("user_id",),
        columns=(
            _USER_ID,
            ColumnSpec("archetype", "category", "uplift archetype", categories=ARCHETYPES),
            ColumnSpec("natural_hazard", "float64", "natural purchase rate", "per day", min=0),
            ColumnSpec(
                "price_sensitivity", "float64", "latent response to money off", "ratio", min=0
            ),
            ColumnSpec(
                "message_effect",
                "float64",
                "factor on the natural rate once messaged (< 1: sleeping dog)",
                "ratio",
                min=0,
                max=1,
            ),
            ColumnSpec("typical_basket", "float64", "mean order value", "money"),
            ColumnSpec(
                "p_natural", "float64", "P(convert in the window | no message)", "probability"
            ),
            *per_coupon,
        ),
    )


def scores_schema(menu: Menu, *, redemption: bool = False) -> TableSchema:
    """Schema of model scores for ``menu``: p_natural and one p_coupon__<name> per denomination.

    With ``redemption``, also one ``p_redeem__<name>`` per denomination: P(redeem | converted
    holding the coupon), which the planner uses for expected coupon cost.
    """
    redeem = tuple(
        ColumnSpec(
            redeem_column(n), "float32", f"P(redeem | converted holding coupon {n})", "probability"
        )
        for n in menu.names
    )
    return TableSchema(
        name="scores",
        description="predicted conversion probabilities per user",
        key=("user_id",),
        columns=(
            _USER_ID,
            ColumnSpec("p_natural", "float32", "P(convert | no coupon)", "probability"),
            *(
                ColumnSpec(coupon_column(n), "float32", f"P(convert | coupon {n})", "probability")
                for n in menu.names
            ),
            *(redeem if redemption else ()),
        ),
    )
