"""Generate a whole world block by block: in memory for small runs, streamed to disk for large.

Memory stays bounded whatever the population size: one block of :data:`BLOCK_USERS` users is
alive at a time, and the files are written row group by row group into a staging directory that
is moved into place only when everything has been written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from optimizer.io.atomic import atomic_directory, write_manifest
from optimizer.io.contract import ARCHETYPES, ASSIGNMENTS
from optimizer.io.mapping import contract_data
from optimizer.io.menu import NO_COUPON, save_menu
from optimizer.io.tomlfile import write_toml
from optimizer.planning.config import CampaignConfig
from optimizer.progress import Progress, report
from optimizer.segments import STAGES
from simulator.scenario import Scenario
from simulator.world.history import campaign_log
from simulator.world.population import (
    BLOCK_USERS,
    UserBlock,
    WorldParams,
    block_count,
    generate_users,
)

__all__ = [
    "WorldChunk",
    "WorldSummary",
    "World",
    "iter_world",
    "build_world",
    "write_world",
    "OUTPUT_TABLES",
    "WORLD_FILES",
    "world_campaign",
]

#: Table files written by :func:`write_world` (without suffix).
OUTPUT_TABLES: tuple[str, ...] = ("users", "history", "truth")
#: Every top-level name a world folder holds (``_manifest.json`` aside).
WORLD_FILES: tuple[str, ...] = (
    *(f"{name}.{ext}" for name in OUTPUT_TABLES for ext in ("parquet", "csv")),
    "menu.toml",
    "scenario.toml",
    "campaign.toml",
)


@dataclass
class WorldChunk:
    """One block of the world: user features, ground truth and campaign-log rows."""

    block: UserBlock
    log: pd.DataFrame


@dataclass
class WorldSummary:
    """Streaming summary of a generated world (filled chunk by chunk).

    Attributes
    ----------
    menu_names : tuple of str, shape (k,)
        Denominations, in menu order.
    target_stages : tuple of str
        The campaign's target stages.
    users_by_stage : ndarray of int64, shape (4,)
        Users per lifecycle stage.
    natural_by_stage : ndarray, shape (4,)
        Sum of true natural conversion probabilities per stage.
    lift_by_stage : ndarray, shape (4, k)
        Sum of true lifts ``p_coupon - p_natural`` per stage and denomination.
    users_by_archetype : ndarray of int64, shape (4,)
        Users per uplift archetype.
    log_counts : ndarray of int64, shape (2, k + 1, 3)
        Rows, conversions and redemptions per assignment and denomination (``none`` last).
    """

    menu_names: tuple[str, ...]
    target_stages: tuple[str, ...]
    users_by_stage: np.ndarray = field(default_factory=lambda: np.zeros(len(STAGES), np.int64))
    natural_by_stage: np.ndarray = field(default_factory=lambda: np.zeros(len(STAGES)))
    lift_by_stage: np.ndarray | None = None
    users_by_archetype: np.ndarray = field(
        default_factory=lambda: np.zeros(len(ARCHETYPES), np.int64)
    )
    log_counts: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = len(self.menu_names)
        if self.lift_by_stage is None:
            self.lift_by_stage = np.zeros((len(STAGES), k))
        if self.log_counts is None:
            self.log_counts = np.zeros((len(ASSIGNMENTS), k + 1, 3), np.int64)

    @property
    def users(self) -> int:
        """Total users."""
        return int(self.users_by_stage.sum())

    def add(self, chunk: WorldChunk) -> None:
        """Fold one chunk into the summary."""
        block = chunk.block
        stage = block.stage.astype(np.intp)
        n_stages = len(STAGES)
        p_nat = block.truth["p_natural"].to_numpy()
        self.users_by_stage += np.bincount(stage, minlength=n_stages)
        self.natural_by_stage += np.bincount(stage, weights=p_nat, minlength=n_stages)
        lift = block.p_coupon - p_nat[:, None]
        for k in range(lift.shape[1]):
            self.lift_by_stage[:, k] += np.bincount(stage, weights=lift[:, k], minlength=n_stages)
        self.users_by_archetype += np.bincount(
            block.truth["archetype"].cat.codes.to_numpy().astype(np.intp),
            minlength=len(ARCHETYPES),
        )
        log = chunk.log
        a = log["assignment"].cat.codes.to_numpy().astype(np.intp)
        d = log["denomination"].cat.codes.to_numpy().astype(np.intp)
        cell = a * (len(self.menu_names) + 1) + d
        size = self.log_counts[:, :, 0].size
        shape = self.log_counts.shape[:2]
        self.log_counts[:, :, 0] += np.bincount(cell, minlength=size).reshape(shape)
        for j, column in ((1, "converted"), (2, "redeemed")):
            weights = log[column].to_numpy().astype(np.float64)
            counts = np.bincount(cell, weights=weights, minlength=size)
            self.log_counts[:, :, j] += np.rint(counts).astype(np.int64).reshape(shape)

    def stage_frame(self) -> pd.DataFrame:
        """Users, natural conversion rate and mean true lift per stage, target and all.

        Returns
        -------
        DataFrame, one row per stage plus ``target`` and ``all``
            ``users``, ``share`` (of all users), ``targeted`` (bool), ``natural_rate``
            (probability) and ``lift__<denomination>`` (mean true lift, probability points).
        """
        target = np.array([s in self.target_stages for s in STAGES])
        counts = np.concatenate(
            [self.users_by_stage, [self.users_by_stage[target].sum(), self.users_by_stage.sum()]]
        ).astype(np.int64)
        natural = np.concatenate(
            [
                self.natural_by_stage,
                [self.natural_by_stage[target].sum(), self.natural_by_stage.sum()],
            ]
        )
        lift = np.vstack(
            [self.lift_by_stage, self.lift_by_stage[target].sum(0), self.lift_by_stage.sum(0)]
        )
        safe = np.maximum(counts, 1)
        frame = pd.DataFrame(
            {
                "users": counts,
                "share": counts / max(self.users, 1),
                "targeted": np.concatenate([target, [True, False]]),
                "natural_rate": natural / safe,
            },
            index=pd.Index([*STAGES, "target", "all"], name="stage"),
        )
        for k, name in enumerate(self.menu_names):
            frame[f"lift__{name}"] = lift[:, k] / safe
        return frame

    def archetype_frame(self) -> pd.DataFrame:
        """Users and share per uplift archetype."""
        total = max(self.users, 1)
        return pd.DataFrame(
            {"users": self.users_by_archetype, "share": self.users_by_archetype / total},
            index=pd.Index(ARCHETYPES, name="archetype"),
        )

    def log_frame(self) -> pd.DataFrame:
        """Rows, conversion rate and redemption rate per assignment and denomination."""
        labels = [*self.menu_names, NO_COUPON]
        records = []
        for a, assignment in enumerate(ASSIGNMENTS):
            for d, name in enumerate(labels):
                rows, conv, red = (int(x) for x in self.log_counts[a, d])
                if rows:
                    records.append(
                        {
                            "assignment": assignment,
                            "denomination": name,
                            "rows": rows,
                            "conversion_rate": conv / rows,
                            "redemption_rate": red / rows,
                        }
                    )
        return pd.DataFrame.from_records(records)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: per stage, per archetype and per log arm."""
        return {
            "users": self.users,
            "target_stages": list(self.target_stages),
            "stages": self.stage_frame().reset_index().to_dict(orient="records"),
            "archetypes": self.archetype_frame().reset_index().to_dict(orient="records"),
            "log": self.log_frame().to_dict(orient="records"),
        }


