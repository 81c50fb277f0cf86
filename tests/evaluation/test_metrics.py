"""MRR / MR / Hits@k and their breakdowns, checked against plain Python."""

from __future__ import annotations

import numpy as np
import pytest

from hf_ctxdistill.evaluation import flatten_metrics, metrics_breakdown, rank_metrics


def reference_metrics(ranks, ks=(1, 3, 10)):
    n = len(ranks)
    out = {"mrr": sum(1.0 / r for r in ranks) / n, "mr": sum(ranks) / n}
    for k in ks:
        out[f"hits@{k}"] = sum(1 for r in ranks if r <= k) / n
    return out


def test_rank_metrics_values_and_keys():
    ranks = [1, 2, 4, 10.5, 1.5]
    got = rank_metrics(ranks)
    assert list(got) == ["mrr", "mr", "hits@1", "hits@3", "hits@10"]
    assert got["hits@1"] == pytest.approx(1 / 5)  # a realistic rank of 1.5 is not a hit at 1
    assert got["hits@3"] == pytest.approx(3 / 5)
    assert got["hits@10"] == pytest.approx(4 / 5)  # 10.5 is not a hit at 10
    assert got["mr"] == pytest.approx(19 / 5)
    assert got["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 10.5 + 1 / 1.5) / 5)


def test_rank_metrics_custom_ks_random():
    rng = np.random.default_rng(0)
    ranks = rng.integers(1, 60, size=200) / 2 + 0.5
    got = rank_metrics(ranks, ks=(2, 5, 50))
    expected = reference_metrics(ranks.tolist(), ks=(2, 5, 50))
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)


def test_rank_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        rank_metrics([])
    with pytest.raises(ValueError, match=">= 1"):
        rank_metrics([0.5, 2])
    with pytest.raises(ValueError, match="positive integer"):
        rank_metrics([1], ks=(0,))


def test_breakdown_by_side_and_relation():
    rng = np.random.default_rng(1)
    n = 120
    ranks = rng.integers(1, 30, size=n).astype(float)
    sides = rng.integers(0, 2, size=n)
    relations = rng.integers(0, 4, size=n)
    names = ["r0", "r1", "r2", "r3"]
    got = metrics_breakdown(ranks, sides, relations, relation_names=names)

    def check(group, chosen):
        expected = reference_metrics([ranks[i] for i in range(n) if chosen(i)])
        for key, value in expected.items():
            assert group[key] == pytest.approx(value)
        assert group["num_queries"] == sum(1 for i in range(n) if chosen(i))

    check(got["overall"], lambda i: True)
    check(got["head"], lambda i: sides[i] == 0)
    check(got["tail"], lambda i: sides[i] == 1)
    for r, name in enumerate(names):
        check(got["per_relation"][name]["overall"], lambda i, r=r: relations[i] == r)
        check(got["per_relation"][name]["tail"], lambda i, r=r: relations[i] == r and sides[i] == 1)
    # String sides are accepted too and give the same result.
    as_strings = metrics_breakdown(ranks, np.where(sides == 1, "tail", "head"))
    assert as_strings["head"] == got["head"]


def test_breakdown_leaves_out_empty_groups():
    got = metrics_breakdown([1.0, 2.0], ["tail", "tail"], [5, 5])
    assert "head" not in got and "tail" in got
    assert list(got["per_relation"]) == [5]


def test_flatten_metrics_keys():
    breakdown = metrics_breakdown([1.0, 3.0], ["head", "tail"], [0, 1], relation_names=["a", "b"])
    flat = flatten_metrics(breakdown, "eval")
    assert flat["eval_mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert flat["eval_head_mrr"] == 1.0 and flat["eval_tail_hits@1"] == 0.0
    assert flat["eval_num_queries"] == 2
    assert not any(k.startswith("eval_rel_") for k in flat)
    with_rel = flatten_metrics(breakdown, None, per_relation=True)
    assert with_rel["mrr"] == flat["eval_mrr"] and with_rel["rel_b_tail_mr"] == 3.0
