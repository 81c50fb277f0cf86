"""Triple classification: is ``(h, r, t)`` true? Accuracy / precision / recall / F1 with a decision
threshold on the model's score chosen on labeled validation triples.

Protocol (Socher et al., 2013; used for FB15k-237N, which ships labeled negatives):

1. Score the labeled validation triples. Choose the threshold that maximises validation accuracy:
   a triple is predicted true iff ``score >= threshold``. Candidate thresholds are the midpoints
   between consecutive distinct validation scores, plus one above the maximum (nothing true) and the
   minimum (everything true); among equally accurate thresholds the highest one wins.
2. Optionally one threshold per relation (``per_relation=True``), each chosen on that relation's
   validation triples; relations absent from validation use the global threshold.
3. Apply the threshold(s) to the test scores and report accuracy, precision, recall and F1 of the
   positive class (label 1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .link_prediction import score_in_batches

logger = logging.getLogger(__name__)


def _as_scores(scores: Any) -> np.ndarray:
    if hasattr(scores, "detach"):  # torch tensor
        tensor = scores.detach()
        if tensor.is_floating_point() and tensor.element_size() < 4:
            tensor = tensor.float()  # numpy has no bfloat16; widening is exact
        scores = tensor.cpu().numpy()
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError("triple-classification scores must be finite (found NaN or inf)")
    return array


def _as_labels(labels: Any, n: int) -> np.ndarray:
    array = np.asarray(labels).reshape(-1)
    if len(array) != n:
        raise ValueError(f"{len(array)} labels for {n} scores")
    if len(array) and not np.isin(array, (0, 1)).all():
        raise ValueError("labels must be 0 (false triple) or 1 (true triple)")
    return array.astype(bool)


def fit_threshold(scores: Any, labels: Any) -> tuple[float, float]:
    """The accuracy-maximising threshold on ``scores`` (predict true iff ``score >= threshold``).

    Returns ``(threshold, accuracy)``. Exact and ``O(n log n)``: sort descending, and for every cut
    between two distinct scores count correct predictions with cumulative sums.
    """
    values = _as_scores(scores)
    truth = _as_labels(labels, len(values))
    if len(values) == 0:
        raise ValueError("fit_threshold needs at least one labeled score")
    order = np.argsort(-values, kind="stable")
    sorted_scores, sorted_truth = values[order], truth[order]
    n = len(values)
    positives = int(sorted_truth.sum())
    # Cut k = the top-k scores are predicted true. Correct = true positives + true negatives.
    true_positives = np.concatenate([[0], np.cumsum(sorted_truth)])
    k = np.arange(n + 1)
    correct = true_positives + (n - positives) - (k - true_positives)
    # Only cuts between distinct scores are realisable by a threshold (tied scores go together).
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = sorted_scores[:-1] > sorted_scores[1:]
    best = int(np.flatnonzero(valid)[np.argmax(correct[valid])])  # first = highest threshold
    if best == 0:
        threshold = float(np.nextafter(sorted_scores[0], np.inf))
    elif best == n:
        threshold = float(sorted_scores[-1])
    else:
        upper, lower = sorted_scores[best - 1], sorted_scores[best]
        threshold = float((upper + lower) / 2.0)
        if not lower < threshold <= upper:  # adjacent floats: the midpoint rounds onto an endpoint
            threshold = float(upper)
    return threshold, float(correct[best] / n)


@dataclass
class DecisionThresholds:
    """A global threshold plus optional per-relation thresholds (relation index -> threshold)."""

    global_threshold: float
    per_relation: dict[int, float] = field(default_factory=dict)

    def for_relations(self, relations: Any | None) -> np.ndarray | float:
        """The threshold that applies to each relation (the global one where none was fitted)."""
        if relations is None or not self.per_relation:
            return self.global_threshold
        rel = np.asarray(relations, dtype=np.int64).reshape(-1)
        out = np.full(len(rel), self.global_threshold, dtype=np.float64)
        for r, threshold in self.per_relation.items():
            out[rel == r] = threshold
        return out

    def predict(self, scores: Any, relations: Any | None = None) -> np.ndarray:
        """Boolean predictions: ``score >= threshold`` of the triple's relation."""
        return _as_scores(scores) >= self.for_relations(relations)


