"""Plan ranks, surface codes and the FM input each VM variant reads (hand-computed)."""

import numpy as np

from solaris_batch.evaluation.serve import FRESH, VMInputs, pair_ranks, surface_codes


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


def test_fm_input_by_source():
    snap = np.array([[1.0], [0.0], [3.0]], np.float32)  # zeros where the snapshot missed
    fresh = np.array([[1.5], [2.5], [3.5]], np.float32)
    inputs = VMInputs({"user": np.array([7, 8, 9])}, np.array([True, False, True]), snap,
                      {"1x": np.array([True, False, False]), "2x": np.array([True, False, True])}, fresh,
                      np.zeros(3, np.float32))
    sel = np.array([True, False, True])
    assert inputs.features(sel)["user"].tolist() == [7, 9]
    assert inputs.fm_input(None, sel) == (None, None)
    emb, hit = inputs.fm_input(FRESH, sel)
    assert emb.tolist() == [[1.5], [3.5]] and hit.tolist() == [True, True]
    emb, hit = inputs.fm_input("1x", sel)
    assert emb.tolist() == [[1.0], [3.0]] and hit.tolist() == [True, False]
    assert inputs.fm_input("2x", sel)[1].tolist() == [True, True]
