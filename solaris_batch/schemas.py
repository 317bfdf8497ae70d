"""Arrow schemas of every table SOLARIS reads or writes: the data contracts.

The same contracts are written as Spark DDL in ``sql/request_log.sql``; README documents them.
All timestamps are UTC, microsecond precision.
"""

from __future__ import annotations

import pyarrow as pa

from solaris_batch.errors import SchemaMismatch

TS = pa.timestamp("us", tz="UTC")

#: One row per (request, candidate ad) scored by the final-stage ranker.
REQUEST_LOG = pa.schema(
    [
        pa.field("request_id", pa.int64(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("ad_id", pa.int64(), nullable=False),
        pa.field("position", pa.int32(), nullable=True),
        pa.field("impressed", pa.bool_(), nullable=False),
        pa.field("clicked", pa.bool_(), nullable=False),
        pa.field("surface", pa.string(), nullable=True),
    ]
)

#: Optional ads dimension table, ``<logs>/ads/``.
ADS = pa.schema(
    [
        pa.field("ad_id", pa.int64(), nullable=False),
        pa.field("campaign_id", pa.int64()),
        pa.field("advertiser_id", pa.int64()),
        pa.field("category_id", pa.int32()),
        pa.field("start_ts", TS),
        pa.field("end_ts", TS),
    ]
)

#: Optional users dimension table, ``<logs>/users/``: ``user_id`` plus categorical features.
USERS = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("region", pa.int32()),
        pa.field("age_bucket", pa.int32()),
    ]
)

#: Plan pairs, ``<plan>/pairs/shard=<i>/*.parquet``, sorted by (shard, user_id) in each shard.
PLAN_PAIRS = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("ad_id", pa.int64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("shard", pa.int32(), nullable=False),
    ]
)

#: Per planned user, the engagement sequence the FM reads, oldest first (``<plan>/users/``).
PLAN_USERS = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("seq_ad_id", pa.list_(pa.int64())),
        pa.field("seq_clicked", pa.list_(pa.bool_())),
    ]
)

#: Ad features for every ad the plan mentions (``<plan>/ads/``).
PLAN_ADS = pa.schema(
    [pa.field("ad_id", pa.int64(), nullable=False), pa.field("category_id", pa.int32())]
)


def embedding_shard_schema(dim: int) -> pa.Schema:
    """Schema of an embedding shard and of snapshot parts.

    ``embedding`` is ``fixed_size_binary[2 * dim]``: ``dim`` little-endian float16 values. Decode
    with ``np.frombuffer(col.buffers()[1], "<f2").reshape(-1, dim)``. A binary column decodes
    several times faster than ``fixed_size_list<float16>`` of the same bytes.
    """
    return pa.schema(
        [
            pa.field("user_id", pa.int64(), nullable=False),
            pa.field("ad_id", pa.int64(), nullable=False),
            pa.field("embedding", pa.binary(2 * dim), nullable=False),
            pa.field("logit", pa.float32(), nullable=False),
        ]
    )


def _same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_timestamp(expected) and pa.types.is_timestamp(actual):
        # Any UTC spelling and any unit Spark may write are accepted; they are cast on read.
        return (actual.tz or "").upper() in {"UTC", "+00:00", "Z", "ETC/UTC"}
    if pa.types.is_large_string(actual) and pa.types.is_string(expected):
        return True
    return actual.equals(expected)


def check_schema(actual: pa.Schema, expected: pa.Schema, what: str) -> None:
    """Raise ``SchemaMismatch`` naming every missing or mistyped column of ``actual``."""
    problems = []
    for field in expected:
        idx = actual.get_field_index(field.name)
        if idx < 0:
            problems.append(f"missing column {field.name} ({field.type})")
        elif not _same_type(actual.field(idx).type, field.type):
            problems.append(f"column {field.name} is {actual.field(idx).type}, expected {field.type}")
    if problems:
        raise SchemaMismatch(
            f"{what} does not match the data contract: {'; '.join(problems)}"
            " (see README 'Data contracts'; ingest adapters write the canonical schema)"
        )
