"""The straightforward campaign model: one SimPy process per user (reference, not for scale).

Same campaign as :func:`simulator.experiment.engine.simulate_campaign` (gateway tokens refilled
every hour, delivery at a uniform moment of the sending hour, failures, the natural rate until
delivery, the coupon-raised rate while valid, the message effect after), written the obvious
way, event by event. Tests use it to show that the batched engine gives the same distribution
of outcomes; ``benchmarks/simulate.py`` times it against the engine. No budget monitor
(unlimited budget).
"""

from __future__ import annotations

import numpy as np
import simpy

from optimizer.io.menu import Menu
from simulator.experiment.engine import EngineSettings
from simulator.world.response import coupon_rates

__all__ = ["simulate_per_user"]


def simulate_per_user(
    natural_hazard: np.ndarray,
    message_effect: np.ndarray,
    sensitivity: np.ndarray,
    basket: np.ndarray,
    choice: np.ndarray,
    menu: Menu,
    settings: EngineSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Converted and redeemed flags per user, shape (n,) each (arguments as the engine's)."""
    h0 = np.asarray(natural_hazard, dtype=np.float64)
    m = np.asarray(message_effect, dtype=np.float64)
    basket = np.asarray(basket, dtype=np.float64)
    n = h0.size
    rates = coupon_rates(sensitivity, basket, menu.face_values, menu.thresholds, settings.params)
    sigma = settings.params.basket_sigma
    window = settings.window_days * 24
    validity = settings.validity_days * 24
    env = simpy.Environment()
    per_hour = settings.sms_per_hour
    tokens = simpy.Container(env, init=per_hour, capacity=per_hour)
    converted = np.zeros(n, bool)
    redeemed = np.zeros(n, bool)

    def refill(env: simpy.Environment):
        while True:
            yield env.timeout(1)
            if tokens.level < tokens.capacity:
                yield tokens.put(tokens.capacity - tokens.level)

    def user(env: simpy.Environment, i: int):
        t_natural = rng.exponential(1 / h0[i]) * 24 if h0[i] > 0 else np.inf
        # The natural purchase stands unless a coupon arrives first (it may never leave the
        # gateway's queue before the window closes).
        converted[i] = t_natural < window
        if choice[i] < 0:
            return
        yield tokens.get(1)
        yield env.timeout(rng.random())
        if env.now > t_natural or rng.random() < settings.failure_rate:
            return  # bought before delivery, or never delivered
        k = choice[i]
        mh, u = m[i] * h0[i] / 24, rates[i, k] / 24
        end = min(env.now + validity, window)
        wait = rng.exponential(1 / (mh + u)) if mh + u > 0 else np.inf
        if env.now + wait < end:
            yield env.timeout(wait)
            converted[i] = True
            value = basket[i] * np.exp(sigma * rng.standard_normal() - 0.5 * sigma**2)
            redeemed[i] = rng.random() < u / (mh + u) or value >= menu.thresholds[k]
            return
        yield env.timeout(max(0.0, end - env.now))
        later = rng.exponential(1 / mh) if mh > 0 else np.inf
        converted[i] = env.now + later < window

    env.process(refill(env))
    for i in range(n):
        env.process(user(env, i))
    env.run(until=window + 1)
    return converted, redeemed
