"""spark-submit entry point: plan the pairs of the next horizon (``solaris_batch.jobs.SpeculateJob``).

    spark-submit spark_jobs/speculate.py --logs LOGS --at T --lookback 24h --horizon 1h \
        --budget 2x --out PLAN [--shards 4] [--seq-len 128] [--per-user-cap N] [--model DIR|heuristic]
"""

import sys

from solaris_batch.jobs import SpeculateJob, entry_point

if __name__ == "__main__":
    entry_point(SpeculateJob, sys.argv[1:])
