"""KG-BERT with Contextualization Distillation's reconstruction objective (``ContextualizedKGBert``).

Importing this package registers the model with the ``transformers`` auto classes, so
``AutoConfig.from_pretrained`` / ``AutoModel.from_pretrained`` resolve ``model_type
"contextualized_kgbert"``.
"""

from transformers import AutoConfig, AutoModel

from .configuration_kgbert import ContextualizedKGBertConfig
from .modeling_kgbert import (
    ContextualizedKGBert,
    ContextualizedKGBertOutput,
    KGBertClassificationHead,
    KGBertGenericLMHead,
)
from .processing_kgbert import KGBertTripleEncoder
from .scoring import KGBertTripleScorer

AutoConfig.register(ContextualizedKGBertConfig.model_type, ContextualizedKGBertConfig, exist_ok=True)
AutoModel.register(ContextualizedKGBertConfig, ContextualizedKGBert, exist_ok=True)

__all__ = [
    "ContextualizedKGBert",
    "ContextualizedKGBertConfig",
    "ContextualizedKGBertOutput",
    "KGBertClassificationHead",
    "KGBertGenericLMHead",
    "KGBertTripleEncoder",
    "KGBertTripleScorer",
]
