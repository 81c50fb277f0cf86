"""The KG data layer: readers for the common KGC layouts, the canonical ``DatasetDict`` and the
index-based :class:`KnowledgeGraph` view."""

from .errors import KGFormatError, LoadReport, Problem
from .knowledge_graph import KnowledgeGraph, ensure_knowledge_graph
from .load import KGReadResult, detect_format, load_kg, read_kg
from .sampling import sample_subgraph
from .schema import (
    ENTITIES,
    ENTITY_FEATURES,
    LABELED_TRIPLE_FEATURES,
    RELATION_FEATURES,
    RELATIONS,
    TRIPLE_FEATURES,
    TRIPLE_SPLITS,
    classification_split,
)
from .wordnet import WORDNET_RELATIONS, WordNetGraph, read_wordnet, read_wordnet_graph

__all__ = [
    "ENTITIES",
    "ENTITY_FEATURES",
    "KGFormatError",
    "KGReadResult",
    "KnowledgeGraph",
    "LABELED_TRIPLE_FEATURES",
    "LoadReport",
    "Problem",
    "RELATIONS",
    "RELATION_FEATURES",
    "TRIPLE_FEATURES",
    "TRIPLE_SPLITS",
    "classification_split",
    "detect_format",
    "ensure_knowledge_graph",
    "load_kg",
    "read_kg",
    "read_wordnet",
    "read_wordnet_graph",
    "sample_subgraph",
    "WordNetGraph",
    "WORDNET_RELATIONS",
]
