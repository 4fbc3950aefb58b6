"""Business constraints of a campaign, and the linear rows every solver and check shares.

Besides the budget (always), a plan may have to respect:

* ``max_per_denomination``: coupon inventory, at most ``cap_k`` coupons of denomination k;
* ``max_messages``: at most this many messages (coupons) in all;
* ``min_roi``: expected incremental GMV at least ``min_roi`` times the expected cost;
* ``segment_shares``: the share of the *messages* that go to one segment of users (a label
  column of the user table, the lifecycle stage by default) kept within ``[min, max]``.

Each is one or more linear rows ``sum_ik a_ik x_ik <= rhs`` over the binary choices ``x_ik``
(user i gets coupon k). A row stores its coefficients without building an (n, k) matrix when it
does not need one: ``a_ik = entry_ik + user_i * option_k`` where any part may be absent
(``entry`` absent means 0; of ``user`` and ``option``, an absent one means 1, both absent means
no rank-one part). Segment shares are homogeneous rows: ``min <= n_s / n_sent`` is
``sum_i (min - [i in s]) x_i <= 0``. Every row has ``rhs >= 0``, so the empty plan is always
feasible and a repair that drops users always ends in a feasible plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from optimizer.errors import InputError
from optimizer.solvers.problem import CampaignProblem

__all__ = [
    "SegmentShare",
    "Constraints",
    "LinearRow",
    "linear_rows",
    "violations",
    "repair_plan",
    "fill_plan",
]


@dataclass(frozen=True)
class SegmentShare:
    """Bounds on the share of messages that go to one segment.

    Parameters
    ----------
    segment : str
        Label in the segment column (e.g. ``dormant`` for the lifecycle stage).
    min, max : float
        Share of all messages sent, in [0, 1].
    """

    segment: str
    min: float = 0.0
    max: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min <= self.max <= 1.0:
            raise InputError(
                f"segment share of {self.segment!r} needs 0 <= min <= max <= 1 "
                f"(got min {self.min:g}, max {self.max:g})",
                key="constraints.segment_shares",
            )


@dataclass(frozen=True)
class Constraints:
    """Everything a plan must respect besides the budget.

    Parameters
    ----------
    max_per_denomination : mapping of str to int, optional
        Coupon inventory per denomination name.
    max_messages : int, optional
        Cap on messages (coupons) sent.
    min_roi : float, optional
        Expected incremental GMV / expected cost must be at least this (money per money).
    segment_shares : sequence of SegmentShare
        Share bounds per segment label, on the segment column of the problem.
    """

    max_per_denomination: Mapping[str, int] | None = None
    max_messages: int | None = None
    min_roi: float | None = None
    segment_shares: Sequence[SegmentShare] = field(default_factory=tuple)

    @property
    def budget_only(self) -> bool:
        """True when nothing but the budget binds the plan."""
        return (
            not self.max_per_denomination
            and self.max_messages is None
            and self.min_roi is None
            and not self.segment_shares
        )

    def validate(self, problem: CampaignProblem) -> None:
        """Raise :class:`InputError` when a constraint names something the problem lacks."""
        for name, cap in (self.max_per_denomination or {}).items():
            if name not in problem.menu.names:
                raise InputError(
                    f"denomination {name!r} is not on the menu ({', '.join(problem.menu.names)})",
                    key="constraints.max_per_denomination",
                )
            if cap < 0:
                raise InputError(
                    f"cap of {name} must be >= 0", key="constraints.max_per_denomination"
                )
        if self.max_messages is not None and self.max_messages < 0:
            raise InputError("must be >= 0", key="constraints.max_messages")
        if self.min_roi is not None and not 0 <= self.min_roi < float("inf"):
            raise InputError("must be a finite number >= 0", key="constraints.min_roi")
        if self.segment_shares:
            if problem.segment is None:
                raise InputError(
                    "segment shares need a segment column in the user table",
                    key="constraints.segment_shares",
                )
            known = set(problem.segment_names)
            seen = set()
            for share in self.segment_shares:
                if share.segment not in known:
                    raise InputError(
                        f"segment {share.segment!r} is not among the candidates' segments "
                        f"({', '.join(sorted(known))})",
                        key="constraints.segment_shares",
                    )
                if share.segment in seen:
                    raise InputError(
                        f"segment {share.segment!r} is given twice",
                        key="constraints.segment_shares",
                    )
                seen.add(share.segment)
            if sum(s.min for s in self.segment_shares) > 1 + 1e-12:
                raise InputError(
                    "segment minimum shares add up to more than 1", key="constraints.segment_shares"
                )

    def caps_array(self, problem: CampaignProblem) -> np.ndarray:
        """Cap per denomination in menu order (inf when uncapped), shape (k,)."""
        caps = np.full(len(problem.menu), np.inf)
        for name, cap in (self.max_per_denomination or {}).items():
            caps[problem.menu.index(name)] = cap
        return caps

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description (only the constraints that are set)."""
        out: dict[str, object] = {}
        if self.max_per_denomination:
            out["max_per_denomination"] = dict(self.max_per_denomination)
        if self.max_messages is not None:
            out["max_messages"] = self.max_messages
        if self.min_roi is not None:
            out["min_roi"] = self.min_roi
        if self.segment_shares:
            out["segment_shares"] = {
                s.segment: {"min": s.min, "max": s.max} for s in self.segment_shares
            }
        return out


