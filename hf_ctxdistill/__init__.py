"""hf_ctxdistill: Contextualization Distillation for knowledge graph completion, HuggingFace-native.

The pipeline reads left to right: ``data`` (load a KG) -> ``context`` (LLM-written contexts per triple)
-> ``models`` (KG-BERT / KG-S2S with auxiliary losses) -> ``training`` (MultiTaskTrainer)
-> ``evaluation`` (filtered link prediction) -> ``hub`` (model cards, pushing).
"""

__version__ = "0.1.0.dev0"

from .data import (
    KGFormatError,
    KnowledgeGraph,
    LoadReport,
    load_kg,
    read_kg,
    read_wordnet,
    sample_subgraph,
)
from .evaluation import (
    LinkPredictionEvaluator,
    LinkPredictionResult,
    TripleClassificationEvaluator,
    compute_ranks,
    merge_results,
    rank_metrics,
)
from .models import (
    ContextualizedKGBert,
    ContextualizedKGBertConfig,
    ContextualizedKGS2S,
    ContextualizedKGS2SConfig,
    KGBertTripleEncoder,
    KGBertTripleScorer,
    KGS2SLinkPredictor,
    minilm_path,
)
from .training import CtxDistillTrainingArguments, KGBertCollator, KGS2SCollator, MultiTaskTrainer

__all__ = [
    "KGFormatError",
    "KnowledgeGraph",
    "LoadReport",
    "load_kg",
    "read_kg",
    "read_wordnet",
    "sample_subgraph",
    "LinkPredictionEvaluator",
    "LinkPredictionResult",
    "TripleClassificationEvaluator",
    "compute_ranks",
    "merge_results",
    "rank_metrics",
    "ContextualizedKGBert",
    "ContextualizedKGBertConfig",
    "KGBertTripleEncoder",
    "KGBertTripleScorer",
    "minilm_path",
    "CtxDistillTrainingArguments",
    "KGBertCollator",
    "ContextualizedKGS2S",
    "ContextualizedKGS2SConfig",
    "KGS2SLinkPredictor",
    "KGS2SCollator",
    "MultiTaskTrainer",
]
