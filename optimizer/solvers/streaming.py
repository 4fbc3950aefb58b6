"""One budget over more users than memory holds: the bracket-and-core solve, streamed in chunks.

The solve of :mod:`optimizer.solvers.budget` needs each user only through their own options, so
it runs over any re-readable sequence of chunks (a Parquet dataset read batch by batch, a
partition of a cluster table):

1. a sample pass keeps ``m`` users drawn uniformly in bounded memory (the smallest of seeded
   random keys), and the sample's hull brackets the budget's price ``lam*`` between ``lam_lo``
   and ``lam_hi``;
2. a bracket pass evaluates every user's option at both prices (two vectorised argmaxes per
   chunk), sums the cost and value of each side, and keeps only the *core*: the users whose
   option differs between the two prices, with their option rows. A bracket that misses the
   budget is widened and the pass repeated;
3. the core is solved exactly by the hull greedy with the budget the fixed users leave.

The result is a rule, not an array: every user outside the core takes their option at
``lam_hi``, the core users take the option listed for them. :meth:`StreamedBudget.choose`
applies it to any chunk, so the plan is written in one more pass, chunk by chunk, and memory
stays at one chunk plus the core (a few percent of the users), whatever the number of users.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from optimizer.solvers.hull import _lp_bound, greedy_choice, hull_of
from optimizer.solvers.problem import CampaignProblem

__all__ = [
    "Chunk",
    "PassPart",
    "StreamedBudget",
    "solve_budget_streamed",
    "sample_prices",
    "bracket_part",
    "widened",
    "solve_core",
    "default_width",
    "options_at",
    "uniform_sample",
    "with_core",
    "SAMPLE_USERS",
]

T = TypeVar("T")

#: Users in the sample that brackets the price.
SAMPLE_USERS = 100_000
#: Rows per torch kernel inside a chunk (a few MB of temporaries).
KERNEL_ROWS = 1 << 18


@dataclass
class Chunk:
    """The options of some users: what the budget solve reads.

    Attributes
    ----------
    user_id : ndarray of int64, shape (m,)
        Unique across all chunks of a source.
    value : ndarray of float64, shape (m, k)
        Objective gain of each option (conversions or money).
    cost : ndarray of float64, shape (m, k)
        Expected cost of each option (money).
    eligible : ndarray of bool, shape (m, k)
    """

    user_id: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    eligible: np.ndarray

    def __post_init__(self) -> None:
        shape = np.shape(self.value)  # (m, k)
        if (np.shape(self.user_id) != shape[:1] or len(shape) != 2
                or np.shape(self.cost) != shape or np.shape(self.eligible) != shape):  # fmt: skip
            raise ValueError(
                f"a chunk's arrays disagree: user_id {np.shape(self.user_id)}, value "
                f"{np.shape(self.value)}, cost {np.shape(self.cost)}, eligible "
                f"{np.shape(self.eligible)} (expected (m,) and three of (m, k))"
            )

    @classmethod
    def of(cls, problem: CampaignProblem, rows: slice = slice(None)) -> Chunk:
        """The rows ``rows`` of ``problem`` (views, no copy)."""
        return cls(
            problem.user_id[rows], problem.value[rows], problem.cost[rows], problem.eligible[rows]
        )

    @property
    def n_users(self) -> int:
        """Users in the chunk."""
        return int(self.user_id.size)


#: A source of chunks: called once per pass, it yields every user exactly once.
ChunkSource = Callable[[], Iterable[Chunk]]


def options_at(
    chunk: Chunk, prices: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's option at each price, and each price's total cost and value.

    User i's option at price ``lam`` is ``argmax_k (v_ik - lam c_ik)`` among eligible options
    with ``v_ik > 0``, or none (-1) when no option scores above 0.

    Returns
    -------
    choice : ndarray of int8, shape (len(prices), m)
    cost, value : ndarray, shape (len(prices),)
        Total cost (money) and value of each price's options.
    """
    import torch  # imported here: only the large-scale paths need it

    m = chunk.n_users
    choice = np.full((len(prices), m), -1, dtype=np.int8)
    cost = np.zeros(len(prices))
    value = np.zeros(len(prices))
    values = torch.from_numpy(np.ascontiguousarray(chunk.value, dtype=np.float64))
    costs = torch.from_numpy(np.ascontiguousarray(chunk.cost, dtype=np.float64))
    eligible = torch.from_numpy(np.ascontiguousarray(chunk.eligible))
    with torch.no_grad():
        for lo in range(0, m, KERNEL_ROWS):
            hi = min(m, lo + KERNEL_ROWS)
            v, c = values[lo:hi], costs[lo:hi]
            v = torch.where(eligible[lo:hi] & (v > 0), v, float("-inf"))
            for side, lam in enumerate(prices):
                best, arg = (v - lam * c).max(dim=1)
                take = best > 0
                choice[side, lo:hi] = torch.where(take, arg, -1).numpy()
                at = arg[:, None]
                cost[side] += float(torch.where(take, c.gather(1, at)[:, 0], 0.0).sum())
                value[side] += float(torch.where(take, v.gather(1, at)[:, 0], 0.0).sum())
    return choice, cost, value


