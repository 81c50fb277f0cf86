"""The text formats of the KG-S2S tasks, shared by training (the collator) and inference (the predictor).

=====================  =====================================================  ==========================
task                   source                                                 target
=====================  =====================================================  ==========================
kgc, tail query        ``predict tail: <head> | <relation>[ | <head descr.>]``  ``<tail name>``
kgc, head query        ``predict head: <tail> | <relation>[ | <tail descr.>]``  ``<head name>``
contextualization      ``contextualize: <head> | <relation> | <tail>``          the context paragraph
reconstruction         ``reconstruct: <context with masked spans>``             the context paragraph
=====================  =====================================================  ==========================

Entity names are the disambiguated :class:`~hf_ctxdistill.models.kgs2s.entity_names.EntityNames`, in
sources and targets alike. The contextualization source is built from the triple itself (its head,
relation and tail), never from a prediction of the model. The optional description of the known entity
comes last, so the source's token budget cuts it before anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TAIL_PREFIX = "predict tail: "
HEAD_PREFIX = "predict head: "
CONTEXTUALIZE_PREFIX = "contextualize: "
RECONSTRUCT_PREFIX = "reconstruct: "
SEPARATOR = " | "
SIDES: tuple[str, ...] = ("tail", "head")


class KGS2SInputFormatter:
    """Builds the source texts of the KG-S2S tasks for entity and relation indices of a KG.

    Args:
        graph: A :class:`~hf_ctxdistill.data.KnowledgeGraph` (relation names and entity descriptions).
        entity_names: The names to use, index-aligned with the KG's entities (an ``EntityNames`` or a list).
        use_descriptions: Append the known entity's description to link-prediction sources.
        description_max_words: Words of the description kept (the source's token budget applies after).
    """

    def __init__(
        self,
        graph: Any,
        entity_names: Sequence[str],
        *,
        use_descriptions: bool = True,
        description_max_words: int = 24,
    ) -> None:
        self.names = entity_names
        if len(entity_names) != graph.num_entities:
            raise ValueError(f"{len(entity_names)} entity names for {graph.num_entities} entities")
        self.relation_names = [name or rid for name, rid in zip(graph.relation_names, graph.relation_ids)]
        self.use_descriptions = use_descriptions
        self.description_max_words = int(description_max_words)
        self._descriptions = graph.entity_descriptions

    def description(self, entity: int) -> str:
        """The first ``description_max_words`` words of an entity's description ('' when it has none)."""
        text = self._descriptions[entity] if self._descriptions is not None else None
        if not text:
            return ""
        return " ".join(str(text).split()[: self.description_max_words])

    def query(self, entity: int, relation: int, side: str) -> str:
        """Source of a link-prediction query: ``side="tail"`` asks for the tail of ``(entity, relation, ?)``,
        ``side="head"`` for the head of ``(?, relation, entity)``."""
        if side not in SIDES:
            raise ValueError(f"side must be 'tail' or 'head', got {side!r}")
        prefix = TAIL_PREFIX if side == "tail" else HEAD_PREFIX
        text = f"{prefix}{self.names[int(entity)]}{SEPARATOR}{self.relation_names[int(relation)]}"
        if self.use_descriptions:
            description = self.description(int(entity))
            if description:
                text += f"{SEPARATOR}{description}"
        return text

    def contextualize(self, head: int, relation: int, tail: int) -> str:
        """Source of the contextualization task for the triple ``(head, relation, tail)``."""
        return (
            f"{CONTEXTUALIZE_PREFIX}{self.names[int(head)]}{SEPARATOR}{self.relation_names[int(relation)]}"
            f"{SEPARATOR}{self.names[int(tail)]}"
        )


__all__ = [
    "CONTEXTUALIZE_PREFIX",
    "HEAD_PREFIX",
    "RECONSTRUCT_PREFIX",
    "SEPARATOR",
    "SIDES",
    "TAIL_PREFIX",
    "KGS2SInputFormatter",
]
