"""spark-submit entry point: train and register a speculator (``solaris_batch.jobs.TrainSpeculatorJob``).

    spark-submit spark_jobs/train_speculator.py --logs LOGS --at T [--windows 4] [--every 1h] \
        [--lookback 24h] [--horizon 1h] [--registry DIR]
"""

import sys

from solaris_batch.jobs import TrainSpeculatorJob, entry_point

if __name__ == "__main__":
    entry_point(TrainSpeculatorJob, sys.argv[1:])