@dataclass
class StreamedBudget:
    """The plan of a streamed budget solve, as a rule any chunk can apply.

    Attributes
    ----------
    price_hi : float
        Users outside the core take their option at this price (objective units per money).
    core_user_id : ndarray of int64, shape (c,)
        The core's users, sorted.
    core_choice : ndarray of int16, shape (c,)
        Their options (-1 none).
    value, cost : float
        Objective value and expected cost (money) of the plan.
    upper_bound : float
        LP relaxation value at the budget.
    price : float
        The budget's multiplier ``lam*``.
    n_users, core_users, passes : int
        Users in the source, users solved exactly, passes over the source (sample pass
        included; writing the plan is one more).
    choice : ndarray of int16, shape (n,), optional
        Every user's option in source order, when the solve was asked to keep them.
    """

    price_hi: float
    core_user_id: np.ndarray
    core_choice: np.ndarray
    value: float
    cost: float
    upper_bound: float
    price: float
    n_users: int
    core_users: int
    passes: int
    choice: np.ndarray | None = None

    def choose(self, chunk: Chunk) -> np.ndarray:
        """The plan's option for each user of ``chunk``, int16 shape (m,) (-1 none)."""
        choice = options_at(chunk, (self.price_hi,))[0][0].astype(np.int16)
        return with_core(choice, chunk.user_id, self.core_user_id, self.core_choice)


def with_core(choice: np.ndarray, user_id: np.ndarray, core_user_id: np.ndarray,
              core_choice: np.ndarray) -> np.ndarray:  # fmt: skip
    """``choice`` (shape (m,), in place) with the core's listed options for its users.

    ``core_user_id`` is sorted (shape (c,)); users of ``user_id`` not in it keep their option.
    """
    if core_user_id.size:
        at = np.minimum(np.searchsorted(core_user_id, user_id), core_user_id.size - 1)
        found = core_user_id[at] == user_id
        choice[found] = core_choice[at[found]]
    return choice


def _rows(chunk: Chunk, rows: np.ndarray) -> Chunk:
    """The users ``rows`` (indices or a mask) of ``chunk``, copied."""
    return Chunk(chunk.user_id[rows], chunk.value[rows], chunk.cost[rows], chunk.eligible[rows])


def uniform_sample(
    parts: Iterable[T],
    size: int,
    seed: int,
    count: Callable[[T], int],
    take: Callable[[T, np.ndarray], T],
    concat: Callable[[list[T]], T],
) -> tuple[T | None, int]:
    """A uniform sample of ``size`` users of ``parts`` in bounded memory, and their count.

    Each user draws a key (seeded per part) and the ``size`` smallest keys are kept: a sample
    without replacement whatever the number of users, holding at most twice ``size`` users
    plus one part's candidates. ``count``, ``take`` and ``concat`` say how a part counts,
    subsets and joins its users (chunks of options, campaign problems).

    Returns
    -------
    sample : same type as the parts, or None when there were no parts
    n : int
        Users in all parts.
    """
    kept: T | None = None
    keys = np.empty(0)
    cut = np.inf  # the size-th smallest key so far: larger keys can never be kept
    n = 0
    for index, part in enumerate(parts):
        m = count(part)
        n += m
        drawn = np.random.default_rng([seed, index]).random(m)
        take_rows = np.flatnonzero(drawn < cut)
        fresh = take(part, take_rows)
        kept = fresh if kept is None else concat([kept, fresh])
        keys = np.concatenate([keys, drawn[take_rows]])
        if keys.size > 2 * size:
            best = np.argpartition(keys, size - 1)[:size]
            kept, keys = take(kept, best), keys[best]
            cut = float(keys.max())
    if kept is not None and keys.size > size:
        kept = take(kept, np.argpartition(keys, size - 1)[:size])
    return kept, n


