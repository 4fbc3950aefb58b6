"""A starting campaign configuration from a team's own files, to edit rather than write.

:func:`infer_campaign` reads the customer table and the campaign log (or one file holding
both, as randomized test exports often do), guesses the role of every column by its name and
content (id, treatment arm and its control label, 0/1 outcome, order value, segment label,
features and their types) and returns a validated :class:`CampaignConfig` with a ``[data]``
section, the facts per column, and the guesses a person should check. The guesses are plain
rules on column names and contents, stated in :data:`ROLE_NAMES`; nothing is fitted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w
from pandas.api import types as ptypes

from optimizer.errors import InputError
from optimizer.io.mapping import DataConfig
from optimizer.io.menu import NO_COUPON
from optimizer.io.tables import iter_table
from optimizer.io.tomlfile import validate
from optimizer.planning.config import CampaignConfig

__all__ = ["Inference", "infer_campaign", "campaign_toml", "ROLE_NAMES", "INFER_ROWS"]

#: Rows read to infer types and roles (the first ones of each file).
INFER_ROWS = 200_000

#: Column names (lower case) that suggest a role, best first.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("user_id", "customer_id", "id", "client_id", "member_id", "household_id"),
    "arm": (
        "treatment",
        "promotion",
        "arm",
        "variant",
        "group",
        "offer",
        "segment",
        "campaign_arm",
    ),
    "outcome": ("converted", "conversion", "purchase", "purchased", "bought", "outcome", "target"),
    "order_value": ("order_value", "spend", "revenue", "amount", "gmv", "sales", "sales_value"),
    "redeemed": ("redeemed", "redemption", "coupon_used"),
    "segment": ("lifecycle_stage", "stage", "segment", "tier", "lifecycle", "cluster"),
    "basket": ("avg_order_value", "aov", "basket", "average_order_value"),
    "campaign": ("campaign_id", "campaign", "date", "campaign_date"),
    "randomized": ("assignment", "design"),
    # Measured after the campaign: never features.
    "after": ("visit", "visited", "click", "clicked", "open", "opened", "exposure", "exposed"),
}
#: Labels that mark the control arm (lower case, compared after trimming).
CONTROL = re.compile(r"^(no([\s_-].*)?|none|control|ctl|ctrl|holdout|0|false|n|not[ _-]?sent)$")


@dataclass
class Inference:
    """What :func:`infer_campaign` found.

    Attributes
    ----------
    campaign : CampaignConfig
        The starting configuration (validated).
    columns : DataFrame
        One row per column of the files: ``file``, ``column``, ``role``, ``type``,
        ``distinct`` (count in the rows read) and ``missing`` (share).
    notes : list of str
        Guesses to check, one line each.
    rows_read : int
        Rows of the customer table the guesses come from.
    """

    campaign: CampaignConfig
    columns: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    rows_read: int = 0


def _head(path: Path) -> pd.DataFrame:
    for _offset, frame in iter_table(path, INFER_ROWS):
        return frame
    raise InputError("no data rows", source=path)  # pragma: no cover - iter_table raises


def _named(frame: pd.DataFrame, role: str, exclude: set[str] = frozenset()) -> str | None:
    lower = {str(c).lower(): str(c) for c in frame.columns if c not in exclude}
    for name in ROLE_NAMES[role]:
        if name in lower:
            return lower[name]
    return None


def _binary(series: pd.Series) -> bool:
    values = set(series.dropna().astype(str).str.lower().unique().tolist())
    return 0 < len(values) <= 2 and values <= {"0", "1", "true", "false", "0.0", "1.0"}


def _slug(label: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", label.strip()).strip("_-").lower() or "arm"
    base = base if base[0].isalnum() else f"t{base}"
    name, i = base, 2
    while name in taken or name == NO_COUPON:
        name, i = f"{base}_{i}", i + 1
    return name


def _relative(path: Path, out: Path) -> str:
    return os.path.relpath(path.resolve(), out.resolve().parent)


def _arm_labels(series: pd.Series) -> list[str]:
    values = series.dropna()
    if ptypes.is_numeric_dtype(values.dtype) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    return sorted(values.astype(str).unique().tolist())


def infer_campaign(
    users: str | Path, log: str | Path | None = None, out: str | Path = "campaign.toml"
) -> Inference:
    """Guess a campaign configuration for a customer table and a campaign log.

    Parameters
    ----------
    users : str or Path
        The customer table (Parquet or CSV).
    log : str or Path, optional
        The campaign log; default: the customer table itself (one file with the arm).
    out : str or Path
        Where the configuration will be written: file names in it are relative to its folder.

    Raises
    ------
    InputError
        A file cannot be read, or no arm column with a control label can be found (name it
        ``treatment`` or edit the written file).
    """
    users_path, out = Path(users), Path(out)
    log_path = Path(log) if log is not None else users_path
    shared = log_path.resolve() == users_path.resolve()
    people = _head(users_path)
    rows = _head(log_path) if not shared else people
    notes: list[str] = []
    roles: dict[tuple[str, str], str] = {}

    user_id = _named(people, "id")
    log_id = _named(rows, "id") if not shared else user_id
    if user_id is not None and (
        not ptypes.is_integer_dtype(people[user_id].dtype) or people[user_id].duplicated().any()
    ):
        notes.append(f"{user_id} is not a unique integer id; rows are numbered instead")
        user_id = None if shared else user_id
    arm = _named(rows, "arm", {log_id} if log_id else set())
    if arm is None:
        raise InputError(
            "found no treatment column (e.g. 'treatment', 'promotion', 'arm', 'group'); "
            "name it so, or write the data.log section by hand",
            source=log_path,
        )
    labels = _arm_labels(rows[arm])
    control = [x for x in labels if CONTROL.match(x.strip().lower())]
    if len(labels) < 2 or len(labels) > 20 or len(control) != 1:
        raise InputError(
            f"cannot tell the control arm among {len(labels)} labels "
            f"({', '.join(labels[:6])}); expected exactly one like 'No', 'none' or 'control'",
            source=log_path,
            column=arm,
        )
    exclude = {c for c in (log_id, arm) if c}
    outcome = _named(rows, "outcome", exclude)
    if outcome is None or not _binary(rows[outcome]):
        binaries = [c for c in rows.columns if c not in exclude and _binary(rows[c])]
        if not binaries:
            raise InputError("found no 0/1 outcome column", source=log_path)
        outcome = str(binaries[0])
        notes.append(f"outcome: guessed {outcome!r} (the first 0/1 column); check it")
    exclude.add(outcome)
    order_value = _named(rows, "order_value", exclude)
    redeemed = _named(rows, "redeemed", exclude)
    campaign = _named(rows, "campaign", exclude)
    after = [str(c) for c in rows.columns if str(c).lower() in ROLE_NAMES["after"]]
    for name, role in (
        (log_id, "log id"),
        (arm, "arm"),
        (outcome, "outcome"),
        (order_value, "order value"),
        (redeemed, "redeemed"),
        (campaign, "campaign"),
    ):
        if name:
            roles[("log", name)] = role
    taken: set[str] = set()
    arms: dict[str, str] = {}
    treatments = []
    for label in labels:
        if label in control:
            arms[label] = NO_COUPON
            continue
        name = _slug(label, taken)
        taken.add(name)
        arms[label] = name
        treatments.append({"name": name, "kind": "message"})
    shares = rows[arm].astype(str).value_counts(normalize=True)
    propensity: Any = "uniform"
    if (shares - 1 / len(labels)).abs().max() > 0.02:
        propensity = {"arms": {k: round(float(v), 6) for k, v in shares.items()}}
        propensity["arms"][max(shares.index)] += 1 - sum(propensity["arms"].values())
        notes.append(
            "arms are not equally likely: propensities set to their shares in the log; "
            "replace them with the design's probabilities"
        )
    reserved = {c for c in (user_id,) if c}
    if shared:
        reserved |= {c for c in (arm, outcome, order_value, redeemed, campaign) if c}
    segment = _named(people, "segment", reserved)
    if segment is not None and people[segment].nunique() > 20:
        segment = None
    basket = _named(people, "basket", reserved)
    numeric = [
        str(c)
        for c in people.columns
        if c not in reserved and c not in after and ptypes.is_numeric_dtype(people[c].dtype)
    ]
    constant = [str(c) for c in people.columns if people[c].nunique(dropna=True) < 2]
    ignore = sorted(set(after + constant) - reserved)
    if after:
        notes.append(f"ignored {', '.join(after)}: measured after the campaign, never a feature")
    if constant:
        notes.append(f"ignored {', '.join(constant)}: constant or empty in the rows read")
    rank_by = next((c for c in numeric if c not in ignore and c != segment), None)
    users_map: dict[str, Any] = {"file": _relative(users_path, out), "features": "all"}
    if user_id:
        users_map["id"] = user_id
    if ignore:
        users_map["ignore"] = ignore
    if segment:
        users_map["segment"] = segment
    if basket:
        users_map["basket"] = basket
    log_map: dict[str, Any] = {
        "file": _relative(log_path, out),
        "arm": arm,
        "arms": arms,
        "outcome": outcome,
        "propensity": propensity,
    }
    for key, value in (
        ("id", log_id),
        ("order_value", order_value),
        ("redeemed", redeemed),
        ("campaign", campaign),
    ):
        if value:
            log_map[key] = value
    costs: dict[str, Any] = {"sms_cost": 0.05, "margin_rate": 0.3}
    if order_value and basket is None:
        bought = rows[outcome].astype(str).isin(["1", "1.0", "True", "true"]).to_numpy()
        values = pd.to_numeric(rows[order_value], errors="coerce").to_numpy()[bought]
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            costs["order_value"] = round(float(values.mean()), 2)
            notes.append(
                f"costs.order_value = {costs['order_value']:g}: the mean {order_value} of "
                "converters in the log (the value of one conversion)"
            )
    notes.append(
        "treatments are messages costing costs.sms_cost per send: set send_cost, "
        "conversion_cost or face_value/threshold (kind = 'coupon') per treatment"
    )
    data: dict[str, Any] = {
        "name": _slug(users_path.name.split(".")[0], set()),
        "description": f"Campaign on {users_path.name} (generated by init; edit me).",
        "currency": "USD",
        "menu": {"denomination": treatments},
        "costs": costs,
        "budget": {"amount": 1000.0},
        "manual": {
            "denomination": treatments[0]["name"],
            **({"rank_by": rank_by} if rank_by else {}),
        },
        "data": {"users": users_map, "log": log_map},
    }
    if segment:
        data["targeting"] = {"column": segment}
        data["constraints"] = {"segment_column": segment}
    if rank_by and re.search(r"recency|days_since|since_last", rank_by.lower()):
        data["manual"]["ascending"] = True
    config = validate(CampaignConfig, data, source=out)
    DataConfig.model_validate(data["data"])
    facts = []
    for where, frame in (("users", people), *((("log", rows),) if not shared else ())):
        for column in frame.columns:
            name = str(column)
            role = roles.get(("log", name)) if where == "log" or shared else None
            if role is None:
                role = (
                    "id" if name == user_id
                    else "ignored" if name in ignore
                    else "segment" if name == segment
                    else "basket" if name == basket
                    else "feature" if where == "users"
                    else "unused"
                )  # fmt: skip
            series = frame[column]
            kind = "number" if ptypes.is_numeric_dtype(series.dtype) else "text"
            facts.append(
                {
                    "file": where,
                    "column": name,
                    "role": role,
                    "type": kind,
                    "distinct": int(series.nunique(dropna=True)),
                    "missing": float(series.isna().mean()),
                }
            )
    return Inference(config, pd.DataFrame(facts), notes, len(people))


def campaign_toml(config: CampaignConfig) -> str:
    """The configuration as TOML text: what was set, with a header saying what to check."""
    body = tomli_w.dumps(config.model_dump(mode="json", exclude_unset=True, exclude_none=True))
    header = (
        "# Starting campaign configuration written by `couponopt init`: check the guesses\n"
        "# (arms, outcome, features, costs), then edit. Keys: see the README, 'Your own data'.\n"
    )
    return header + body
