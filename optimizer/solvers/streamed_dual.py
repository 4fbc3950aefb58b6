"""Every constraint over more users than memory holds: the dual decomposition, streamed.

:mod:`optimizer.solvers.streaming` streams the budget alone; this module streams the budget
with caps, the message cap, the minimum ROI and segment shares, reading the users through any
re-readable source of :class:`~optimizer.solvers.problem.CampaignProblem` chunks:

1. **Sample pass.** A uniform sample of ``m`` users (bounded memory), whose rows' right-hand
   sides are scaled by the sample's share, is solved by the decomposition of
   :mod:`optimizer.solvers.dual`: its multipliers ``lam0`` price every row.
2. **Box pass.** Around ``lam0`` a box ``[lo, hi]`` of multipliers. Each user's reduced values
   ``v_ik - sum_j lam_j a^j_ik`` are affine in the multipliers, so the set of multipliers at
   which one option (or nothing) is the user's best is convex, and a user whose best option at
   ``lam0`` beats every other one at the box's worst corner for that pair (per pair
   ``v_b - v_k - sum_j max(lo_j d_j, hi_j d_j) > 0`` with ``d_j = a^j_b - a^j_k``) keeps it
   at every multiplier in the box. Those users are *fixed*: the pass only sums their value
   and their use of every row. The others are the *core*, kept whole.
3. **Core solve.** The core is solved in memory by the decomposition, each row's right-hand
   side being what the fixed users leave (a share row's may be negative), with its core
   polish. When its multipliers ``lam_c`` fall inside the box the fixed users' best options
   are those at ``lam_c`` too, so the whole dual at ``lam_c`` is the fixed users' value plus
   the core's dual: **the certified bound of the whole problem**, at no extra pass. When
   ``lam_c`` leaves the box the box is stretched to reach it with room to spare; when the fixed
   users leave the core no feasible plan it is made four times as wide; and the pass is repeated.

The plan is a rule (:class:`StreamedDual`): a user outside the core takes the best option at
``lam0``, a core user the option listed. :meth:`StreamedDual.choose` applies it to any chunk,
so the plan is written chunk by chunk and memory stays at one chunk, the sample and the core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from optimizer.errors import InputError
from optimizer.solvers.constraints import Constraints, LinearRow, linear_rows, violations
from optimizer.solvers.dual import POLISH_GAP, _masked_values, solve_dual_rows
from optimizer.solvers.problem import CampaignProblem, concat_problems
from optimizer.solvers.streaming import (
    KERNEL_ROWS,
    SAMPLE_USERS,
    default_width,
    uniform_sample,
    with_core,
)

__all__ = [
    "StreamedDual",
    "DualPart",
    "solve_dual_streamed",
    "sample_multipliers",
    "dual_part",
    "solve_dual_core",
    "finish_box",
    "box_around",
    "no_certified_plan",
    "check_core",
    "MAX_CORE_USERS",
    "BOX_ROUNDS",
]

#: A source of problem chunks: called once per pass, it yields every user exactly once.
ProblemSource = Callable[[], Iterable[CampaignProblem]]
#: Box passes before the solve gives up on certifying through the box.
BOX_ROUNDS = 8
#: The most users a box pass may leave undecided (about 0.5 KB each in memory).
MAX_CORE_USERS = 10_000_000
#: How much wider the box grows when the fixed users leave the core no feasible plan.
GROWTH = 4.0
#: A zero multiplier's box reaches this share of the row's natural price scale.
ZERO_REACH = 0.05


def _options(problem: CampaignProblem, rows: list[LinearRow], constraints: Constraints,
             at: slice) -> tuple[np.ndarray, list[np.ndarray]]:  # fmt: skip
    """Values and row coefficients of ``at``'s users with "nothing" as column 0.

    Returns ``value`` of shape (m, k + 1) (-inf where an option may not be sent) and one
    (m, k + 1) coefficient array per row.
    """
    part = problem.take(at)
    m, k = part.n_users, len(problem.menu)
    value = np.zeros((m, k + 1))
    value[:, 1:] = _masked_values(part, constraints)
    coeffs = []
    for row in rows:
        a = np.zeros((m, k + 1))
        a[:, 1:] = row.take(at).matrix(m, k)
        coeffs.append(a)
    return value, coeffs


def _best(value: np.ndarray, coeffs: list[np.ndarray], lam: np.ndarray) -> np.ndarray:
    """Column of the best reduced value at ``lam`` (0 = nothing; ties to the lower column)."""
    reduced = value.copy()
    for a, m in zip(coeffs, lam, strict=True):
        if m:
            reduced -= m * a
    return np.argmax(reduced, axis=1)


@dataclass
class StreamedDual:
    """The plan of a streamed constrained solve, as a rule any chunk can apply.

    Attributes
    ----------
    budget : float
        Expected-cost budget (money).
    constraints : Constraints
    center : ndarray, shape (r,)
        Multipliers at which users outside the core take their best option (one per row of
        :func:`~optimizer.solvers.constraints.linear_rows`, budget first).
    core_user_id : ndarray of int64, shape (c,)
        The core's users, sorted.
    core_choice : ndarray of int16, shape (c,)
        Their options (-1 none).
    value, cost : float
        Objective value and expected cost (money) of the plan.
    upper_bound : float
        Certified dual bound of the whole problem.
    multipliers : dict of str to float
        The rows' multipliers at the bound.
    usage : dict of str to float
        Each row's use by the plan (its right-hand side is in the rows).
    n_users, core_users, passes : int
        Users in the source, users solved in memory, passes over the source (the sample pass
        included; writing the plan is one more).
    choice : ndarray of int16, shape (n,), optional
        Every user's option in source order, when the solve was asked to keep them.
    """

    budget: float
    constraints: Constraints
    center: np.ndarray
    core_user_id: np.ndarray
    core_choice: np.ndarray
    value: float
    cost: float
    upper_bound: float
    multipliers: dict[str, float]
    usage: dict[str, float]
    n_users: int
    core_users: int
    passes: int
    choice: np.ndarray | None = None

    @property
    def gap(self) -> float:
        """Certified relative optimality gap ``(upper_bound - value) / upper_bound``."""
        if self.upper_bound <= 0:
            return 0.0
        return max(0.0, (self.upper_bound - self.value) / self.upper_bound)

    def choose(self, problem: CampaignProblem) -> np.ndarray:
        """The plan's option for each user of ``problem``, int16 shape (m,) (-1 none)."""
        rows = linear_rows(problem, self.budget, self.constraints)
        choice = np.empty(problem.n_users, dtype=np.int16)
        for lo in range(0, problem.n_users, KERNEL_ROWS):
            at = slice(lo, min(problem.n_users, lo + KERNEL_ROWS))
            value, coeffs = _options(problem, rows, self.constraints, at)
            choice[at] = _best(value, coeffs, self.center) - 1
        return with_core(choice, problem.user_id, self.core_user_id, self.core_choice)


