"""Map public datasets onto the canonical request log, so the speculator is judged on real logs.

* ``movielens``: ``u.data`` (``user<TAB>item<TAB>rating<TAB>unix_ts``), ``ratings.dat``
  (``user::item::rating::unix_ts``) or ``ratings.csv`` (with header). One single-candidate request
  per rating; impressed at position 0; ``clicked`` = rating >= 4.
* ``taobao``: ``raw_sample.csv`` (``user,time_stamp,adgroup_id,pid,nonclk,clk``). Rows of one
  (user, time_stamp, pid) form one request; each row is an impression, ``clicked`` = clk == 1,
  ``surface`` = pid, position = order within the request.
* ``mind``: ``behaviors.tsv`` (``impression_id<TAB>user_id<TAB>M/D/YYYY h:mm:ss AM<TAB>history<TAB>
  N1-0 N2-1 ...``). Each impression is a request whose candidates are the listed news, all
  impressed, in listed order; ``-1`` marks a click.

String ids (``U123``, ``N456``, pids) map to int64 by ``xxh64(text) & (2^63 - 1)``: the same id
always gets the same number, in any file and on any machine. Files are read in blocks (bounded
memory). A malformed line (wrong field count, non-numeric id, bad time, bad label) is counted and
written to ``<out>/_quarantine/ingest.parquet`` with its line number and reason, never dropped
silently. Every hour from the first to the last event gets a partition with ``_SUCCESS`` (an hour
without traffic is a complete, empty partition). The output is built beside ``out`` and swapped in
whole, so a rerun gives the same log and a failed run leaves nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from solaris_batch import schemas
from solaris_batch.errors import ConfigError, InputNotFound
from solaris_batch.hashing import xxhash64
from solaris_batch.logs.layout import SUCCESS, partition_dir
from solaris_batch.storage import Root, staged_dir
from solaris_batch.storage.uri import local_path
from solaris_batch.timeutil import HOUR_US

FORMATS = ("movielens", "taobao", "mind")
_MASK = (1 << 63) - 1


@dataclass(frozen=True)
class IngestStats:
    format: str
    lines: int
    rows: int
    requests: int
    quarantined: int
    hours: int
    first: str | None
    last: str | None


def string_ids(values: pa.Array) -> np.ndarray:
    """Stable int64 ids for strings: ``xxh64(utf8) & (2^63 - 1)``, hashed once per distinct value."""
    import xxhash

    enc = pc.dictionary_encode(values).combine_chunks() if isinstance(values, pa.ChunkedArray) \
        else pc.dictionary_encode(values)
    table = np.array([xxhash.xxh64_intdigest(s.encode()) & _MASK for s in enc.dictionary.to_pylist()],
                     dtype=np.int64)
    return table[enc.indices.to_numpy(zero_copy_only=False)]


def _lines(src: Path, block_size: int):
    """Yield (first line number, array of lines, positions of lines that are not UTF-8) blocks of a
    text file (1-based line numbers). Undecodable lines become "\\x00", which no parser accepts,
    so one bad byte costs its line, not the file."""
    reader = pacsv.open_csv(
        src, read_options=pacsv.ReadOptions(column_names=["line"], block_size=block_size),
        parse_options=pacsv.ParseOptions(delimiter="\x01", quote_char=False, escape_char=False,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={"line": pa.binary()}))
    n = 1
    for batch in reader:
        raw = batch.column(0)
        try:
            col, undecodable = raw.cast(pa.string()), np.zeros(0, np.int64)
        except pa.ArrowInvalid:
            values = raw.to_pylist()
            undecodable = np.array([i for i, v in enumerate(values) if not _utf8(v)], np.int64)
            bad = set(undecodable.tolist())
            col = pa.array(["\x00" if i in bad else v.decode() for i, v in enumerate(values)], pa.string())
        yield n, col, undecodable, raw
        n += len(col)


def _utf8(b: bytes) -> bool:
    try:
        b.decode()
    except UnicodeDecodeError:
        return False
    return True


def _undecodable(first: int, raw: pa.Array, idx: np.ndarray) -> pa.Table:
    """Quarantine rows for lines that are not UTF-8: the bytes shown with backslash escapes."""
    return pa.table({"line_no": pa.array(first + idx, pa.int64()),
                     "line": pa.array([raw[int(i)].as_py().decode("utf-8", "backslashreplace") for i in idx], pa.string()),
                     "reason": pa.array(["not valid UTF-8"] * len(idx), pa.string())})


def _fields(lines: pa.Array, sep: str, n: int) -> tuple[list[pa.Array], np.ndarray]:
    """Split lines on ``sep``; returns the ``n`` fields (nulls where malformed) and a validity mask."""
    parts = pc.split_pattern(lines, sep)
    ok = pc.equal(pc.list_value_length(parts), n).to_numpy(zero_copy_only=False)
    safe = pc.if_else(pa.array(ok), parts, pa.scalar([""] * n, pa.list_(pa.string())))
    return [pc.list_element(safe, i) for i in range(n)], ok


def _ints(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    ok = pc.match_substring_regex(pc.utf8_trim_whitespace(a), r"^-?\d{1,18}$").to_numpy(zero_copy_only=False)
    clean = pc.if_else(pa.array(ok), pc.utf8_trim_whitespace(a), "0")
    return pc.cast(clean, pa.int64()).to_numpy(), ok


def _nums(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    ok = pc.match_substring_regex(pc.utf8_trim_whitespace(a), r"^-?\d+(\.\d+)?$").to_numpy(zero_copy_only=False)
    clean = pc.if_else(pa.array(ok), pc.utf8_trim_whitespace(a), "0")
    return pc.cast(clean, pa.float64()).to_numpy(), ok


MIN_TS = datetime(1995, 1, 1, tzinfo=UTC)  # MovieLens 100K (1997-98) is the oldest log we ingest


def _bounds(min_ts, max_ts) -> tuple[int, int]:
    """Plausible event times as UNIX microseconds: [min_ts or 1995-01-01, max_ts or now + 1 day]."""
    from solaris_batch.timeutil import parse_time, to_us

    lo = parse_time(min_ts) if min_ts is not None else MIN_TS
    hi = parse_time(max_ts) if max_ts is not None else datetime.now(UTC) + timedelta(days=1)
    if hi <= lo:
        raise ConfigError(f"--max-ts {hi.isoformat()} must be after --min-ts {lo.isoformat()}")
    return to_us(lo), to_us(hi)


def _plausible(ts: np.ndarray, bounds: tuple[int, int], per_s: int = 1) -> np.ndarray:
    """Whether times ``ts`` in units of ``1/per_s`` s lie in ``bounds`` (compared in ``ts``'s own
    unit, so huge values cannot overflow on the way)."""
    return (ts >= bounds[0] // (1_000_000 // per_s)) & (ts <= bounds[1] // (1_000_000 // per_s))


def _range_reason(bounds: tuple[int, int]) -> str:
    lo, hi = (datetime.fromtimestamp(b / 1e6, UTC).strftime("%Y-%m-%dT%H:%MZ") for b in bounds)
    return f"timestamp outside the plausible range {lo} .. {hi} (see --min-ts/--max-ts)"


def _canonical(request_id, ts_us, user_id, ad_id, position, clicked, surface) -> pa.Table:
    n = len(request_id)
    return pa.table({
        "request_id": pa.array(request_id, pa.int64()),
        "ts": pa.array(ts_us, pa.int64()).cast(schemas.TS),
        "user_id": pa.array(user_id, pa.int64()),
        "ad_id": pa.array(ad_id, pa.int64()),
        "position": pa.array(position, pa.int32()),
        "impressed": pa.array(np.ones(n, bool), pa.bool_()),
        "clicked": pa.array(clicked, pa.bool_()),
        "surface": surface if isinstance(surface, pa.Array) else pa.array([surface] * n, pa.string()),
    }, schema=schemas.REQUEST_LOG)


def _bad(first: int, lines: pa.Array, ok: np.ndarray, reason: np.ndarray | str) -> pa.Table:
    idx = np.flatnonzero(~ok)
    reasons = np.broadcast_to(np.asarray(reason, dtype=object), ok.shape)[idx]
    return pa.table({"line_no": pa.array(first + idx, pa.int64()), "line": lines.take(pa.array(idx)),
                     "reason": pa.array(list(reasons), pa.string())})


def _movielens(first: int, lines: pa.Array, bounds: tuple[int, int], sep: str, header: bool):
    if header and first == 1:  # ratings.csv: drop its header line
        lines = lines.slice(1)
        first += 1
    (u, i, r, t), ok = _fields(lines, sep, 4)
    user, ok_u = _ints(u)
    item, ok_i = _ints(i)
    rating, ok_r = _nums(r)
    ts, ok_t = _ints(t)
    ok_range = ok_t & _plausible(ts, bounds)
    reason = np.where(~ok, f"expected 4 fields separated by {sep!r}",
                      np.where(~(ok_u & ok_i), "non-numeric user or item id",
                               np.where(~ok_r, "non-numeric rating",
                                        np.where(~ok_t, "non-numeric unix timestamp", _range_reason(bounds)))))
    good = ok & ok_u & ok_i & ok_r & ok_range
    g = np.flatnonzero(good)
    rid = first + g  # one request per rating line: the line number is a stable request id
    table = _canonical(rid, ts[g] * 1_000_000, user[g], item[g], np.zeros(len(g), np.int32), rating[g] >= 4,
                       "movielens")
    return table, _bad(first, lines, good, reason)


def _taobao(first: int, lines: pa.Array, bounds: tuple[int, int]):
    if first == 1 and len(lines) and str(lines[0]).startswith("user"):
        lines = lines.slice(1)
        first += 1
    (u, t, ad, pid, nonclk, clk), ok = _fields(lines, ",", 6)
    user, ok_u = _ints(u)
    ts, ok_t = _ints(t)
    ad_id, ok_a = _ints(ad)
    clk_v, ok_c = _ints(clk)
    non_v, ok_n = _ints(nonclk)
    ok_label = ok_c & ok_n & (clk_v + non_v == 1)
    ok_range = ok_t & _plausible(ts, bounds)
    reason = np.where(~ok, "expected 6 comma-separated fields",
                      np.where(~(ok_u & ok_a), "non-numeric user or adgroup_id",
                               np.where(~ok_t, "non-numeric time_stamp",
                                        np.where(~ok_range, _range_reason(bounds),
                                                 "clk/nonclk must be 0/1 and sum to 1"))))
    good = ok & ok_u & ok_range & ok_a & ok_label
    g = np.flatnonzero(good)
    pid_g = pc.utf8_trim_whitespace(pid.take(pa.array(g)))
    pid_h = string_ids(pid_g) if len(g) else np.zeros(0, np.int64)
    rid = _request_ids(user[g], ts[g], pid_h)
    pos = _order_within(rid)
    return _canonical(rid, ts[g] * 1_000_000, user[g], ad_id[g], pos, clk_v[g] == 1, pid_g), \
        _bad(first, lines, good, reason)


def _request_ids(*cols: np.ndarray) -> np.ndarray:
    """Stable non-negative int64 request id from int64 key columns (chained xxhash64, vectorized)."""
    h = np.zeros(len(cols[0]), np.int64)
    for c in cols:
        h = xxhash64(h ^ np.asarray(c, np.int64))
    return h & _MASK


def _order_within(rid: np.ndarray) -> np.ndarray:
    """Position of each row among the rows of its request, in file order."""
    o = np.argsort(rid, kind="stable")
    s = rid[o]
    start = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    pos = np.arange(len(s)) - np.repeat(start, np.diff(np.r_[start, len(s)]))
    out = np.empty(len(s), np.int32)
    out[o] = pos
    return out


def _mind(first: int, lines: pa.Array, bounds: tuple[int, int]):
    (imp, u, t, _hist, cands), ok = _fields(lines, "\t", 5)
    imp_id, ok_i = _ints(imp)
    ts = pc.strptime(pc.utf8_trim_whitespace(t), format="%m/%d/%Y %I:%M:%S %p", unit="us", error_is_null=True)
    ok_t = pc.is_valid(ts).to_numpy(zero_copy_only=False)
    ok_t &= _plausible(ts.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), bounds, 1_000_000)
    items = pc.split_pattern(pc.utf8_trim_whitespace(cands), " ")
    flat = pc.list_flatten(items)
    owner = pc.list_parent_indices(items).to_numpy()
    pair = pc.split_pattern(flat, "-")
    ok_pair = (pc.equal(pc.list_value_length(pair), 2).to_numpy(zero_copy_only=False)
               & pc.match_substring_regex(flat, r"^[^-\s]+-[01]$").to_numpy(zero_copy_only=False))
    bad_item = np.zeros(len(lines), bool)
    np.logical_or.at(bad_item, owner, ~ok_pair)
    nonempty = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(cands)), 0).to_numpy(zero_copy_only=False)
    u_ok = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(u)), 0).to_numpy(zero_copy_only=False)
    good = ok & ok_i & ok_t & ~bad_item & nonempty & u_ok
    reason = np.where(~ok, "expected 5 tab-separated fields",
                      np.where(~ok_i, "non-numeric impression_id",
                               np.where(~u_ok, "empty user_id",
                                        np.where(~ok_t, "time is not M/D/YYYY h:mm:ss AM/PM or "
                                                 + _range_reason(bounds),
                                                 "impressions must be 'NEWS-0'/'NEWS-1' items"))))
    keep = good[owner]
    o = owner[keep]
    parts = pc.list_flatten(pair.filter(pa.array(keep)))
    news, label = parts.take(pa.array(np.arange(0, len(parts), 2))), parts.take(pa.array(np.arange(1, len(parts), 2)))
    starts = np.r_[0, np.flatnonzero(o[1:] != o[:-1]) + 1] if len(o) else np.zeros(0, np.int64)
    pos = np.arange(len(o)) - np.repeat(starts, np.diff(np.r_[starts, len(o)]))
    user = string_ids(pc.utf8_trim_whitespace(u).take(pa.array(o))) if len(o) else np.zeros(0, np.int64)
    table = _canonical(imp_id[o], ts.cast(pa.int64()).to_numpy(zero_copy_only=False)[o], user,
                       string_ids(news) if len(o) else np.zeros(0, np.int64), pos,
                       pc.equal(label, "1").to_numpy(zero_copy_only=False), "mind")
    return table, _bad(first, lines, good, reason)


def _parser(fmt: str, src: Path):
    if fmt == "movielens":
        name = src.name
        if name.endswith(".dat"):
            return lambda f, ls, b: _movielens(f, ls, b, "::", header=False)
        if name.endswith(".csv"):
            return lambda f, ls, b: _movielens(f, ls, b, ",", header=True)
        return lambda f, ls, b: _movielens(f, ls, b, "\t", header=False)
    if fmt == "taobao":
        return _taobao
    if fmt == "mind":
        return _mind
    raise ConfigError(f"unknown ingest format {fmt!r}: use one of {', '.join(FORMATS)}")


def ingest(fmt: str, src: Path, out: str | Path, block_size: int = 16 << 20, min_ts: str | datetime | None = None,
           max_ts: str | datetime | None = None) -> IngestStats:
    """Convert ``src`` (a file, or a folder holding the format's usual file) into a log root ``out``.

    Rows whose time falls outside ``[min_ts, max_ts]`` (default: 1995-01-01 .. one day after now,
    UTC) are quarantined with their line number, so one bad timestamp cannot create partitions for
    decades of hours."""
    bounds = _bounds(min_ts, max_ts)
    src = Path(src)
    if src.is_dir():
        names = {"movielens": ["ratings.dat", "ratings.csv", "u.data"], "taobao": ["raw_sample.csv"],
                 "mind": ["behaviors.tsv"]}.get(fmt, [])
        found = [src / n for n in names if (src / n).exists()]
        if not found:
            raise InputNotFound(f"no {' or '.join(names) or 'input'} under {src} for format {fmt!r}")
        src = found[0]
    if not src.exists():
        raise InputNotFound(f"ingest source {src} does not exist")
    parse = _parser(fmt, src)
    with _staged_log(out) as tmp:  # the log appears whole or not at all; its files need no atomic writes
        lines = rows = quarantined = 0
        requests: set[int] = set()
        hours: set[int] = set()
        bad_parts = []
        for k, (first, block, undecodable, raw) in enumerate(_lines(src, block_size)):
            lines += len(block)
            table, bad = parse(first, block, bounds)
            if len(undecodable):  # those lines failed parsing as "\x00": say why, show their bytes
                keep = pc.invert(pc.is_in(bad.column("line_no"), pa.array(first + undecodable, pa.int64())))
                bad = pa.concat_tables([bad.filter(keep), _undecodable(first, raw, undecodable)])
            if bad.num_rows:
                bad_parts.append(bad)
                quarantined += bad.num_rows
            if table.num_rows == 0:
                continue
            rows += table.num_rows
            requests.update(np.unique(table.column("request_id").to_numpy()).tolist())
            h = table.column("ts").cast(pa.int64()).to_numpy() // HOUR_US
            o = np.argsort(h, kind="stable")
            table, h = table.take(pa.array(o)), h[o]
            cuts = np.r_[0, np.flatnonzero(h[1:] != h[:-1]) + 1, len(h)]
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                hour = int(h[a])
                hours.add(hour)
                d = partition_dir(tmp, _hour_dt(hour))
                d.mkdir(parents=True, exist_ok=True)
                pq.write_table(table.slice(a, b - a), d / f"part-{k:05d}.parquet")
        if bad_parts:
            (tmp / "_quarantine").mkdir()
            pq.write_table(pa.concat_tables(bad_parts), tmp / "_quarantine" / "ingest.parquet")
        if hours:
            for hour in range(min(hours), max(hours) + 1):
                d = partition_dir(tmp, _hour_dt(hour))
                d.mkdir(parents=True, exist_ok=True)
                if hour not in hours:
                    pq.write_table(schemas.REQUEST_LOG.empty_table(), d / "part-00000.parquet")
                (d / SUCCESS).touch()
        else:
            (tmp / "requests").mkdir()
    return IngestStats(fmt, lines, rows, len(requests), quarantined, len(range(min(hours), max(hours) + 1))
                       if hours else 0, _hour_dt(min(hours)).isoformat() if hours else None,
                       _hour_dt(max(hours)).isoformat() if hours else None)


@contextmanager
def _staged_log(out: str | Path) -> Iterator[Path]:
    """A local folder to build the log in: swapped in whole on a local root; on an object store,
    uploaded with every ``_SUCCESS`` marker after the data it commits."""
    local = local_path(out)
    if local is not None:
        with staged_dir(local) as tmp:
            yield tmp
        return
    with tempfile.TemporaryDirectory(prefix="solaris-ingest-") as tmp:
        yield Path(tmp)
        Root.open(out).put_tree(Path(tmp), last=(SUCCESS,))


def _hour_dt(hour: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hour)
