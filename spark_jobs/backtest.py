"""spark-submit entry point: backtest the speculator against the baselines (``solaris_batch.jobs.BacktestJob``).

    spark-submit spark_jobs/backtest.py --logs LOGS --at T[,T2,...] --horizon 1h \
        --budgets 0.5x,1x,2x,4x --out DIR [--strategies learned,repeat,popular] [--model DIR]
"""

import sys

from solaris_batch.jobs import BacktestJob, entry_point

if __name__ == "__main__":
    entry_point(BacktestJob, sys.argv[1:])
