"""The menu of treatments: one type, read from TOML, used by world, models, solver, simulator.

A menu file holds a list of treatments (``denomination`` for historical reasons). A *coupon*
pays its face value when a converter redeems it on an order of at least the threshold; a
*message* (an e-mail, a promotion) has no face value, only a cost per send and optionally a cost
per conversion::

    [[denomination]]
    name = "10off99"
    face_value = 10.0        # money off, currency units
    threshold = 99.0         # minimum spend, currency units
    redemption_share = 1.0   # share of coupon converters who redeem (planning assumption)

    [[denomination]]
    name = "promotion"
    kind = "message"
    send_cost = 0.15         # money per send (default: the campaign's costs.sms_cost)
    conversion_cost = 0.0    # money paid per conversion under this treatment (a fee, a gift)
    conversion_value = 10.0  # GMV of a conversion (default: the user's basket)

Any treatment may set ``send_cost`` and ``conversion_cost``, so costs per arm live in the menu.
The expected cost of treatment k for a user is ``send_k + p_k * (r_k * face_k + conv_k)``.
The same list sits under ``[menu]`` in a scenario file (``[[menu.denomination]]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optimizer.io.tomlfile import load_validated, write_toml

__all__ = [
    "MONEY_MAX",
    "NO_COUPON",
    "DEFAULT_MENU",
    "Denomination",
    "Menu",
    "load_menu",
    "save_menu",
    "menu_beside",
]

#: The most money any input may hold (currency units): a trillion. Larger amounts are typos,
#: and solvers lose precision long before float64 runs out.
MONEY_MAX = 1e12

#: The label used in logs and plans for "no coupon sent".
NO_COUPON = "none"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class Denomination(BaseModel):
    """One treatment: a coupon (``face_value`` off an order of at least ``threshold``) or a message.

    Parameters
    ----------
    name : str
        Identifier used in column names (``p_coupon__<name>``): letters, digits, ``_``, ``-``.
    kind : {"coupon", "message"}
        A coupon has a face value paid on redemption; a message has none.
    face_value : float
        Coupon: money off when redeemed, currency units, > 0. Message: 0.
    threshold : float
        Coupon: minimum order value to redeem, currency units, >= face_value. Message: 0.
    redemption_share : float
        Planning assumption: share of converters holding this coupon who redeem it, in (0, 1].
    send_cost : float, optional
        Money per send of this treatment; None uses the campaign's ``costs.sms_cost``.
    conversion_cost : float
        Money paid for every conversion under this treatment (a fee, a gift), >= 0.
    conversion_value : float, optional
        GMV of a conversion under this treatment (money), when it differs from the user's usual
        order (a promotion of one product at a fixed price); None: the user's basket.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["coupon", "message"] = Field("coupon", description="coupon or message")
    face_value: float = Field(
        0.0,
        ge=0,
        le=MONEY_MAX,
        allow_inf_nan=False,
        description="money off when redeemed, currency units",
    )
    threshold: float = Field(
        0.0,
        ge=0,
        le=MONEY_MAX,
        allow_inf_nan=False,
        description="minimum order value, currency units",
    )
    redemption_share: float = Field(
        default=1.0, gt=0, le=1, description="share of coupon converters who redeem"
    )
    send_cost: float | None = Field(
        None,
        ge=0,
        le=MONEY_MAX,
        allow_inf_nan=False,
        description="money per send (default: costs.sms_cost)",
    )
    conversion_cost: float = Field(
        0.0,
        ge=0,
        le=MONEY_MAX,
        allow_inf_nan=False,
        description="money per conversion under this treatment",
    )
    conversion_value: float | None = Field(
        None,
        gt=0,
        le=MONEY_MAX,
        allow_inf_nan=False,
        description="GMV of a conversion under this treatment (default: the user's basket)",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"'{value}' is not a valid denomination name: use letters, digits, '_' or '-'"
            )
        if value.lower() == NO_COUPON:
            raise ValueError(f"'{NO_COUPON}' is reserved for 'no coupon'")
        return value

    @model_validator(mode="after")
    def _check_threshold(self) -> Denomination:
        if self.kind == "message":
            if self.face_value or self.threshold:
                raise ValueError(
                    f"{self.name}: a message has no face value or threshold; "
                    "use kind = 'coupon' or conversion_cost"
                )
            return self
        if self.face_value <= 0:
            raise ValueError(f"{self.name}: a coupon needs face_value > 0")
        if self.threshold < self.face_value:
            raise ValueError(
                f"threshold {self.threshold:g} is below face value {self.face_value:g}: "
                "a coupon must not be worth more than the order it needs"
            )
        return self


