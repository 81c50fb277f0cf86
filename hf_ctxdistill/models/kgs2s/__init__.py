"""KG-S2S with Contextualization Distillation's contextualization and reconstruction objectives.

Importing this package registers the model with the ``transformers`` auto classes, so
``AutoConfig.from_pretrained`` / ``AutoModel.from_pretrained`` resolve ``model_type
"contextualized_kgs2s"``. See ``docs/generative.md``.
"""

from transformers import AutoConfig, AutoModel

from .configuration_kgs2s import TASKS, ContextualizedKGS2SConfig
from .decoding import MODES, EntityTrie, KGS2SLinkPredictor
from .entity_names import EntityNames
from .inputs import KGS2SInputFormatter
from .modeling_kgs2s import TASK_KEYS, ContextualizedKGS2S, ContextualizedKGS2SOutput

AutoConfig.register(ContextualizedKGS2SConfig.model_type, ContextualizedKGS2SConfig, exist_ok=True)
AutoModel.register(ContextualizedKGS2SConfig, ContextualizedKGS2S, exist_ok=True)

__all__ = [
    "MODES",
    "TASKS",
    "TASK_KEYS",
    "ContextualizedKGS2S",
    "ContextualizedKGS2SConfig",
    "ContextualizedKGS2SOutput",
    "EntityNames",
    "EntityTrie",
    "KGS2SInputFormatter",
    "KGS2SLinkPredictor",
]
