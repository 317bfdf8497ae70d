"""Plan ranks, surface codes and the FM input each VM variant reads (hand-computed)."""

import numpy as np
import pytest

from solaris_batch.evaluation.serve import (
    FRESH,
    FMSource,
    VMInputs,
    find_pairs,
    pair_ranks,
    surface_codes,
)


def test_pair_ranks_follow_the_plan_order_score_then_ids():
    # plan order: (1,10,.9) (2,10,.9) (1,11,.5) (3,12,.1) -> ranks 0, 1, 2, 3
    pu = np.array([3, 1, 2, 1])
    pa = np.array([12, 11, 10, 10])
    sc = np.array([0.1, 0.5, 0.9, 0.9], np.float32)
    r = pair_ranks(pu, pa, sc, np.array([2, 3, 1, 1, 5, 1]), np.array([10, 12, 11, 10, 5, 12]))
    assert r.tolist() == [1, 3, 2, 0, -1, -1]
    # a budget of 2 pairs keeps exactly the two 0.9 pairs
    assert ((r >= 0) & (r < 2)).tolist() == [True, False, False, True, False, False]


def test_surface_codes_number_the_training_surfaces_and_zero_the_unseen():
    surface = np.array(["feed", "search", "feed", "story", "", "search"], dtype=object)
    train = np.array([True, True, True, False, False, False])
    # training vocabulary, sorted: feed -> 1, search -> 2; story and "" were never trained on -> 0
    assert surface_codes(surface, train).tolist() == [1, 2, 1, 0, 0, 2]
    assert surface_codes(surface, np.zeros(6, bool)).tolist() == [0] * 6


def test_find_pairs_indexes_the_distinct_pairs():
    pu, pa = np.array([3, 1, 2]), np.array([12, 11, 10])
    assert find_pairs(pu, pa, np.array([1, 2, 3, 1, 9]), np.array([11, 10, 12, 12, 9])).tolist() == [1, 2, 0, -1, -1]
    assert find_pairs(pu[:0], pa[:0], np.array([1]), np.array([11])).tolist() == [-1]


def _inputs():
    snap = np.array([[1.0], [0.0], [3.0], [0.0]], np.float32)  # zeros where the snapshot missed
    fresh = np.array([[1.5], [2.5], [3.5], [4.5]], np.float32)
    return VMInputs({"user": np.array([7, 8, 9, 7])}, np.array([True, False, True, False]), snap,
                    np.array([0.4, 0.0, -0.2, 0.0], np.float32), np.array([0.5, 0.25, 0.75, 0.1], np.float32),
                    {"1x": np.array([True, False, False, False]), "2x": np.array([True, False, True, False])}, fresh,
                    np.array([1.0, 2.0, 3.0, 4.0], np.float32),
                    np.array([[9.0], [0.0], [0.0], [8.0]], np.float32), np.array([True, False, True, True]))


def test_fm_input_by_source_hit_rows_read_the_snapshot_miss_rows_do_not():
    inputs, sel = _inputs(), np.array([True, False, True, True])
    assert inputs.features(sel)["user"].tolist() == [7, 9, 7]
    assert inputs.fm_input(None, sel) is None
    f = inputs.fm_input(FRESH, sel)  # the fresh FM on every row: its logit, age 0
    assert f.emb.tolist() == [[1.5], [3.5], [4.5]] and f.hit.tolist() == [True] * 3
    assert f.side.tolist() == [[1.0, 0.0], [3.0, 0.0], [4.0, 0.0]]
    f = inputs.fm_input(FMSource("1x"), sel)  # row 0 hits: its logit and age; rows 2, 3 miss: zeros
    assert f.hit.tolist() == [True, False, False]
    assert f.side.tolist() == [[pytest.approx(0.4), 0.5], [0.0, 0.0], [0.0, 0.0]]
    assert f.emb[f.hit].tolist() == [[1.0]]
    f = inputs.fm_input(FMSource("2x"), sel)
    assert f.hit.tolist() == [True, True, False] and f.side[:, 0].tolist() == pytest.approx([0.4, -0.2, 0.0])
    # user_mean: row 2 misses at 1x but its user is known: it reads the user's mean, flagged in a third column
    f = inputs.fm_input(FMSource("1x", "user_mean"), sel)
    assert f.emb.tolist() == [[1.0], [0.0], [8.0]] and f.hit.tolist() == [True, True, True]
    assert f.side[:, 2].tolist() == [0.0, 1.0, 1.0] and f.side[:, 0].tolist() == pytest.approx([0.4, 0.0, 0.0])
    f = inputs.fm_input(FMSource("1x", "user_mean"), np.array([False, True, False, False]))
    assert f.hit.tolist() == [False] and f.side.tolist() == [[0.0, 0.0, 0.0]]  # an unknown user: the default
