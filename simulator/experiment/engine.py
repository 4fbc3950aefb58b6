"""The campaign as a discrete-event simulation: SMS gateway, coupon validity, purchases, budget.

SimPy runs what is genuinely event-driven, on an hourly clock (time unit: hours):

* the **gateway** process sends the plan's messages in priority order, at most
  ``sms_per_hour`` an hour; each message is delivered at a uniform moment within its hour or,
  with probability ``failure_rate``, never; messages are paid when sent;
* the **budget monitor** process pays redemptions in time order from the real budget; when the
  budget is spent it records the moment and, by ``on_budget_spent``: the gateway stops issuing
  but coupons already held are honoured (``stop_issuing``: redemptions may still overrun), or it
  stops issuing and coupons are declined at checkout from then on (``stop_honouring``: a
  coupon-driven order is lost, a natural one goes through at full price; spend stays within the
  budget but for the messages of the hour that crossed it), or nothing changes (``continue``).

Per-user randomness is vectorised: when a batch of messages leaves the gateway, every user of
the batch gets their purchase time from the world's true response (:mod:`simulator.world.response`)
in one set of array operations: the natural rate ``h0`` until delivery, ``m h0 + u_k`` while the
coupon is valid, ``m h0`` after; the first purchase in the window decides conversion; a purchase
in the validity window is coupon-driven with probability ``u_k / (m h0 + u_k)`` (it redeems; its
order is lifted to the threshold) or natural (it redeems when its order reaches the threshold).
Users who get no message buy at their natural rate. All draws for a user come from per-user
uniforms fixed before the run, so the simulation is deterministic for its seed and a user's
draws do not depend on which batch they land in (common random numbers across plans).

With no capacity limit, no failures and delivery at the start, the conversion probability of
every user is exactly :func:`simulator.world.response.true_response`'s (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from optimizer.io.menu import Menu
from simulator.world.response import ResponseParams, coupon_rates

__all__ = [
    "EngineSettings",
    "Outcome",
    "simulate_campaign",
    "ON_BUDGET_SPENT",
    "TRAITS",
    "traits_of",
]

#: Truth-table columns the engine reads, in :func:`simulate_campaign`'s argument order.
TRAITS: tuple[str, ...] = (
    "natural_hazard",
    "message_effect",
    "price_sensitivity",
    "typical_basket",
)

#: What happens when the budget is spent.
ON_BUDGET_SPENT: tuple[str, ...] = ("continue", "stop_issuing", "stop_honouring")


@dataclass(frozen=True)
class EngineSettings:
    """Constants of one simulated campaign.

    Parameters
    ----------
    window_days : float
        Campaign window (days); purchases after it do not count.
    validity_days : float
        Coupon validity after delivery (days).
    sms_per_hour : float
        Gateway throughput (messages per hour; inf: everything in the first hour).
    failure_rate : float
        Probability that a message is never delivered.
    view_rate : float
        Probability that a delivered coupon is viewed (counted; the response does not need it).
    sms_cost : float
        Money per message sent.
    budget : float
        Real money for messages and redemptions (inf: unlimited).
    on_budget_spent : {"continue", "stop_issuing", "stop_honouring"}
    instant_delivery : bool
        Deliver at the very start of the sending hour instead of a uniform moment within it
        (with unlimited throughput: everything at time 0, as the truth assumes).
    params : ResponseParams
        The world's response constants.
    """

    window_days: float = 14.0
    validity_days: float = 7.0
    sms_per_hour: float = float("inf")
    failure_rate: float = 0.0
    view_rate: float = 0.6
    sms_cost: float = 0.05
    budget: float = float("inf")
    on_budget_spent: str = "continue"
    instant_delivery: bool = False
    params: ResponseParams = field(default_factory=ResponseParams)


@dataclass
class Outcome:
    """What happened to every user (arrays of shape (n,)) and to the budget.

    Attributes
    ----------
    sent, delivered, viewed, converted, redeemed, coupon_driven : ndarray of bool
    delivered_at, purchase_at : ndarray of float64
        Days since the campaign start (NaN: never).
    order_value, discount : ndarray of float64
        Money (0 without an order / a redemption).
    spend_by_hour : ndarray of float64, shape (hours,)
        Money paid in each hour (messages + redemptions).
    exhausted_at : float or None
        Day the budget ran out (None: it did not).
    """

    sent: np.ndarray
    delivered: np.ndarray
    viewed: np.ndarray
    converted: np.ndarray
    redeemed: np.ndarray
    coupon_driven: np.ndarray
    delivered_at: np.ndarray
    purchase_at: np.ndarray
    order_value: np.ndarray
    discount: np.ndarray
    spend_by_hour: np.ndarray
    exhausted_at: float | None

    @property
    def spend(self) -> float:
        """Realised campaign cost (money): messages sent + discounts paid."""
        return float(self.spend_by_hour.sum())


@dataclass
class _Draws:
    """Per-user uniforms and normals fixed before the run (common random numbers)."""

    natural: np.ndarray  # Exp(1): natural purchase before delivery / without a message
    after: np.ndarray  # Exp(1): purchase after delivery
    source: np.ndarray  # U(0,1): coupon-driven or natural within validity
    basket: np.ndarray  # N(0,1): order value
    fail: np.ndarray  # U(0,1): delivery failure
    moment: np.ndarray  # U(0,1): moment within the sending hour
    view: np.ndarray  # U(0,1): coupon viewed

    @classmethod
    def make(cls, rng: np.random.Generator, n: int) -> _Draws:
        return cls(
            natural=rng.standard_exponential(n),
            after=rng.standard_exponential(n),
            source=rng.random(n),
            basket=rng.standard_normal(n),
            fail=rng.random(n),
            moment=rng.random(n),
            view=rng.random(n),
        )


def traits_of(truth) -> tuple[np.ndarray, ...]:
    """The :data:`TRAITS` columns of a truth table as arrays, shape (n,) each."""
    return tuple(truth[name].to_numpy(dtype=np.float64) for name in TRAITS)


def simulate_campaign(
    natural_hazard: np.ndarray,
    message_effect: np.ndarray,
    sensitivity: np.ndarray,
    basket: np.ndarray,
    choice: np.ndarray,
    menu: Menu,
    settings: EngineSettings,
    rng: np.random.Generator,
    order: np.ndarray | None = None,
) -> Outcome:
    """Simulate one campaign on one group of users.

    Parameters
    ----------
    natural_hazard, message_effect, sensitivity, basket : ndarray, shape (n,)
        The users' true traits (per day, factor, ratio, money).
    choice : ndarray of int, shape (n,)
        Denomination per user (menu order), -1 for no message.
    menu : Menu
    settings : EngineSettings
    rng : numpy Generator
        Source of every draw.
    order : ndarray of int, optional
        Sending priority (user indices, first sent first); default: index order.
    """
    if settings.on_budget_spent not in ON_BUDGET_SPENT:
        raise ValueError(f"on_budget_spent must be one of {', '.join(ON_BUDGET_SPENT)}")
    h0 = np.asarray(natural_hazard, dtype=np.float64)
    n = h0.size
    choice = np.asarray(choice, dtype=np.int64)
    draws = _Draws.make(rng, n)
    window = float(settings.window_days)
    hours = int(np.ceil(window * 24))
    sigma = settings.params.basket_sigma
    basket = np.asarray(basket, dtype=np.float64)
    order_value = basket * np.exp(sigma * draws.basket - 0.5 * sigma**2)

    out = Outcome(
        sent=np.zeros(n, bool),
        delivered=np.zeros(n, bool),
        viewed=np.zeros(n, bool),
        converted=np.zeros(n, bool),
        redeemed=np.zeros(n, bool),
        coupon_driven=np.zeros(n, bool),
        delivered_at=np.full(n, np.nan),
        purchase_at=np.full(n, np.nan),
        order_value=np.zeros(n),
        discount=np.zeros(n),
        spend_by_hour=np.zeros(hours),
        exhausted_at=None,
    )
    # Everyone first buys at their natural rate; messaged users are redrawn when delivered.
    with np.errstate(divide="ignore"):
        natural_time = draws.natural / h0
    buys = natural_time < window
    out.converted[:] = buys
    out.purchase_at[buys] = natural_time[buys]
    out.order_value[buys] = order_value[buys]

    queue = np.flatnonzero(choice >= 0) if order is None else np.asarray(order, np.int64)
    queue = queue[choice[queue] >= 0]
    rates = coupon_rates(sensitivity, basket, menu.face_values, menu.thresholds, settings.params)
    faces, thresholds = menu.face_values, menu.thresholds
    m_all = np.asarray(message_effect, dtype=np.float64)
    validity = float(settings.validity_days)

    env = simpy.Environment()
    state = {"spent": 0.0, "exhausted": False}
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # (times in hours, users) per batch

    def deliver(batch: np.ndarray, hour: int) -> None:
        """Vectorised: delivery, views and the purchase draw of one batch of users."""
        ok = draws.fail[batch] >= settings.failure_rate
        moment = 0.0 if settings.instant_delivery else draws.moment[batch]
        at = (hour + moment) / 24.0  # days
        users = batch[ok]
        d = at[ok] if np.ndim(at) else np.full(users.size, at)
        out.delivered[users] = True
        out.delivered_at[users] = d
        out.viewed[users] = draws.view[users] < settings.view_rate
        # Users who bought before their coupon arrived keep that purchase.
        fresh = ~(natural_time[users] < d)
        users, d = users[fresh], d[fresh]
        k = choice[users]
        mh = m_all[users] * h0[users]
        u = rates[users, k]
        r1 = mh + u
        v = np.minimum(validity, window - d)
        e = draws.after[users]
        first = r1 * v
        in_validity = e < first
        later = ~in_validity & (e < first + mh * (window - d - v))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(in_validity, d + e / r1, d + v + (e - first) / mh)
        buys = in_validity | later
        driven = in_validity & (draws.source[users] * r1 < u)
        value = order_value[users]
        value = np.where(driven, np.maximum(value, thresholds[k]), value)
        redeem = in_validity & (driven | (value >= thresholds[k]))
        out.converted[users] = buys
        out.purchase_at[users] = np.where(buys, t, np.nan)
        out.order_value[users] = np.where(buys, value, 0.0)
        out.coupon_driven[users] = buys & driven
        out.redeemed[users] = redeem
        out.discount[users] = np.where(redeem, faces[k], 0.0)
        if redeem.any():
            pending.append((t[redeem] * 24.0, users[redeem]))

    def gateway(env: simpy.Environment):
        sent = 0
        per_hour = settings.sms_per_hour
        for hour in range(hours):
            if sent >= queue.size:
                return
            if state["exhausted"] and settings.on_budget_spent != "continue":
                return
            take = queue.size - sent if not np.isfinite(per_hour) else int(per_hour)
            batch = queue[sent : sent + take]
            sent += batch.size
            out.sent[batch] = True
            cost = settings.sms_cost * batch.size
            out.spend_by_hour[hour] += cost
            state["spent"] += cost
            if state["spent"] >= settings.budget and not state["exhausted"]:
                state["exhausted"] = True
                out.exhausted_at = hour / 24.0
            deliver(batch, hour)
            yield env.timeout(1)

    def monitor(env: simpy.Environment):
        for hour in range(1, hours + 1):
            yield env.timeout(1)
            due = [(t, u) for t, u in pending]
            pending.clear()
            if not due:
                continue
            times = np.concatenate([t for t, _ in due])
            users = np.concatenate([u for _, u in due])
            now = times < hour
            if (~now).any():  # later this window: keep for a later hour
                pending.append((times[~now], users[~now]))
            times, users = times[now], users[now]
            step = np.argsort(times, kind="stable")
            times, users = times[step], users[step]
            amounts = out.discount[users]
            if state["exhausted"]:
                paid = np.zeros(users.size, bool)
            else:
                paid = state["spent"] + np.cumsum(amounts) <= settings.budget
                if not paid.all():
                    state["exhausted"] = True
                    out.exhausted_at = float(times[int(np.argmin(paid))]) / 24.0
            if settings.on_budget_spent != "stop_honouring":
                paid[:] = True
            declined = users[~paid]
            if declined.size:
                # The coupon is declined: a coupon-driven order is lost, a natural one goes
                # through at full price.
                lost = declined[out.coupon_driven[declined]]
                out.converted[lost] = False
                out.purchase_at[lost] = np.nan
                out.order_value[lost] = 0.0
                out.coupon_driven[lost] = False
                out.redeemed[declined] = False
                out.discount[declined] = 0.0
            money = float(amounts[paid].sum())
            out.spend_by_hour[hour - 1] += money
            state["spent"] += money

    env.process(monitor(env))
    env.process(gateway(env))
    env.run(until=hours + 1)
    return out
