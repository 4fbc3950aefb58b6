"""The world's true response to messages and coupons: one place, used by every generator.

Time is in days. Each user has a natural purchase rate ``h0`` (per day). Once messaged, the
natural rate becomes ``m * h0`` (``m < 1`` for sleeping dogs, 1 otherwise) for the rest of the
window, and while a coupon of denomination k is valid (``V = min(validity, window)`` days) an
extra coupon-driven rate ``u_k`` applies::

    u_k = coupon_rate * s * g(f_k / b) * exp(-threshold_penalty * max(0, t_k / b - 1))
    g(d) = d**gamma / (d**gamma + d0**gamma)

with ``s`` the price sensitivity, ``b`` the typical basket, ``f_k`` the face value and ``t_k``
the threshold (money). ``g`` makes lift depend on the face value relative to the basket, and the
exponential makes a threshold far above the basket hard to reach. So at a fixed threshold a
larger face value never lowers the conversion probability, and at a fixed face value a higher
threshold never raises it.

The first purchase in the window decides conversion. A coupon-driven purchase always redeems
(its order is lifted to at least the threshold); a natural purchase while the coupon is valid
redeems when its basket already reaches the threshold; later purchases cannot redeem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

__all__ = ["ResponseParams", "Truth", "coupon_rates", "true_response", "reach_probability"]


@dataclass(frozen=True)
class ResponseParams:
    """Constants of the response model (shared by the world, the log and the simulator).

    Parameters
    ----------
    coupon_rate : float
        Coupon-driven purchase rate per day at sensitivity 1 and a saturating discount.
    discount_midpoint : float
        Relative discount f/b at which the response is half its maximum (``d0``).
    discount_steepness : float
        Exponent ``gamma`` of the response in the relative discount.
    threshold_penalty : float
        Decay of the coupon response per unit of threshold above the typical basket.
    basket_sigma : float
        Log-normal shape of an order value around the typical basket.
    """

    coupon_rate: float = 0.045
    discount_midpoint: float = 0.08
    discount_steepness: float = 2.0
    threshold_penalty: float = 0.9
    basket_sigma: float = 0.45


@dataclass(frozen=True)
class Truth:
    """True per-user probabilities for one campaign setting.

    Attributes
    ----------
    p_natural : ndarray, shape (n,)
        P(convert in the window | no message).
    p_coupon : ndarray, shape (n, k)
        P(convert in the window | coupon k sent at the start of the window).
    p_redeem : ndarray, shape (n, k)
        P(redeem | converted holding coupon k).
    """

    p_natural: np.ndarray
    p_coupon: np.ndarray
    p_redeem: np.ndarray


def coupon_rates(
    sensitivity: np.ndarray,
    basket: np.ndarray,
    face_values: np.ndarray,
    thresholds: np.ndarray,
    params: ResponseParams = ResponseParams(),
) -> np.ndarray:
    """Coupon-driven purchase rate per day, shape (n, k).

    Parameters
    ----------
    sensitivity : ndarray, shape (n,)
        Price sensitivity ``s`` (>= 0).
    basket : ndarray, shape (n,)
        Typical basket ``b`` in money (> 0).
    face_values, thresholds : ndarray, shape (k,)
        Denominations in money.
    """
    b = np.asarray(basket, dtype=np.float64)[:, None]
    d = np.asarray(face_values, dtype=np.float64)[None, :] / b
    gamma = params.discount_steepness
    g = d**gamma / (d**gamma + params.discount_midpoint**gamma)
    stretch = np.maximum(0.0, np.asarray(thresholds, dtype=np.float64)[None, :] / b - 1.0)
    reach = np.exp(-params.threshold_penalty * stretch)
    return params.coupon_rate * np.asarray(sensitivity, dtype=np.float64)[:, None] * g * reach


def reach_probability(
    basket: np.ndarray, thresholds: np.ndarray, params: ResponseParams = ResponseParams()
) -> np.ndarray:
    """P(a natural order reaches threshold k), shape (n, k), for log-normal orders of mean ``b``."""
    sigma = params.basket_sigma
    mu = np.log(np.asarray(basket, dtype=np.float64))[:, None] - 0.5 * sigma**2
    z = (np.log(np.asarray(thresholds, dtype=np.float64))[None, :] - mu) / sigma
    return ndtr(-z)


def true_response(
    natural_hazard: np.ndarray,
    message_effect: np.ndarray,
    sensitivity: np.ndarray,
    basket: np.ndarray,
    face_values: np.ndarray,
    thresholds: np.ndarray,
    *,
    window_days: float,
    validity_days: float,
    params: ResponseParams = ResponseParams(),
) -> Truth:
    """Exact conversion and redemption probabilities under the response model.

    Parameters
    ----------
    natural_hazard : ndarray, shape (n,)
        Natural purchase rate ``h0`` per day.
    message_effect : ndarray, shape (n,)
        Factor ``m`` on the natural rate once messaged, in [0, 1].
    sensitivity, basket : ndarray, shape (n,)
        Price sensitivity and typical basket (money).
    face_values, thresholds : ndarray, shape (k,)
        Denominations (money).
    window_days, validity_days : float
        Campaign window and coupon validity in days.
    """
    h0 = np.asarray(natural_hazard, dtype=np.float64)
    mh = (h0 * np.asarray(message_effect, dtype=np.float64))[:, None]
    u = coupon_rates(sensitivity, basket, face_values, thresholds, params)
    w = float(window_days)
    v = min(float(validity_days), w)
    p_natural = -np.expm1(-h0 * w)
    total_rate = mh + u
    in_validity = -np.expm1(-total_rate * v)
    p_coupon = -np.expm1(-(total_rate * v + mh * (w - v)))
    reach = reach_probability(basket, thresholds, params)
    with np.errstate(invalid="ignore", divide="ignore"):
        redeem_mass = in_validity * (u + mh * reach) / total_rate
        p_redeem = np.where(p_coupon > 0, redeem_mass / p_coupon, 0.0)
    return Truth(p_natural=p_natural, p_coupon=p_coupon, p_redeem=np.clip(p_redeem, 0.0, 1.0))
