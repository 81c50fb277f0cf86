"""Models: KG-BERT with reconstruction (``ContextualizedKGBert``) and KG-S2S with contextualization
(``ContextualizedKGS2S``), their scorers, and helpers to find offline checkpoints."""

from .kgbert import (
    ContextualizedKGBert,
    ContextualizedKGBertConfig,
    ContextualizedKGBertOutput,
    KGBertTripleEncoder,
    KGBertTripleScorer,
)
from .kgs2s import (
    ContextualizedKGS2S,
    ContextualizedKGS2SConfig,
    ContextualizedKGS2SOutput,
    EntityNames,
    EntityTrie,
    KGS2SInputFormatter,
    KGS2SLinkPredictor,
)
from .offline import minilm_path, smollm2_gguf_path

__all__ = [
    "ContextualizedKGBert",
    "ContextualizedKGBertConfig",
    "ContextualizedKGBertOutput",
    "KGBertTripleEncoder",
    "KGBertTripleScorer",
    "minilm_path",
    "smollm2_gguf_path",
    "ContextualizedKGS2S",
    "ContextualizedKGS2SConfig",
    "ContextualizedKGS2SOutput",
    "EntityNames",
    "EntityTrie",
    "KGS2SInputFormatter",
    "KGS2SLinkPredictor",
]
