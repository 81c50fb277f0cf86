"""Ranks with ties and filters, checked against a plain Python reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_ctxdistill.evaluation import FilterIndex, combine_rank_bounds, compute_rank_bounds, compute_ranks


def reference_rank(scores, target, filtered, tie_rule):
    """One query, written plainly: drop filtered candidates except the target, then count."""
    target_score = scores[target]
    better = 0
    better_or_equal = 0
    for candidate, score in enumerate(scores):
        if candidate in filtered and candidate != target:
            continue
        if score > target_score:
            better += 1
        if score >= target_score:
            better_or_equal += 1
    optimistic = better + 1
    pessimistic = better_or_equal
    if tie_rule == "optimistic":
        return float(optimistic)
    if tie_rule == "pessimistic":
        return float(pessimistic)
    return (optimistic + pessimistic) / 2


def random_case(seed, num_queries=40, num_candidates=17, score_range=4):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, score_range, size=(num_queries, num_candidates))  # small range: many ties
    targets = rng.integers(0, num_candidates, size=num_queries)
    filters = []
    for q in range(num_queries):
        chosen = set(rng.choice(num_candidates, size=rng.integers(0, 8), replace=False).tolist())
        if rng.random() < 0.5:
            chosen.add(int(targets[q]))  # the target sits in its own filter, as in real data
        filters.append(sorted(chosen))
    return scores, targets, filters


@pytest.mark.parametrize("tie_rule", ["realistic", "optimistic", "pessimistic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference_for_every_filter_form(tie_rule, seed):
    scores, targets, filters = random_case(seed)
    expected = np.array(
        [
            reference_rank(scores[q].tolist(), int(targets[q]), set(filters[q]), tie_rule)
            for q in range(len(targets))
        ]
    )
    mask = np.zeros(scores.shape, dtype=bool)
    for q, chosen in enumerate(filters):
        mask[q, chosen] = True
    rows = np.concatenate([[q] * len(c) for q, c in enumerate(filters)]).astype(np.int64)
    cols = np.concatenate([c for c in filters]).astype(np.int64)

    by_mask = compute_ranks(scores, targets, filter_mask=mask, tie_rule=tie_rule)
    by_lists = compute_ranks(scores, targets, filter_indices=filters, tie_rule=tie_rule)
    by_pairs = compute_ranks(scores, targets, filter_pairs=(rows, cols), tie_rule=tie_rule)
    by_tensor = compute_ranks(
        torch.tensor(scores, dtype=torch.bfloat16),
        torch.tensor(targets),
        filter_mask=torch.tensor(mask),
        tie_rule=tie_rule,
    )
    for got in (by_mask, by_lists, by_pairs, by_tensor):
        np.testing.assert_array_equal(got, expected)
    # The random cases really do exercise ties and filtering.
    assert (expected != np.floor(expected)).any() or tie_rule != "realistic"
    assert not np.array_equal(by_mask, compute_ranks(scores, targets, tie_rule=tie_rule))


def test_unfiltered_matches_reference():
    scores, targets, _ = random_case(7)
    expected = [
        reference_rank(scores[q].tolist(), int(targets[q]), set(), "realistic") for q in range(len(targets))
    ]
    np.testing.assert_array_equal(compute_ranks(scores.astype(np.float32), targets), expected)


def test_worked_example_from_the_docs():
    scores = [3.0, 5.0, 5.0, 5.0, 1.0]
    optimistic, pessimistic = compute_rank_bounds(np.array([scores]), [1], filter_indices=[[2]])
    assert optimistic.tolist() == [1] and pessimistic.tolist() == [2]
    assert compute_ranks(np.array(scores), 1, filter_indices=[2]) == 1.5  # single 1-D query -> float
    assert compute_ranks(np.array(scores), 1) == 2.0  # unfiltered: ranks 1..3 among three 5s
    assert compute_ranks(np.array(scores), 1, tie_rule="pessimistic") == 3.0


def test_constant_scores_get_the_middle_rank_not_rank_one():
    scores = np.zeros((3, 101))
    np.testing.assert_array_equal(compute_ranks(scores, [0, 50, 100]), [51.0, 51.0, 51.0])
    np.testing.assert_array_equal(compute_ranks(scores, [0, 50, 100], tie_rule="optimistic"), [1.0, 1.0, 1.0])


def test_target_is_never_filtered_and_duplicates_count_once():
    scores = np.array([[4.0, 4.0, 9.0, 1.0]])
    # The target (0) is in the filter; candidate 2 is listed three times.
    optimistic, pessimistic = compute_rank_bounds(scores, [0], filter_pairs=([0, 0, 0, 0], [0, 2, 2, 2]))
    assert optimistic.tolist() == [1] and pessimistic.tolist() == [2]


def test_infinite_scores_are_ranked():
    scores = np.array([[np.inf, -np.inf, 0.0, np.inf]])
    assert compute_ranks(scores, [0]).tolist() == [1.5]
    assert compute_ranks(scores, [1]).tolist() == [4.0]


def test_nan_raises_clear_error():
    scores = np.array([[0.0, 1.0], [np.nan, 1.0]])
    with pytest.raises(ValueError, match="NaN scores in 1 of 2 queries"):
        compute_ranks(scores, [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        compute_ranks(torch.tensor(scores), [0, 1])


def test_bad_arguments_raise():
    scores = np.zeros((2, 3))
    with pytest.raises(ValueError, match="tie_rule"):
        compute_ranks(scores, [0, 1], tie_rule="average")
    with pytest.raises(ValueError, match="targets"):
        compute_ranks(scores, [0, 3])
    with pytest.raises(ValueError, match="2 targets"):
        compute_ranks(np.zeros((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="at most one"):
        compute_ranks(scores, [0, 1], filter_mask=np.zeros((2, 3), bool), filter_indices=[[], []])
    with pytest.raises(ValueError, match="filtered candidate"):
        compute_ranks(scores, [0, 1], filter_pairs=([0], [3]))


def test_combine_rank_bounds():
    np.testing.assert_array_equal(combine_rank_bounds([1, 2], [3, 2]), [2.0, 2.0])
    np.testing.assert_array_equal(combine_rank_bounds([1, 2], [3, 2], "optimistic"), [1.0, 2.0])
    np.testing.assert_array_equal(combine_rank_bounds([1, 2], [3, 2], "pessimistic"), [3.0, 2.0])


def test_filter_index_matches_python_sets():
    rng = np.random.default_rng(3)
    num_entities, num_relations = 12, 3
    known = np.stack(
        [
            rng.integers(0, num_entities, 80),
            rng.integers(0, num_relations, 80),
            rng.integers(0, num_entities, 80),
        ],
        axis=1,
    )
    known = np.concatenate([known, known[:10]])  # duplicates must not matter
    index = FilterIndex(known, num_entities, num_relations)
    assert len(index) == len({tuple(t) for t in known.tolist()})

    queries = np.stack(
        [
            rng.integers(0, num_entities, 30),
            rng.integers(0, num_relations, 30),
            rng.integers(0, num_entities, 30),
        ],
        axis=1,
    )
    predict_tail = rng.random(30) < 0.5
    rows, cols = index.query_filter(queries, predict_tail)
    got = [sorted(cols[rows == q].tolist()) for q in range(30)]
    for q, (h, r, t) in enumerate(queries.tolist()):
        if predict_tail[q]:
            expected = sorted({tt for hh, rr, tt in known.tolist() if hh == h and rr == r})
        else:
            expected = sorted({hh for hh, rr, tt in known.tolist() if rr == r and tt == t})
        assert got[q] == expected
    assert sum(len(g) for g in got) > 0
    # A relation outside the index must not alias another (head, relation) key.
    rows, cols = index.true_tails([1], [num_relations])
    assert len(rows) == 0
