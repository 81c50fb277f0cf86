"""Contexts: LLM-written text for KG triples and entities, stored as a :class:`ContextCorpus`."""

from .corpus import CORPUS_FEATURES, ContextCorpus, normalize_context
from .dataset_card import create_corpus_card

__all__ = ["CORPUS_FEATURES", "ContextCorpus", "create_corpus_card", "normalize_context"]
