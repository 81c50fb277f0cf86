"""Contexts: LLM-written text for KG triples and entities, stored as a :class:`ContextCorpus`."""

from .corpus import CORPUS_FEATURES, ContextCorpus, normalize_context
from .dataset_card import create_corpus_card

__all__ = ["CORPUS_FEATURES", "ContextCorpus", "create_corpus_card", "normalize_context"]

# Generation: prompt templates, LLM backends, the resumable cache, the generator and the HTTP server.
from .backends import GenerationBackend, GenerationResult, OpenAIBackend, TransformersBackend
from .cache import CacheKey, ContextCache
from .generator import ContextGenerator, CoverageReport, postprocess_context
from .prompts import (
    PROMPT_TEMPLATES,
    PromptTemplate,
    get_prompt_template,
    load_prompt_template,
    save_prompt_template,
)
from .server import ContextServer, serve

__all__ += [
    "CacheKey",
    "ContextCache",
    "ContextGenerator",
    "ContextServer",
    "CoverageReport",
    "GenerationBackend",
    "GenerationResult",
    "OpenAIBackend",
    "PROMPT_TEMPLATES",
    "PromptTemplate",
    "TransformersBackend",
    "get_prompt_template",
    "load_prompt_template",
    "postprocess_context",
    "save_prompt_template",
    "serve",
]
