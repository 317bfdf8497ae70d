"""Train the speculator on past windows and register it as the version speculate loads.

    spark-submit spark_jobs/train_speculator.py --logs LOGS --at T [--windows 4] [--every 1h] \
        [--lookback 24h] [--horizon 1h] [--registry DIR]

Window i has horizon start ``T - horizon - i * every``; every label lies before T.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from solaris_batch.timeutil import parse_duration, parse_time


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_speculator", description=__doc__.split("\n")[0])
    p.add_argument("--logs", type=Path, required=True)
    p.add_argument("--at", required=True, help="train on data before this time (UTC)")
    p.add_argument("--windows", type=int, default=4, help="past windows to learn from (default 4)")
    p.add_argument("--every", default=None, help="spacing of the windows (default: the horizon)")
    p.add_argument("--lookback", default="24h")
    p.add_argument("--horizon", default="1h")
    p.add_argument("--registry", type=Path, help="registry folder (default SOLARIS_SPECULATOR)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None, settings=None):
    from solaris_batch.config import load_settings
    from solaris_batch.errors import ConfigError
    from spark_jobs import scoring
    from spark_jobs.session import get_spark

    a = build_parser().parse_args(argv)
    if a.windows < 1:
        raise ConfigError("--windows must be >= 1")
    settings = settings or load_settings()
    spark = get_spark(settings, "solaris-train-speculator")
    return scoring.train(spark, a.logs, parse_time(a.at), a.registry or settings.speculator_path,
                         parse_duration(a.lookback), parse_duration(a.horizon), windows=a.windows,
                         every=parse_duration(a.every) if a.every else None, seed=a.seed)


if __name__ == "__main__":
    from spark_jobs.session import job_entry

    job_entry(main, lambda m: f"train-speculator: registered {m.version} ({m.examples} examples,"
                              f" train AUC {m.train_auc:.4f})")