@dataclass
class DualPart:
    """What a box pass keeps of some users: the fixed users' totals and the core.

    Parts of chunks (or of partitions on a cluster) add up with :meth:`merge`.

    Attributes
    ----------
    value : float
        The fixed users' value at their options.
    usage : ndarray, shape (r,)
        Their use of each row.
    core : CampaignProblem or None
        The users whose best option may change inside the box (None: no user).
    """

    value: float
    usage: np.ndarray
    core: CampaignProblem | None

    @classmethod
    def merge(cls, parts: list[DualPart], r: int) -> DualPart:
        """The parts of several chunks as one."""
        cores = [p.core for p in parts if p.core is not None and p.core.n_users]
        return cls(
            float(sum(p.value for p in parts)),
            sum((p.usage for p in parts), np.zeros(r)),
            concat_problems(cores) if cores else None,
        )


def dual_part(
    problem: CampaignProblem,
    budget: float,
    constraints: Constraints,
    box: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[DualPart, np.ndarray, np.ndarray]:
    """One chunk's share of a box pass.

    Parameters
    ----------
    problem : CampaignProblem
        The chunk's users.
    budget : float
    constraints : Constraints
    box : (center, lo, hi), each of shape (r,)
        Multipliers of the rule and the box around them.

    Returns
    -------
    part : DualPart
    choice : ndarray of int16, shape (m,)
        Every user's option at the center (-1 none).
    core : ndarray of int64
        The core's positions in the chunk.
    """
    center, lo, hi = box
    rows = linear_rows(problem, budget, constraints)
    m = problem.n_users
    choice = np.empty(m, dtype=np.int16)
    stable = np.empty(m, dtype=bool)
    value_sum, usage = 0.0, np.zeros(len(rows))
    for start in range(0, m, KERNEL_ROWS):
        at = slice(start, min(m, start + KERNEL_ROWS))
        value, coeffs = _options(problem, rows, constraints, at)
        best = _best(value, coeffs, center)
        users = np.arange(best.size)
        # The worst case over the box of (best - other) for every other column.
        worst = value[users, best][:, None] - value
        with np.errstate(invalid="ignore"):
            for a, low, high in zip(coeffs, lo, hi, strict=True):
                d = a[users, best][:, None] - a
                worst -= np.maximum(low * d, high * d)
        worst[users, best] = np.inf
        scale = np.abs(value[users, best]) + 1e-12
        keep = np.nan_to_num(worst, nan=-np.inf).min(axis=1) > 1e-9 * scale
        choice[at], stable[at] = best - 1, keep
        fixed = users[keep]
        value_sum += float(value[fixed, best[fixed]].sum())
        usage += [float(a[fixed, best[fixed]].sum()) for a in coeffs]
    core = np.flatnonzero(~stable)
    return DualPart(value_sum, usage, problem.take(core) if core.size else None), choice, core


def _rhs_scaled(rows: list[LinearRow], share: float) -> list[LinearRow]:
    return [replace(r, rhs=r.rhs * share) for r in rows]


def sample_multipliers(
    sample: CampaignProblem, share: float, budget: float, constraints: Constraints, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows' multipliers on a sample, and each row's natural price scale.

    The sample's rows keep their coefficients and take ``share`` of each right-hand side.

    Returns
    -------
    lam0 : ndarray, shape (r,)
        Multipliers of the sample's dual (objective units per row unit).
    unit : ndarray, shape (r,)
        Largest option value over each row's mean absolute coefficient: the price at which a
        row would cancel the best option of a typical user.
    """
    rows = linear_rows(sample, budget, constraints)
    value = _masked_values(sample, constraints)
    sol = solve_dual_rows(value, _rhs_scaled(rows, share), polish_gap=np.inf, seed=seed)
    finite = np.isfinite(value)
    vscale = float(np.abs(value[finite]).max()) if finite.any() else 1.0
    users, cols = np.nonzero(finite)
    unit = np.ones(len(rows))
    for j, row in enumerate(rows):
        typical = float(np.abs(row.at(users, cols)).mean()) if users.size else 0.0
        unit[j] = (vscale or 1.0) / (typical if typical > 0 else 1.0)
    return np.array([sol.multipliers[r.name] for r in rows]), unit


def box_around(center: np.ndarray, unit: np.ndarray, width: float) -> tuple[np.ndarray, ...]:
    """The box ``(center, lo, hi)`` of relative half-width ``width``.

    A row whose multiplier is 0 reaches ``ZERO_REACH`` of its price scale ``unit``.
    """
    radius = width * np.maximum(center, ZERO_REACH * unit)
    return center, np.maximum(center - radius, 0.0), center + radius


def _grown(box: tuple[np.ndarray, ...], lam: np.ndarray | None, unit: np.ndarray,
           width: float) -> tuple[np.ndarray, ...]:  # fmt: skip
    """The next box, around the same center.

    It reaches ``lam`` (the core's multipliers, when they left the box) with room to spare, or
    (``lam`` None: the fixed users left the core no feasible plan) is ``GROWTH`` times as wide.
    """
    center, lo, hi = box
    if lam is None:
        return (center, np.maximum(center - GROWTH * (center - lo), 0.0),
                center + GROWTH * (hi - center))  # fmt: skip
    reach = 2.0 * width * np.maximum(lam, ZERO_REACH * unit)
    return center, np.maximum(np.minimum(lo, lam - reach), 0.0), np.maximum(hi, lam + reach)


def solve_dual_core(
    part: DualPart,
    rows: list[LinearRow],
    constraints: Constraints,
    *,
    polish_gap: float = POLISH_GAP,
    seed: int = 0,
) -> tuple[np.ndarray, float, float, float, np.ndarray, bool]:
    """The core solved in memory with what the fixed users leave of every row.

    Parameters
    ----------
    part : DualPart
        A whole box pass.
    rows : list of LinearRow
        The whole problem's rows (only names and right-hand sides are read).
    constraints : Constraints
    polish_gap, seed
        As :func:`~optimizer.solvers.dual.solve_dual`.

    Returns
    -------
    choice : ndarray of int16, shape (c,)
        The core's options in the part's core order.
    value, cost, bound : float
        The whole plan's value and expected cost, and fixed value + the core's dual bound.
    lam : ndarray, shape (r,)
        The core's multipliers at its bound.
    feasible : bool
        Whether the whole plan keeps every row.
    """
    rhs = np.array([r.rhs for r in rows]) - part.usage
    core = part.core
    if core is None:
        empty = np.empty(0, np.int16)
        ok = bool((rhs >= -1e-9 * np.maximum(1.0, np.abs(part.usage))).all())
        return empty, part.value, float(part.usage[0]), part.value, np.zeros(len(rows)), ok
    core_rows = [replace(r, rhs=float(b)) for r, b in
                 zip(linear_rows(core, 0.0, constraints), rhs, strict=True)]  # fmt: skip
    value = _masked_values(core, constraints)
    sol = solve_dual_rows(value, core_rows, polish_gap=polish_gap, seed=seed)
    lam = np.array([sol.multipliers[r.name] for r in core_rows])
    feasible = not violations(sol.choice.astype(np.int64), core_rows)
    return (sol.choice, part.value + sol.value, float(part.usage[0]) + sol.cost,
            part.value + sol.upper_bound, lam, feasible)  # fmt: skip


def check_core(users: int, limit: int = MAX_CORE_USERS) -> None:
    """Refuse a core of more than ``limit`` users (one line), before memory runs out."""
    if users > limit:
        raise InputError(
            f"more than {limit:,} users stay undecided around the sample's multipliers; raise "
            "the sample (sample_users) or check the scores and constraints",
            key="constraints",
        )


def no_certified_plan() -> InputError:
    """The error of a streamed solve whose box never certified a plan."""
    return InputError(
        f"the streamed solve found no certified plan in {BOX_ROUNDS} passes (the rows may "
        "leave no feasible plan); plan in memory",
        key="constraints",
    )


def finish_box(
    part: DualPart,
    rows: list[LinearRow],
    budget: float,
    constraints: Constraints,
    box: tuple[np.ndarray, ...],
    unit: np.ndarray,
    width: float,
    n_users: int,
    passes: int,
    *,
    polish_gap: float = POLISH_GAP,
    seed: int = 0,
) -> tuple[StreamedDual | None, tuple[np.ndarray, ...], float, np.ndarray]:
    """After a box pass: the core solved, and the plan when the box certifies it.

    Parameters
    ----------
    part : DualPart
        The whole pass.
    rows : list of LinearRow
        The rows of the problem (names and right-hand sides).
    budget : float
    constraints : Constraints
    box : (center, lo, hi)
        The pass's box.
    unit : ndarray, shape (r,)
        The rows' price scales (:func:`sample_multipliers`).
    width : float
        The box's relative half-width.
    n_users, passes : int
        Users in the source; passes so far (sample pass included).
    polish_gap, seed
        As :func:`~optimizer.solvers.dual.solve_dual`.

    Returns
    -------
    plan : StreamedDual or None
        None when the core's multipliers left the box or it had no feasible plan.
    box, width
        The next pass's box and width (unchanged with a plan).
    choice : ndarray of int16, shape (c,)
        The core's options in the part's core order.
    """
    choice, value, cost, bound, lam, feasible = solve_dual_core(
        part, rows, constraints, polish_gap=polish_gap, seed=seed
    )
    inside = bool(((lam >= box[1] - 1e-12 * unit) & (lam <= box[2] + 1e-12 * unit)).all())
    if not (feasible and inside):
        grown = _grown(box, lam if feasible else None, unit, width)
        return None, grown, width * (2.0 if feasible else GROWTH), choice
    core = part.core
    ids = np.empty(0, np.int64) if core is None else core.user_id
    order = np.argsort(ids, kind="stable")
    plan = StreamedDual(
        budget=float(budget), constraints=constraints, center=box[0],
        core_user_id=ids[order], core_choice=choice[order].astype(np.int16),
        value=value, cost=cost, upper_bound=max(bound, value),
        multipliers={r.name: float(m) for r, m in zip(rows, lam, strict=True)},
        usage={r.name: float(u) for r, u in zip(rows, part.usage, strict=True)},
        n_users=n_users, core_users=int(ids.size), passes=passes,
    )  # fmt: skip
    if core is not None:  # the plan's use of each row: the fixed users' and the core's
        for r in linear_rows(core, budget, constraints):
            plan.usage[r.name] += r.usage(choice.astype(np.int64))
    return plan, box, width, choice


def solve_dual_streamed(
    source: ProblemSource,
    budget: float,
    constraints: Constraints,
    *,
    n_users: int | None = None,
    sample_users: int = SAMPLE_USERS,
    width: float | None = None,
    polish_gap: float = POLISH_GAP,
    seed: int = 0,
    keep: bool = False,
    max_core_users: int = MAX_CORE_USERS,
) -> StreamedDual:
    """Plan under the budget and every constraint, reading the users chunk by chunk.

    Parameters
    ----------
    source : callable
        Returns a fresh iterable of :class:`~optimizer.solvers.problem.CampaignProblem`
        chunks each time it is called (once per pass): every user exactly once, same order.
    budget : float
        Expected-cost budget (money).
    constraints : Constraints
        Caps, message cap, minimum ROI, segment shares (segments by label, over all chunks).
    n_users : int, optional
        Users in the source, checked against the count of the sample pass.
    sample_users : int
        Users of the sample that prices the rows.
    width : float, optional
        Relative half-width of the first box (default
        :func:`~optimizer.solvers.streaming.default_width`).
    polish_gap : float
        The core's polish runs while its gap is above this.
    seed : int
    keep : bool
        Also keep every user's option in source order (for sources that fit in memory).
    max_core_users : int
        The most undecided users a pass may hold (memory): beyond, the solve stops with an
        :class:`InputError` instead of growing without bound.

    Returns
    -------
    StreamedDual
        The plan as a rule (:meth:`StreamedDual.choose`), its figures and certified bound.

    Raises
    ------
    InputError
        A constraint names a denomination or segment no user has, or no plan keeps the rows.
    """
    labels: set[str] = set()

    def counted() -> Iterable[CampaignProblem]:
        for chunk in source():
            labels.update(chunk.segment_names)
            yield chunk

    sample, n = uniform_sample(
        counted(), max(sample_users, 1), seed, lambda q: q.n_users, CampaignProblem.take,
        concat_problems,
    )  # fmt: skip
    if n_users is not None and n != n_users:
        raise ValueError(f"the source yielded {n} users; n_users says {n_users}")
    if sample is None or n == 0:
        raise InputError("no users to plan", key="scores")
    # Validated against every user's labels, not only the sample's.
    constraints.validate(replace(sample, segment_names=tuple(sorted(labels))))
    rows = linear_rows(sample, budget, constraints)
    center, unit = sample_multipliers(sample, sample.n_users / n, budget, constraints, seed)
    del sample
    width = default_width(sample_users) if width is None else width
    box = box_around(center, unit, width)
    passes = 1
    for _ in range(BOX_ROUNDS):
        passes += 1
        parts, kept, where, offset = [], [], [], 0
        held = 0
        for chunk in source():
            part, choice, core = dual_part(chunk, budget, constraints, box)
            held += core.size
            check_core(held, max_core_users)
            parts.append(part)
            if keep:
                kept.append(choice)
                where.append(offset + core)
            offset += chunk.n_users
        whole_part = DualPart.merge(parts, len(rows))
        del parts
        plan, box, width, choice = finish_box(
            whole_part, rows, budget, constraints, box, unit, width, n, passes,
            polish_gap=polish_gap, seed=seed,
        )  # fmt: skip
        if plan is not None:
            break
    else:
        raise no_certified_plan()
    if keep:
        plan.choice = np.concatenate(kept) if kept else np.empty(0, np.int16)
        if where:
            plan.choice[np.concatenate(where)] = choice
    return plan
