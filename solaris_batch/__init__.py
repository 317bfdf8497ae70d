"""SOLARIS-batch: speculative offloading of foundation-model inference for ad ranking.

Data flows one way::

    request logs -> speculate (Spark) -> plan shards -> infer (torch) -> embedding shards
                 -> publish (validate, manifest, atomic pointer) -> snapshot -> lookup (serving)
"""

__version__ = "0.2.0"  # 0.2: authenticated manifests (format 2) and the JSON CURRENT pointer
