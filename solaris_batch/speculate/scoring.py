"""Score candidates: a learned model trained on past windows, or the heuristic fallback.

Training example: a candidate pair at a past time T' (features as of T', from its own lookback);
label: the pair is scored in ``[T', T' + horizon)``. Positives are weighted by how many horizon
rows they cover, so the model's ranking follows expected covered rows (what the budget buys);
negatives are subsampled deterministically and re-weighted.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

from solaris_batch.config import DEFAULT_SPECULATOR_WINDOWS
from solaris_batch.speculate import registry
from solaris_batch.speculate.channels import ChannelOptions, horizon_pairs, load_window
from solaris_batch.speculate.features import FEATURES, candidates
from solaris_batch.speculate.registry import SpeculatorChoice, SpeculatorKind
from solaris_batch.storage.uri import to_hadoop
from solaris_batch.timeutil import format_duration, parse_time, stamp, to_us

HEURISTIC = "heuristic-v2"
NEG_RATE = 0.2


def heuristic(df):
    """Score without a model: decayed repeats first, then co-visitation and neighbours for pairs
    never seen (their small terms only order what repeats leave unranked)."""
    from pyspark.sql import functions as F

    return df.withColumn("score", F.col("rep_decay") + 0.01 * F.col("cov_score") + 0.001 * F.col("nn_sim"))


def labelled(spark, logs: Path, at: datetime, lookback, horizon, opts: ChannelOptions):
    """Candidates at ``at`` joined with what the horizon really scored: adds ``label``, ``rows``."""
    from pyspark.sql import functions as F

    load_window(spark, logs, at, lookback)
    cands = candidates(spark, at, horizon, lookback, opts)
    truth = horizon_pairs(spark, logs, at, horizon)
    return (cands.join(truth, ["user_id", "ad_id"], "left").fillna({"rows": 0})
            .withColumn("label", (F.col("rows") > 0).cast("double")))


def training_set(spark, logs: Path, ats: list[datetime], lookback, horizon, opts: ChannelOptions, out: Path,
                 neg_rate: float = NEG_RATE) -> None:
    """Write the examples of every ``at`` to ``out`` (Parquet, one folder per window)."""
    from pyspark.sql import functions as F

    for i, at in enumerate(ats):
        df = labelled(spark, logs, at, lookback, horizon, opts)
        keep = (F.col("label") > 0) | ((F.abs(F.xxhash64("user_id", "ad_id", F.lit(to_us(at)))) % 1000)
                                       < int(neg_rate * 1000))
        ex = df.filter(keep).withColumn(
            "weight", F.when(F.col("label") > 0, F.col("rows").cast("double")).otherwise(1.0 / neg_rate))
        ex.write.mode("overwrite").parquet(to_hadoop(out / f"window={i}"))
        spark.catalog.clearCache()  # the window's cached rows and channels
        print(f"train-speculator: window {i + 1}/{len(ats)} at {stamp(at)} written", file=sys.stderr)


def fit(spark, examples: Path, seed: int = 0, max_iter: int = 40, max_depth: int = 5):
    """Gradient-boosted trees over ``FEATURES``; returns (PipelineModel, train AUC, n, positives)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import GBTClassifier
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler

    df = spark.read.parquet(to_hadoop(examples)).cache()
    n, pos = df.count(), df.filter("label > 0").count()
    pipe = Pipeline(stages=[
        VectorAssembler(inputCols=FEATURES, outputCol="features"),
        GBTClassifier(featuresCol="features", labelCol="label", weightCol="weight", maxIter=max_iter,
                      maxDepth=max_depth, stepSize=0.2, seed=seed, maxBins=64),
    ])
    model = pipe.fit(df)
    auc = BinaryClassificationEvaluator(labelCol="label", weightCol="weight") \
        .evaluate(model.transform(df))
    df.unpersist()
    return model, float(auc), n, pos


def apply(model, df):
    """Add ``score`` = the model's probability that the pair is scored in the horizon."""
    from pyspark.ml.functions import vector_to_array

    out = model.transform(df)
    return out.withColumn("score", vector_to_array("probability")[1]).drop("features", "rawPrediction",
                                                                           "probability", "prediction")


def load(version_dir: Path):
    """The registered model at ``version_dir``."""
    from pyspark.ml import PipelineModel

    return PipelineModel.load(str(Path(version_dir) / "model"))


def score(df, speculator: SpeculatorChoice, registry_root: Path | None = None):
    """Add ``score`` to the candidates ``df`` with the chosen speculator.

    ``LATEST`` with nothing registered under ``registry_root`` falls back to the heuristic, with a
    warning.

    Args:
        df: candidates with the ``FEATURES`` columns (``features.candidates``).
        speculator: heuristic, latest, or a version folder (``TRAIN`` is refused: train first).
        registry_root: the registry ``LATEST`` is read from.

    Returns:
        ``(scored df, speculator name)``: ``heuristic-v2`` or ``learned-<version>``.
    """
    if speculator.kind is SpeculatorKind.HEURISTIC:
        return heuristic(df), HEURISTIC
    model_dir = speculator.model_dir(registry_root)
    if model_dir is None:
        warnings.warn(f"no trained speculator under {registry_root}: using the heuristic score {HEURISTIC}"
                      " (run 'solaris train-speculator' to learn one)", stacklevel=2)
        return heuristic(df), HEURISTIC
    meta = registry.read_meta(model_dir)
    return apply(load(model_dir), df), f"learned-{meta.version}"


def train(spark, logs: Path, at: datetime, registry_root: Path, lookback: timedelta, horizon: timedelta,
          windows: int = DEFAULT_SPECULATOR_WINDOWS, every: timedelta | None = None, opts: ChannelOptions | None = None,
          seed: int = 0) -> registry.SpeculatorMeta:
    """Train on ``windows`` past windows ending at or before ``at`` and register the model.

    Window i has horizon start ``T'_i = at - horizon - i * every``, so every label lies before
    ``at``: nothing after ``at`` is read.

    Args:
        spark: the SparkSession.
        logs: request-log root.
        at: train on data before this time (UTC).
        registry_root: registry the new version is committed to (``LATEST`` flipped).
        lookback: feature window before each ``T'_i``.
        horizon: label window after each ``T'_i``.
        windows: number of past windows (>= 1).
        every: spacing of the windows (default: the horizon).
        opts: channel knobs, recorded in the version's metadata.
        seed: seed of the gradient-boosted trees.

    Returns:
        The registered version's metadata.
    """
    opts = opts or ChannelOptions()
    at = parse_time(at)
    every = every or horizon
    ats = [at - horizon - i * every for i in range(windows)]
    staging = registry.new_version(registry_root)
    try:
        training_set(spark, logs, ats, lookback, horizon, opts, staging / "_examples")
        model, auc, n, pos = fit(spark, staging / "_examples", seed=seed)
        model.write().overwrite().save(str(staging / "model"))
        shutil.rmtree(staging / "_examples", ignore_errors=True)
        version = f"{stamp(at)}-w{windows}-{format_duration(lookback)}"
        meta = registry.SpeculatorMeta(
            version=version, features=FEATURES, train_at=[a.isoformat() for a in ats],
            lookback=format_duration(lookback), horizon=format_duration(horizon), examples=n, positives=pos,
            train_auc=auc, options=asdict(opts))
        registry.commit(staging, meta)
        return meta
    finally:
        shutil.rmtree(staging, ignore_errors=True)
