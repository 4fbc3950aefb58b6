"""The training loop shared by both conversion models: seeded, early-stopped, deterministic."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["EpochReport", "fit_logits", "predict_logits", "auto_batch", "AUTO_BATCH_BASE"]


@dataclass(frozen=True)
class EpochReport:
    """Losses after one epoch (mean binary cross-entropy, nats per row)."""

    epoch: int
    max_epochs: int
    train_loss: float
    validation_loss: float
    best: bool


#: The automatic batch size below 100,000 rows, and its ceiling.
AUTO_BATCH_BASE, AUTO_BATCH_MAX = 1024, 16384


def auto_batch(n_rows: int) -> int:
    """Rows per batch for ``n_rows`` training rows.

    1,024 below 100,000 rows, doubled per doubling of the rows beyond 50,000, at most 16,384
    (800,000 rows and more); the caller scales the learning rate by the square root of the
    batch's growth. On a 1M-row log the shared-trunk models then train in about half the time
    of batches of 1,024, their validation log-loss 0.1-0.4% higher
    (``benchmarks/uplift.py``'s 1M-row timing measures both in the same run).
    """
    if n_rows < 100_000:
        return AUTO_BATCH_BASE
    doublings = int(np.floor(np.log2(n_rows / 50_000)))
    return int(min(AUTO_BATCH_MAX, AUTO_BATCH_BASE * 2**doublings))


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(torch.split(order, batch_size))


def predict_logits(
    forward: Callable[..., torch.Tensor],
    inputs: tuple[np.ndarray, ...],
    batch_size: int = 65_536,
) -> np.ndarray:
    """Run ``forward`` in evaluation mode over ``inputs`` in batches.

    Parameters
    ----------
    forward : callable
        Maps a tuple of tensors (a batch of each input) to logits (batch, k).
    inputs : tuple of ndarray
        Arrays with the same first dimension n.

    Returns
    -------
    ndarray of float32, shape (n, k)
    """
    n = inputs[0].shape[0]
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = tuple(torch.as_tensor(a[start : start + batch_size]) for a in inputs)
            out.append(forward(*batch).float().numpy())
    if not out:
        return np.zeros((0, 1), dtype=np.float32)
    return np.concatenate(out)


def fit_logits(
    net: nn.Module,
    forward: Callable[..., torch.Tensor],
    inputs: tuple[np.ndarray, ...],
    y: np.ndarray,
    *,
    max_epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    validation_fraction: float,
    seed: int,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> tuple[list[EpochReport], np.ndarray]:
    """Train ``net`` by Adam on binary cross-entropy, stopping early on a validation split.

    Parameters
    ----------
    net : nn.Module
        Network whose parameters are trained; restored to its best validation state.
    forward : callable
        Maps a batch tuple (tensors sliced from ``inputs``) to one logit per row, shape (b,).
    inputs : tuple of ndarray
        Model inputs, each with first dimension n.
    y : ndarray of {0, 1}, shape (n,)
        Outcomes.
    max_epochs, batch_size, learning_rate, weight_decay, patience : training settings
    validation_fraction : float
        Share of rows held out for early stopping (and later calibration).
    seed : int
        Seeds the split, the initialisation order and the batch shuffling.
    on_epoch : callable, optional
        Called with an :class:`EpochReport` after every epoch.

    Returns
    -------
    history : list of EpochReport
    validation_index : ndarray of int, shape (m,)
        Rows held out for validation.
    """
    n = y.shape[0]
    # Dropout draws from torch's global generator: seed it too (callers fork it first).
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_val = int(round(validation_fraction * n)) if n >= 20 else 0
    val_idx, train_idx = np.sort(perm[:n_val]), perm[n_val:]
    generator = torch.Generator().manual_seed(seed)
    train_inputs = tuple(torch.as_tensor(a[train_idx]) for a in inputs)
    train_y = torch.as_tensor(y[train_idx], dtype=torch.float32)
    val_inputs = tuple(a[val_idx] for a in inputs)
    val_y = torch.as_tensor(y[val_idx], dtype=torch.float32)
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    history: list[EpochReport] = []
    best_loss, best_state, stale = float("inf"), copy.deepcopy(net.state_dict()), 0
    for epoch in range(1, max_epochs + 1):
        net.train()
        total, seen = 0.0, 0
        for batch in _batches(train_y.shape[0], batch_size, generator):
            optimiser.zero_grad()
            logits = forward(*(t[batch] for t in train_inputs))
            loss = loss_fn(logits, train_y[batch])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * batch.numel()
            seen += batch.numel()
        net.eval()
        train_loss = total / max(seen, 1)
        if n_val:
            val_logits = torch.as_tensor(predict_logits(forward, val_inputs)).reshape(-1)
            val_loss = float(loss_fn(val_logits, val_y))
        else:
            val_loss = train_loss
        improved = val_loss < best_loss - 1e-6
        if improved:
            best_loss, best_state, stale = val_loss, copy.deepcopy(net.state_dict()), 0
        else:
            stale += 1
        report = EpochReport(epoch, max_epochs, train_loss, val_loss, improved)
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
        if stale >= patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return history, val_idx
