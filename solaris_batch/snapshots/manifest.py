"""The snapshot format's trust boundary: the typed manifest, the CURRENT pointer, file checksums.

Everything here parses bytes read from storage, which may be truncated, edited or half-written.
Parsing either returns a fully validated object or raises ``ValidationFailed``; no other exception
escapes, and no field is used before it is checked.

* ``_manifest.json`` carries ``digest``: the sha256 of its own canonical JSON without that key, so
  a truncated or hand-edited manifest is refused even when loaded by id.
* ``CURRENT`` is one line of JSON, ``{"snapshot_id", "manifest_sha256", "generation"}``: the
  digest binds the pointer to the exact manifest bytes it was written for, and the generation
  (+1 per flip) lets a publisher detect that another one moved CURRENT in the meantime.
* Every manifest field that sizes or indexes memory (rows, dim, file sizes, the index's mask and
  slots) is range-checked here and checked again against the files when they are read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import xxhash

from solaris_batch.errors import ConfigError, ValidationFailed
from solaris_batch.storage import SAFE_NAME as _SAFE
from solaris_batch.storage import safe_name
from solaris_batch.timeutil import parse_time

MANIFEST = "_manifest.json"
INDEX = "_index.bin"
CURRENT = "CURRENT"
BAD = "BAD"
FORMAT = 2
DTYPE = "float16"
ENCODING = "fixed_size_binary"
MAX_ROWS = 2**31 - 1  # the pair index addresses rows with 32 bits
MAX_DIM = 1 << 16
MAX_BYTES = 1 << 44
MAX_POINTER_BYTES = 4096
MAX_MANIFEST_BYTES = 64 << 20
PART_RE = re.compile(r"^part-\d{5,9}\.parquet$")
_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "xxh3_128": re.compile(r"^[0-9a-f]{32}$")}
VERIFY_MODES = ("fast", "full", "none")


def is_part_name(name: str) -> bool:
    """The one naming rule for snapshot data files, applied at publish and at load."""
    return bool(PART_RE.match(name))


def checksums(data) -> dict:
    """``sha256`` (for full verification) and ``xxh3_128`` (fast, verified on every load)."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "xxh3_128": xxhash.xxh3_128_hexdigest(data)}


def verify_bytes(data, entry: FileEntry | IndexEntry, verify: str, rel: str) -> None:
    """Refuse ``data`` unless its size and checksum (per ``verify``) match the manifest entry."""
    if verify not in VERIFY_MODES:
        raise ConfigError(f"verify={verify!r}: choose fast (XXH3-128, default), full (sha256) or none")
    if len(data) != entry.bytes:
        raise ValidationFailed(f"snapshot file {rel} has {len(data)} bytes, manifest says {entry.bytes}: refused")
    if verify == "full":
        ok = hashlib.sha256(data).hexdigest() == entry.sha256
    elif verify == "fast":
        ok = xxhash.xxh3_128_hexdigest(data) == entry.xxh3_128
    else:
        ok = True
    if not ok:
        raise ValidationFailed(f"snapshot file {rel} fails its {verify} checksum: refusing to serve it")


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _json(data: bytes, what: str, limit: int) -> Any:
    if len(data) > limit:
        raise ValidationFailed(f"{what} is {len(data):,} bytes, over the {limit:,}-byte limit: refused")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValidationFailed(f"{what} is not valid JSON ({type(e).__name__}: {str(e)[:80]})") from None


