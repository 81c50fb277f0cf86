"""Models: KG-BERT with reconstruction (``ContextualizedKGBert``), its triple scorer, and helpers to find
offline encoder checkpoints."""

from .kgbert import (
    ContextualizedKGBert,
    ContextualizedKGBertConfig,
    ContextualizedKGBertOutput,
    KGBertTripleEncoder,
    KGBertTripleScorer,
)
from .offline import minilm_path

__all__ = [
    "ContextualizedKGBert",
    "ContextualizedKGBertConfig",
    "ContextualizedKGBertOutput",
    "KGBertTripleEncoder",
    "KGBertTripleScorer",
    "minilm_path",
]
