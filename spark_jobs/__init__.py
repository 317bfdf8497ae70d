"""Spark entry points (``spark-submit spark_jobs/<job>.py``); thin, the SQL lives in ``sql/``."""