class _Fields:
    """Typed reads of one JSON object, each failure naming the field and where it came from."""

    def __init__(self, obj: Any, where: str):
        if not isinstance(obj, dict):
            raise ValidationFailed(f"{where} is not a JSON object")
        self.obj, self.where = obj, where

    def _fail(self, key: str, want: str):
        raise ValidationFailed(f"{self.where}: field {key!r} must be {want}, got {self.obj.get(key)!r:.60}")

    def int(self, key: str, lo: int = 0, hi: int = MAX_BYTES) -> int:
        v = self.obj.get(key)
        if type(v) is not int or not lo <= v <= hi:
            self._fail(key, f"an integer in [{lo}, {hi}]")
        return v

    def str(self, key: str, pattern: re.Pattern | None = None, optional: bool = False) -> str | None:
        v = self.obj.get(key)
        if v is None and optional:
            return None
        if not isinstance(v, str) or (pattern is not None and not pattern.match(v)):
            self._fail(key, "a string" + (f" matching {pattern.pattern}" if pattern else ""))
        return v

    def equal(self, key: str, value: Any) -> None:
        if self.obj.get(key) != value or type(self.obj.get(key)) is not type(value):
            self._fail(key, repr(value))


@dataclass(frozen=True)
class FileEntry:
    name: str
    rows: int
    bytes: int
    sha256: str
    xxh3_128: str

    @classmethod
    def parse(cls, obj: Any, where: str) -> FileEntry:
        f = _Fields(obj, where)
        name = f.str("name")
        if not is_part_name(name):
            raise ValidationFailed(f"{where} names unexpected file {name!r}: data files are part-NNNNN.parquet")
        return cls(name, f.int("rows", 0, MAX_ROWS), f.int("bytes"), f.str("sha256", _HEX["sha256"]),
                   f.str("xxh3_128", _HEX["xxh3_128"]))


