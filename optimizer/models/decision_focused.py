"""Decision-focused fine-tuning: train the shared-trunk network for the allocation's value.

Two-stage planning fits the probabilities for accuracy (log-loss) and then lets the solver pick;
what a plan is worth, though, depends only on how the scores order the options near the budget's
price. Decision-focused learning (the Lagrangian dual decision loss of decision-focused causal
learning, Zhou et al., KDD 2024) trains for that instead: at the budget's dual price ``lam``
every user's best option maximises ``value_k - lam * cost_k`` (no coupon: 0), a softmax of
these scores at temperature ``tau`` is a smooth policy ``pi``, and its value on a randomized
log is estimated without bias by inverse propensity weighting::

    V(pi) = mean_i  pi(t_i | x_i) / e(t_i) * (r_i - lam * c_i)

for the logged treatment ``t_i`` (propensity ``e``), realised reward ``r_i`` and realised cost
``c_i``. The fine-tuning starts from the two-stage network and minimises
``log-loss + weight * (-V(pi) / scale)``: the log-loss keeps the probabilities meaningful (they
still price every coupon), the decision term moves them where the allocation is decided. A
held-out share of the rows picks the epoch by the IPW value of the per-user decision at the
price (the two-stage network, epoch 0, competes), so the fine-tuning changes the network only
when rows it did not train on say the decisions improved.

Values and costs are affine in the probabilities for every objective the planner prices with a
redemption model (``value_k = A_k + B_k p_k + C_k p0``, ``cost_k = D_k + E_k p_k``, per user and
option): the caller passes these coefficients (see
:func:`optimizer.planning.decision_focused_models`), so the softmax sees exactly the planner's
value and cost.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from optimizer.errors import InputError
from optimizer.io.menu import NO_COUPON
from optimizer.models.shared_trunk import SharedTrunkModel

__all__ = ["AllocationTerms", "fine_tune_allocation"]


@dataclass(frozen=True)
class AllocationTerms:
    """The planner's value and cost of every option as affine functions of the probabilities.

    ``value_k = a + b * p_k + c * p0`` and ``cost_k = d + e * p_k``, each array of shape
    (n, k) (rows of the log, options in menu order); value in the objective's unit, cost in
    money.
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    e: np.ndarray


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def fine_tune_allocation(
    model: SharedTrunkModel,
    X: pd.DataFrame,
    coupon: np.ndarray,
    y: np.ndarray,
    net_reward: np.ndarray,
    terms: AllocationTerms,
    *,
    price: float,
    propensity: np.ndarray,
    weight: float = 1.0,
    epochs: int = 5,
    learning_rate: float = 2e-4,
    temperature: float = 1.0,
    held_out: np.ndarray | None = None,
    batch_size: int = 1024,
    random_state: int = 0,
) -> tuple[SharedTrunkModel, dict[str, list[float]]]:
    """A copy of ``model`` fine-tuned for the allocation's value at ``price``.

    Parameters
    ----------
    model : SharedTrunkModel
        A fitted shared-trunk model with the shared (face value and threshold) head and a Platt
        or no calibration.
    X : DataFrame, shape (n, c)
        Features of the randomized log rows.
    coupon : array of str, shape (n,)
        The logged treatment of each row (a menu name or ``"none"``).
    y : ndarray of {0, 1}, shape (n,)
        Conversions (the log-loss anchor).
    net_reward : ndarray, shape (n,)
        ``r_i - price * c_i``: the row's realised reward (objective's unit) less the price of
        its realised cost (money).
    terms : AllocationTerms
        The planner's value and cost per row and option.
    price : float
        The budget's dual price (objective's unit per money), at least 0.
    propensity : ndarray, shape (n,)
        Probability that the row's logged treatment was assigned, in (0, 1].
    weight : float
        Weight of the decision term against the log-loss.
    epochs, learning_rate, batch_size, random_state
        Adam over shuffled mini-batches, seeded.
    temperature : float
        Softmax temperature as a share of the standard deviation of the option scores (a
        small one saturates the softmax and leaves the decision term without gradient).
    held_out : ndarray of bool, shape (n,), optional
        Rows kept out of the fine-tuning (customers ``model`` never trained on, e.g. the
        models' holdout): after every epoch the IPW value of the per-user decision at
        ``price`` (the argmax of ``value - price * cost``, no coupon 0) is measured on them,
        and the epoch with the best one is kept, the two-stage network (epoch 0) included,
        so the fine-tuning keeps the starting network unless those rows say otherwise.
        None (or no such row) keeps the last epoch.

    Returns
    -------
    model : SharedTrunkModel
        The fine-tuned copy (``model`` is unchanged).
    history : dict of str to list of float
        Per epoch: ``log_loss`` and ``policy_value`` (the IPW value of the soft policy, per
        row, on the fine-tuning rows); ``validation_value`` (the decision's IPW value on the
        held-out rows, from epoch 0; empty without them); ``best_epoch`` (one number: the
        epoch kept).
    """
    if model.head != "shared":
        raise InputError("needs the shared head (face value and threshold)", key="head")
    if model.calibrator_.method == "isotonic":
        raise InputError("needs Platt or no calibration (a step map has no gradient)",
                         key="calibration")  # fmt: skip
    if not np.isfinite(price) or price < 0:
        raise InputError("must be a finite price of at least 0", key="price")
    propensity = np.asarray(propensity, dtype=np.float64)
    if propensity.shape != (len(X),) or not ((propensity > 0) & (propensity <= 1)).all():
        raise InputError("every logged treatment needs a propensity in (0, 1]", key="propensity")
    for key, ok in (
        ("weight", weight >= 0),
        ("epochs", epochs >= 1),
        ("temperature", temperature > 0),
    ):
        if not ok:
            raise InputError("must be positive (weight: at least 0)", key=key)
    held_out = np.zeros(len(X), bool) if held_out is None else np.asarray(held_out, bool)
    if held_out.shape != (len(X),) or held_out.all():
        raise InputError("needs one flag per row and rows left to fine-tune on", key="held_out")
    tuned = copy.deepcopy(model)
    menu = tuned.menu_
    coupon = np.asarray(coupon, dtype=object)
    arm = pd.Index([NO_COUPON, *menu.names]).get_indexer(coupon)
    if (arm < 0).any():
        raise InputError(f"{coupon[arm < 0][0]!r} is not on the menu", key="coupon")
    numeric, categorical = tuned.encoder_.transform(X)
    log_f, log_t = tuned._relative(tuned._basket(X), menu.face_values, menu.thresholds)
    n, k = log_f.shape
    cal_a, cal_b = float(tuned.calibrator_.a_), float(tuned.calibrator_.b_)
    data = [
        torch.as_tensor(numeric),
        torch.as_tensor(categorical),
        torch.as_tensor(log_f),
        torch.as_tensor(log_t),
        torch.as_tensor(arm, dtype=torch.int64),
        _tensor(y),
        _tensor(net_reward / propensity),
        *(_tensor(getattr(terms, name)) for name in "abcde"),
    ]
    net = tuned.net_

    def forward(num, cat, lf, lt):
        zeros = torch.zeros((num.shape[0], 1))
        z0 = net(num, cat, zeros, zeros, torch.zeros(num.shape[0]))[:, 0]
        return z0, net(num, cat, lf, lt)  # (b,), (b, k)

    def scores(z0, zk, a, b, c, d, e):
        q0 = torch.sigmoid(cal_a * z0 + cal_b)
        qk = torch.sigmoid(cal_a * zk + cal_b)
        s = a + b * qk + c * q0[:, None] - price * (d + e * qk)
        return torch.cat([torch.zeros((s.shape[0], 1)), s], dim=1)  # option 0: no coupon

    generator = torch.Generator().manual_seed(random_state)
    val = torch.as_tensor(np.flatnonzero(held_out))
    fit = torch.as_tensor(np.flatnonzero(~held_out))
    n_val = val.numel()

    def decided_value(rows: torch.Tensor) -> float:
        """IPW value of the Lagrangian decision (argmax of the option scores) on ``rows``."""
        net.eval()
        with torch.no_grad():
            z0, zk = forward(*(t[rows] for t in data[:4]))
            best = scores(z0, zk, *(t[rows] for t in data[7:])).argmax(dim=1)
            hit = (best == data[4][rows]).to(torch.float32)
            return float((hit * data[6][rows]).mean())

    net.eval()
    with torch.no_grad():
        z0, zk = forward(*data[:4])
        spread = float(scores(z0, zk, *data[7:]).std())
    tau = temperature * max(spread, 1e-12)
    scale = max(float(np.mean(np.abs(net_reward / propensity))), 1e-12)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    history: dict[str, list[float]] = {"log_loss": [], "policy_value": [], "validation_value": []}
    best_value = decided_value(val) if n_val else -np.inf
    best_epoch, best_state = 0, copy.deepcopy(net.state_dict())
    if n_val:
        history["validation_value"].append(best_value)
    m = fit.numel()
    with torch.random.fork_rng():
        torch.manual_seed(random_state)
        for epoch in range(1, epochs + 1):
            net.train()
            order = fit[torch.randperm(m, generator=generator)]
            total_loss = total_value = 0.0
            for start in range(0, m, batch_size):
                idx = order[start : start + batch_size]
                num, cat, lf, lt, arm_b, y_b, w_reward, *coef = (t[idx] for t in data)
                z0, zk = forward(num, cat, lf, lt)
                logged = torch.where(
                    arm_b == 0, z0, zk.gather(1, (arm_b - 1).clamp(min=0)[:, None])[:, 0]
                )
                bce = torch.nn.functional.binary_cross_entropy_with_logits(logged, y_b)
                pi = torch.softmax(scores(z0, zk, *coef) / tau, dim=1)
                value = (pi.gather(1, arm_b[:, None])[:, 0] * w_reward).mean()
                loss = bce - weight * value / scale
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total_loss += float(bce.detach()) * len(idx)
                total_value += float(value.detach()) * len(idx)
            history["log_loss"].append(total_loss / m)
            history["policy_value"].append(total_value / m)
            if n_val:
                value_now = decided_value(val)
                history["validation_value"].append(value_now)
                if value_now > best_value:
                    best_value, best_epoch = value_now, epoch
                    best_state = copy.deepcopy(net.state_dict())
            else:
                best_epoch, best_state = epoch, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval()
    history["best_epoch"] = [float(best_epoch)]
    return tuned, history
