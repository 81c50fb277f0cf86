"""Evaluation: filtered link prediction with an explicit tie rule, and triple classification.

See ``docs/evaluation.md`` for the protocol, the tie rule, sharding and resuming.
"""

from __future__ import annotations

from .link_prediction import (
    CandidateScorer,
    LinkPredictionEvaluator,
    LinkPredictionResult,
    TripleScorer,
    merge_results,
    score_in_batches,
)
from .metrics import DEFAULT_KS, flatten_metrics, metrics_breakdown, rank_metrics
from .ranking import TIE_RULES, FilterIndex, combine_rank_bounds, compute_rank_bounds, compute_ranks
from .triple_classification import (
    DecisionThresholds,
    TripleClassificationEvaluator,
    TripleClassificationResult,
    classification_metrics,
    fit_threshold,
    fit_thresholds,
)

__all__ = [
    "DEFAULT_KS",
    "TIE_RULES",
    "CandidateScorer",
    "DecisionThresholds",
    "FilterIndex",
    "LinkPredictionEvaluator",
    "LinkPredictionResult",
    "TripleClassificationEvaluator",
    "TripleClassificationResult",
    "TripleScorer",
    "classification_metrics",
    "combine_rank_bounds",
    "compute_rank_bounds",
    "compute_ranks",
    "fit_threshold",
    "fit_thresholds",
    "flatten_metrics",
    "merge_results",
    "metrics_breakdown",
    "rank_metrics",
    "score_in_batches",
]
