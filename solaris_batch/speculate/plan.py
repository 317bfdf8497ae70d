"""The plan: what speculation asks the FM to compute, and its on-disk layout.

    <plan>/pairs/shard=<i>/*.parquet   user_id, ad_id, score (shard from the folder); sorted by user
    <plan>/users/shard=<i>/*.parquet   user_id, seq_ad_id, seq_clicked (FM input, oldest first);
                                       sorted by user_id, so a shard streams in lockstep with its pairs
    <plan>/ads/*.parquet               ad_id, category_id for every ad the plan mentions
    <plan>/_quarantine/*.parquet       malformed log rows met while planning (if any)
    <plan>/_plan.json                  PlanInfo below

Which pairs a budget keeps is decided by ``PLAN_ORDER``, the one definition of the plan's order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from solaris_batch import schemas
from solaris_batch.errors import InputNotFound
from solaris_batch.storage import Root

PLAN_FORMAT = 1


@dataclass(frozen=True)
class PlanOrder:
    """The order in which a plan keeps pairs: a budget of N keeps the first N.

    Score descending, ties broken by ``user_id`` then ``ad_id`` ascending, so reruns keep exactly
    the same pairs. The speculate job, the backtest and the evaluation all rank by this one order:
    in Spark through ``columns()``, in numpy through ``argsort()``.
    """

    keys: tuple[tuple[str, bool], ...] = (("score", True), ("user_id", False), ("ad_id", False))
    """``(column, descending)`` pairs, most significant first."""

    def columns(self) -> list:
        """Spark sort expressions (``pyspark.sql.Column``) for ``orderBy`` and window specs."""
        from pyspark.sql import functions as F

        return [F.desc(c) if desc else F.asc(c) for c, desc in self.keys]

    def argsort(self, **arrays: np.ndarray) -> np.ndarray:
        """Indices that sort the pairs given as numpy arrays (one keyword per key column).

        Args:
            **arrays: equal-length arrays named like ``keys``, e.g.
                ``argsort(score=s, user_id=u, ad_id=a)``; scores compare as float64.

        Returns:
            int64 indices, first the pair a budget of 1 keeps.
        """
        cols = [-np.asarray(arrays[c], np.float64) if desc else np.asarray(arrays[c]) for c, desc in self.keys]
        return np.lexsort(cols[::-1])


PLAN_ORDER = PlanOrder()
"""The plan order (see ``PlanOrder``)."""


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

    def provenance(self) -> dict:
        """What a snapshot built from this plan records in its manifest (``publish(extra=...)``)."""
        return {"window": {"at": self.at, "lookback": self.lookback, "horizon": self.horizon,
                           "lookback_start": self.lookback_start},
                "speculator": self.speculator, "budget": self.budget, "plan_pairs": self.pairs}

    def write(self, plan: Path) -> None:
        (Path(plan) / "_plan.json").write_text(json.dumps(asdict(self), indent=2) + "\n")


def read_plan_info(plan: Path | str) -> PlanInfo:
    """The plan's ``_plan.json``; ``plan`` is a local folder or a URI."""
    data = Root.open(plan).read_optional("_plan.json")
    if data is None:
        raise InputNotFound(f"no plan at {plan} (missing _plan.json): run 'solaris speculate --out {plan}' first")
    return PlanInfo(**json.loads(data))


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


def read_table(plan: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """One table of the plan (``pairs``, ``users`` or ``ads``), every shard."""
    return ds.dataset(Path(plan) / name, format="parquet").to_table(columns=columns)


def read_ads(plan: Path) -> pa.Table:
    """The ads the plan mentions, as ``schemas.PLAN_ADS`` (extra columns dropped, types cast)."""
    return read_table(plan, "ads", columns=schemas.PLAN_ADS.names).cast(schemas.PLAN_ADS)
