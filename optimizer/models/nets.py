"""PyTorch networks of the two conversion models (shallow, CPU-friendly).

The article's architecture: the three feature families concatenated and passed through a shallow
network. Categorical features enter through embeddings; numeric ones are already robust-scaled
by :class:`optimizer.models.features.FeatureEncoder`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "Trunk",
    "LogitNet",
    "MonotoneCouponNet",
    "SharedTrunkNet",
    "SharedTrunkArmNet",
    "embedding_dim",
]


def embedding_dim(cardinality: int) -> int:
    """Embedding width for a vocabulary of ``cardinality`` codes (code 0 = missing/unseen)."""
    return int(min(8, max(2, round(1.6 * cardinality**0.56))))


class Trunk(nn.Module):
    """Embeddings + MLP: ``(numeric (n, p), categorical (n, c)) -> hidden (n, h)``.

    Parameters
    ----------
    n_numeric : int
        Width of the numeric input.
    cardinalities : sequence of int
        Vocabulary size (including code 0) of each categorical column.
    hidden : sequence of int
        Widths of the hidden layers.
    dropout : float
        Dropout after each hidden layer during training.
    """

    def __init__(
        self,
        n_numeric: int,
        cardinalities: Sequence[int],
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, embedding_dim(card)) for card in cardinalities
        )
        width = n_numeric + sum(embedding_dim(card) for card in cardinalities)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.mlp = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Hidden representation, shape (n, out_features)."""
        parts = [numeric]
        parts += [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1))


class LogitNet(nn.Module):
    """Trunk + linear head with ``n_outputs`` logits (1 for natural, k for per-denomination)."""

    def __init__(self, trunk: Trunk, n_outputs: int = 1) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(trunk.out_features, n_outputs)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Logits, shape (n, n_outputs)."""
        return self.head(self.trunk(numeric, categorical))


class MonotoneCouponNet(nn.Module):
    """Coupon conversion logit that is monotone in face value and threshold by construction.

    ``logit_k = base(x) + sum_j a_j(x) * sigmoid(alpha_j * (log(f_k/b) - mu_j))
    * sigmoid(-beta_j * (log(t_k/b) - nu_j))`` with amplitudes ``a_j(x) = softplus(.) >= 0``
    from the user's hidden representation and global ``alpha_j, beta_j = softplus(.) >= 0``.
    ``f_k/b`` and ``t_k/b`` are the face value and the threshold relative to the user's basket,
    so any denomination can be scored. Each basis term is a product of a factor rising with the
    face value and a factor falling with the threshold, both positive: so a larger face value
    never lowers the probability and a higher threshold never raises it. (A single sigmoid of a
    linear combination cannot tell apart menus whose face values and thresholds grow together;
    the product can, and mirrors "attractiveness x reachability".)

    Parameters
    ----------
    trunk : Trunk
        Shared feature network.
    n_basis : int
        Number of monotone basis functions ``J``.
    """

    def __init__(self, trunk: Trunk, n_basis: int = 4) -> None:
        super().__init__()
        self.trunk = trunk
        self.base = nn.Linear(trunk.out_features, 1)
        self.amplitude = nn.Linear(trunk.out_features, n_basis)
        self.alpha = nn.Parameter(torch.linspace(0.5, 2.0, n_basis))
        self.beta = nn.Parameter(torch.linspace(0.5, 2.0, n_basis))
        self.mu = nn.Parameter(torch.linspace(-3.5, -1.0, n_basis))
        self.nu = nn.Parameter(torch.linspace(-0.5, 1.0, n_basis))

    def forward(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        log_face: torch.Tensor,
        log_threshold: torch.Tensor,
    ) -> torch.Tensor:
        """Logits, shape (n, k), for relative log face values and thresholds of shape (n, k)."""
        h = self.trunk(numeric, categorical)
        base = self.base(h)  # (n, 1)
        amp = F.softplus(self.amplitude(h)).unsqueeze(1)  # (n, 1, J)
        rise = torch.sigmoid(F.softplus(self.alpha) * (log_face.unsqueeze(-1) - self.mu))
        fall = torch.sigmoid(-F.softplus(self.beta) * (log_threshold.unsqueeze(-1) - self.nu))
        return base + (amp * rise * fall).sum(-1)  # (n, k)


class SharedTrunkNet(MonotoneCouponNet):
    """One network for both outcomes: a shared trunk with a treatment input.

    ``logit_natural = base(x)``;
    ``logit_k = base(x) + message(x) + sum_j a_j(x) * rise_j(f_k/b) * fall_j(t_k/b)``, where
    ``message(x)`` (any sign: a message can put a sleeping dog off) is the effect of being
    contacted at all and the sum is the monotone coupon term of :class:`MonotoneCouponNet`.
    Natural and coupon conversion share the trunk and the base, so their difference (the
    uplift) is learned as its own term instead of as the difference of two noisy models.
    """

    def __init__(self, trunk: Trunk, n_basis: int = 4) -> None:
        super().__init__(trunk, n_basis)
        self.message = nn.Linear(trunk.out_features, 1)

    def forward(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        log_face: torch.Tensor,
        log_threshold: torch.Tensor,
        treated: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits, shape (n, k); rows with ``treated`` 0 get the natural logit."""
        h = self.trunk(numeric, categorical)
        amp = F.softplus(self.amplitude(h)).unsqueeze(1)
        rise = torch.sigmoid(F.softplus(self.alpha) * (log_face.unsqueeze(-1) - self.mu))
        fall = torch.sigmoid(-F.softplus(self.beta) * (log_threshold.unsqueeze(-1) - self.nu))
        effect = self.message(h) + (amp * rise * fall).sum(-1)  # (n, k)
        if treated is None:
            return self.base(h) + effect
        return self.base(h) + treated.view(-1, 1) * effect


class SharedTrunkArmNet(nn.Module):
    """One network for both outcomes with one free effect per treatment (for message menus).

    ``logit_natural = base(x)``; ``logit_k = base(x) + effect_k(x)``. Treatments that are messages
    have no face value or threshold to place them on a monotone scale, so each gets its own
    linear effect on the shared representation (the per-arm counterpart of
    :class:`SharedTrunkNet`; it scores only the treatments it was trained on).
    """

    def __init__(self, trunk: Trunk, n_arms: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.base = nn.Linear(trunk.out_features, 1)
        self.effect = nn.Linear(trunk.out_features, n_arms)

    def forward(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        arm: torch.Tensor | None = None,
        treated: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of every treatment, shape (n, k); with ``arm`` and ``treated``, shape (n, 1)."""
        h = self.trunk(numeric, categorical)
        base = self.base(h)
        effect = self.effect(h)
        if arm is None or treated is None:
            return base + effect
        chosen = effect.gather(1, arm.view(-1, 1))
        return base + treated.view(-1, 1) * chosen