def fit_thresholds(
    scores: Any, labels: Any, relations: Any | None = None, *, per_relation: bool = False
) -> DecisionThresholds:
    """Fit the global threshold and, with ``per_relation=True``, one threshold per relation seen in
    ``relations`` (see :func:`fit_threshold`)."""
    values = _as_scores(scores)
    truth = _as_labels(labels, len(values))
    global_threshold, _ = fit_threshold(values, truth)
    thresholds = DecisionThresholds(global_threshold)
    if per_relation:
        if relations is None:
            raise ValueError("per_relation=True needs the relation of each triple")
        rel = np.asarray(relations, dtype=np.int64).reshape(-1)
        if len(rel) != len(values):
            raise ValueError(f"{len(rel)} relations for {len(values)} scores")
        for r in np.unique(rel):
            chosen = rel == r
            if truth[chosen].all() or not truth[chosen].any():
                logger.debug("relation %d has only one class in validation; its threshold is a guess", r)
            thresholds.per_relation[int(r)] = fit_threshold(values[chosen], truth[chosen])[0]
    return thresholds


def classification_metrics(predictions: Any, labels: Any) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the positive class (label 1), plus ``num_examples``.

    Precision (recall, F1) is 0.0 when nothing is predicted positive (no positives exist)."""
    predicted = np.asarray(predictions).reshape(-1).astype(bool)
    truth = _as_labels(labels, len(predicted))
    if len(truth) == 0:
        raise ValueError("classification_metrics needs at least one example")
    tp = int(np.sum(predicted & truth))
    fp = int(np.sum(predicted & ~truth))
    fn = int(np.sum(~predicted & truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float(np.mean(predicted == truth)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "num_examples": int(len(truth)),
    }


def _split_labeled(data: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Accept an ``(n, 4)`` array (head, relation, tail, label) or a ``(triples, labels)`` pair."""
    if isinstance(data, tuple) and len(data) == 2:
        triples = np.asarray(data[0], dtype=np.int64).reshape(-1, 3)
        labels = np.asarray(data[1]).reshape(-1)
    else:
        array = np.asarray(data, dtype=np.int64)
        if array.ndim != 2 or array.shape[1] != 4:
            raise ValueError(
                f"{what}: expected an (n, 4) array of (head, relation, tail, label) or (triples, labels)"
            )
        triples, labels = array[:, :3], array[:, 3]
    if len(labels) != len(triples):
        raise ValueError(f"{what}: {len(labels)} labels for {len(triples)} triples")
    return triples, _as_labels(labels, len(triples)).astype(np.int64)


@dataclass
class TripleClassificationResult:
    """Test metrics under the fitted thresholds, plus everything needed to recompute them."""

    metrics: dict[str, float]
    global_metrics: dict[str, float]
    thresholds: DecisionThresholds
    validation_scores: np.ndarray
    test_scores: np.ndarray
    per_relation_metrics: dict[Any, dict[str, float]] = field(default_factory=dict)

    def to_dict(self, prefix: str | None = "eval") -> dict[str, float]:
        """Flat metrics, e.g. ``{"eval_accuracy", "eval_precision", "eval_recall", "eval_f1",
        "eval_num_examples", "eval_threshold"}`` (``threshold`` is the global one)."""
        lead = f"{prefix}_" if prefix else ""
        flat = {f"{lead}{k}": v for k, v in self.metrics.items()}
        flat[f"{lead}threshold"] = self.thresholds.global_threshold
        return flat


