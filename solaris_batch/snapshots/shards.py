"""Embedding shard files: the documented schema, written atomically, readable by anyone.

Schema (``schemas.embedding_shard_schema``): ``user_id int64, ad_id int64,
embedding fixed_size_binary[2*dim] (little-endian float16), logit float32``. Provenance lives in
the Parquet key-value metadata under ``solaris.*`` keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solaris_batch.errors import ValidationFailed
from solaris_batch.schemas import embedding_shard_schema
from solaris_batch.storage import atomic_path

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


def has_shard_schema(schema: pa.Schema, dim: int) -> bool:
    """Whether ``schema`` has the embedding shard's columns and types for ``dim`` (nullability
    aside: other writers mark fields nullable; readers check null counts instead)."""
    return [(f.name, f.type) for f in schema] == [(f.name, f.type) for f in embedding_shard_schema(dim)]


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
    rows = 0
    schema = embedding_shard_schema(dim)
    with atomic_path(Path(path)) as tmp:
        # Embeddings are stored uncompressed (float data barely compresses; decoding is a memcpy).
        compression = {"user_id": "zstd", "ad_id": "zstd", "embedding": "none", "logit": "zstd"}
        with pq.ParquetWriter(tmp, schema, compression=compression) as w:
            for u, a, e, lg in batches:
                w.write_table(_table(u, a, e, lg, dim), row_group_size=1 << 17)
                rows += len(u)
            late = {k: (v() if callable(v) else v) for k, v in late_meta.items()}
            w.add_key_value_metadata({META_PREFIX + k: str(v) for k, v in {**meta, **late, "rows": rows, "dim": dim,
                                                                          "dtype": "float16"}.items()})
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
    except (FileNotFoundError, OSError, pa.ArrowException):
        return None
    return {k.decode("utf-8", "replace")[len(META_PREFIX):]: v.decode("utf-8", "replace") for k, v in kv.items()
            if k.startswith(META_PREFIX.encode())}


@dataclass(frozen=True)
class ShardMeta:
    """The typed ``solaris.*`` metadata publish reads from one embedding shard."""

    checkpoint_version: str
    dim: int
    plan_fingerprint: str | None
    plan_at: str | None
    plan_pairs: int | None
    plan_shards: tuple[int, ...] | None
    shard: int | None
    failed_pairs: int

    @classmethod
    def read(cls, path: Path) -> ShardMeta:
        """Parse a shard's metadata; a missing or mistyped key raises ``ValidationFailed`` naming it."""
        m = read_shard_meta(path)
        if m is None:
            raise ValidationFailed(f"{path} is not a readable Parquet file: re-run inference for its shard")

        def need(key: str, how: str) -> str:
            if key not in m:
                raise ValidationFailed(f"{path} has no {META_PREFIX}{key} metadata: write shards with"
                                       f" write_embedding_shard(..., {key}={how})")
            return m[key]

        def as_int(key: str, text: str | None) -> int | None:
            if text is None:
                return None
            try:
                v = int(text)
            except ValueError:
                raise ValidationFailed(f"{path}: metadata {META_PREFIX}{key}={text[:40]!r} is not an integer") from None
            if v < 0:
                raise ValidationFailed(f"{path}: metadata {META_PREFIX}{key}={v} is negative")
            return v

        shards = m.get("plan_shards")
        return cls(
            checkpoint_version=need("checkpoint_version", "<the FM checkpoint's version>"),
            dim=as_int("dim", need("dim", "<embedding width>")),
            plan_fingerprint=m.get("plan_fingerprint"), plan_at=m.get("plan_at"),
            plan_pairs=as_int("plan_pairs", m.get("plan_pairs")),
            plan_shards=None if shards is None else tuple(as_int("plan_shards", x) for x in shards.split(",") if x),
            shard=as_int("shard", m.get("shard")), failed_pairs=as_int("failed_pairs", m.get("failed_pairs", "0")),
        )

    @property
    def has_plan(self) -> bool:
        return None not in (self.plan_fingerprint, self.plan_pairs, self.plan_shards, self.shard)


def list_shards(emb_dir: Path) -> list[Path]:
    """The embedding shard files of ``emb_dir``; a ``part-*`` file that breaks the snapshot naming
    rule (``part-NNNNN.parquet``) is refused, since the loader would refuse it after the flip."""
    from solaris_batch.snapshots.manifest import is_part_name

    paths = sorted(Path(emb_dir).glob("part-*"))
    odd = [p.name for p in paths if not is_part_name(p.name)]
    if odd:
        raise ValidationFailed(f"{emb_dir} holds files named {odd[:3]}: shard files must be named part-NNNNN.parquet;"
                               " move the others out")
    return paths

