"""Ingest adapters on hand-written files in each public format, answers written beside them."""

from datetime import UTC, datetime

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from solaris_batch.errors import InputNotFound
from solaris_batch.logs.ingest import ingest, string_ids
from solaris_batch.logs.reader import read_window
from solaris_batch.timeutil import Window


def _log(out):
    t = ds.dataset(out / "requests", format="parquet").to_table().sort_by([("ts", "ascending"), ("request_id", "ascending"), ("position", "ascending")])
    return t.to_pylist()


def _quarantine(out):
    return pq.read_table(out / "_quarantine" / "ingest.parquet").to_pylist()


def test_movielens_u_data_and_ratings_dat(tmp_path):
    src = tmp_path / "u.data"
    src.write_text("196\t242\t3\t881250949\n186\t302\t5\t881254549\nnot a row\n22\tx\t1\t881250949\n")
    s = ingest("movielens", src, tmp_path / "ml")
    assert (s.lines, s.rows, s.requests, s.quarantined) == (4, 2, 2, 2)
    rows = _log(tmp_path / "ml")
    assert [(r["user_id"], r["ad_id"], r["clicked"], r["position"], r["impressed"]) for r in rows] == [
        (196, 242, False, 0, True), (186, 302, True, 0, True)]
    assert rows[0]["ts"] == datetime.fromtimestamp(881250949, UTC)
    assert [(q["line_no"], q["reason"]) for q in _quarantine(tmp_path / "ml")] == [
        (3, "expected 4 fields separated by '\\t'"), (4, "non-numeric user or item id")]
    # 881250949 is 15:42 and 881254549 16:42 UTC: two complete hour partitions, readable by the reader
    assert s.hours == 2 and read_window(tmp_path / "ml", Window(rows[0]["ts"].replace(minute=0), rows[1]["ts"].replace(minute=59))).num_rows == 2

    dat = tmp_path / "ratings.dat"
    dat.write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    s = ingest("movielens", tmp_path, tmp_path / "ml2")  # a folder: finds ratings.dat
    assert s.rows == 2 and s.quarantined == 0 and not (tmp_path / "ml2" / "_quarantine").exists()


def test_taobao_groups_requests_and_checks_labels(tmp_path):
    src = tmp_path / "raw_sample.csv"
    src.write_text("user,time_stamp,adgroup_id,pid,nonclk,clk\n"
                   "581738,1494137644,1,430548_1007,1,0\n"
                   "581738,1494137644,2,430548_1007,0,1\n"
                   "449818,1494638778,3,430548_1007,1,0\n"
                   "449818,1494638778,4,430539_1007,1,1\n"     # clk and nonclk both 1
                   "1,2,3\n")
    s = ingest("taobao", src, tmp_path / "tb")
    assert (s.rows, s.requests, s.quarantined) == (3, 2, 2)
    rows = _log(tmp_path / "tb")
    first = [r for r in rows if r["user_id"] == 581738]
    assert len({r["request_id"] for r in first}) == 1 and [r["position"] for r in first] == [0, 1]
    assert [r["clicked"] for r in first] == [False, True] and first[0]["surface"] == "430548_1007"
    assert [q["reason"] for q in _quarantine(tmp_path / "tb")] == [
        "clk/nonclk must be 0/1 and sum to 1", "expected 6 comma-separated fields"]
    # same input, same output: request ids are hashes of (user, time_stamp, pid)
    ingest("taobao", src, tmp_path / "tb")
    assert _log(tmp_path / "tb") == rows


def test_mind_impressions_become_requests(tmp_path):
    src = tmp_path / "behaviors.tsv"
    src.write_text("1\tU13740\t11/11/2019 9:05:58 AM\tN55189 N42782\tN55689-1 N35729-0\n"
                   "2\tU91836\t11/12/2019 6:11:30 PM\tN31739\tN20678-0 N39317-0 N58114-1\n"
                   "3\tU13740\t11/13/2019 25:00:00 AM\t\tN1-0\n"
                   "4\tU13740\t11/13/2019 1:00:00 AM\t\tN1-2\n")
    s = ingest("mind", src, tmp_path / "mind")
    assert (s.rows, s.requests, s.quarantined) == (5, 2, 2)
    rows = _log(tmp_path / "mind")
    r1 = [r for r in rows if r["request_id"] == 1]
    assert r1[0]["ts"] == datetime(2019, 11, 11, 9, 5, 58, tzinfo=UTC)
    assert [r["clicked"] for r in r1] == [True, False] and [r["position"] for r in r1] == [0, 1]
    assert r1[0]["user_id"] == string_ids(__import__("pyarrow").array(["U13740"]))[0] > 0
    r2 = [r for r in rows if r["request_id"] == 2]
    assert r2[0]["ts"].hour == 18 and [r["clicked"] for r in r2] == [False, False, True]
    assert [q["line_no"] for q in _quarantine(tmp_path / "mind")] == [3, 4]
    # every hour between first and last event is a complete partition (empty ones included)
    assert s.hours == 24 + 9 + 1 and len(list((tmp_path / "mind" / "requests").glob("dt=*/hour=*/_SUCCESS"))) == s.hours


def test_string_ids_are_stable_and_distinct():
    import pyarrow as pa

    a = string_ids(pa.array(["U1", "U2", "U1"]))
    assert a[0] == a[2] != a[1] and (a >= 0).all()
    assert a[0] == 0x7FFFFFFFFFFFFFFF & __import__("xxhash").xxh64_intdigest(b"U1")


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(InputNotFound, match="behaviors.tsv"):
        ingest("mind", tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_implausible_times_and_undecodable_lines_are_quarantined_per_line(tmp_path):
    src = tmp_path / "u.data"
    src.write_bytes(b"1\t10\t5\t881250949\n"          # 1997: kept
                    b"2\t11\t4\t-1\n"                 # 1969: would create a partition per hour since 1970
                    b"3\t12\t4\t99999999999999\n"     # year 5138: overflowed before
                    b"4\t1\xff3\t4\t881250949\n"      # one byte that is not UTF-8
                    b"5\t14\t4\t881254549\n")
    s = ingest("movielens", src, tmp_path / "ml")
    assert (s.lines, s.rows, s.quarantined, s.hours) == (5, 2, 3, 2)
    q = sorted((r["line_no"], r["reason"].split(" (")[0], r["line"]) for r in _quarantine(tmp_path / "ml"))
    assert [(n, reason[:33]) for n, reason, _ in q] == [
        (2, "timestamp outside the plausible r"), (3, "timestamp outside the plausible r"), (4, "not valid UTF-8")]
    assert q[2][2] == "4\t1\\xff3\t4\t881250949"  # the line's bytes, escaped
    # explicit bounds narrow the range further
    s = ingest("movielens", src, tmp_path / "ml2", min_ts="1997-12-04T16:00", max_ts="2030-01-01")
    assert (s.rows, s.quarantined) == (1, 4)