@dataclass(frozen=True)
class IndexEntry:
    """The pair index built at publish time: ``slots`` little-endian int64 entries."""

    format: str
    rows: int
    mask: int
    slots: int
    bytes: int
    sha256: str
    xxh3_128: str

    @classmethod
    def parse(cls, obj: Any, where: str, rows: int) -> IndexEntry:
        from solaris_batch.snapshots.index import PairIndex

        f = _Fields(obj, where)
        f.equal("name", INDEX)
        e = cls(f.str("format"), f.int("rows", rows, rows), f.int("mask", 0, 2**63 - 1), f.int("slots", 1, MAX_BYTES // 8),
                f.int("bytes"), f.str("sha256", _HEX["sha256"]), f.str("xxh3_128", _HEX["xxh3_128"]))
        if e.bytes != 8 * e.slots:
            raise ValidationFailed(f"{where}: {e.bytes} bytes for {e.slots} slots (8 bytes each): refused")
        if e.format == PairIndex.FORMAT:
            mask, lo, hi = PairIndex.layout(rows)
            if e.mask != mask or not lo <= e.slots <= hi:
                raise ValidationFailed(f"{where}: mask {e.mask} / {e.slots} slots do not fit {rows} rows"
                                       f" (mask {mask}, {lo}..{hi} slots): refused")
        return e


@dataclass(frozen=True)
class Manifest:
    """A validated ``_manifest.json``. ``body`` is the whole JSON object (extra keys such as the
    plan window, speculator and drift included); ``sha256`` is the digest of the bytes read."""

    snapshot_id: str
    model_name: str
    rows: int
    dim: int
    dtype: str
    checkpoint_version: str
    plan_at: str | None
    at_ts: float  # plan_at as a UNIX time; NaN when the manifest has none
    files: tuple[FileEntry, ...]
    index: IndexEntry | None
    body: dict
    sha256: str

    @property
    def row_bytes(self) -> int:
        return 2 * self.dim

    @staticmethod
    def encode(body: dict) -> str:
        """Manifest text for ``body`` with its ``digest`` added (readable, indented, ASCII JSON)."""
        body = {k: v for k, v in body.items() if k != "digest"}
        body["digest"] = hashlib.sha256(_canonical(body)).hexdigest()
        return json.dumps(body, indent=2, allow_nan=False) + "\n"

    @classmethod
    def parse(cls, data: bytes, model: str, snapshot_id: str, expect_sha256: str | None = None) -> Manifest:
        """Validate manifest bytes for ``model``/``snapshot_id``; ``expect_sha256`` (from CURRENT)
        must match the bytes when given."""
        where = f"manifest of {model}/{snapshot_id}"
        sha = hashlib.sha256(data).hexdigest()
        if expect_sha256 is not None and sha != expect_sha256:
            raise ValidationFailed(f"{where} does not match the digest CURRENT records (edited or half-written"
                                   " after publish): refused; republish or roll back")
        obj = _json(data, where, MAX_MANIFEST_BYTES)
        f = _Fields(obj, where)
        digest = f.str("digest", _HEX["sha256"])
        try:
            canon = _canonical({k: v for k, v in obj.items() if k != "digest"})
        except ValueError:
            canon = b""
        if hashlib.sha256(canon).hexdigest() != digest:
            raise ValidationFailed(f"{where} fails its own digest (edited or truncated): refused; republish it")
        if obj.get("format") != FORMAT or type(obj.get("format")) is not int:
            raise ValidationFailed(f"{where} has format {obj.get('format')!r}, this solaris-batch reads {FORMAT}:"
                                   " republish it with this version")
        f.equal("snapshot_id", snapshot_id)
        f.equal("model_name", model)
        f.equal("dtype", DTYPE)
        f.equal("encoding", ENCODING)
        rows, dim = f.int("rows", 0, MAX_ROWS), f.int("dim", 1, MAX_DIM)
        raw_files = obj.get("files")
        if not isinstance(raw_files, list) or not raw_files:
            raise ValidationFailed(f"{where}: 'files' must be a non-empty list")
        files = tuple(FileEntry.parse(x, f"{where}, files[{i}]") for i, x in enumerate(raw_files))
        if len({x.name for x in files}) != len(files):
            raise ValidationFailed(f"{where} lists a file twice: refused")
        if sum(x.rows for x in files) != rows:
            raise ValidationFailed(f"{where}: files hold {sum(x.rows for x in files)} rows, 'rows' says {rows}")
        index = None if obj.get("index") is None else IndexEntry.parse(obj["index"], f"{where}, index", rows)
        plan_at = f.str("plan_at", optional=True)
        at_ts = float("nan")
        if plan_at is not None:
            try:
                at_ts = parse_time(plan_at).timestamp()
            except (ConfigError, ValueError, OverflowError):
                f._fail("plan_at", "an ISO time")
        return cls(snapshot_id, model, rows, dim, DTYPE, f.str("checkpoint_version"), plan_at, at_ts, files, index,
                   obj, sha)


@dataclass(frozen=True)
class Pointer:
    """What ``CURRENT`` holds."""

    snapshot_id: str
    manifest_sha256: str
    generation: int

    def encode(self) -> str:
        return json.dumps({"snapshot_id": self.snapshot_id, "manifest_sha256": self.manifest_sha256,
                           "generation": self.generation}) + "\n"

    @classmethod
    def parse(cls, data: bytes, where: str) -> Pointer:
        if len(data) <= 130 and _SAFE.match(data.strip().decode("latin-1")):
            raise ValidationFailed(f"{where} holds a bare snapshot id (written before manifests were"
                                   " authenticated): republish with 'solaris publish' to rewrite it")
        f = _Fields(_json(data, where, MAX_POINTER_BYTES), where)
        sid = f.str("snapshot_id")
        try:
            safe_name(sid, "snapshot id")
        except ConfigError as e:
            raise ValidationFailed(f"{where}: {e}") from None
        return cls(sid, f.str("manifest_sha256", _HEX["sha256"]), f.int("generation", 0, 2**62))


def parse_bad(data: bytes | None, where: str) -> list[str]:
    """The ids in a ``BAD`` file: a JSON list of snapshot ids."""
    if data is None:
        return []
    ids = _json(data, where, MAX_MANIFEST_BYTES)
    if not isinstance(ids, list) or not all(isinstance(x, str) and _SAFE.match(x) for x in ids):
        raise ValidationFailed(f"{where} is not a JSON list of snapshot ids: fix it by hand or delete it"
                               " (then roll back again)")
    return ids