class TripleClassificationEvaluator:
    """Triple classification with thresholds fitted on validation.

    Args:
        validation, test: labeled triples, each an ``(n, 4)`` int array (head, relation, tail, label)
            or a ``(triples, labels)`` pair; label 1 = true triple, 0 = corrupted.
        per_relation: fit one threshold per relation (relations unseen in validation use the global one).
        threshold: a fixed threshold instead of fitting one (e.g. 0.5 for probabilities, 0.0 for logits).
        batch_size: triples per scorer call.
        relation_ids: names for the per-relation breakdown (index -> id).
        progress: show a tqdm bar while scoring.
    """

    def __init__(
        self,
        validation: Any,
        test: Any,
        *,
        per_relation: bool = False,
        threshold: float | None = None,
        batch_size: int = 1024,
        relation_ids: Sequence[str] | Mapping[int, str] | None = None,
        progress: bool = False,
    ):
        self.validation_triples, self.validation_labels = _split_labeled(validation, "validation")
        self.test_triples, self.test_labels = _split_labeled(test, "test")
        if threshold is None and len(self.validation_labels) == 0:
            raise ValueError("no validation triples to fit a threshold on; pass threshold= instead")
        self.per_relation = per_relation
        self.threshold = threshold
        self.batch_size = int(batch_size)
        self.relation_ids = relation_ids
        self.progress = progress

    @classmethod
    def from_graph(
        cls,
        graph: Any,
        validation_split: str = "validation_classification",
        test_split: str = "test_classification",
        **kwargs: Any,
    ) -> TripleClassificationEvaluator:
        """Build from a KnowledgeGraph with labeled classification splits (FB15k-237N ships them)."""
        kwargs.setdefault("relation_ids", getattr(graph, "relation_ids", None))
        return cls(
            (graph.triples(validation_split), graph.labels(validation_split)),
            (graph.triples(test_split), graph.labels(test_split)),
            **kwargs,
        )

    def fit(self, validation_scores: Any) -> DecisionThresholds:
        """Thresholds from validation scores (or the fixed ``threshold``)."""
        if self.threshold is not None:
            return DecisionThresholds(float(self.threshold))
        return fit_thresholds(
            validation_scores,
            self.validation_labels,
            self.validation_triples[:, 1],
            per_relation=self.per_relation,
        )

    def score(self, scorer: Any, which: str = "test") -> np.ndarray:
        """Scores of the ``"validation"`` or ``"test"`` triples."""
        triples = self.validation_triples if which == "validation" else self.test_triples
        return score_in_batches(
            scorer, triples, self.batch_size, progress=self.progress, desc=f"scoring {which}"
        )

    def run(self, scorer: Any) -> TripleClassificationResult:
        """Score validation and test, fit thresholds on validation and measure test metrics."""
        validation_scores = self.score(scorer, "validation") if self.threshold is None else np.zeros(0)
        test_scores = self.score(scorer, "test")
        return self.run_from_scores(validation_scores, test_scores)

    def run_from_scores(self, validation_scores: Any, test_scores: Any) -> TripleClassificationResult:
        """Same as :meth:`run` from precomputed scores (aligned with the validation and test triples)."""
        test_values = _as_scores(test_scores)
        if len(test_values) != len(self.test_labels):
            raise ValueError(f"{len(test_values)} test scores for {len(self.test_labels)} test triples")
        validation_values = _as_scores(validation_scores)
        if self.threshold is None and len(validation_values) != len(self.validation_labels):
            raise ValueError(
                f"{len(validation_values)} validation scores for {len(self.validation_labels)} triples"
            )
        thresholds = self.fit(validation_values)
        relations = self.test_triples[:, 1]
        predictions = thresholds.predict(test_values, relations)
        metrics = classification_metrics(predictions, self.test_labels)
        global_metrics = classification_metrics(test_values >= thresholds.global_threshold, self.test_labels)
        per_relation: dict[Any, dict[str, float]] = {}
        for r in np.unique(relations):
            chosen = relations == r
            key = self.relation_ids[int(r)] if self.relation_ids is not None else int(r)
            per_relation[key] = classification_metrics(predictions[chosen], self.test_labels[chosen])
        return TripleClassificationResult(
            metrics, global_metrics, thresholds, validation_values, test_values, per_relation
        )

    def evaluate(self, scorer: Any, metric_key_prefix: str | None = "eval") -> dict[str, float]:
        """Run and return flat metrics (``eval_accuracy``, ``eval_f1``, ...; HF ``Trainer`` convention)."""
        return self.run(scorer).to_dict(metric_key_prefix)