@dataclass
class LinearRow:
    """One linear constraint ``sum_ik a_ik x_ik <= rhs`` with ``a = entry + user (x) option``.

    Attributes
    ----------
    name : str
        ``budget``, ``cap:<denomination>``, ``messages``, ``min_roi``,
        ``segment_min:<label>`` or ``segment_max:<label>``.
    rhs : float
        Right-hand side (>= 0).
    entry : ndarray, shape (n, k), optional
        Per-option coefficients (money for the budget).
    user : ndarray, shape (n,), optional
        Per-user factor of the rank-one part.
    option : ndarray, shape (k,), optional
        Per-denomination factor of the rank-one part.
    """

    name: str
    rhs: float
    entry: np.ndarray | None = None
    user: np.ndarray | None = None
    option: np.ndarray | None = None

    @property
    def capacity(self) -> bool:
        """True for rows whose coefficients are never negative (budget, caps, messages)."""
        return self.name.partition(":")[0] in ("budget", "cap", "messages")

    @property
    def _rank_one(self) -> bool:
        return self.user is not None or self.option is not None

    def at(self, rows: np.ndarray, options: np.ndarray) -> np.ndarray:
        """Coefficients ``a[rows[i], options[i]]``, shape (m,)."""
        out = np.zeros(rows.size)
        if self.entry is not None:
            out += self.entry[rows, options]
        if self._rank_one:
            u = 1.0 if self.user is None else self.user[rows]
            o = 1.0 if self.option is None else self.option[options]
            out += u * o
        return out

    def matrix(self, n: int, k: int) -> np.ndarray:
        """All coefficients, shape (n, k) (for small problems and the exact solver)."""
        out = np.zeros((n, k)) if self.entry is None else np.array(self.entry, dtype=np.float64)
        if self._rank_one:
            u = np.ones(n) if self.user is None else self.user
            o = np.ones(k) if self.option is None else self.option
            out += np.outer(u, o)
        return out

    def subtract(self, reduced: np.ndarray, multiplier: float) -> None:
        """``reduced -= multiplier * a`` in place, reduced of shape (n, k)."""
        if multiplier == 0.0:
            return
        if self.entry is not None:
            reduced -= multiplier * self.entry
        if self._rank_one:
            if self.user is None:
                reduced -= multiplier * self.option[None, :]
            elif self.option is None:
                reduced -= (multiplier * self.user)[:, None]
            else:
                reduced -= multiplier * np.outer(self.user, self.option)

    def weighted_sum(self, weights: np.ndarray) -> float:
        """``sum_ik weights_ik a_ik`` for weights of shape (n, k)."""
        total = 0.0
        if self.entry is not None:
            total += float(np.einsum("ij,ij->", weights, self.entry))
        if self._rank_one:
            by_user = weights @ (np.ones(weights.shape[1]) if self.option is None else self.option)
            total += float(by_user.sum() if self.user is None else by_user @ self.user)
        return total

    def usage(self, choice: np.ndarray) -> float:
        """``sum_i a[i, choice_i]`` over the users with a coupon (choice >= 0)."""
        rows = np.flatnonzero(choice >= 0)
        return float(self.at(rows, choice[rows].astype(np.int64)).sum())

    def take(self, rows: np.ndarray, rhs: float | None = None) -> LinearRow:
        """The same row restricted to ``rows`` of the users (optionally a new rhs)."""
        return LinearRow(
            name=self.name,
            rhs=self.rhs if rhs is None else rhs,
            entry=None if self.entry is None else self.entry[rows],
            user=None if self.user is None else self.user[rows],
            option=self.option,
        )


