"""Tests of the solvers; helpers shared by their modules."""

import numpy as np


def lp_bound(value: np.ndarray, cost: np.ndarray, budget: float) -> tuple[float, float]:
    """The budget LP relaxation's value and the budget row's dual, by SciPy's HiGHS.

    Written out from the definition (x_ik in [0, 1], one option a user, cost within the
    budget), sharing no code with the solvers.
    """
    from scipy.optimize import linprog

    n, k = value.shape
    one_each = np.kron(np.eye(n), np.ones(k))
    lp = linprog(-value.ravel(), A_ub=np.vstack([cost.ravel(), one_each]),
                 b_ub=np.r_[budget, np.ones(n)], bounds=(0, 1), method="highs")  # fmt: skip
    assert lp.status == 0
    return -lp.fun, -lp.ineqlin.marginals[0]