class Menu(BaseModel):
    """An ordered, non-empty list of denominations with unique names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    denomination: tuple[Denomination, ...] = Field(min_length=1)

    @field_validator("denomination")
    @classmethod
    def _unique(cls, value: tuple[Denomination, ...]) -> tuple[Denomination, ...]:
        names = [d.name for d in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicated denomination names: {', '.join(dupes)}")
        return value

    @property
    def names(self) -> tuple[str, ...]:
        """Denomination names, in menu order, shape (k,)."""
        return tuple(d.name for d in self.denomination)

    @property
    def face_values(self) -> np.ndarray:
        """Face values in currency units, float64, shape (k,)."""
        return np.array([d.face_value for d in self.denomination], dtype=np.float64)

    @property
    def thresholds(self) -> np.ndarray:
        """Minimum-spend thresholds in currency units, float64, shape (k,)."""
        return np.array([d.threshold for d in self.denomination], dtype=np.float64)

    @property
    def redemption_shares(self) -> np.ndarray:
        """Planning redemption shares in (0, 1], float64, shape (k,)."""
        return np.array([d.redemption_share for d in self.denomination], dtype=np.float64)

    @property
    def conversion_costs(self) -> np.ndarray:
        """Money paid per conversion under each treatment, float64, shape (k,)."""
        return np.array([d.conversion_cost for d in self.denomination], dtype=np.float64)

    @property
    def coupons(self) -> np.ndarray:
        """True for coupons, False for messages, shape (k,)."""
        return np.array([d.kind == "coupon" for d in self.denomination], dtype=bool)

    @property
    def all_coupons(self) -> bool:
        """Whether every treatment is a coupon (the synthetic world's and the article's menus)."""
        return bool(self.coupons.all())

    @property
    def plain(self) -> bool:
        """Coupons only, with no cost or value of their own: the menus the simulator can play."""
        return self.all_coupons and all(
            d.send_cost is None and d.conversion_cost == 0 and d.conversion_value is None
            for d in self.denomination
        )

    @property
    def conversion_values(self) -> np.ndarray:
        """GMV of a conversion under each treatment, NaN where the basket applies, shape (k,)."""
        return np.array(
            [
                np.nan if d.conversion_value is None else d.conversion_value
                for d in self.denomination
            ],
            dtype=np.float64,
        )

    def send_costs(self, default: float) -> np.ndarray:
        """Money per send of each treatment (``default`` where not set), float64, shape (k,)."""
        return np.array(
            [default if d.send_cost is None else d.send_cost for d in self.denomination],
            dtype=np.float64,
        )

    def __len__(self) -> int:
        return len(self.denomination)

    def index(self, name: str) -> int:
        """Position of denomination ``name`` on the menu; KeyError if absent."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(name) from None


def load_menu(path: str | Path) -> Menu:
    """Read and validate a menu TOML file; raise :class:`InputError` naming the key."""
    return load_validated(path, Menu)


def save_menu(menu: Menu, path: str | Path) -> None:
    """Write ``menu`` as TOML that :func:`load_menu` reads back unchanged (atomic)."""
    write_toml(menu.model_dump(mode="json", exclude_none=True), path)


#: The article's menu: four money-off coupons with rising face values and thresholds.
DEFAULT_MENU = Menu(
    denomination=(
        Denomination(name="5off49", face_value=5, threshold=49),
        Denomination(name="10off99", face_value=10, threshold=99),
        Denomination(name="20off199", face_value=20, threshold=199),
        Denomination(name="50off399", face_value=50, threshold=399),
    )
)


def menu_beside(path: str | Path, menu: str | Path | None = None) -> Menu:
    """The menu of a data file: ``menu``, else ``menu.toml`` beside ``path``, else the default.

    A generated world writes its ``menu.toml`` beside its tables, so its log and truth read
    with the right denominations without naming the menu.
    """
    beside = Path(path).parent / "menu.toml"
    if menu is not None:
        return load_menu(menu)
    return load_menu(beside) if beside.is_file() else DEFAULT_MENU