@dataclass
class World:
    """A whole world in memory (small populations): the three tables and their summary."""

    scenario: Scenario
    users: pd.DataFrame
    history: pd.DataFrame
    truth: pd.DataFrame
    summary: WorldSummary


def _block_sizes(n_users: int) -> list[int]:
    blocks = block_count(n_users)
    sizes = [BLOCK_USERS] * blocks
    if blocks:
        sizes[-1] = n_users - BLOCK_USERS * (blocks - 1)
    return sizes


def iter_world(
    scenario: Scenario, params: WorldParams = WorldParams(), progress: Progress | None = None
) -> Iterator[WorldChunk]:
    """Yield the world of ``scenario`` block by block (deterministic for its seed).

    Parameters
    ----------
    scenario : Scenario
        Size, seed, shares, menu, campaign timing and history settings.
    params : WorldParams
        Generator constants.
    progress : callable, optional
        Receives a ``"generating users"`` :class:`~optimizer.progress.Step` after each block.
    """
    total = scenario.population.users
    done = 0
    for index, size in enumerate(_block_sizes(total)):
        block = generate_users(scenario, index, size, params)
        yield WorldChunk(block=block, log=campaign_log(scenario, block, params))
        done += size
        report(progress, "generating users", done, total)


def build_world(
    scenario: Scenario, params: WorldParams = WorldParams(), progress: Progress | None = None
) -> World:
    """Generate the whole world in memory (meant for up to a few million users)."""
    summary = WorldSummary(scenario.menu.names, scenario.target_stages)
    users, truth, logs = [], [], []
    for chunk in iter_world(scenario, params, progress):
        summary.add(chunk)
        users.append(chunk.block.users)
        truth.append(chunk.block.truth)
        logs.append(chunk.log)
    return World(
        scenario=scenario,
        users=pd.concat(users, ignore_index=True),
        history=pd.concat(logs, ignore_index=True),
        truth=pd.concat(truth, ignore_index=True),
        summary=summary,
    )


