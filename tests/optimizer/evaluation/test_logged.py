"""Logged rows read from a randomized log: arms, propensities, costs and order values."""
