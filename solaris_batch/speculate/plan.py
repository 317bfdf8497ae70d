"""The plan: what speculation asks the FM to compute, and its on-disk layout.

    <plan>/pairs/shard=<i>/*.parquet   user_id, ad_id, score (shard from the folder); sorted by user
    <plan>/users/shard=<i>/*.parquet   user_id, seq_ad_id, seq_clicked (FM input, oldest first);
                                       sorted by user_id, so a shard streams in lockstep with its pairs
    <plan>/ads/*.parquet               ad_id, category_id for every ad the plan mentions
    <plan>/_quarantine/*.parquet       malformed log rows met while planning (if any)
    <plan>/_plan.json                  PlanInfo below
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from solaris_batch import schemas
from solaris_batch.errors import InputNotFound

PLAN_FORMAT = 1


@dataclass(frozen=True)
class PlanInfo:
    """Metadata of a written plan (``_plan.json``)."""

    at: str
    lookback: str
    horizon: str
    budget: str
    budget_pairs: int
    pairs: int
    users: int
    shards: list[int]
    num_shards: int
    seq_len: int
    rows_read: int
    quarantined: int
    speculator: str
    fingerprint: str = ""
    format: int = PLAN_FORMAT
    shard_pairs: dict[str, int] = field(default_factory=dict)
    recent_pairs: int = 0
    """Distinct pairs of the horizon-length window before ``at``: what ``Nx`` budgets multiply
    (counted only for ``Nx`` budgets; 0 for a pair count)."""
    lookback_start: str = ""
    """Start of the log window read (ISO, UTC): ``at - lookback``, or the log's first hour when the
    log begins later (a clipped lookback). Empty in plans written before this field."""

    def write(self, plan: Path) -> None:
        (Path(plan) / "_plan.json").write_text(json.dumps(asdict(self), indent=2) + "\n")


def read_plan_info(plan: Path) -> PlanInfo:
    p = Path(plan) / "_plan.json"
    if not p.exists():
        raise InputNotFound(f"no plan at {plan} (missing _plan.json): run 'solaris speculate --out {plan}' first")
    return PlanInfo(**json.loads(p.read_text()))


def shard_files(plan: Path, table: str, shard: int) -> list[str]:
    """Parquet files of one shard of ``pairs`` or ``users``, in name order."""
    return sorted(str(f) for f in (Path(plan) / table / f"shard={shard}").glob("*.parquet"))


def read_pairs(plan: Path, shard: int | None = None) -> pa.Table:
    """Pairs of one shard (or all), in file order, i.e. sorted by (shard, user_id, ad_id)."""
    if shard is not None:
        files = shard_files(plan, "pairs", shard)
        if not files:
            return schemas.PLAN_PAIRS.empty_table()
        t = ds.dataset(files, format="parquet").to_table(columns=["user_id", "ad_id", "score"])
        return t.append_column("shard", pa.array([shard] * t.num_rows, pa.int32()))
    parts = [read_pairs(plan, s) for s in read_plan_info(plan).shards]
    return pa.concat_tables(parts) if parts else schemas.PLAN_PAIRS.empty_table()


def read_table(plan: Path, name: str) -> pa.Table:
    return ds.dataset(Path(plan) / name, format="parquet").to_table()