class _TableSink:
    """Streams DataFrames into a Parquet file and, optionally, a CSV file."""

    def __init__(self, directory: Path, name: str, csv: bool) -> None:
        self.parquet_path = directory / f"{name}.parquet"
        self.csv_path = directory / f"{name}.csv" if csv else None
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.parquet_path, table.schema, compression="zstd")
        self._parquet.write_table(table)
        if self.csv_path is not None:
            plain = pa.table(
                {
                    name: (
                        column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column
                    )
                    for name, column in zip(table.column_names, table.columns, strict=True)
                }
            )
            if self._csv is None:
                self._csv = pacsv.CSVWriter(self.csv_path, plain.schema)
            self._csv.write_table(plain)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()


def write_world(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    csv: bool = False,
    params: WorldParams = WorldParams(),
    progress: Progress | None = None,
) -> WorldSummary:
    """Write ``users``, ``history`` and ``truth`` tables, ``menu.toml`` and ``scenario.toml``.

    Parameters
    ----------
    scenario : Scenario
        The world to generate.
    out_dir : str or Path
        Output directory, replaced whole once everything is written (a reader sees the old
        world or the new one, never a mixture), with a ``_manifest.json`` of SHA-256
        checksums written last. A folder holding anything but a world's files is refused
        before any work (so a user's files are never deleted).
    csv : bool
        Also write ``.csv`` copies of the three tables.
    params : WorldParams
        Generator constants.
    progress : callable, optional
        Receives a ``"generating users"`` :class:`~optimizer.progress.Step` after each block.

    Returns
    -------
    WorldSummary
        Users per stage, natural conversion rate, mean true lifts, archetypes, log arms.
    """
    summary = WorldSummary(scenario.menu.names, scenario.target_stages)
    with atomic_directory(out_dir, whole=True, writes=WORLD_FILES, writer="world") as staging:
        sinks = {name: _TableSink(staging, name, csv) for name in OUTPUT_TABLES}
        try:
            for chunk in iter_world(scenario, params, progress):
                summary.add(chunk)
                sinks["users"].write(chunk.block.users)
                sinks["history"].write(chunk.log)
                sinks["truth"].write(chunk.block.truth)
        finally:
            for sink in sinks.values():
                sink.close()
        save_menu(scenario.menu, staging / "menu.toml")
        write_toml(scenario.model_dump(mode="json", exclude_none=True), staging / "scenario.toml")
        write_toml(
            world_campaign(scenario).model_dump(mode="json", exclude_none=True),
            staging / "campaign.toml",
        )
        write_manifest(staging, writer="world")
    return summary


def world_campaign(scenario: Scenario) -> CampaignConfig:
    """The scenario's campaign with its world's tables mapped as a team's own data.

    Written as ``campaign.toml`` beside the tables, so that training, scoring and planning
    from that campaign file take the generated world through the same path as a team's
    files (its contract is one data configuration, :func:`optimizer.io.mapping.contract_data`).
    """
    k = len(scenario.menu)
    holdout = scenario.history.holdout_share
    shares = {name: (1 - holdout) / k for name in scenario.menu.names}
    shares[NO_COUPON] = 1 - sum(shares.values())
    fields = {name: getattr(scenario, name) for name in CampaignConfig.model_fields}
    return CampaignConfig(**(fields | {"data": contract_data(scenario.menu, shares)}))
