"""The speculator: which (user, ad) pairs the next horizon will score, planned under a budget.

    channels.py   log views (``requests``, ``ads``) and the candidate channels (SQL in ``sql/``, faiss)
    features.py   ``FEATURES`` and ``candidates``: the channels joined into one row per pair
    scoring.py    the heuristic and the learned scorer (Spark ML), training and registration
    registry.py   versioned models + ``LATEST``; ``SpeculatorChoice`` (heuristic / latest / version / train)
    planner.py    plan selection: score, keep the top ``budget`` pairs in ``PLAN_ORDER``, shard, write
    plan.py       the plan's layout, ``PlanInfo`` and ``PLAN_ORDER``
    baselines.py  ``repeat`` and ``popular``; backtest.py and report.py: replay horizons, pool, plot
    budget.py, metrics.py, embed.py: budgets, coverage, co-visitation vectors and faiss top-k
    spark.py      the SparkSession (and its quiet console)

pyspark is imported inside the functions that use Spark: importing this package never imports it.
The ``spark-submit`` entry points and their typed arguments are in ``spark_jobs/`` and
``solaris_batch.jobs``.
"""
