"""Threshold fitting and triple-classification metrics, checked against plain Python."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_ctxdistill.evaluation import (
    TripleClassificationEvaluator,
    classification_metrics,
    fit_threshold,
    fit_thresholds,
)


def best_accuracy(scores, labels):
    """Try every threshold that splits the scores differently: each distinct score, and above all."""
    best = 0.0
    for threshold in sorted(set(scores)) + [max(scores) + 1]:
        correct = sum((s >= threshold) == bool(y) for s, y in zip(scores, labels))
        best = max(best, correct / len(scores))
    return best


def accuracy_at(threshold, scores, labels):
    return sum((s >= threshold) == bool(y) for s, y in zip(scores, labels)) / len(scores)


@pytest.mark.parametrize("seed", range(6))
def test_fit_threshold_is_optimal_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=40).astype(float)  # many ties
    labels = (rng.random(40) < 0.3 + 0.1 * scores).astype(int)
    threshold, accuracy = fit_threshold(scores, labels)
    expected = best_accuracy(scores.tolist(), labels.tolist())
    assert accuracy == pytest.approx(expected)
    assert accuracy_at(threshold, scores.tolist(), labels.tolist()) == pytest.approx(expected)
    # The threshold separates two distinct scores (a midpoint), it does not sit on a score.
    assert threshold not in set(scores.tolist()) or threshold == scores.min()


def test_fit_threshold_extremes():
    assert fit_threshold([0.1, 0.2, 0.3], [1, 1, 1]) == (0.1, 1.0)  # everything true
    threshold, accuracy = fit_threshold([0.1, 0.2, 0.3], [0, 0, 0])  # nothing true
    assert accuracy == 1.0 and threshold > 0.3
    threshold, accuracy = fit_threshold([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1])
    assert threshold == 2.5 and accuracy == 1.0
    with pytest.raises(ValueError, match="finite"):
        fit_threshold([0.0, np.nan], [0, 1])
    with pytest.raises(ValueError, match="0 .* or 1"):
        fit_threshold([0.0, 1.0], [0, 2])


def test_per_relation_thresholds():
    rng = np.random.default_rng(0)
    n = 90
    relations = rng.integers(0, 3, size=n)
    scores = rng.integers(0, 8, size=n).astype(float)
    # Relation 2 is calibrated differently: its true triples score high only above 5.
    labels = np.where(relations == 2, scores >= 6, scores >= 3).astype(int)
    thresholds = fit_thresholds(scores, labels, relations, per_relation=True)
    for r in range(3):
        chosen = relations == r
        assert (
            accuracy_at(thresholds.per_relation[r], scores[chosen].tolist(), labels[chosen].tolist()) == 1.0
        )
    predicted = thresholds.predict(scores, relations)
    assert (predicted == labels.astype(bool)).all()
    global_only = fit_thresholds(scores, labels, relations)
    assert global_only.per_relation == {} and (global_only.predict(scores) != labels.astype(bool)).any()
    # An unseen relation falls back to the global threshold.
    assert thresholds.for_relations([7])[0] == thresholds.global_threshold


def test_classification_metrics():
    got = classification_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert got["accuracy"] == pytest.approx(3 / 5)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    assert got["num_examples"] == 5
    none_predicted = classification_metrics([0, 0], [1, 0])
    assert (
        none_predicted["precision"] == 0.0
        and none_predicted["f1"] == 0.0
        and none_predicted["accuracy"] == 0.5
    )


def make_labeled(rng, n):
    triples = np.stack([rng.integers(0, 10, n), rng.integers(0, 3, n), rng.integers(0, 10, n)], axis=1)
    return triples, rng.integers(0, 2, n)


def test_evaluator_with_a_scorer():
    rng = np.random.default_rng(5)
    table = rng.integers(0, 5, size=(10, 3, 10)).astype(np.float32)
    valid, test = make_labeled(rng, 60), make_labeled(rng, 50)
    calls = []

    def scorer(triples):
        calls.append(len(triples))
        return torch.from_numpy(table[triples[:, 0], triples[:, 1], triples[:, 2]]).to(torch.bfloat16)

    evaluator = TripleClassificationEvaluator(
        np.column_stack([valid[0], valid[1]]),
        test,
        per_relation=True,
        batch_size=16,
        relation_ids=["a", "b", "c"],
    )
    result = evaluator.run(scorer)
    assert max(calls) <= 16 and sum(calls) == 110
    valid_scores = table[valid[0][:, 0], valid[0][:, 1], valid[0][:, 2]]
    test_scores = table[test[0][:, 0], test[0][:, 1], test[0][:, 2]]
    np.testing.assert_array_equal(result.test_scores, test_scores)

    # Reference: per-relation thresholds chosen by brute force on validation, applied to test.
    correct = 0
    for i, (triple, label) in enumerate(zip(test[0].tolist(), test[1].tolist())):
        r = triple[1]
        chosen = valid[0][:, 1] == r
        threshold = result.thresholds.per_relation[r]
        assert accuracy_at(
            threshold, valid_scores[chosen].tolist(), valid[1][chosen].tolist()
        ) == pytest.approx(best_accuracy(valid_scores[chosen].tolist(), valid[1][chosen].tolist()))
        correct += (test_scores[i] >= threshold) == bool(label)
    assert result.metrics["accuracy"] == pytest.approx(correct / 50)
    assert set(result.per_relation_metrics) == {"a", "b", "c"}
    flat = evaluator.evaluate(scorer)
    assert (
        flat["eval_accuracy"] == result.metrics["accuracy"] and "eval_f1" in flat and "eval_threshold" in flat
    )


def test_fixed_threshold_skips_validation_scoring():
    rng = np.random.default_rng(2)
    valid, test = make_labeled(rng, 20), make_labeled(rng, 20)
    scored = []

    def scorer(triples):
        scored.append(len(triples))
        return triples[:, 0].astype(float)

    result = TripleClassificationEvaluator(valid, test, threshold=5.0).run(scorer)
    assert sum(scored) == 20
    expected = np.mean((test[0][:, 0] >= 5) == test[1].astype(bool))
    assert result.metrics["accuracy"] == pytest.approx(expected)


def test_labeled_input_validation():
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        TripleClassificationEvaluator(np.zeros((3, 3), int), np.zeros((3, 4), int))
