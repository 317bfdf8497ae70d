"""The plan's one sort order (``solaris_batch.speculate.plan.PLAN_ORDER``)."""

import numpy as np

from solaris_batch.speculate.plan import PLAN_ORDER


def test_plan_order_is_score_desc_then_ids():
    user = np.array([2, 1, 1, 3, 1], np.int64)
    ad = np.array([10, 11, 10, 10, 12], np.int64)
    score = np.array([0.5, 0.9, 0.5, 0.5, 0.9], np.float32)
    order = PLAN_ORDER.argsort(score=score, user_id=user, ad_id=ad)
    # 0.9: (1,11), (1,12); then 0.5 by user then ad: (1,10), (2,10), (3,10)
    assert [(int(user[i]), int(ad[i])) for i in order] == [(1, 11), (1, 12), (1, 10), (2, 10), (3, 10)]
    assert [k for k, _ in PLAN_ORDER.keys] == ["score", "user_id", "ad_id"]

