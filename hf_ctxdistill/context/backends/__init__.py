"""LLM backends behind one interface (:class:`GenerationBackend`): a local ``transformers`` model or any
OpenAI-compatible HTTP endpoint."""

from __future__ import annotations

from .base import GenerationBackend, GenerationResult, Prompt, ThroughputStats, messages_to_text
from .openai_backend import OpenAIBackend
from .transformers_backend import OFFLINE_MODELS, TransformersBackend, resolve_model

__all__ = [
    "GenerationBackend",
    "GenerationResult",
    "OFFLINE_MODELS",
    "OpenAIBackend",
    "Prompt",
    "ThroughputStats",
    "TransformersBackend",
    "messages_to_text",
    "resolve_model",
]