def linear_rows(
    problem: CampaignProblem, budget: float, constraints: Constraints | None = None
) -> list[LinearRow]:
    """The budget row followed by one row per active constraint (see the module docstring)."""
    constraints = constraints or Constraints()
    k = len(problem.menu)
    rows = [LinearRow("budget", float(budget), entry=problem.cost)]
    caps = constraints.caps_array(problem)
    for j in np.flatnonzero(np.isfinite(caps)):
        rows.append(LinearRow(f"cap:{problem.menu.names[j]}", float(caps[j]), option=np.eye(k)[j]))
    if constraints.max_messages is not None:
        rows.append(LinearRow("messages", float(constraints.max_messages), option=np.ones(k)))
    if constraints.min_roi is not None:
        entry = constraints.min_roi * problem.cost - problem.gmv_uplift()
        rows.append(LinearRow("min_roi", 0.0, entry=entry))
    for share in constraints.segment_shares:
        # A label the problem's users lack (a chunk of a larger source) has no members here.
        names = problem.segment_names
        code = names.index(share.segment) if share.segment in names else -1
        member = (problem.segment == code).astype(float)
        if share.min > 0:
            rows.append(LinearRow(f"segment_min:{share.segment}", 0.0, user=share.min - member))
        if share.max < 1:
            rows.append(LinearRow(f"segment_max:{share.segment}", 0.0, user=member - share.max))
    return rows


def violations(
    choice: np.ndarray, rows: Sequence[LinearRow], tolerance: float = 1e-6
) -> list[tuple[str, float, float]]:
    """Rows that ``choice`` breaks: ``(name, usage, rhs)`` each.

    A row is broken when its usage exceeds ``rhs`` by more than ``tolerance`` relative to the
    row's scale: the rhs (at least 1), or for homogeneous rows (rhs 0, the segment shares) the
    total size of the plan's terms, whose signs cancel in the sum.
    """
    out = []
    chosen = np.flatnonzero(choice >= 0)
    options = choice[chosen].astype(np.int64)
    for row in rows:
        terms = row.at(chosen, options)
        used = float(terms.sum())
        scale = max(1.0, abs(row.rhs), float(np.abs(terms).sum()) if row.rhs == 0 else 0.0)
        if used > row.rhs + tolerance * scale:
            out.append((row.name, used, row.rhs))
    return out


def repair_plan(choice: np.ndarray, rows: Sequence[LinearRow], priority: np.ndarray) -> np.ndarray:
    """Drop users (lowest ``priority`` first) until no row is broken.

    Each round drops the shortest prefix of the chosen users that contribute to a broken row
    which brings every broken row within its rhs (or all of them when no prefix does).
    """
    choice = choice.copy()
    for _ in range(64):
        broken = violations(choice, rows)
        if not broken:
            return choice
        names = {b[0] for b in broken}
        members = np.flatnonzero(choice >= 0)
        options = choice[members].astype(np.int64)
        terms = np.stack([r.at(members, options) for r in rows if r.name in names])
        excess = np.array([used - rhs for _, used, rhs in broken])[:, None]
        # Within rounding of the excess is enough: `violations` allows 1e-6 of the row's scale,
        # and an exact excess (a cap of 2 with 3 sent) must drop one user, not two.
        slack = 1e-7 * np.array([max(1.0, abs(rhs)) for _, _, rhs in broken])[:, None]
        helps = (terms > 0).any(axis=0)
        members, terms = members[helps], terms[:, helps]
        order = np.argsort(priority[members], kind="stable")
        reduction = np.cumsum(terms[:, order], axis=1)
        enough = (reduction >= excess - slack).all(axis=0)
        stop = int(np.argmax(enough)) + 1 if enough.any() else order.size
        choice[members[order[:stop]]] = -1
    choice[:] = -1  # unreachable in practice: the empty plan keeps every row
    return choice


def fill_plan(
    choice: np.ndarray,
    rows: Sequence[LinearRow],
    candidates: np.ndarray,
    options: np.ndarray,
    rounds: int = 64,
) -> np.ndarray:
    """Add ``candidates`` (in order, each with its option) while every row keeps its slack.

    Takes the longest prefix whose every running total stays within the rows; the candidate
    that would break a row is skipped, and the rest is tried again (``rounds`` times at most).
    """
    choice = choice.copy()
    candidates, options = candidates.astype(np.int64), options.astype(np.int64)
    for _ in range(rounds):
        if candidates.size == 0:
            break
        slack = np.array([r.rhs - r.usage(choice) for r in rows])
        scale = np.maximum(1.0, np.abs([r.rhs for r in rows]))
        terms = np.stack([r.at(candidates, options) for r in rows])
        ok = (np.cumsum(terms, axis=1) <= slack[:, None] + 1e-9 * scale[:, None]).all(axis=0)
        stop = candidates.size if ok.all() else int(np.argmin(ok))
        choice[candidates[:stop]] = options[:stop]
        if stop == candidates.size:
            break
        candidates, options = candidates[stop + 1 :], options[stop + 1 :]
    return choice