def _sample(source: ChunkSource, size: int, seed: int) -> tuple[Chunk, int]:
    """A uniform sample of ``size`` users of the source's chunks, and their count."""
    kept, n = uniform_sample(
        source(), size, seed, lambda c: c.n_users, _rows,
        lambda parts: _concat(parts, parts[0].value.shape[1]),
    )  # fmt: skip
    return (_concat([], 0) if kept is None else kept), n


def _concat(chunks: list[Chunk], k: int) -> Chunk:
    if not chunks:
        return Chunk(np.empty(0, np.int64), np.empty((0, k)), np.empty((0, k)),
                     np.empty((0, k), bool))  # fmt: skip
    return Chunk(
        np.concatenate([c.user_id for c in chunks]),
        np.concatenate([c.value for c in chunks]),
        np.concatenate([c.cost for c in chunks]),
        np.concatenate([c.eligible for c in chunks]),
    )


def sample_prices(
    sample: Chunk, share: float, budget: float, width: float
) -> tuple[float, float, float]:
    """The bracket of the budget's price from a sample of users.

    Parameters
    ----------
    sample : Chunk
        Users drawn uniformly, each with probability ``share``.
    share : float
        The sample's share of all users.
    budget : float
        Expected-cost budget (money).
    width : float
        Relative half-width of the bracket in budget terms.

    Returns
    -------
    lam_lo, lam_hi, floor : float
        The prices at the sample-scaled budgets ``B (1 + width)`` and ``B (1 - width)``, and
        the sample's smallest hull slope (a start when the bracket must be raised from 0).
    """
    seg = hull_of(sample.value, sample.cost, sample.eligible)
    slopes = seg.d_value / np.maximum(seg.d_cost, 1e-300)

    def price(b: float) -> float:
        at = int(np.searchsorted(seg.cum_cost, b * share, side="right"))
        return float(slopes[at]) if at < slopes.size else 0.0

    floor = float(slopes[-1]) if slopes.size else 1e-12
    return price(budget * (1 + width)), price(budget * (1 - width)), max(floor, 1e-12)


@dataclass
class PassPart:
    """What a bracket pass keeps of some users: totals at both prices and the core.

    Parts of chunks (or of partitions on a cluster) add up with :meth:`merge`.

    Attributes
    ----------
    cost, value : ndarray, shape (2,)
        Total cost (money) and value of the options at (``lam_lo``, ``lam_hi``).
    core : Chunk
        Users whose option differs between the two prices, with their option rows.
    core_hi : ndarray of int64, shape (c,)
        Their options at ``lam_hi``.
    """

    cost: np.ndarray
    value: np.ndarray
    core: Chunk
    core_hi: np.ndarray

    @classmethod
    def merge(cls, parts: list[PassPart], k: int) -> PassPart:
        """The parts of several chunks as one."""
        return cls(
            sum((p.cost for p in parts), np.zeros(2)),
            sum((p.value for p in parts), np.zeros(2)),
            _concat([p.core for p in parts], k),
            np.concatenate([p.core_hi for p in parts]) if parts else np.empty(0, np.int64),
        )


def bracket_part(
    chunk: Chunk, prices: tuple[float, float]
) -> tuple[PassPart, np.ndarray, np.ndarray]:
    """One chunk's share of a bracket pass.

    Returns the part, the users' options at ``lam_hi`` (int8, shape (m,)) and the core's
    positions in the chunk.
    """
    choice, cost, value = options_at(chunk, prices)
    moved = np.flatnonzero(choice[0] != choice[1])
    part = PassPart(cost, value, _rows(chunk, moved), choice[1, moved].astype(np.int64))
    return part, choice[1], moved


def widened(
    part: PassPart, budget: float, prices: tuple[float, float], floor: float
) -> tuple[float, float] | None:
    """A wider bracket when a pass's totals miss the budget, else None (the bracket holds)."""
    lam_lo, lam_hi = prices
    if part.cost[1] > budget:  # even the high price spends too much: raise it
        return lam_hi, max(2.0 * lam_hi, floor)
    if part.cost[0] < budget and lam_lo > 0:  # the low price spends too little: lower it
        return (0.0 if lam_lo < 1e-12 else 0.5 * lam_lo), lam_lo
    return None


