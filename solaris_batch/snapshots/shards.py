"""Embedding shard files: the documented schema, written atomically, readable by anyone.

Schema (``schemas.embedding_shard_schema``): ``user_id int64, ad_id int64,
embedding fixed_size_binary[2*dim] (little-endian float16), logit float32``. Provenance lives in
the Parquet key-value metadata under ``solaris.*`` keys.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solaris_batch.schemas import embedding_shard_schema

META_PREFIX = "solaris."


def shard_path(out: Path, shard: int) -> Path:
    return Path(out) / f"part-{shard:05d}.parquet"


def encode_embeddings(emb: np.ndarray) -> pa.FixedSizeBinaryArray:
    """(n, d) float array -> ``fixed_size_binary[2d]`` of little-endian float16."""
    e = np.ascontiguousarray(emb, dtype="<f2")
    n, d = e.shape
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(2 * d), n, [None, pa.py_buffer(e.tobytes())])


def decode_embeddings(col: pa.Array | pa.ChunkedArray, dim: int) -> np.ndarray:
    """``fixed_size_binary[2*dim]`` column -> (n, dim) float16 array (zero-copy per chunk)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    parts = [
        np.frombuffer(c.buffers()[1], dtype="<f2", count=len(c) * dim, offset=c.offset * 2 * dim).reshape(-1, dim)
        for c in chunks if len(c)
    ]
    if len(parts) == 1:
        return parts[0]  # one chunk: a view, no copy
    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype="<f2")


def _table(user_ids, ad_ids, emb, logits, dim) -> pa.Table:
    return pa.table(
        [pa.array(user_ids, pa.int64()), pa.array(ad_ids, pa.int64()), encode_embeddings(emb),
         pa.array(np.asarray(logits, dtype=np.float32), pa.float32())],
        schema=embedding_shard_schema(dim),
    )


def write_embedding_shard_stream(path: Path, batches: Iterable[tuple], dim: int, meta: dict[str, str],
                                 **late_meta) -> int:
    """Stream ``(user_ids, ad_ids, embeddings (n, dim), logits)`` batches into one shard file.

    Written under a temporary name, fsynced, then renamed: readers never see a partial shard.
    ``late_meta`` values may be callables, evaluated once every batch is written. Returns rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    rows = 0
    schema = embedding_shard_schema(dim)
    try:
        # Embeddings are stored uncompressed (float data barely compresses; decoding is a memcpy).
        compression = {"user_id": "zstd", "ad_id": "zstd", "embedding": "none", "logit": "zstd"}
        with pq.ParquetWriter(tmp, schema, compression=compression) as w:
            for u, a, e, lg in batches:
                w.write_table(_table(u, a, e, lg, dim), row_group_size=1 << 17)
                rows += len(u)
            late = {k: (v() if callable(v) else v) for k, v in late_meta.items()}
            w.add_key_value_metadata({META_PREFIX + k: str(v) for k, v in {**meta, **late, "rows": rows, "dim": dim,
                                                                          "dtype": "float16"}.items()})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def write_embedding_shard(path: Path, user_ids: np.ndarray, ad_ids: np.ndarray, embeddings: np.ndarray,
                          logits: np.ndarray | None = None, **meta: str) -> int:
    """Write one embedding shard in the documented schema (for the runner and other producers).

    ``meta`` becomes ``solaris.<key>`` Parquet metadata; publish reads ``checkpoint_version``,
    ``plan_fingerprint``, ``plan_at``, ``plan_pairs``, ``plan_shards`` and ``shard`` from it.
    """
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or len(emb) != len(user_ids) or len(user_ids) != len(ad_ids):
        raise ValueError("user_ids, ad_ids and embeddings (n, d) must have the same length n")
    lg = np.zeros(len(user_ids), np.float32) if logits is None else logits
    return write_embedding_shard_stream(path, [(user_ids, ad_ids, emb, lg)], emb.shape[1], meta)


def read_shard_meta(path: Path) -> dict[str, str] | None:
    """The ``solaris.*`` metadata of a shard, or None if the file is absent or unreadable."""
    try:
        kv = pq.read_metadata(path).metadata or {}
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        return None
    return {k.decode()[len(META_PREFIX):]: v.decode() for k, v in kv.items() if k.decode().startswith(META_PREFIX)}


def list_shards(emb_dir: Path) -> list[Path]:
    return sorted(Path(emb_dir).glob("part-*.parquet"))