def solve_core(
    part: PassPart, budget: float, prices: tuple[float, float], n_users: int, passes: int
) -> tuple[StreamedBudget, np.ndarray]:
    """The core solved exactly with the budget the fixed users leave: the plan's rule.

    Returns the plan and the core's options in the part's core order.
    """
    rest, at_hi = part.core, part.core_hi
    rows = np.arange(rest.n_users)
    on = at_hi >= 0
    fixed_cost = part.cost[1] - float(rest.cost[rows[on], at_hi[on]].sum())
    fixed_value = part.value[1] - float(rest.value[rows[on], at_hi[on]].sum())
    seg = hull_of(rest.value, rest.cost, rest.eligible)
    room = budget - fixed_cost
    sub_choice = greedy_choice(seg, rest.n_users, room)
    on = sub_choice >= 0
    plan_value = fixed_value + float(rest.value[rows[on], sub_choice[on]].sum())
    plan_cost = fixed_cost + float(rest.cost[rows[on], sub_choice[on]].sum())
    at = int(np.searchsorted(seg.cum_cost, room, side="right"))
    price = float(seg.d_value[at] / seg.d_cost[at]) if at < seg.d_cost.size else prices[0]
    order = np.argsort(rest.user_id, kind="stable")
    plan = StreamedBudget(
        price_hi=prices[1],
        core_user_id=rest.user_id[order],
        core_choice=sub_choice[order].astype(np.int16),
        value=plan_value,
        cost=plan_cost,
        upper_bound=max(plan_value, fixed_value + _lp_bound(seg, room)),
        price=price,
        n_users=n_users,
        core_users=int(rest.n_users),
        passes=passes,
    )
    return plan, sub_choice


def default_width(sample_users: int) -> float:
    """The bracket's half-width for a sample of that many users: several standard errors."""
    return max(0.02, 6.0 / np.sqrt(max(sample_users, 1)))


def solve_budget_streamed(
    source: ChunkSource,
    budget: float,
    *,
    n_users: int | None = None,
    sample_users: int = SAMPLE_USERS,
    width: float | None = None,
    seed: int = 0,
    keep: bool = False,
) -> StreamedBudget:
    """The hull greedy's plan and LP bound at one budget, reading the users chunk by chunk.

    Parameters
    ----------
    source : callable
        Returns a fresh iterable of :class:`Chunk` each time it is called (once per pass),
        every user exactly once, in the same order.
    budget : float
        Expected-cost budget (money).
    n_users : int, optional
        Users in the source, checked against the count of the sample pass.
    sample_users : int
        Users of the sample that brackets the price (drawn without replacement).
    width : float, optional
        Relative half-width of the bracket in budget terms (default :func:`default_width`).
    seed : int
        Seed of the sample.
    keep : bool
        Also keep every user's option (n bytes): for sources that fit in memory, which then
        need no pass to write the plan.

    Returns
    -------
    StreamedBudget
        The plan as a rule (:meth:`StreamedBudget.choose`), its value, cost and LP bound.
    """
    sample, n = _sample(source, max(sample_users, 1), seed)
    if n_users is not None and n != n_users:
        raise ValueError(f"the source yielded {n} users; n_users says {n_users}")
    width = default_width(sample.n_users) if width is None else width
    lam_lo, lam_hi, floor = sample_prices(sample, sample.n_users / max(n, 1), budget, width)
    prices: tuple[float, float] | None = (lam_lo, lam_hi)
    passes = 1
    while prices is not None:
        passes += 1
        parts, kept, where = [], [], []
        k = offset = 0
        for chunk in source():
            part, at_hi, moved = bracket_part(chunk, prices)
            parts.append(part)
            k = chunk.value.shape[1]
            if keep:
                kept.append(at_hi)
                where.append(offset + moved)
            offset += chunk.n_users
        whole = PassPart.merge(parts, k)
        bracket, prices = prices, widened(whole, budget, prices, floor)
    plan, sub_choice = solve_core(whole, budget, bracket, n, passes)
    if keep:  # the core's options replace their high-price ones, in source order
        plan.choice = np.concatenate(kept).astype(np.int16) if kept else np.empty(0, np.int16)
        if where:
            plan.choice[np.concatenate(where)] = sub_choice
    return plan
